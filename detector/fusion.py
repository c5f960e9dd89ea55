"""One sharper picture of a still plate from several frames of it (multi-frame reconstruction).

A webcam's frames of a vehicle standing at a gate are the same scene, each sampled a fraction of a
pixel off the last (the camera and the vehicle shake, the sensor resamples). Each frame's small
characters are blurred by that resampling, by a different amount in each frame, and the reader
misreads the blurrier ones: on vn-real's evaluation photos streamed as bench/real_replay.py streams
them, the careful profile reads 0.680 of the files and 0.607 of the sharpest of 15 frames (around the
photo path's box). The frames together hold what each lost: registered to the sharpest to a fiftieth
of a pixel (OpenCV's ECC) and solved for the one picture that, moved by each frame's shift, looks like
every frame (least squares, Landweber iterations), they read 0.648 (15 frames; 8: 0.630, 5: 0.617; the
same frames' sharpest 0.607, 0.615, 0.596). A frame that does not register (the vehicle moved, the
light changed) is left out.
"""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

ITERATIONS = 30  # of the least-squares solve (as measured above)
# a frame whose registered grey levels correlate less than this with the reference's shows something else
MIN_CORRELATION = 0.9
MAX_SHIFT = 2.0  # pixels: a frame further off is another position of the vehicle, not the same picture
_ECC_STOP = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 50, 1e-4)


def fuse(reference: np.ndarray, others: Sequence[np.ndarray]) -> np.ndarray:
    """The picture the frames show, on the reference frame's pixel grid (uint8, the reference's shape).
    `others`: more frames of the same window, the same shape as the reference (any others are left out)."""
    frames = [reference.astype(np.float32)]
    shifts = [np.zeros(2, np.float32)]
    for other in others:
        if other.shape != reference.shape or other is reference:
            continue
        shift = registered(reference, other)
        if shift is not None:
            frames.append(other.astype(np.float32))
            shifts.append(shift)
    if len(frames) == 1:
        return reference
    # Landweber: picture += sum over frames of moved(frame - moved(picture, shift), -shift), averaged (moving
    # back is moving's adjoint). Moving is a shift by whole pixels and a 2x2 bilinear kernel, so moving there
    # and back is one 3x3 kernel whatever the shift, and the sum over frames is one too: each iteration is one
    # small convolution, not two resamplings a frame (vn-real's plate regions, 12 frames: fusion 47 -> 20 ms,
    # nearly all of it now the registering)
    target = sum(moved(frame, -shift) for frame, shift in zip(frames, shifts))
    there_and_back = sum(moved(moved(IMPULSE, shift), -shift) for shift in shifts)
    kernel = cv2.flip(there_and_back, -1)  # filter2D correlates
    picture = frames[0].copy()
    for _ in range(ITERATIONS):
        picture += (target - cv2.filter2D(picture, -1, kernel, borderType=cv2.BORDER_REPLICATE)) / len(frames)
    return np.clip(picture + 0.5, 0, 255).astype(np.uint8)


IMPULSE = np.zeros((7, 7), np.float32)  # one bright pixel, at the centre: moving it shows the moving's kernel
IMPULSE[3, 3] = 1


def moved(picture: np.ndarray, shift: Sequence[float]) -> np.ndarray:
    """The picture moved by shift (dx, dy) pixels, resampled bilinearly, its edges repeated."""
    matrix = np.float32([[1, 0, shift[0]], [0, 1, shift[1]]])
    return cv2.warpAffine(picture, matrix, picture.shape[1::-1], flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def registered(reference: np.ndarray, frame: np.ndarray) -> np.ndarray | None:
    """How far (dx, dy) the frame's picture is moved from the reference's; None: it does not register."""
    ref, other = grey(reference), grey(frame)
    if ref.shape[0] < 8 or ref.shape[1] < 8:
        return None
    # phase correlation's coarse shift (to a tenth of a pixel), refined by ECC
    (dx, dy), _ = cv2.phaseCorrelate(ref, other, cv2.createHanningWindow(ref.shape[::-1], cv2.CV_32F))
    warp = np.float32([[1, 0, -dx], [0, 1, -dy]])  # ECC's warp maps the reference's pixels onto the frame's
    try:
        correlation, warp = cv2.findTransformECC(other, ref, warp, cv2.MOTION_TRANSLATION, _ECC_STOP, None, 1)
    except cv2.error:  # did not converge: a flat or unrelated picture
        return None
    shift = -warp[:, 2]
    if correlation < MIN_CORRELATION or np.abs(shift).max() > MAX_SHIFT:
        return None
    return shift.astype(np.float32)


def grey(image: np.ndarray) -> np.ndarray:
    return (image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)).astype(np.float32)
