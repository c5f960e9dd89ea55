"""Split a plate crop into its text rows (two-row plates are half of Vietnamese traffic).

A one-row plate is wide (about 4.3:1); motorbike plates (1.4:1) and two-row car plates
(2:1) are not. Between those shapes the horizontal-edge profile decides: two-row plates have
a quiet band between their rows. Real one-row plates come much narrower than 4.3:1 (short red
and yellow plates, padded or seen at an angle), so only crops narrower than a two-row car
plate are taken as two rows without looking.
"""
from __future__ import annotations

import cv2
import numpy as np

ONE_ROW_MIN_ASPECT = 3.2  # wider than this is always one row
TWO_ROW_MAX_ASPECT = 2.0  # narrower than this is always two rows
# Between, a middle band quieter than this share of the rows' edge energy is a gap: leniently
# below 2.5:1, where real two-row plates still come (their gaps are noisy), strictly above.
GAP_RATIO_NARROW, NARROW_ASPECT, GAP_RATIO = 0.75, 2.5, 0.45
# Chosen on 487 real training crops of aspect 1.6-3.2 that read exactly as one row or as two but
# not both, and 348 synthetic ones: this rule cuts 42 real and 5 synthetic ones wrongly, against
# 140 and 1 for "always two rows below 2.5:1" (red military one-row plates at 2.1-2.5, mostly).
# Shapes where real crops of both kinds come: a single photo's unreadable crop of such a shape is
# read the other way too (other_split).
AMBIGUOUS_ASPECT = (1.6, 3.6)


def _edge_profile(grey: np.ndarray) -> np.ndarray:
    """Horizontal-gradient energy per pixel row, smoothed: high on text, low between rows."""
    dx = np.abs(cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)).sum(axis=1)
    k = max(1, grey.shape[0] // 20)
    return np.convolve(dx, np.ones(k) / k, mode="same")


def _two_rows(grey: np.ndarray, cut: int) -> list[tuple[int, int]]:
    h = grey.shape[0]
    pad = max(1, h // 25)  # a little overlap so a tilted row keeps its glyph tops and tails
    return [(0, min(h, cut + pad)), (max(0, cut - pad), h)]


def _gap(profile: np.ndarray) -> int:
    """The quietest pixel row of the middle band: where two rows would be cut apart."""
    lo, hi = int(len(profile) * 0.3), int(len(profile) * 0.7)
    return lo + int(np.argmin(profile[lo:hi]))


def split_rows(grey: np.ndarray) -> list[tuple[int, int]]:
    """(y_start, y_end) of each text row of a grey plate crop, top row first."""
    h, w = grey.shape[:2]
    if h < 8 or w / h >= ONE_ROW_MIN_ASPECT:
        return [(0, h)]
    profile = _edge_profile(grey)
    cut = _gap(profile)
    rows_energy = (profile[: max(1, int(h * 0.45))].mean() + profile[int(h * 0.55):].mean()) / 2
    gap_ratio = GAP_RATIO_NARROW if w / h < NARROW_ASPECT else GAP_RATIO
    if w / h > TWO_ROW_MAX_ASPECT and profile[cut] > gap_ratio * rows_energy:
        return [(0, h)]
    return _two_rows(grey, cut)


def other_split(grey: np.ndarray, chosen: list[tuple[int, int]]) -> list[tuple[int, int]] | None:
    """The rows split_rows did not choose (`chosen`), for a crop whose shape could hold one row or two
    (AMBIGUOUS_ASPECT: real boxes of either come padded, tilted or cut short); None otherwise."""
    h, w = grey.shape[:2]
    if h < 8 or not AMBIGUOUS_ASPECT[0] <= w / h <= AMBIGUOUS_ASPECT[1]:
        return None
    return _two_rows(grey, _gap(_edge_profile(grey))) if len(chosen) == 1 else [(0, h)]
