"""GET /health: cheap to compute, so it answers fast while cameras stream."""
from __future__ import annotations

from time import monotonic
from typing import TYPE_CHECKING

import psutil

if TYPE_CHECKING:
    from realtime.runtime import Runtime

_PROCESS = psutil.Process()


def health_report(runtime: Runtime) -> dict:
    worker = runtime.worker
    uptime = round(monotonic() - runtime.started, 1)
    if runtime.draining:
        return {"status": "draining", "uptime_s": uptime}
    if not worker.ready:
        status = "error" if worker.load_error else "loading"
        return {"status": status, "uptime_s": uptime, "error": worker.load_error}
    totals = runtime.stats.totals()
    queue_down = runtime.queue is not None and not runtime.queue.up
    return {
        # degraded: serving live, but plate events are not being written (a full or broken disk), or the
        # other processes do not get this one's emits (Redis down)
        "status": "degraded" if runtime.plate_log.failing or queue_down else "ok",
        **cluster_report(runtime),
        "models": worker.detector.models if worker.detector else {},
        "uptime_s": uptime,
        "clients": len(runtime.clients),
        "cameras": {cid: cam.summary() for cid, cam in runtime.stats.cameras.items()},
        **totals,
        "waiting": runtime.slots.waiting(),
        # None: no careful lane; failed: reads the models raised on (each spends its vehicle's try; a fusion
        # that broke is read from the best frame alone);
        # wide_looks: frames with no plate for the camera lane that it searched at its own size;
        # fused: careful reads of a picture fused from several frames of its vehicle (detector/fusion.py)
        "careful": {
            "reads": worker.careful.done,
            "failed": worker.careful.failed,
            "wide_looks": worker.careful.wide_looks,
            "fused": worker.careful.fused,
        }
        if worker.careful
        else None,
        "memory": {"rss_mb": round(_PROCESS.memory_info().rss / 2**20, 1)},
        "plate_log": {
            "write_errors": runtime.plate_log.write_errors,
            "last_error": runtime.plate_log.last_error,
        },
        "gate": gate_report(runtime),
    }


def gate_report(runtime: Runtime) -> dict:
    """The cameras with rules (their roles), the lists in memory, and the webhooks' outcomes."""
    gate = runtime.gate
    return {
        "cameras": {camera_id: rule.role for camera_id, rule in gate.config.cameras.items()},
        "lists": {**gate.lists.counts, "reload_error": gate.lists.reload_error},
        "webhooks": gate.webhooks.figures(),
    }


def cluster_report(runtime: Runtime) -> dict:
    """role: alone, or a member of processes sharing a message queue; a member says which process it is,
    the cameras it serves (their leases), and its Redis link (the last ping) and publish queue."""
    if runtime.queue is None or runtime.leases is None:
        return {"role": "single"}
    leases = runtime.leases
    return {
        "role": "member",
        "process": leases.me,
        "owned_cameras": leases.owned(),
        "leases": {"lease_s": leases.lease_s, "lost": leases.lost, "unchecked": leases.unchecked},
        "message_queue": runtime.queue.figures(),
    }
