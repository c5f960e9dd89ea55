"""Row splitting of plate crops, on freshly rendered plates of every layout."""
import random

import cv2
import pytest

from detector.rows import other_split, split_rows
from training.synth import plate_sample, random_plate


@pytest.mark.parametrize("layout,rows", [("one_row", 1), ("two_row_car", 2), ("motorbike", 2)])
def test_split_rows_finds_the_printed_rows(layout, rows):
    rng = random.Random(f"test-rows-{layout}")
    right = 0
    for _ in range(60):
        crop, spec = plate_sample(rng, random_plate(rng, layout))
        right += len(split_rows(cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY))) == rows
    assert right >= 57  # 95%


def test_two_rows_cover_the_crop_top_then_bottom():
    rng = random.Random("test-rows-order")
    crop, _ = plate_sample(rng, random_plate(rng, "motorbike"))
    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    (a0, a1), (b0, b1) = split_rows(grey)
    assert a0 == 0 and b1 == grey.shape[0]
    assert a0 < b0 < a1 < b1


def test_narrow_one_row_plates_stay_one_row():
    """Real one-row plates come at 2.1-2.5:1 (short red plates, padded boxes, seen at an angle)."""
    rng = random.Random("test-rows-narrow")
    right = 0
    for _ in range(40):
        crop, _ = plate_sample(rng, random_plate(rng, "one_row"))
        grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
        h = grey.shape[0]
        right += len(split_rows(cv2.resize(grey, (round(h * rng.uniform(2.1, 2.5)), h)))) == 1
    assert right >= 38


def test_a_crop_that_could_hold_one_row_or_two_has_the_other_split_too():
    rng = random.Random("test-rows-other")
    one, _ = plate_sample(rng, random_plate(rng, "one_row"))
    grey = cv2.cvtColor(one, cv2.COLOR_BGR2GRAY)
    h = grey.shape[0]
    for aspect in (5, 1.2):  # wide: one row, square: two rows, no doubt
        crop = cv2.resize(grey, (round(h * aspect), h))
        assert other_split(crop, split_rows(crop)) is None
    for aspect in (1.7, 2.3, 3.0, 3.5):
        crop = cv2.resize(grey, (round(h * aspect), h))
        chosen = split_rows(crop)
        other = other_split(crop, chosen)
        assert {len(chosen), len(other)} == {1, 2}
        rows = chosen if len(chosen) == 2 else other
        assert rows[0][0] == 0 and rows[1][1] == h and rows[0][0] < rows[1][0] < rows[0][1] < rows[1][1]
