"""The Socket.IO events (DESIGN.md's contract): each handler checks its arguments and asks the Runtime.

Handlers never wait: a frame goes to its camera's slot and the handler returns its ack at once.
"""
from __future__ import annotations

from flask import request
from flask_socketio import ConnectionRefusedError, SocketIO, join_room, leave_room

from realtime.auth import Refused
from realtime.frames import FrameError, camera_id_of
from realtime.payloads import error_payload
from realtime.runtime import Runtime


def room(camera_id: str) -> str:
    """The room of a camera's viewers (subscribe)."""
    return f"camera:{camera_id}"


def refuse(socketio: SocketIO, runtime: Runtime, sid: str, exc: FrameError, camera_id: str | None,
           frame_id=None) -> dict:
    """Count, log and tell the client (its `error` event and the ack); a flood of rate-limited frames gets one
    event a second."""
    runtime.stats.refused(exc.code, camera_id)
    payload = error_payload(exc, camera_id, frame_id)
    if exc.code != "rate_limited" or runtime.first_in_a_while((sid, "rate_limited", camera_id), 1.0):
        runtime.log_refusal(sid, exc, camera_id)
        socketio.emit("error", payload, to=sid)
    return {"ok": False, "error": payload}


def _one_argument(args: tuple) -> object:
    """An event's payload: its one argument (several arguments are no payload of ours)."""
    return args[0] if len(args) == 1 else list(args)


def _frame_ids(payload: object) -> tuple[str | None, str | int | None]:
    """The camera and frame ids a refusal may echo back: only well-typed ones, the camera id cut short."""
    fields = payload if isinstance(payload, dict) else {}
    camera_id = fields.get("camera_id") if isinstance(fields.get("camera_id"), str) else None
    frame_id = fields.get("frame_id") if isinstance(fields.get("frame_id"), (str, int)) else None
    return camera_id and camera_id[:64], frame_id


def register_socket_handlers(socketio: SocketIO, runtime: Runtime) -> None:
    @socketio.on("connect")
    def on_connect(auth=None):
        token = auth.get("token") if isinstance(auth, dict) else None
        token = token if isinstance(token, str) else request.args.get("token", "")
        try:
            runtime.connect(request.sid, token, request.remote_addr)
        except Refused as exc:
            raise ConnectionRefusedError(exc.code, {"code": exc.code, "message": exc.message}) from None

    @socketio.on("disconnect")
    def on_disconnect(*_):
        runtime.release(request.sid)

    @socketio.on("video_frame")
    def on_video_frame(*args):
        payload = _one_argument(args)
        try:
            runtime.accept_frame(request.sid, payload)
        except FrameError as exc:
            return refuse(socketio, runtime, request.sid, exc, *_frame_ids(payload))
        return {"ok": True}

    @socketio.on("subscribe")
    def on_subscribe(*args):
        try:
            camera_id = camera_id_of(_one_argument(args))
            runtime.watch(request.sid, camera_id)
        except FrameError as exc:
            return refuse(socketio, runtime, request.sid, exc, None)
        join_room(room(camera_id))
        return {"ok": True}

    @socketio.on("unsubscribe")
    def on_unsubscribe(*args):
        try:
            camera_id = camera_id_of(_one_argument(args))
        except FrameError as exc:
            return refuse(socketio, runtime, request.sid, exc, None)
        runtime.unwatch(request.sid, camera_id)
        leave_room(room(camera_id))
        return {"ok": True}
