"""What the server sends: one builder per message, shared by the Socket.IO emits and the HTTP routes."""
from __future__ import annotations

import json

from socketio.packet import Packet

from realtime.frames import FrameError
from realtime.worker import FrameResult

MAX_ATTACHMENTS = 1  # binary attachments a client's packet may announce


def detections_payload(result: FrameResult) -> dict:
    """One image's reads: frame_size, every detection, the most confident one, timing (also POST /detect)."""
    detections = [r.to_dict() for r in result.reads]
    return {"frame_size": list(result.frame_size), "detections": detections,
            "detection": max(detections, key=lambda d: d["confidence"]) if detections else None,
            "timing_ms": result.timing_ms}


def result_payload(result: FrameResult, stats: dict) -> dict:
    """A `detection_result`: the frame's ids, its reads and its camera's running figures."""
    p = result.frame.payload
    payload = {
        "camera_id": p.camera_id,
        "frame_id": p.frame_id,
        "ts": p.ts,
        **detections_payload(result),
        "stats": stats,
    }
    if result.annotated:
        payload["annotated_frame"] = result.annotated
    return payload


def error_payload(exc: FrameError, camera_id: str | None = None, frame_id=None) -> dict:
    payload = {"code": exc.code, "message": exc.message}
    if camera_id is not None:
        payload["camera_id"] = camera_id
    if frame_id is not None:
        payload["frame_id"] = frame_id
    return payload


class StrictJSON:
    """JSON where NaN and Infinity are an error, never bare tokens in a packet (a browser's JSON.parse
    fails on them and drops the connection, with every camera it watched)."""

    loads = staticmethod(json.loads)

    @staticmethod
    def dumps(obj, **kwargs) -> str:
        return json.dumps(obj, allow_nan=False, **kwargs)


class StrictPacket(Packet):
    """The server's Socket.IO packets, in StrictJSON (a class of its own: python-socketio's `json=`
    option would change every Packet in the process, clients' too). A packet that announces more
    binary attachments than the protocol has (video_frame's frame: one) is refused before any is
    buffered: python-socketio would hold every one of them, each up to the transport's limit."""

    json = StrictJSON

    def decode(self, encoded_packet):
        attachments = super().decode(encoded_packet)
        if attachments > MAX_ATTACHMENTS:
            raise ValueError(f"a packet may carry {MAX_ATTACHMENTS} binary attachment, not {attachments}")
        return attachments
