"""Per-camera frame slots: each camera keeps only its newest unprocessed frame.

A camera that sends faster than the worker can read never builds a queue: putting a frame
replaces (and returns, to be counted as dropped) the one still waiting. The worker takes
every waiting frame as one batch. Requests from POST /detect wait in a short bounded list.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from time import perf_counter
from typing import Any

from realtime.frames import FramePayload
from realtime.threads import real_threading


@dataclass
class Frame:
    payload: FramePayload
    sid: str | None  # the Socket.IO client that sent it; None for POST /detect
    received: float = field(default_factory=perf_counter)
    reply: Any = None  # POST /detect: where the loop side hands the result back


class FrameSlots:
    def __init__(self, max_jobs: int = 4) -> None:
        threading = real_threading()
        self._ready = threading.Condition(threading.Lock())
        self._slots: dict[str, Frame] = {}
        self._jobs: list[Frame] = []
        self._max_jobs = max_jobs

    def put(self, frame: Frame) -> Frame | None:
        """Make `frame` its camera's waiting frame; return the older one it replaced."""
        with self._ready:
            older = self._slots.get(frame.payload.camera_id)
            self._slots[frame.payload.camera_id] = frame
            self._ready.notify()
        return older

    def put_job(self, frame: Frame) -> bool:
        """Queue a one-off request; False when too many are already waiting."""
        with self._ready:
            if len(self._jobs) >= self._max_jobs:
                return False
            self._jobs.append(frame)
            self._ready.notify()
        return True

    def discard(self, camera_id: str) -> Frame | None:
        with self._ready:
            return self._slots.pop(camera_id, None)

    def take(self, max_frames: int, timeout: float) -> list[Frame]:
        """Up to max_frames waiting frames, oldest first; waits up to `timeout` for one."""
        with self._ready:
            if not self._slots and not self._jobs:
                self._ready.wait(timeout)
            batch = self._jobs[:max_frames]
            del self._jobs[:len(batch)]
            oldest = sorted(self._slots.values(), key=lambda f: f.received)[: max_frames - len(batch)]
            for frame in oldest:
                del self._slots[frame.payload.camera_id]
            return batch + oldest

    def waiting(self) -> int:
        with self._ready:
            return len(self._slots) + len(self._jobs)
