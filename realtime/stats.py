"""Per-camera counters and Prometheus metrics, updated on the loop side only."""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from time import monotonic

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

STAGES = ("queue", "decode", "detect", "ocr", "total")
FPS_WINDOW_S = 3.0


@dataclass
class CameraStats:
    received: int = 0
    processed: int = 0
    dropped: int = 0  # replaced in its slot by a newer frame before the worker took it
    refused: int = 0  # invalid, too large, rate limited
    detections: int = 0
    ocr_calls: int = 0
    still: int = 0  # answered from its camera's last frame looked at: nothing moved (realtime/worker.py)
    _done: deque = field(default_factory=lambda: deque(maxlen=256))

    def fps(self, now: float | None = None) -> float:
        now = monotonic() if now is None else now
        while self._done and now - self._done[0] > FPS_WINDOW_S:
            self._done.popleft()
        return round(len(self._done) / FPS_WINDOW_S, 2)

    def summary(self) -> dict:
        return {"fps": self.fps(), "frames": self.processed, "received": self.received,
                "detections": self.detections, "dropped": self.dropped, "refused": self.refused,
                "ocr_calls": self.ocr_calls, "still": self.still}


class Stats:
    def __init__(self) -> None:
        self.cameras: dict[str, CameraStats] = {}
        self.total = CameraStats()  # since start-up, cameras that left included
        self.registry = CollectorRegistry()
        r = self.registry
        self.m_received = Counter(
            "plates_frames_received", "Frames accepted into a camera slot", ["camera"], registry=r
        )
        self.m_processed = Counter(
            "plates_frames_processed", "Frames processed by the inference worker", ["camera"], registry=r
        )
        self.m_dropped = Counter(
            "plates_frames_dropped",
            "Frames replaced by a newer one before processing",
            ["camera"],
            registry=r,
        )
        self.m_refused = Counter(
            "plates_frames_refused", "Frames refused, by error code", ["code"], registry=r
        )
        self.m_latency = Histogram(
            "plates_stage_seconds",
            "Time per frame in each stage",
            ["stage"],
            registry=r,
            buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0),
        )
        self.m_ocr = Counter(
            "plates_ocr_calls",
            "Recogniser passes over plate crops (a single photo's plate: one per crop and row cut)",
            registry=r,
        )
        self.m_still = Counter(
            "plates_frames_still",
            "Camera frames answered from the last frame looked at: nothing in view moved since",
            registry=r,
        )
        self.m_clients = Gauge("plates_connected_clients", "Connected Socket.IO clients", registry=r)
        self.m_refused_connections = Counter(
            "plates_connections_refused", "TCP connections refused past server.max_connections", registry=r
        )
        self.m_waiting = Gauge("plates_frames_waiting", "Frames waiting in camera slots", registry=r)
        # the gate (realtime/gate.py, webhooks.py): decisions made, and the time of a webhook's try (what
        # became of the webhooks is read from them: add_webhooks)
        self.m_decisions = Counter("plates_gate_decisions", "Gate decisions, by decision", ["decision"],
                                   registry=r)
        self.m_webhook_seconds = Histogram("plates_webhook_seconds", "Time of one webhook try", registry=r,
                                           buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0))

    def add_cluster(self, queue, leases) -> None:
        """The message queue's and the camera leases' figures (realtime/message_queue.py, leases.py), read
        when /metrics is."""
        self.registry.register(ClusterCollector(queue, leases))

    def add_webhooks(self, webhooks) -> None:
        """The webhooks' outcomes and queue (realtime/webhooks.py figures), read when /metrics is."""
        self.registry.register(WebhooksCollector(webhooks))

    def camera(self, camera_id: str) -> CameraStats:
        if camera_id not in self.cameras:
            self.cameras[camera_id] = CameraStats()
        return self.cameras[camera_id]

    def forget(self, camera_id: str) -> None:
        """A camera nobody streams any more: drop its series so labels do not pile up."""
        self.cameras.pop(camera_id, None)
        for metric in (self.m_received, self.m_processed, self.m_dropped):
            try:
                metric.remove(camera_id)
            except KeyError:
                pass

    def received(self, camera_id: str) -> None:
        self.camera(camera_id).received += 1
        self.total.received += 1
        self.m_received.labels(camera_id).inc()

    def dropped(self, camera_id: str) -> None:
        self.camera(camera_id).dropped += 1
        self.total.dropped += 1
        self.m_dropped.labels(camera_id).inc()

    def refused(self, code: str, camera_id: str | None = None) -> None:
        self.total.refused += 1
        if camera_id in self.cameras:
            self.cameras[camera_id].refused += 1
        self.m_refused.labels(code).inc()

    def processed(
        self, camera_id: str, detections: int, timing_ms: dict, ocr_calls: int, still: bool
    ) -> CameraStats:
        cam = self.camera(camera_id)
        for counts in (cam, self.total):
            counts.processed += 1
            counts.detections += detections
            counts.ocr_calls += ocr_calls
            counts.still += still
        self.m_ocr.inc(ocr_calls)
        self.m_still.inc(still)
        cam._done.append(monotonic())
        self.m_processed.labels(camera_id).inc()
        for stage in STAGES:
            self.m_latency.labels(stage).observe(timing_ms.get(stage, 0.0) / 1000)
        return cam

    def totals(self) -> dict:
        t = self.total
        return {"fps": round(sum(c.fps() for c in self.cameras.values()), 2), "frames": t.processed,
                "received": t.received, "dropped": t.dropped, "refused": t.refused,
                "detections": t.detections, "ocr_calls": t.ocr_calls, "still": t.still}


class ClusterCollector:
    """Prometheus figures read from the message queue and the leases when /metrics is asked."""

    def __init__(self, queue, leases):
        self.queue, self.leases = queue, leases

    def collect(self):
        queue, leases = self.queue.figures(), self.leases
        for kind, name, text, value in (
            (GaugeMetricFamily, "plates_queue_up", "1 when Redis answered the last ping", int(queue["up"])),
            (GaugeMetricFamily, "plates_queue_pending", "Emits waiting to be published", queue["pending"]),
            (CounterMetricFamily, "plates_queue_published", "Emits published for the other processes",
             queue["published"]),
            (CounterMetricFamily, "plates_queue_dropped", "Emits not published: queue full, too old, refused",
             queue["dropped"]),
            (GaugeMetricFamily, "plates_leases_owned", "Cameras this process serves", len(leases.owned())),
            (CounterMetricFamily, "plates_leases_lost", "Leases found taken by another process at renewal",
             leases.lost),
            (CounterMetricFamily, "plates_leases_unchecked", "Cameras taken while Redis did not answer",
             leases.unchecked),
        ):
            yield kind(name, text, value=value)


class WebhooksCollector:
    """Prometheus figures read from the webhooks when /metrics is asked."""

    def __init__(self, webhooks):
        self.webhooks = webhooks

    def collect(self):
        figures = dict(self.webhooks.figures())
        pending = figures.pop("pending")
        results = CounterMetricFamily("plates_webhooks", "Webhook deliveries: delivered, retried (a failed "
                                      "try to be tried again), failed (given up), dropped (the queue full)",
                                      labels=["result"])
        for result, count in figures.items():
            results.add_metric([result], count)
        yield results
        yield GaugeMetricFamily("plates_webhooks_pending", "Webhooks waiting to be sent", value=pending)
