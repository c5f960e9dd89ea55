"""The state the handlers share, on the loop side: clients, cameras, rate limits, throttled notices.

Every method is O(1) or O(cameras) and never waits (but for a camera's first frame with a
message queue: its lease is asked of Redis, within a socket timeout): the Socket.IO handlers and
the HTTP routes call it from the event loop. Frames go to their camera's slot; the inference
worker (realtime/worker.py) takes them from there.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from time import monotonic

from realtime.auth import Gatekeeper, Refused
from realtime.config import AppConfig
from realtime.events import EventBook
from realtime.frames import FrameError, parse_frame
from realtime.gate import Gate
from realtime.leases import CameraLeases
from realtime.message_queue import QueuedRedisManager
from realtime.plate_log import PlateLog
from realtime.slots import Frame, FrameSlots
from realtime.stats import Stats
from realtime.worker import InferenceWorker

log = logging.getLogger("plates")
NOTICE_S = 10.0  # a repeated refusal (same client, same reason) is logged once in this long


@dataclass
class Runtime:
    config: AppConfig
    slots: FrameSlots
    worker: InferenceWorker
    stats: Stats
    events: EventBook
    plate_log: PlateLog
    gate: Gate  # lists, rules, webhooks, parking sessions (realtime/gate.py)
    started: float = field(default_factory=monotonic)
    clients: set[str] = field(default_factory=set)
    streams: dict[str, str] = field(default_factory=dict)  # camera -> the sid streaming it
    buckets: dict[str, tuple[float, float]] = field(default_factory=dict)  # camera -> (tokens, last time)
    last_notice: dict[tuple, float] = field(default_factory=dict)  # (sid, what...) -> when last logged/sent
    watching: dict[str, set[str]] = field(default_factory=dict)  # sid -> cameras it subscribed to
    auth: Gatekeeper = field(init=False)
    draining: bool = False  # stopping (realtime/serve.py): no new frames, /health answers 503
    queue: QueuedRedisManager | None = None  # with server.message_queue: the emits shared through Redis
    leases: CameraLeases | None = None  # ... and the cameras this process serves

    def __post_init__(self) -> None:
        self.auth = Gatekeeper(self.config.server.auth_token, self.config.server.max_auth_failures)

    def connect(self, sid: str, token: str, address: str | None) -> None:
        """Take a new client, or raise Refused (a flood of them logs one line per reason every NOTICE_S)."""
        server = self.config.server
        try:
            self.auth.check(address, token)
        except Refused as exc:
            why = "too many wrong tokens" if exc.code == "too_many_attempts" else "bad or missing token"
            self._refuse_connection(sid, address, exc.code, f"{exc.message} (auth: {{token}})", why)
        if len(self.clients) >= server.max_clients:
            self._refuse_connection(sid, address, "too_many_clients", "the server is full, try again later",
                                    f"{len(self.clients)} clients already")
        self.clients.add(sid)
        self.stats.m_clients.set(len(self.clients))
        log.info("client %s connected from %s", sid, address)

    def _refuse_connection(self, sid: str, address: str | None, code: str, message: str, why: str) -> None:
        if self.first_in_a_while(("connect", code), NOTICE_S):
            log.warning("refused connection %s from %s: %s", sid, address, why)
        raise Refused(code, message)

    def accept_frame(self, sid: str, payload: object) -> None:
        """Check a video_frame and put it in its camera's slot (FrameError: why not)."""
        server = self.config.server
        if self.draining:
            raise FrameError("draining", "the server is stopping; reconnect shortly")
        if not self.worker.ready:
            raise FrameError("not_ready", "the models are still loading; retry shortly")
        frame = parse_frame(payload, server.max_frame_bytes, server.max_frame_pixels)
        new = frame.camera_id not in self.streams
        self.admit(sid, frame.camera_id)  # the limits first: a flood of camera ids never reaches Redis
        if self.leases is not None and (owner := self.leases.owner(frame.camera_id)) is not None:
            if new:
                del self.streams[frame.camera_id]
            raise FrameError("wrong_process", f"this camera is served by another process ({owner}): "
                             "send its frames there (the load balancer routes by camera)")
        if not self.within_rate(frame.camera_id):
            raise FrameError(
                "rate_limited", f"over {server.max_fps_per_camera:g} frames per second for this camera"
            )
        self.stats.received(frame.camera_id)
        if self.slots.put(Frame(frame, sid)) is not None:
            self.stats.dropped(frame.camera_id)

    def admit(self, sid: str, camera_id: str) -> None:
        """A camera belongs to the client that first streams it, until that client leaves: another
        sender would eat its rate and log plates it never saw under its name."""
        server, owner = self.config.server, self.streams.get(camera_id)
        if owner == sid:
            return
        if owner is not None:
            raise FrameError("camera_in_use", "another client is streaming this camera_id")
        if sum(1 for o in self.streams.values() if o == sid) >= server.max_cameras_per_client:
            raise FrameError("too_many_cameras",
                             f"a client may stream at most {server.max_cameras_per_client} cameras at once")
        if len(self.streams) >= server.max_cameras:
            raise FrameError("too_many_cameras", f"the server takes at most {server.max_cameras} cameras")
        self.streams[camera_id] = sid

    def within_rate(self, camera_id: str) -> bool:
        """Token bucket per camera: max_fps_per_camera on average, a short burst allowed."""
        now, server = monotonic(), self.config.server
        tokens, last = self.buckets.get(camera_id, (server.rate_burst, now))
        tokens = min(server.rate_burst, tokens + (now - last) * server.max_fps_per_camera)
        allowed = tokens >= 1.0
        self.buckets[camera_id] = (tokens - 1.0 if allowed else tokens, now)
        return allowed

    def watch(self, sid: str, camera_id: str) -> None:
        """sid subscribes to camera_id (FrameError past server.max_subscriptions cameras)."""
        watched, most = self.watching.setdefault(sid, set()), self.config.server.max_subscriptions
        if camera_id not in watched and len(watched) >= most:
            raise FrameError("too_many_subscriptions", f"a client may watch at most {most} cameras")
        watched.add(camera_id)

    def unwatch(self, sid: str, camera_id: str) -> None:
        self.watching.get(sid, set()).discard(camera_id)

    def first_in_a_while(self, key: tuple, seconds: float) -> bool:
        """True at most once per `seconds` for a key: throttles repeated logs and notices."""
        now = monotonic()
        if now - self.last_notice.get(key, -1e9) < seconds:
            return False
        self.last_notice[key] = now
        return True

    def log_refusal(self, sid: str | None, exc: FrameError, camera_id: str | None) -> None:
        """One line per refused frame; a client repeating the same error is logged every NOTICE_S at most.
        The camera id is the client's: quoted and escaped, so a newline in it cannot forge a log line."""
        if self.first_in_a_while((sid or "http", exc.code), NOTICE_S):
            log.warning(
                "refused frame from %s camera=%r: %s (%s)", sid or "http", camera_id, exc.code, exc.message
            )

    def release(self, sid: str) -> None:
        """A client left: the cameras it was streaming are closed."""
        self.clients.discard(sid)
        self.stats.m_clients.set(len(self.clients))
        self.watching.pop(sid, None)
        self.last_notice = {k: v for k, v in self.last_notice.items() if k[0] != sid}
        for camera_id in [c for c, owner in self.streams.items() if owner == sid]:
            del self.streams[camera_id]
            if self.leases is not None:
                self.leases.leave(camera_id)
            self.buckets.pop(camera_id, None)
            for _ in range(self.slots.discard(camera_id)):
                self.stats.dropped(camera_id)
            self.stats.forget(camera_id)
        log.info("client %s disconnected", sid)
