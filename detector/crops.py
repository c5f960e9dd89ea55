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
# levelling: the rotations (degrees) tried, the one giving the sharpest row profile wins
ANGLES = np.arange(-15.0, 15.1, 1.5)


def level_angle(crop: np.ndarray) -> float:
    """The rotation (degrees, counter-clockwise) that levels the text rows of a plate crop.

    Level rows give a row-by-row edge profile with the sharpest steps (glyph tops and bottoms,
    the plate's border all fall on the same pixel rows), so the angle with the largest variance
    of the profile's differences wins; 0 where nothing is steeper than level.
    """
    grey = crop if crop.ndim == 2 else cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    edges = np.abs(cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)) + np.abs(
        cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
    )
    h, w = edges.shape
    scores = [
        float(
            np.var(
                np.diff(
                    cv2.warpAffine(edges, cv2.getRotationMatrix2D((w / 2, h / 2), a, 1), (w, h)).sum(axis=1)
                )
            )
        )
        for a in ANGLES
    ]
    return float(ANGLES[int(np.argmax(scores))]) if max(scores) > scores[len(ANGLES) // 2] else 0.0


def straighten(crop: np.ndarray) -> np.ndarray:
    """The crop turned so that its text rows are level (the edges filled from the border)."""
    if crop.shape[0] < 4 or crop.shape[1] < 4:
        return crop
    angle = level_angle(crop)
    if angle == 0.0:
        return crop
    h, w = crop.shape[:2]
    return cv2.warpAffine(
        crop, cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1), (w, h), borderMode=cv2.BORDER_REPLICATE
    )


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
