"""The HTTP routes, as one Flask Blueprint: /health, /metrics, POST /detect, /events, the dashboard, and the
gate's /lists and /sessions (realtime/gate_routes.py)."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from flask import (
    Blueprint,
    Response,
    current_app,
    jsonify,
    request,
    send_from_directory,
)
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from realtime.auth import COOKIE, Refused, bearer
from realtime.frames import FrameError, camera_id_of
from realtime.gate_routes import add_gate_routes
from realtime.health import health_report
from realtime.http_detect import read_detect_body
from realtime.payloads import detections_payload, error_payload
from realtime.plate_log import PlateLogUnavailable
from realtime.runtime import Runtime
from realtime.slots import Frame
from realtime.threads import off_the_loop
from realtime.worker import FrameResult

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
PUBLIC = {"plates.health", "plates.index", "plates.web_file"}  # open even with a token set
DETECT_STATUS = {"frame_too_large": 413, "unsupported_media_type": 415, "not_ready": 503}  # else 400


def _error(code: str, message: str, status: int) -> tuple[Response, int]:
    """Every HTTP error: {"error": {code, message}}, as the Socket.IO `error` event carries it."""
    return jsonify({"error": error_payload(FrameError(code, message))}), status


def token_needed(runtime: Runtime) -> tuple[Response, int] | None:
    """With server.auth_token set, everything but /health and the dashboard's files needs it."""
    if request.endpoint in PUBLIC:
        return None
    try:
        runtime.auth.check(request.remote_addr, bearer(request.headers.get("Authorization")),
                           request.cookies.get(COOKIE))
    except Refused as exc:
        status = 429 if exc.code == "too_many_attempts" else 401
        return _error(exc.code, f"{exc.message}: Authorization: Bearer <token>", status)
    return None


def detect_one(runtime: Runtime, new_event: Callable[[], object]) -> tuple[Response, int] | Response:
    """POST /detect: the image goes through the worker's queue like a camera's; the request waits for it."""
    server = runtime.config.server
    try:
        if not runtime.worker.ready:
            raise FrameError("not_ready", "the models are still loading; retry shortly")
        frame = read_detect_body(request, server.max_frame_bytes, server.max_image_pixels)
    except FrameError as exc:
        runtime.log_refusal(None, exc, None)
        return _error(exc.code, exc.message, DETECT_STATUS.get(exc.code, 400))
    reply = {"event": new_event(), "result": None}
    if not runtime.slots.put_job(Frame(frame, None, reply=reply)):
        busy, status = _error("busy", "too many /detect requests waiting; retry shortly", 429)
        busy.headers["Retry-After"] = "1"
        return busy, status
    if not reply["event"].wait(server.http_detect_timeout_s) or reply["result"] is None:
        return _error("timeout", "the detector did not answer in time", 503)
    result: FrameResult = reply["result"]
    if (error := result.error) is not None:
        return _error(error.code, error.message, 400 if error.code == "invalid_frame" else 500)
    return jsonify(detections_payload(result))


def event_query(args: Mapping[str, str]) -> tuple[str, str | None, float | None, float | None, int]:
    """GET /events' filters as PlateLog.query takes them; ValueError or FrameError names a bad one."""
    camera_id = args.get("camera") or None
    if camera_id is not None:
        camera_id_of({"camera_id": camera_id})
    since = float(args["since"]) if "since" in args else None
    until = float(args["until"]) if "until" in args else None
    limit = int(args.get("limit", 100))
    if not 1 <= limit <= 1000:
        raise ValueError("limit must be 1..1000")
    return args.get("prefix", "").upper(), camera_id, since, until, limit


def http_routes(runtime: Runtime, new_event: Callable[[], object]) -> Blueprint:
    """The routes over `runtime`; `new_event()` makes what POST /detect waits on (async mode's kind)."""
    routes = Blueprint("plates", __name__)

    routes.before_request(lambda: token_needed(runtime))

    @routes.post("/session")
    def session():
        """The dashboard trades its token (Bearer) for a cookie, so its images and fetches carry it."""
        reply = Response(status=204)
        reply.set_cookie(COOKIE, runtime.auth.session, httponly=True, samesite="Strict")
        return reply

    @routes.get("/health")
    def health():
        report = health_report(runtime)
        return jsonify(report), (200 if report["status"] in ("ok", "degraded") else 503)

    @routes.get("/metrics")
    def metrics():
        return Response(generate_latest(runtime.stats.registry), mimetype=CONTENT_TYPE_LATEST)

    @routes.post("/detect")
    def detect():
        return detect_one(runtime, new_event)

    @routes.get("/events")
    def events():
        try:
            query = event_query(request.args)
        except (ValueError, FrameError) as exc:
            return _error("invalid_request", str(exc), 400)
        try:
            rows = off_the_loop(runtime.plate_log.query, *query)
        except PlateLogUnavailable as exc:
            return _error("plate_log_unavailable", str(exc), 503)
        for row in rows:
            row["crop_url"] = f"/events/{row['id']}/crop"
        return jsonify({"events": rows})

    @routes.get("/events/<event_id>/crop")
    def event_crop(event_id: str):
        try:
            crop = off_the_loop(runtime.plate_log.crop, event_id) if event_id.isalnum() else None
        except PlateLogUnavailable as exc:
            return _error("plate_log_unavailable", str(exc), 503)
        if not crop:
            return _error("not_found", "no crop for this event", 404)
        return Response(crop, mimetype="image/jpeg")

    add_gate_routes(routes, runtime, _error)

    @routes.app_errorhandler(413)
    def too_large(_):
        return _error(
            "frame_too_large", f"request body over {current_app.config['MAX_CONTENT_LENGTH']} bytes", 413
        )

    @routes.get("/")
    def index():
        return send_from_directory(WEB_DIR, "index.html")

    @routes.get("/web/<path:name>")
    def web_file(name: str):
        return send_from_directory(WEB_DIR, name)

    return routes
