"""What a plate box looks like, cheaply: is this still the vehicle that was read?

At a gate the next vehicle stops where the last one stood, so a box that overlaps a track is
not proof of the same vehicle. A `Look` is two tiny views of a box, a few microseconds to
make and compare:
- detail: the plate itself, grey at 48x24 and high-passed, so the rows of dark characters on a
  light ground that every plate shares cancel out and the characters' own shapes remain;
  compared over shifts of up to 2 px, since the detector's box wobbles by a few pixels;
- surroundings: the box widened on every side (the bumper, the motorbike, the rider around
  the plate) in colour at 24x16.
Each view is compared by normalised correlation and the two are averaged. Neither is enough
alone (`python -m bench.look_bench`): real gate motorbikes' plates look alike in detail but
their surroundings differ; synthetic scenes' flat-coloured vehicles look alike around the plate
but their characters differ.

A whole frame has a cheaper kind of look, its `thumbnail`, compared by how many of its pixels
`changed`: whether a vehicle came or left (THUMB, CHANGED: a distant car is a few of its pixels),
or whether anything moved at all since a frame was looked at (SCENE, MOVED: coarser, so that a
pixel's jitter and the sensor's noise do not count, a vehicle's moving does).

A still vehicle's frames are not all alike sharp (focus, motion blur, the camera's own resampling):
`sharpness` tells which of two copies of one picture is the sharper, to read the sharper one.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

DETAIL_SIZE = (48, 24)  # width, height
DETAIL_SHIFT = 2  # pixels of the detail view the comparison may slide
SURROUNDINGS_SIZE = (24, 16)
WIDEN = 0.5  # the surroundings add this share of the box's width on each side, and of its height below
FLAT = 1e-3  # standard deviation (grey levels) under which a view is blank
WIDEN_ABOVE = 1.0  # ... and twice that above: the vehicle's body is mostly above its plate
THUMB = (64, 48)  # the picture a camera's frames are compared by, to tell that something came, left or moved
CHANGED = (16, 0.005)  # a picture changed where this share of its thumbnail moved by this many grey levels
# a frame moved from another where this share of its SCENE thumbnail moved by this many grey levels: a
# pixel of jitter moves at most 0.8 % of a real photo's (vn-real, vn-gate), a different vehicle at least 8 %
SCENE = (32, 24)
MOVED = (32, 0.02)


@dataclass(frozen=True)
class Look:
    detail: np.ndarray  # float32, DETAIL_SIZE, zero mean
    surroundings: np.ndarray  # float32, SURROUNDINGS_SIZE x 3


def look(image: np.ndarray, bbox: tuple[int, int, int, int]) -> Look:
    """The look of one box of a BGR image."""
    height, width = image.shape[:2]
    x1, y1, x2, y2 = (int(v) for v in bbox)
    x1, y1, x2, y2 = max(0, x1), max(0, y1), min(width, max(x2, x1 + 1)), min(height, max(y2, y1 + 1))
    grey = cv2.cvtColor(image[y1:y2, x1:x2], cv2.COLOR_BGR2GRAY)
    detail = cv2.resize(grey, DETAIL_SIZE, interpolation=cv2.INTER_AREA).astype(np.float32)
    detail -= cv2.GaussianBlur(detail, (0, 0), 3)
    w, h = x2 - x1, y2 - y1
    around = image[max(0, int(y1 - WIDEN_ABOVE * h)):min(height, int(y2 + WIDEN * h)),
                   max(0, int(x1 - WIDEN * w)):min(width, int(x2 + WIDEN * w))]
    surroundings = cv2.resize(around, SURROUNDINGS_SIZE, interpolation=cv2.INTER_AREA).astype(np.float32)
    return Look(detail, surroundings)


def similarity(a: Look, b: Look) -> float:
    """From -1 (opposite) through 0 (unrelated) to 1 (the same picture)."""
    s = DETAIL_SHIFT
    middle = b.detail[s:-s, s:-s]
    flat = min(a.detail.std(), middle.std()) < FLAT  # a blank crop correlates with nothing
    detail = 0.0 if flat else float(cv2.matchTemplate(a.detail, middle, cv2.TM_CCOEFF_NORMED).max())
    return (detail + _correlation(a.surroundings, b.surroundings)) / 2


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b) / norm if norm > FLAT else 0.0


def thumbnail(image: np.ndarray, size: tuple[int, int] = THUMB) -> np.ndarray:
    """A whole frame, grey and tiny."""
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return cv2.resize(grey, size, interpolation=cv2.INTER_AREA).astype(np.float32)


def changed(a: np.ndarray, b: np.ndarray, criterion: tuple[int, float] = CHANGED) -> bool:
    """Two thumbnails of one size differ by the criterion: (grey levels, share of their pixels)."""
    levels, share = criterion
    return float((np.abs(a - b) >= levels).mean()) >= share


def sharpness(image: np.ndarray, bbox: tuple[int, int, int, int] | None = None) -> float:
    """How sharp a BGR image is (within bbox, if given): 1 plus the mean squared Laplacian of its grey
    levels (1: flat). Comparable between copies of one picture, not between pictures."""
    if bbox is not None:
        height, width = image.shape[:2]
        x1, y1, x2, y2 = (int(v) for v in bbox)
        image = image[max(0, y1):min(height, y2), max(0, x1):min(width, x2)]
    if image.size == 0:
        return 1.0
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return 1.0 + float(np.mean(np.square(cv2.Laplacian(grey, cv2.CV_32F))))
