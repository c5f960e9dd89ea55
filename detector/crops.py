"""Crops of one plate box to read a single photo from several times.

A reader's mistakes on a small, blurred plate often depend on exactly where the crop is cut and
how large it is. Single photos have no stream to keep pace with, so each plate is read from a
few crops and the most convincing read wins (PlateReader.read_box); camera frames are read once
a frame, and their tracks vote across frames instead.
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

# margins added to each side as shares of the box's (width, height), None: the box enlarged 2x.
# In this order: the box as found, enlarged, tighter, wider: the best single crops on the real
# validation photos (models/MODEL_CARD.md), so the first `count` are the best `count`
CROPS: tuple[tuple[float, float] | None, ...] = ((0.0, 0.0), None, (-0.03, -0.04), (0.06, 0.08))
MAX_CROPS = len(CROPS)


def plate_crops(image: np.ndarray, box: Sequence[int], count: int = 1) -> list[np.ndarray]:
    """The first `count` (1..MAX_CROPS) crops of box (x1, y1, x2, y2) in image; empty where the box is off it."""
    x1, y1, x2, y2 = box
    height, width = image.shape[:2]
    as_found = image[max(0, y1):min(height, y2), max(0, x1):min(width, x2)]
    crops = []
    for margin in CROPS[:count]:
        if margin is None:  # enlarge the crop as cut (the image's edges may have clipped it)
            crops.append(cv2.resize(as_found, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC) if as_found.size
                         else as_found)
        else:
            dx, dy = int((x2 - x1) * margin[0]), int((y2 - y1) * margin[1])
            crops.append(image[max(0, y1 - dy):min(height, y2 + dy), max(0, x1 - dx):min(width, x2 + dx)])
    return crops
