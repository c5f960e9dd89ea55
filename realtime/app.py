"""App factory: Flask + Flask-SocketIO put together from the realtime parts.

Handlers (realtime/sockets.py, realtime/routes.py) only validate and put frames in their
camera's slot (O(1)); the inference worker (realtime/worker.py) does the rest in its own OS
thread; the results pump (realtime/pump.py), a background task on the loop side, emits what
the worker hands back. With server.message_queue set, the process is one of several sharing
Redis: its emits reach the others' viewers (realtime/message_queue.py) and it serves only the
cameras whose lease it holds (realtime/leases.py).
"""
from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from flask import Flask
from flask_socketio import SocketIO
from werkzeug.middleware.proxy_fix import ProxyFix

from detector import PersistentDetector
from realtime.config import AppConfig
from realtime.events import EventBook
from realtime.gate import Gate
from realtime.leases import CameraLeases
from realtime.message_queue import QueuedRedisManager
from realtime.parking import ParkingSessions
from realtime.payloads import StrictPacket
from realtime.plate_lists import PlateLists
from realtime.plate_log import PlateLog
from realtime.protocol_log import protocol_logger
from realtime.pump import ResultsPump
from realtime.routes import http_routes
from realtime.runtime import Runtime
from realtime.slots import FrameSlots
from realtime.sockets import register_socket_handlers
from realtime.stats import Stats
from realtime.threads import LoopWaker, off_the_loop
from realtime.webhooks import Webhooks
from realtime.worker import InferenceWorker


def origin_check(allowed: tuple[str, ...]) -> Callable[[str | None, dict], bool]:
    """Browsers may connect from a configured origin, or from the server's own pages when they were reached
    by address (127.0.0.1, [::1], 192.168.1.20) or as localhost. A page reached by another name must be
    configured: any site can point its own name at this address (DNS rebinding), and then its Origin
    equals the Host it sends."""
    def is_allowed(origin: str | None, environ: dict) -> bool:
        if "*" in allowed or origin in allowed:
            return True
        host = environ.get("HTTP_HOST", "")
        own = f"{environ.get('wsgi.url_scheme', 'http')}://{host}"
        return origin == own and by_address(host)
    return is_allowed


def by_address(host: str) -> bool:
    """A Host header that names an IP address or localhost (with or without a port)."""
    name = host[1:host.find("]")] if host.startswith("[") else host.rsplit(":", 1)[0]
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return name.lower() == "localhost"
    return True


def read_chunked_bodies(wsgi_app: Callable) -> Callable:
    """Eventlet de-chunks a chunked request body but does not say so, and Werkzeug then reads such a body
    as empty (a valid /detect image got 400): mark it terminated, so it is read, capped at
    MAX_CONTENT_LENGTH (413 past it). Werkzeug's own server (threading mode) already marks it."""
    def app(environ: dict, start_response: Callable):
        if getattr(environ.get("wsgi.input"), "chunked_input", False):
            environ["wsgi.input_terminated"] = True
        return wsgi_app(environ, start_response)
    return app


@dataclass(frozen=True)
class PlateServer:
    app: Flask
    socketio: SocketIO
    runtime: Runtime
    start: Callable[[], None]  # start the worker (it loads the models) and the results pump


def create_app(config: AppConfig, load_detector: Callable[[], PersistentDetector] | None = None,
               slots: FrameSlots | None = None) -> PlateServer:
    """Build the Flask app, its SocketIO server and the runtime; start() begins loading the models.
    `load_detector` and `slots` replace the shipped models and the newest-frame slots (tests, the bench)."""
    server = config.server
    queue = leases = None
    if server.message_queue:
        queue = QueuedRedisManager(server.message_queue, server.publish_queue)
        me = f"{socket.gethostname()}:{server.port}/{os.getpid()}"
        leases = CameraLeases(server.message_queue, me, server.camera_lease_s)
    app = Flask(__name__, static_folder=None)
    # the transport refuses payloads far over the frame limit; base64 adds a third
    app.config["MAX_CONTENT_LENGTH"] = server.max_frame_bytes * 4 // 3 + 65536
    socketio = SocketIO(
        app, async_mode=server.async_mode, logger=protocol_logger(), engineio_logger=protocol_logger(),
        cors_allowed_origins=origin_check(server.cors_allowed_origins),
        max_http_buffer_size=server.max_frame_bytes * 4 // 3 + 65536, serializer=StrictPacket,
        **({"client_manager": queue} if queue else {}),
    )
    slots, waker = slots or FrameSlots(), LoopWaker()
    load = load_detector or (lambda: PersistentDetector(config.vision))
    careful = config.careful if config.careful.enabled else None
    worker = InferenceWorker(
        load, slots, waker, server.max_batch, config.tracking, careful, server.annotate_quality
    )
    plate_log = PlateLog(config.events.database)
    # a camera that moved here from another process may be in the middle of an event the log has (asked
    # from the results pump, on the loop: the query runs in a real thread)
    events = EventBook(config.events.window_s, partial(off_the_loop, plate_log.recall) if leases else None)
    stats, rules = Stats(), config.gate
    webhooks = Webhooks(rules.webhook_secret, rules.webhook_timeout_s, rules.webhook_retries,
                        rules.webhook_backoff_s, rules.webhook_queue, rules.webhook_senders, stats)
    stats.add_webhooks(webhooks)
    gate = Gate(rules, PlateLists(plate_log.store, rules.lists_refresh_s),
                ParkingSessions(plate_log, rules.session_overdue_h), webhooks, stats,
                rules.public_url.rstrip("/") or f"http://{server.host}:{server.port}")
    runtime = Runtime(config, slots, worker, stats, events, plate_log, gate, queue=queue, leases=leases)
    if queue and leases:
        runtime.stats.add_cluster(queue, leases)
    app.wsgi_app = read_chunked_bodies(app.wsgi_app)
    if server.trusted_proxies:  # outermost: Socket.IO's connections see the client's address too
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=server.trusted_proxies)
    register_socket_handlers(socketio, runtime)
    app.register_blueprint(http_routes(runtime, socketio.server.eio.create_event))
    pump = ResultsPump(socketio, runtime, waker)

    def start() -> None:
        worker.start()
        gate.lists.start()
        webhooks.start(socketio.start_background_task, socketio.server.eio.create_event)
        socketio.start_background_task(pump.run)
        if queue and leases:
            socketio.start_background_task(queue.ping_forever)
            socketio.start_background_task(leases.renew_forever, socketio.sleep)

    return PlateServer(app, socketio, runtime, start)
