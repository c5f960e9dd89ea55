"""Draw reads on an image: green boxes with the plate text."""
from __future__ import annotations

import cv2
import numpy as np

from detector.results import PlateRead

GREEN = (0, 200, 0)


def draw_reads(image: np.ndarray, reads: list[PlateRead]) -> np.ndarray:
    out = image.copy()
    for r in reads:
        x1, y1, x2, y2 = r.bbox
        cv2.rectangle(out, (x1, y1), (x2, y2), GREEN, 2)
        label = f"{r.text or '?'} {r.confidence:.2f}"
        (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
        top = max(0, y1 - th - 6)
        cv2.rectangle(out, (x1, top), (x1 + tw + 4, top + th + 6), GREEN, -1)
        cv2.putText(
            out, label, (x1 + 2, top + th + 2), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA
        )
    return out
