"""Several server processes as one: their Socket.IO emits shared through Redis, never waited on.

With `server.message_queue` set (a Redis URL), each process publishes its emits to a camera's
viewers (results, plate events) on one Redis channel and delivers what the others publish to its
own clients, so a viewer connected to any process sees every camera (Flask-SocketIO's message
queue pattern). python-socketio's own RedisManager publishes on the caller's thread, with no
socket timeouts: a Redis that hangs (SIGSTOP) stops the results pump, and this process's own
viewers wait with it; a Redis that is down costs every emit a reconnect and a logged error, and
its listener backs off up to a minute. Here:
- an emit reaches this process's clients at once; the copy for the other processes goes to a
  bounded queue that a background task publishes (the oldest dropped when it is full, copies
  older than STALE_S dropped unsent: live results are worth nothing late; both counted);
- an emit to one client of this process (a sender's own results, its errors) is not published;
- every Redis call has a socket timeout; the listener reconnects every RETRY_S; trouble is logged
  once per LOG_S, not once per emit;
- a ping every PING_S says whether Redis answers (`/health`), down or hung alike.
"""
from __future__ import annotations

import logging
from collections import deque
from time import monotonic

import redis
import socketio

from realtime.redact import redacted
from realtime.throttle import Throttle

log = logging.getLogger("plates")
CHANNEL = "plates"  # the Redis channel every process of one site shares
TIMEOUT_S = 1.0  # a Redis call that takes longer fails (a hung Redis)
RETRY_S = 1.0  # a lost subscription is retried this often; a failed publish pauses the queue this long
PING_S = 1.0  # how often the link is checked
STALE_S = 2.0  # a queued copy older than this is dropped, not published
LOG_S = 30.0  # Redis trouble of one kind is logged once in this long


def redis_client(url: str) -> redis.Redis:
    """A Redis client whose every call fails after TIMEOUT_S rather than waiting on a hung server."""
    return redis.Redis.from_url(url, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S)


class QueuedRedisManager(socketio.RedisManager):
    """python-socketio's client manager over Redis, publishing from a bounded queue (see the module)."""

    def __init__(self, url: str, max_pending: int):
        super().__init__(url, channel=CHANNEL)
        self.url, self.max_pending = url, max_pending
        self._client = redis_client(url)
        self._queue: deque[tuple[float, dict]] = deque()
        self._wake = None  # an event of the server's async mode, made in initialize
        self.published = 0  # copies published
        self.dropped = 0  # copies dropped: the queue full, too old, or Redis refused them
        self.up = False  # the last ping was answered
        self.ping_ms: float | None = None
        self._log_throttle = Throttle(LOG_S)  # per kind of trouble

    def initialize(self) -> None:
        super().initialize()  # starts the listener (python-socketio's _thread, over our _listen)
        self._wake = self.server.eio.create_event()
        self.server.start_background_task(self._publish_forever)

    def figures(self) -> dict:
        return {"url": redacted(self.url), "up": self.up, "ping_ms": self.ping_ms,
                "pending": len(self._queue), "published": self.published, "dropped": self.dropped}

    def _publish(self, data: dict) -> None:
        """Called by emit (after delivering here) for the other processes: queued, never sent here."""
        room, namespace = data.get("room"), data.get("namespace") or "/"
        if data.get("method") == "emit" and room is not None and self.is_connected(room, namespace):
            return  # to one client of this process: the others have nothing to deliver
        if len(self._queue) >= self.max_pending:
            self._queue.popleft()
            self.dropped += 1
        self._queue.append((monotonic(), data))
        if self._wake is not None:
            self._wake.set()

    def _publish_forever(self) -> None:
        while True:
            self._wake.wait(1.0)
            self._wake.clear()
            while self._queue:
                queued, data = self._queue.popleft()
                if monotonic() - queued > STALE_S:
                    self.dropped += 1
                    continue
                try:
                    self._client.publish(self.channel, self.json.dumps(data))
                    self.published += 1
                except Exception as exc:  # Redis down or hung: this copy is lost, the queue waits a little
                    self.dropped += 1
                    self._trouble("publish", exc)
                    self.server.sleep(RETRY_S)

    def ping_forever(self) -> None:
        """A background task from start-up on (python-socketio initialises the rest at the first client)."""
        while True:
            started = monotonic()
            try:
                self._client.ping()
                self.up, self.ping_ms = True, round((monotonic() - started) * 1000, 2)
            except Exception as exc:
                self.up, self.ping_ms = False, None
                self._trouble("ping", exc)
            self.server.sleep(max(0.0, PING_S - (monotonic() - started)))

    def _listen(self):
        """The channel's messages, as python-socketio's listener wants them; reconnects every RETRY_S."""
        channel = self.channel.encode()
        while True:
            pubsub = None
            try:
                pubsub = self._client.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(self.channel)
                while True:
                    message = pubsub.get_message(timeout=1.0)
                    if message and message["type"] == "message" and message["channel"] == channel:
                        yield message["data"]
            except Exception as exc:
                self._trouble("subscribe", exc)
                if pubsub is not None:
                    try:
                        pubsub.close()
                    except Exception:
                        pass
                self.server.sleep(RETRY_S)

    def _trouble(self, kind: str, exc: Exception) -> None:
        if self._log_throttle.due(kind):
            log.error("message queue %s: %s failed: %s: %s (logged once in %.0f s)",
                      redacted(self.url), kind, type(exc).__name__, exc, LOG_S)
