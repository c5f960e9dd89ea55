"""The synthetic renderer: seeded, boxes inside the frame, every layout and colour."""
import random

import numpy as np

from detector.plate_format import normalise
from training.datasets import scene
from training.synth import COLOURS, render_scene


def test_same_seed_same_scene_other_seed_other_scene():
    a, b = scene("t", 3), scene("t", 3)
    assert np.array_equal(a.image, b.image) and a.plates == b.plates
    assert not np.array_equal(a.image, scene("t", 4).image)


def test_boxes_lie_inside_the_frame_and_texts_are_valid_plates():
    for i in range(40):
        sc = render_scene(random.Random(i))
        h, w = sc.image.shape[:2]
        assert (w, h) == (640, 480)
        for p in sc.plates:
            x1, y1, x2, y2 = p.box
            assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
            assert normalise(p.spec.text).text == p.spec.text
            assert normalise(p.spec.text).valid, p.spec.text


def test_a_third_of_a_set_leads_with_a_two_row_plate():
    layouts = [scene("t", i).plates[0].spec.layout for i in range(30) if scene("t", i).plates]
    assert sum(layout != "one_row" for layout in layouts) >= 10


def test_all_colours_and_layouts_occur():
    rng = random.Random(0)
    from training.synth import random_plate

    specs = [random_plate(rng) for _ in range(400)]
    assert {s.colour for s in specs} == set(COLOURS)
    assert {s.layout for s in specs} == {"one_row", "two_row_car", "motorbike"}
