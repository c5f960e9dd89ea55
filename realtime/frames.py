"""Validate incoming frames cheaply, on the event loop: types, sizes, image headers.

Nothing here decodes pixels: that happens in the inference worker (`decode`). A frame
that passes `parse_frame` is bytes of a JPEG/PNG/WebP whose header claims a sane size
and whose end marker is present (a truncated upload is refused here, at once).
"""
from __future__ import annotations

import base64
import binascii
import math
import re
import struct
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

CAMERA_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")  # the whole id (fullmatch: no trailing newline)
DATA_URL = re.compile(r"^data:image/[a-z0-9.+-]+;base64,", re.IGNORECASE)


class FrameError(ValueError):
    """A frame refused with an error code of the protocol."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class FramePayload:
    camera_id: str
    data: bytes  # encoded image
    width: int
    height: int
    frame_id: str | int | None
    ts: float | int | None
    annotate: bool


def camera_id_of(payload: Any) -> str:
    camera_id = payload.get("camera_id") if isinstance(payload, dict) else None
    if not isinstance(camera_id, str) or not CAMERA_ID.fullmatch(camera_id):
        raise FrameError("invalid_camera_id", "camera_id must be 1-64 characters of A-Z a-z 0-9 _ . : -")
    return camera_id


def _image_bytes(frame: Any, max_bytes: int) -> bytes:
    if isinstance(frame, (bytes, bytearray, memoryview)):
        data = bytes(frame)
    elif isinstance(frame, str):
        text = DATA_URL.sub("", frame[:64], count=1) + frame[64:] if frame.startswith("data:") else frame
        if not text:
            raise FrameError("invalid_frame", "frame is empty")
        if len(text) > (max_bytes * 4) // 3 + 8:
            raise FrameError("frame_too_large", f"frame is over {max_bytes} bytes")
        try:
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise FrameError(
                "invalid_frame", "frame is not valid base64 (or a data:image/...;base64, URL)"
            ) from None
    else:
        raise FrameError("invalid_frame", "frame must be a base64 string or binary bytes")
    if not data:
        raise FrameError("invalid_frame", "frame is empty")
    if len(data) > max_bytes:
        raise FrameError("frame_too_large", f"frame is {len(data)} bytes, over the limit of {max_bytes}")
    return data


def image_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a JPEG, PNG or WebP header; FrameError when it is none of them or cut short."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        if b"IEND" not in data[-16:]:
            raise FrameError("invalid_frame", "PNG image is truncated")
        return struct.unpack(">II", data[16:24])
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
        if struct.unpack("<I", data[4:8])[0] + 8 > len(data):
            raise FrameError("invalid_frame", "WebP image is truncated")
        chunk = data[12:16]
        if chunk == b"VP8 ":
            w, h = struct.unpack("<HH", data[26:30])
            return w & 0x3FFF, h & 0x3FFF
        if chunk == b"VP8L":
            bits = int.from_bytes(data[21:25], "little")
            return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        if chunk == b"VP8X":
            return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
        raise FrameError("invalid_frame", "unsupported WebP variant")
    if data[:2] == b"\xff\xd8":
        if b"\xff\xd9" not in data[-64:]:
            raise FrameError("invalid_frame", "JPEG image is truncated (no end marker)")
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                raise FrameError("invalid_frame", "JPEG image is corrupt")
            marker = data[i + 1]
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                i += 2
                continue
            length = struct.unpack(">H", data[i + 2:i + 4])[0]
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                h, w = struct.unpack(">HH", data[i + 5:i + 9])
                return w, h
            i += 2 + length
        raise FrameError("invalid_frame", "JPEG image has no frame header")
    raise FrameError("invalid_frame", "frame is not a JPEG, PNG or WebP image")


def parse_frame(payload: Any, max_bytes: int, max_pixels: int) -> FramePayload:
    """Check a video_frame payload; FrameError with the protocol's code when it is wrong."""
    if not isinstance(payload, dict):
        raise FrameError(
            "invalid_payload", "video_frame expects an object {camera_id, frame, frame_id?, ts?, annotate?}"
        )
    camera_id = camera_id_of(payload)
    frame_id = payload.get("frame_id")
    if frame_id is not None and not (isinstance(frame_id, (str, int)) and not isinstance(frame_id, bool)
                                     and len(str(frame_id)) <= 64):
        raise FrameError("invalid_payload", "frame_id must be a string or integer of at most 64 characters")
    ts = payload.get("ts")
    # NaN or Infinity would be echoed as bare NaN, which no browser's JSON parser reads
    if ts is not None and (isinstance(ts, bool) or not isinstance(ts, (int, float)) or not math.isfinite(ts)):
        raise FrameError("invalid_payload", "ts must be a finite number")
    annotate = payload.get("annotate", False)
    if not isinstance(annotate, bool):
        raise FrameError("invalid_payload", "annotate must be true or false")
    data = _image_bytes(payload.get("frame"), max_bytes)
    width, height = image_size(data)
    if width < 1 or height < 1:
        raise FrameError("invalid_frame", "image header claims an empty image")
    if width * height > max_pixels:
        raise FrameError(
            "image_too_large", f"image claims {width}x{height} pixels, over the limit of {max_pixels}"
        )
    return FramePayload(camera_id, data, width, height, frame_id, ts, annotate)


def decode(data: bytes) -> np.ndarray:
    """BGR pixels of an encoded image (worker side); FrameError when the pixels are broken."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise FrameError("invalid_frame", "image data could not be decoded")
    return image
