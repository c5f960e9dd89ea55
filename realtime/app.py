"""App factory: Flask + Flask-SocketIO, the Socket.IO events and the HTTP routes.

Handlers only validate and put frames in their camera's slot (O(1)); the inference
worker (realtime/worker.py) does the rest in its own OS thread; the results pump,
a background task on the loop side, emits what the worker hands back.
"""
from __future__ import annotations

import hmac
import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from time import monotonic
from typing import Callable

from flask import Flask, Response, jsonify, request, send_from_directory
from flask_socketio import ConnectionRefusedError, SocketIO, join_room, leave_room
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from detector import PersistentDetector
from detector.config import resolve
from realtime.config import AppConfig
from realtime.events import EventBook
from realtime.frames import FrameError, FramePayload, camera_id_of, parse_frame
from realtime.health import health_report
from realtime.http_detect import read_detect_body
from realtime.plate_log import PlateLog
from realtime.slots import Frame, FrameSlots
from realtime.stats import Stats
from realtime.threads import LoopWaker
from realtime.worker import FrameResult, InferenceWorker

log = logging.getLogger("plates")
WEB_DIR = Path(__file__).resolve().parent.parent / "web"
RATE_BURST = 3.0  # frames a camera may send back to back before max_fps_per_camera applies
MAX_SUBSCRIPTIONS = 64  # cameras one client may watch at once


@dataclass
class Runtime:
    """Everything the handlers share; lives on the loop side."""

    config: AppConfig
    slots: FrameSlots
    worker: InferenceWorker
    stats: Stats
    events: EventBook
    plate_log: PlateLog
    started: float = field(default_factory=monotonic)
    clients: set[str] = field(default_factory=set)
    streams: dict[str, set[str]] = field(default_factory=dict)  # camera -> sids sending it
    buckets: dict[str, tuple[float, float]] = field(default_factory=dict)  # camera -> (tokens, last time)
    last_notice: dict[tuple, float] = field(default_factory=dict)  # (sid, what...) -> when last logged/sent
    watching: dict[str, set[str]] = field(default_factory=dict)  # sid -> cameras it subscribed to

    def admit(self, sid: str, camera_id: str) -> None:
        """Register sid as a sender of camera_id, refusing cameras beyond max_cameras."""
        senders = self.streams.get(camera_id)
        if senders is None:
            if len(self.streams) >= self.config.server.max_cameras:
                raise FrameError("too_many_cameras", f"the server takes at most {self.config.server.max_cameras} cameras at once")
            senders = self.streams[camera_id] = set()
        senders.add(sid)

    def within_rate(self, camera_id: str) -> bool:
        """Token bucket per camera: max_fps_per_camera on average, a short burst allowed."""
        now = monotonic()
        tokens, last = self.buckets.get(camera_id, (RATE_BURST, now))
        tokens = min(RATE_BURST, tokens + (now - last) * self.config.server.max_fps_per_camera)
        allowed = tokens >= 1.0
        self.buckets[camera_id] = (tokens - 1.0 if allowed else tokens, now)
        return allowed

    def first_in_a_while(self, key: tuple, seconds: float) -> bool:
        """True at most once per `seconds` for a key: throttles repeated logs and notices."""
        now = monotonic()
        if now - self.last_notice.get(key, -1e9) < seconds:
            return False
        self.last_notice[key] = now
        return True

    def release(self, sid: str) -> None:
        """A client left: cameras it alone was sending are closed."""
        self.clients.discard(sid)
        self.watching.pop(sid, None)
        self.last_notice = {k: v for k, v in self.last_notice.items() if k[0] != sid}
        for camera_id in [c for c, sids in self.streams.items() if sid in sids]:
            self.streams[camera_id].discard(sid)
            if not self.streams[camera_id]:
                del self.streams[camera_id]
                self.buckets.pop(camera_id, None)
                for _ in range(self.slots.discard(camera_id)):
                    self.stats.dropped(camera_id)
                self.stats.forget(camera_id)


def origin_check(allowed: tuple[str, ...]) -> Callable[[str | None, dict], bool]:
    """Browsers may connect from the server's own pages or from a configured origin."""
    def is_allowed(origin: str | None, environ: dict) -> bool:
        if "*" in allowed or origin in allowed:
            return True
        own = f"{environ.get('wsgi.url_scheme', 'http')}://{environ.get('HTTP_HOST', '')}"
        return origin == own
    return is_allowed


def result_payload(result: FrameResult, stats: dict) -> dict:
    p: FramePayload = result.frame.payload
    detections = [r.to_dict() for r in result.reads]
    payload = {
        "camera_id": p.camera_id, "frame_id": p.frame_id, "ts": p.ts, "frame_size": list(result.frame_size),
        "detections": detections,
        "detection": max(detections, key=lambda d: d["confidence"]) if detections else None,
        "timing_ms": result.timing_ms, "stats": stats,
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


@dataclass(frozen=True)
class PlateServer:
    app: Flask
    socketio: SocketIO
    runtime: Runtime
    start: Callable[[], None]  # start the worker (it loads the models) and the results pump


def create_app(config: AppConfig, load_detector: Callable[[], PersistentDetector] | None = None) -> PlateServer:
    """Build the Flask app, its SocketIO server and the runtime; start() begins loading the models."""
    server = config.server
    app = Flask(__name__, static_folder=None)
    # the transport refuses payloads far over the frame limit; base64 adds a third
    app.config["MAX_CONTENT_LENGTH"] = server.max_frame_bytes * 4 // 3 + 65536
    socketio = SocketIO(
        app, async_mode=server.async_mode, logger=False, engineio_logger=False,
        cors_allowed_origins=origin_check(server.cors_allowed_origins),
        max_http_buffer_size=server.max_frame_bytes * 4 // 3 + 65536,
    )
    # naive: the benchmark's reference, every frame queued and fully read, one at a time
    slots, waker = FrameSlots(keep_all=server.naive), LoopWaker()
    load = load_detector or (lambda: PersistentDetector(config.vision))
    tracking = replace(config.tracking, reread_every=1) if server.naive else config.tracking
    careful = None if server.naive or not config.careful.enabled else config.careful
    worker = InferenceWorker(load, slots, waker, 1 if server.naive else server.max_batch, tracking, careful)
    runtime = Runtime(config, slots, worker, Stats(),
                      EventBook(config.events.window_s), PlateLog(resolve(config.events.database)))
    stats = runtime.stats

    def log_error(sid: str | None, exc: FrameError, camera_id: str | None) -> None:
        """One line per error, but a client repeating the same error is logged every 10 s at most."""
        if runtime.first_in_a_while((sid or "http", exc.code), 10.0):
            log.warning("refused frame from %s camera=%s: %s (%s)", sid or "http", camera_id, exc.code, exc.message)

    def refuse(sid: str, exc: FrameError, camera_id: str | None, frame_id=None) -> dict:
        """Count, log and tell the client; a flood of rate-limited frames gets one event a second."""
        stats.refused(exc.code, camera_id)
        payload = error_payload(exc, camera_id, frame_id)
        if exc.code != "rate_limited" or runtime.first_in_a_while((sid, "rate_limited", camera_id), 1.0):
            log_error(sid, exc, camera_id)
            socketio.emit("error", payload, to=sid)
        return {"ok": False, "error": payload}

    # ------------------------------------------------------------------ Socket.IO

    @socketio.on("connect")
    def on_connect(auth=None):
        sid = request.sid
        token = auth.get("token") if isinstance(auth, dict) else None
        token = token if isinstance(token, str) else request.args.get("token", "")
        # a flood of refused connections logs one line per reason every 10 s, not one per attempt
        if server.auth_token and not hmac.compare_digest(token.encode(), server.auth_token.encode()):
            if runtime.first_in_a_while(("connect", "unauthorized"), 10.0):
                log.warning("refused connection %s from %s: bad or missing token", sid, request.remote_addr)
            raise ConnectionRefusedError("unauthorized", {"code": "unauthorized", "message": "a valid token is required (auth: {token})"})
        if len(runtime.clients) >= server.max_clients:
            if runtime.first_in_a_while(("connect", "too_many_clients"), 10.0):
                log.warning("refused connection %s from %s: %d clients already", sid, request.remote_addr, len(runtime.clients))
            raise ConnectionRefusedError("too_many_clients", {"code": "too_many_clients", "message": "the server is full, try again later"})
        runtime.clients.add(sid)
        stats.m_clients.set(len(runtime.clients))
        log.info("client %s connected from %s", sid, request.remote_addr)

    @socketio.on("disconnect")
    def on_disconnect(*_):
        sid = request.sid
        runtime.release(sid)
        stats.m_clients.set(len(runtime.clients))
        log.info("client %s disconnected", sid)

    @socketio.on("video_frame")
    def on_video_frame(*args):
        sid = request.sid
        payload = args[0] if len(args) == 1 else list(args)  # several arguments: not a frame
        fields = payload if isinstance(payload, dict) else {}
        camera_id = fields.get("camera_id") if isinstance(fields.get("camera_id"), str) else None
        frame_id = fields.get("frame_id") if isinstance(fields.get("frame_id"), (str, int)) else None
        try:
            if not runtime.worker.ready:
                raise FrameError("not_ready", "the models are still loading; retry shortly")
            frame = parse_frame(payload, server.max_frame_bytes, server.max_image_pixels)
            runtime.admit(sid, frame.camera_id)
            if not runtime.within_rate(frame.camera_id):
                raise FrameError("rate_limited", f"over {server.max_fps_per_camera:g} frames per second for this camera")
        except FrameError as exc:
            return refuse(sid, exc, camera_id and camera_id[:64], frame_id)
        stats.received(frame.camera_id)
        if slots.put(Frame(frame, sid)) is not None:
            stats.dropped(frame.camera_id)
        return {"ok": True}

    @socketio.on("subscribe")
    def on_subscribe(*args):
        payload = args[0] if len(args) == 1 else None
        try:
            camera_id = camera_id_of(payload)
            watched = runtime.watching.setdefault(request.sid, set())
            if camera_id not in watched and len(watched) >= MAX_SUBSCRIPTIONS:
                raise FrameError("too_many_subscriptions", f"a client may watch at most {MAX_SUBSCRIPTIONS} cameras")
        except FrameError as exc:
            return refuse(request.sid, exc, None)
        watched.add(camera_id)
        join_room(f"camera:{camera_id}")
        return {"ok": True}

    @socketio.on("unsubscribe")
    def on_unsubscribe(*args):
        payload = args[0] if len(args) == 1 else None
        try:
            camera_id = camera_id_of(payload)
        except FrameError as exc:
            return refuse(request.sid, exc, None)
        runtime.watching.get(request.sid, set()).discard(camera_id)
        leave_room(f"camera:{camera_id}")
        return {"ok": True}

    # ------------------------------------------------------------------ results pump (loop side)

    def deliver(result: FrameResult) -> None:
        frame = result.frame
        if frame.reply is not None:  # POST /detect waits for this one
            frame.reply["result"] = result
            frame.reply["event"].set()
            return
        camera_id = frame.payload.camera_id
        if result.error is not None:
            refuse(frame.sid, result.error, camera_id, frame.payload.frame_id)
            return
        cam = stats.processed(camera_id, len(result.reads), result.timing_ms or {}, result.ocr_calls)
        payload = result_payload(result, cam.summary())
        socketio.emit("detection_result", payload, to=frame.sid)
        socketio.emit("detection_result", payload, to=f"camera:{camera_id}", skip_sid=frame.sid)
        for report in result.reports:
            event, announce = runtime.events.observe(report)
            runtime.plate_log.record(event)
            if announce:
                socketio.emit("plate_event", event.to_dict(), to=frame.sid)
                socketio.emit("plate_event", event.to_dict(), to=f"camera:{camera_id}", skip_sid=frame.sid)

    def pump() -> None:
        worker, announced = runtime.worker, False
        while True:
            waker.wait(0.5)
            if worker.load_error:
                log.critical("could not load the models: %s", worker.load_error)
                os._exit(3)  # a server without models is no server: let the supervisor see it
            if worker.ready and not announced:
                announced = True
                log.info("models loaded in %.1f s: %s", worker.detector.load_seconds, worker.detector.models)
            results, failures = worker.drain()
            for failure in failures:
                log.error("inference failed on a frame:\n%s", failure)
            for result in results:
                try:
                    deliver(result)
                except Exception:  # one undeliverable result must not stop the pump
                    log.exception("could not deliver a result")
            stats.m_waiting.set(slots.waiting())

    # ------------------------------------------------------------------ HTTP

    @app.get("/health")
    def health():
        report = health_report(runtime)
        return jsonify(report), (200 if report["status"] == "ok" else 503)

    @app.get("/metrics")
    def metrics():
        return Response(generate_latest(stats.registry), mimetype=CONTENT_TYPE_LATEST)

    @app.post("/detect")
    def detect():
        try:
            if not runtime.worker.ready:
                raise FrameError("not_ready", "the models are still loading; retry shortly")
            frame = read_detect_body(request, server.max_frame_bytes, server.max_image_pixels)
        except FrameError as exc:
            log_error(None, exc, None)
            status = {"frame_too_large": 413, "unsupported_media_type": 415, "not_ready": 503}.get(exc.code, 400)
            return jsonify({"error": error_payload(exc)}), status
        reply = {"event": socketio.server.eio.create_event(), "result": None}
        if not slots.put_job(Frame(frame, None, reply=reply)):
            return jsonify({"error": {"code": "busy", "message": "too many /detect requests waiting"}}), 503
        if not reply["event"].wait(server.http_detect_timeout_s) or reply["result"] is None:
            return jsonify({"error": {"code": "timeout", "message": "the detector did not answer in time"}}), 503
        result: FrameResult = reply["result"]
        if result.error is not None:
            return jsonify({"error": error_payload(result.error)}), 400 if result.error.code == "invalid_frame" else 500
        reads = [r.to_dict() for r in result.reads]
        return jsonify({"frame_size": list(result.frame_size), "detections": reads,
                        "detection": max(reads, key=lambda d: d["confidence"]) if reads else None,
                        "timing_ms": result.timing_ms})

    @app.get("/events")
    def events():
        args = request.args
        try:
            camera_id = args.get("camera") or None
            if camera_id is not None:
                camera_id_of({"camera_id": camera_id})
            since = float(args["since"]) if "since" in args else None
            until = float(args["until"]) if "until" in args else None
            limit = int(args.get("limit", 100))
            if not 1 <= limit <= 1000:
                raise ValueError("limit must be 1..1000")
        except (ValueError, FrameError) as exc:
            return jsonify({"error": {"code": "invalid_request", "message": str(exc)}}), 400
        rows = runtime.plate_log.query(args.get("prefix", "").upper(), camera_id, since, until, limit)
        for row in rows:
            row["crop_url"] = f"/events/{row['id']}/crop"
        return jsonify({"events": rows})

    @app.get("/events/<event_id>/crop")
    def event_crop(event_id: str):
        crop = runtime.plate_log.crop(event_id) if event_id.isalnum() else None
        if not crop:
            return jsonify({"error": {"code": "not_found", "message": "no crop for this event"}}), 404
        return Response(crop, mimetype="image/jpeg")

    @app.errorhandler(413)
    def too_large(_):
        return jsonify({"error": {"code": "frame_too_large", "message": f"request body over {app.config['MAX_CONTENT_LENGTH']} bytes"}}), 413

    @app.get("/")
    def index():
        return send_from_directory(WEB_DIR, "index.html")

    @app.get("/web/<path:name>")
    def web_file(name: str):
        return send_from_directory(WEB_DIR, name)

    def start() -> None:
        runtime.worker.start()
        socketio.start_background_task(pump)

    return PlateServer(app, socketio, runtime, start)
