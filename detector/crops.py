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

# the box as found, enlarged 2x, 3%/4% tighter, 6%/8% wider (x/y): in this order, the best single
# crops on the real validation photos (models/MODEL_CARD.md), so `count` takes the best first
MAX_CROPS = 4


def plate_crops(image: np.ndarray, box: Sequence[int], count: int = 1) -> list[np.ndarray]:
    """The first `count` (1..MAX_CROPS) crops of box (x1, y1, x2, y2) in image."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    height, width = image.shape[:2]

    def cut(dx: int, dy: int) -> np.ndarray:
        return image[max(0, y1 - dy):min(height, y2 + dy), max(0, x1 - dx):min(width, x2 + dx)]

    crops = [cut(0, 0)]
    if count > 1 and crops[0].size:
        crops.append(cv2.resize(crops[0], None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC))
    if count > 2:
        crops.append(cut(-int(w * 0.03), -int(h * 0.04)))
    if count > 3:
        crops.append(cut(int(w * 0.06), int(h * 0.08)))
    return crops[:count]
