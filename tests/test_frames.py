"""Frame validation on the loop side: every refusal has its protocol code."""
import base64

import pytest

from realtime.frames import FrameError, decode, image_size, parse_frame
from tests.conftest import clear_shot

LIMIT, PIXELS = 2_000_000, 4096 * 4096


@pytest.fixture(scope="module")
def jpeg():
    return clear_shot("frames").jpeg


def _code(payload) -> str:
    with pytest.raises(FrameError) as err:
        parse_frame(payload, LIMIT, PIXELS)
    return err.value.code


def test_accepts_base64_data_url_and_bytes(jpeg):
    for frame in (
        base64.b64encode(jpeg).decode(),
        "data:image/jpeg;base64," + base64.b64encode(jpeg).decode(),
        jpeg,
    ):
        parsed = parse_frame(
            {"camera_id": "gate-1:a", "frame": frame, "frame_id": 3, "ts": 1.5}, LIMIT, PIXELS
        )
        assert (parsed.width, parsed.height, parsed.data) == (640, 480, jpeg)
    assert decode(jpeg).shape == (480, 640, 3)


def test_png_and_webp_headers():
    import cv2
    import numpy as np

    image = np.zeros((30, 50, 3), np.uint8)
    for ext in (".png", ".webp"):
        data = cv2.imencode(ext, image)[1].tobytes()
        assert image_size(data) == (50, 30)
        with pytest.raises(FrameError):
            image_size(data[: len(data) // 2])


@pytest.mark.parametrize("payload,code", [
    (None, "invalid_payload"),
    ({"camera_id": "c", "frame": "%%%"}, "invalid_frame"),
    ({"camera_id": "c", "frame": ""}, "invalid_frame"),
    ({"camera_id": "c", "frame": base64.b64encode(b"GIF89a....").decode()}, "invalid_frame"),
    ({"camera_id": "c/d", "frame": "AAAA"}, "invalid_camera_id"),
    ({"camera_id": "c", "frame": "AAAA", "annotate": 1}, "invalid_payload"),
    ({"camera_id": "c", "frame": "AAAA", "ts": True}, "invalid_payload"),
    ({"camera_id": "c", "frame": "AAAA", "frame_id": "x" * 65}, "invalid_payload"),
    ({"camera_id": "c", "frame": "A" * (LIMIT * 2)}, "frame_too_large"),
])
def test_refusals(payload, code):
    assert _code(payload) == code


def test_truncated_and_oversized_jpegs(jpeg):
    assert _code({"camera_id": "c", "frame": jpeg[:1000]}) == "invalid_frame"
    i = jpeg.index(b"\xff\xc0")
    huge = jpeg[:i + 5] + (50000).to_bytes(2, "big") + (50000).to_bytes(2, "big") + jpeg[i + 9:]
    assert _code({"camera_id": "c", "frame": huge}) == "image_too_large"
    with pytest.raises(FrameError):
        decode(jpeg[:200] + bytes(5000) + b"\xff\xd9")


@pytest.mark.parametrize("ts", [float("nan"), float("inf"), float("-inf")])
def test_a_timestamp_must_be_a_finite_number(jpeg, ts):
    # echoed back as bare NaN, it would break every watching browser's JSON parser
    assert _code({"camera_id": "gate", "frame": jpeg, "ts": ts}) == "invalid_payload"


@pytest.mark.parametrize("camera_id", ["gate-1\n", "gate-1\r\nFAKE", "gate\x00", "\ngate"])
def test_a_camera_id_is_whole_with_no_newline_or_nul(jpeg, camera_id):
    assert _code({"camera_id": camera_id, "frame": jpeg}) == "invalid_camera_id"
