"""POST /detect bodies: multipart `image`, a raw image/* body, or JSON {"image": base64}."""
from __future__ import annotations

from flask import Request

from realtime.frames import FrameError, FramePayload, parse_frame


def read_detect_body(request: Request, max_bytes: int, max_pixels: int) -> FramePayload:
    """The image of a /detect request, checked like a video frame (FrameError otherwise)."""
    mimetype = request.mimetype or ""
    if mimetype == "multipart/form-data":
        upload = request.files.get("image")
        if upload is None:
            raise FrameError("invalid_request", "multipart body needs a file field named 'image'")
        frame: object = upload.read(max_bytes + 1)
    elif mimetype.startswith("image/") or mimetype == "application/octet-stream":
        frame = request.get_data(cache=False)
    elif mimetype == "application/json":
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or "image" not in body:
            raise FrameError("invalid_request", 'JSON body must be {"image": "<base64>"}')
        frame = body["image"]
    else:
        raise FrameError(
            "unsupported_media_type",
            "send multipart/form-data with 'image', an image/* body, or application/json {image}",
        )
    return parse_frame({"camera_id": "http", "frame": frame}, max_bytes, max_pixels)
