"""Box geometry shared by tracking, evaluation and tests."""
from __future__ import annotations

import statistics
from collections.abc import Sequence

from detector.results import PlateBox


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x1, y1, x2, y2) boxes."""
    x1, y1, x2, y2 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def median_box(boxes: Sequence[PlateBox]) -> PlateBox:
    """The coordinate-wise median of boxes of one plate (the most confident one's confidence): steadier than
    any one of them, whose edges move by a pixel from frame to frame."""
    x1, y1, x2, y2 = (round(statistics.median(getattr(b, side) for b in boxes))
                      for side in ("x1", "y1", "x2", "y2"))
    return PlateBox(x1, y1, x2, y2, max(b.confidence for b in boxes))
