"""Crops of one plate box, straightened, to read a single photo from several times.

A reader's mistakes on a small, blurred plate often depend on exactly where the crop is cut and
how large it is. Single photos have no stream to keep pace with, so each plate is read from a
few crops and the most convincing read wins (PlateReader.read_box); camera frames are read once
a frame, and their tracks vote across frames instead. Plates photographed at an angle come
rotated in their boxes, and the reader reads rows left to right: each crop is turned level first.
"""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

# margins added to each side as shares of the box's (width, height), None: the box enlarged 2x.
# In this order: the box as found, enlarged, tighter, wider: the best single crops on the real
# validation photos (docs/history.md), so the first `count` are the best `count`
CROPS: tuple[tuple[float, float] | None, ...] = ((0.0, 0.0), None, (-0.03, -0.04), (0.06, 0.08))
MAX_CROPS = len(CROPS)
# levelling: the rotations (degrees) tried; plates seen from the side come tilted up to about 30
ANGLES = np.arange(-30.0, 30.1, 1.5)
LEVEL_WIDTH = 96  # crops are judged at this width at most (the angle needs no more detail; time)


def level_angle(crop: np.ndarray) -> float:
    """The rotation (degrees, counter-clockwise) that levels the text rows of a plate crop.

    Each pixel's edge strength is projected onto the rows of each angle tried, without turning the
    picture (turning blurs it, and level, unturned, always looked sharpest: tilted two-row plates
    were never levelled). Level rows give the profile with the sharpest steps (glyph tops and
    bottoms, the border, the gap between rows all fall on the same rows), so the angle with the
    largest variance of the profile's differences wins; 0 where nothing beats level. A row of the
    profile is the mean over its pixels, and rows crossing few pixels (the crop's corners) are left
    out, so no angle gains from how many pixels its rows happen to cross.
    """
    grey = crop if crop.ndim == 2 else cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    if grey.shape[1] > LEVEL_WIDTH:
        height = max(4, round(grey.shape[0] * LEVEL_WIDTH / grey.shape[1]))
        grey = cv2.resize(grey, (LEVEL_WIDTH, height), interpolation=cv2.INTER_AREA)
    edges = np.abs(cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)) + np.abs(
        cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
    )
    h, w = edges.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    xs, ys, strength = (xs - w / 2).ravel(), (ys - h / 2).ravel(), edges.ravel()
    reach = int(np.hypot(h, w) / 2) + 2  # the profile's rows run from -reach to reach
    scores = []
    for angle in np.deg2rad(ANGLES):
        rows = np.rint(ys * np.cos(angle) - xs * np.sin(angle)).astype(np.int64) + reach
        pixels = np.bincount(rows, minlength=2 * reach + 1)
        full = pixels >= w / 2
        profile = np.bincount(rows, strength, minlength=2 * reach + 1)[full] / pixels[full]
        scores.append(float(np.var(np.diff(profile))) if profile.size > 2 else 0.0)
    best = int(np.argmax(scores))
    return float(ANGLES[best]) if scores[best] > scores[len(ANGLES) // 2] else 0.0


def straighten(crop: np.ndarray) -> np.ndarray:
    """The crop turned so that its text rows are level, and cut to the plate that, turned, filled it."""
    if crop.shape[0] < 4 or crop.shape[1] < 4:
        return crop
    angle = level_angle(crop)
    if angle == 0.0:
        return crop
    h, w = crop.shape[:2]
    level = cv2.warpAffine(
        crop, cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1), (w, h), borderMode=cv2.BORDER_REPLICATE
    )
    if (plate := _turned_plate(h, w, angle)) is None:
        return level
    x, y = (int((side - min(side, size * margin)) / 2)
            for side, size, margin in zip((w, h), plate, LEVEL_MARGIN))
    return level[y:h - y, x:w - x]


# the margins left around a levelled plate (its width, its height): boxes are not cut exactly round it;
# 0.60 -> 0.66 of vn-real's reference boxes read exactly, against turning it within the whole box
LEVEL_MARGIN = (1.1, 1.15)


def _turned_plate(h: int, w: int, angle: float) -> tuple[float, float] | None:
    """(width, height) of the plate which, turned by `angle`, just fills an h x w box; None where no plate
    does (the box is not a tilted plate's). A box round a tilted plate is larger than the plate, and the rest
    is replicated border once levelled, which the row splitter and the reader take for plate."""
    c, s = np.cos(np.deg2rad(abs(angle))), np.sin(np.deg2rad(abs(angle)))
    width, height = (w * c - h * s) / (c * c - s * s), (h * c - w * s) / (c * c - s * s)
    return (width, height) if width >= 0.5 * w and height >= 0.3 * h else None


def plate_crops(
    image: np.ndarray, box: Sequence[int], count: int = 1, level: bool = True
) -> list[np.ndarray]:
    """The first `count` (1..MAX_CROPS) crops of box (x1, y1, x2, y2) in image, each straightened
    (`level`); empty where the box is off it."""
    x1, y1, x2, y2 = box
    height, width = image.shape[:2]
    as_found = image[max(0, y1):min(height, y2), max(0, x1):min(width, x2)]
    crops = []
    for margin in CROPS[:count]:
        if margin is None:  # enlarge the crop as cut (the image's edges may have clipped it)
            crops.append(
                cv2.resize(as_found, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
                if as_found.size
                else as_found
            )
        else:
            dx, dy = int((x2 - x1) * margin[0]), int((y2 - y1) * margin[1])
            crops.append(image[max(0, y1 - dy):min(height, y2 + dy), max(0, x1 - dx):min(width, x2 + dx)])
    return [straighten(c) for c in crops] if level else crops
