"""Webhooks: a gate decision POSTed to the camera's URL, signed, never waited on.

`send` only queues (O(1), on the loop side); a few sender tasks of the server's async mode
(green threads under eventlet) post from the queue, so a receiver that hangs or fails costs a
sender, never a camera's results. Each delivery:
- is the decision's JSON, with headers `X-Plates-Delivery` (the same on every try: receivers
  drop repeats), `X-Plates-Timestamp` (Unix seconds) and `X-Plates-Signature`:
  `sha256=` + hex HMAC-SHA256 of `<timestamp>.<body>` under `gate.webhook_secret`;
- gives up on a try after `gate.webhook_timeout_s`; a failed try (no answer, 5xx, 429) is tried
  again after `webhook_backoff_s`, then twice that, ... `webhook_retries` times, then given up;
  any other 4xx is given up at once (the receiver refused it);
- waits in a queue of `gate.webhook_queue` at most: past it the oldest waiting is dropped;
- goes to the URL as configured: no proxy from the environment, no redirect followed (a 3xx is
  the receiver's answer: given up).
Every outcome is counted (`figures`: `/metrics` plates_webhooks_total{result}, `/health` gate.webhooks).
"""
from __future__ import annotations

import hashlib
import heapq
import hmac
import itertools
import json
import logging
import urllib.error
import urllib.request
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from time import monotonic, time

from realtime.stats import Stats
from realtime.threads import real_threading
from realtime.throttle import Throttle

log = logging.getLogger("plates")
LOG_S = 30.0  # a failing receiver is logged once in this long
RESULTS = ("delivered", "retried", "failed", "dropped")


@dataclass(order=True)
class Delivery:
    due: float  # monotonic time of its next try
    seq: int
    url: str = field(compare=False)
    body: bytes = field(compare=False)
    id: str = field(compare=False)
    tries: int = field(default=0, compare=False)


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """What X-Plates-Signature carries: receivers compute it the same way and compare."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class Webhooks:
    def __init__(self, secret: str, timeout_s: float, retries: int, backoff_s: float, max_pending: int,
                 senders: int, stats: Stats):
        self.secret, self.timeout_s, self.retries, self.backoff_s = secret, timeout_s, retries, backoff_s
        self.max_pending, self.senders, self.stats = max_pending, senders, stats
        self._fresh: deque[Delivery] = deque()
        self._retries: list[Delivery] = []  # a heap by due time
        self._seq = itertools.count()
        self._wake = None  # an event of the server's async mode, made in start
        # the queues and counts: senders are real threads in the threading mode (held for O(log n) only)
        self._lock = real_threading().Lock()
        self.counts = dict.fromkeys(RESULTS, 0)  # under the lock
        self._log_throttle = Throttle(LOG_S)
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())

    def start(self, start_task: Callable, make_event: Callable) -> None:
        self._wake = make_event()
        for _ in range(self.senders):
            start_task(self._send_forever)

    def send(self, url: str, payload: dict) -> None:
        """Queue a POST of `payload` to `url`; returns at once."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        with self._lock:
            if self.pending() >= self.max_pending:  # the oldest new delivery goes, else one waiting to retry
                self._fresh.popleft() if self._fresh else self._retries.pop()
                self.counts["dropped"] += 1
            self._fresh.append(Delivery(monotonic(), next(self._seq), url, body, uuid.uuid4().hex))
        if self._wake is not None:
            self._wake.set()

    def pending(self) -> int:
        return len(self._fresh) + len(self._retries)

    def figures(self) -> dict:
        return {"pending": self.pending(), **self.counts}

    def _next(self) -> Delivery | float:
        """A delivery due now, or how long until the next one is."""
        with self._lock:
            if self._fresh:
                return self._fresh.popleft()
            if self._retries and self._retries[0].due <= monotonic():
                return heapq.heappop(self._retries)
            return self._retries[0].due - monotonic() if self._retries else 1.0

    def _send_forever(self) -> None:
        while True:
            delivery = self._next()
            if isinstance(delivery, float):
                self._wake.wait(min(1.0, max(0.01, delivery)))
                self._wake.clear()
                continue
            self._try(delivery)

    def _try(self, delivery: Delivery) -> None:
        timestamp = str(int(time()))
        headers = {"Content-Type": "application/json", "User-Agent": "eparking-plates",
                   "X-Plates-Delivery": delivery.id, "X-Plates-Timestamp": timestamp,
                   "X-Plates-Signature": signature(self.secret, timestamp, delivery.body)}
        request = urllib.request.Request(delivery.url, delivery.body, headers, method="POST")
        started, retry = monotonic(), False
        try:
            with self._opener.open(request, timeout=self.timeout_s) as answer:
                answer.read(65536)
            why = None
        except urllib.error.HTTPError as exc:
            retry, why = exc.code >= 500 or exc.code == 429, f"HTTP {exc.code}"
        except (OSError, ValueError) as exc:  # refused, unreachable, timed out, a bad answer
            retry, why = True, f"{type(exc).__name__}: {exc}"
        self.stats.m_webhook_seconds.observe(monotonic() - started)
        delivery.tries += 1
        with self._lock:
            if why is None:
                self.counts["delivered"] += 1
                return
            if retry and delivery.tries <= self.retries:
                self.counts["retried"] += 1
                delivery.due = monotonic() + self.backoff_s * 2 ** (delivery.tries - 1)
                heapq.heappush(self._retries, delivery)
            else:
                self.counts["failed"] += 1
        if self._log_throttle.due():
            log.warning("webhook to %s: %s (%s)", delivery.url, why,
                        "will retry" if retry and delivery.tries <= self.retries else "given up")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A 3xx is the receiver's answer, not a place to POST to: urllib would resend the body as a GET."""

    def redirect_request(self, *args, **kwargs):
        return None
