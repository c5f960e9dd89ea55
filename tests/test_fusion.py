"""detector/fusion.py: several webcam frames of a still plate fused into the picture they all show."""
from __future__ import annotations

import random

import cv2
import numpy as np
import pytest

from detector.fusion import fuse, registered
from realtime.frames import decode
from training.real_data import webcam_frame


def plate() -> np.ndarray:
    """A small plate (characters ~8 px high) on a grey scene: a pixel's blur decides how it reads."""
    image = np.full((60, 160, 3), 90, np.uint8)
    cv2.rectangle(image, (20, 15), (140, 45), (235, 235, 235), -1)
    cv2.putText(image, "51F12345", (24, 38), cv2.FONT_HERSHEY_PLAIN, 1.2, (20, 20, 20), 1, cv2.LINE_8)
    return image


def streamed(image: np.ndarray, count: int, seed: int = 0):
    """count webcam frames of the still image as the real replay streams it, and how far each is moved."""
    rng = random.Random(seed)
    shifts = [np.array([rng.uniform(-1, 1), rng.uniform(-1, 1)]) for _ in range(count)]
    return [decode(webcam_frame(image, *s)) for s in shifts], shifts  # as the server decodes them


def ideal(image: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """The image moved by shift without a bilinear resampling's blur (Lanczos)."""
    matrix = np.float32([[1, 0, shift[0]], [0, 1, shift[1]]])
    return cv2.warpAffine(image, matrix, image.shape[1::-1], flags=cv2.INTER_LANCZOS4,
                          borderMode=cv2.BORDER_REPLICATE).astype(np.float32)


def error(picture: np.ndarray, truth: np.ndarray) -> float:
    # the edges (repeated where a frame was moved) left out
    return float(np.mean((picture.astype(np.float32) - truth)[5:-5, 5:-5] ** 2))


def test_frames_register_to_a_twentieth_of_a_pixel():
    frames, shifts = streamed(plate(), 6)
    for frame, shift in zip(frames[1:], shifts[1:]):
        assert registered(frames[0], frame) == pytest.approx(shift - shifts[0], abs=0.05)


def test_twelve_frames_fused_are_several_times_closer_to_the_picture_than_any_one_of_them():
    image = plate()
    frames, shifts = streamed(image, 12)
    for reference, shift in zip(frames, shifts):
        fused = fuse(reference, frames)
        assert fused.shape == reference.shape and fused.dtype == np.uint8
        assert error(fused, ideal(image, shift)) < error(reference, ideal(image, shift)) / 2.5


def test_frames_that_show_something_else_are_left_out():
    image = plate()
    other_picture = np.random.default_rng(1).integers(0, 255, image.shape, dtype=np.uint8)
    moved_on = np.roll(image, 7, axis=1)  # the vehicle moved 7 px: not the same picture any more
    for other in (other_picture, moved_on, np.zeros_like(image)):
        assert registered(image, other) is None
    for other in (other_picture, moved_on, np.zeros_like(image), image[:, :-1]):  # the last: another shape
        assert fuse(image, [other]) is image  # the reference alone, as it was
    flat = np.full_like(image, 128)
    assert fuse(flat, [flat.copy(), flat.copy()]) is flat  # nothing to register on
