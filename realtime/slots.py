"""Per-camera frame slots: each camera keeps only its newest unprocessed frame.

A camera that sends faster than the worker can read never builds a queue: putting a frame
replaces (and returns, to be counted as dropped) the one still waiting. The worker takes
every waiting frame as one batch. Requests from POST /detect wait in a short bounded list of
their own, taken one at a time by the worker's photo thread: a single photo costs far more than
a frame (it is looked at in more detail), and no camera frame waits behind one.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from time import perf_counter, time
from typing import Any

from realtime.frames import FramePayload
from realtime.threads import real_threading


@dataclass
class Frame:
    payload: FramePayload
    sid: str | None  # the Socket.IO client that sent it; None for POST /detect
    received: float = field(default_factory=perf_counter)
    at: float = field(default_factory=time)  # wall clock, for tracks and events
    reply: Any = None  # POST /detect: where the loop side hands the result back

    @property
    def profile(self) -> str:
        """How it is looked at (config.yaml `profiles:`): a single photo (POST /detect) is read in full, with
        no tracks; a camera frame quickly, through its camera's tracks."""
        return "photo" if self.sid is None else "camera"


class FrameSlots:
    def __init__(self, max_jobs: int = 4) -> None:
        threading = real_threading()
        self._ready = threading.Condition(threading.Lock())
        self._slots: dict[str, deque[Frame]] = {}
        self._jobs: list[Frame] = []
        self._max_jobs = max_jobs
        self._job_ready = threading.Condition(threading.Lock())  # another waiter: the photo thread

    def put(self, frame: Frame) -> Frame | None:
        """Make `frame` its camera's waiting frame; return the older one it replaced."""
        with self._ready:
            waiting = self._slots.setdefault(frame.payload.camera_id, deque())
            older = self._make_room(waiting)
            waiting.append(frame)
            self._ready.notify()
        return older

    def _make_room(self, waiting: deque[Frame]) -> Frame | None:
        """Before a camera's new frame goes in: take out the one it replaces (bench/naive_server.py: none)."""
        return waiting.popleft() if waiting else None

    def put_job(self, frame: Frame) -> bool:
        """Queue a one-off request; False when too many are already waiting."""
        with self._job_ready:
            if len(self._jobs) >= self._max_jobs:
                return False
            self._jobs.append(frame)
            self._job_ready.notify()
        return True

    def take_job(self, timeout: float) -> Frame | None:
        """The oldest one-off request, waiting `timeout` at most for one."""
        with self._job_ready:
            if not self._jobs:
                self._job_ready.wait(timeout)
            return self._jobs.pop(0) if self._jobs else None

    def discard(self, camera_id: str) -> int:
        """Forget a camera's waiting frames; return how many there were."""
        with self._ready:
            return len(self._slots.pop(camera_id, ()))

    def wait(self, timeout: float) -> None:
        """Until a camera frame is waiting, `timeout` at most."""
        with self._ready:
            if not self._slots:
                self._ready.wait(timeout)

    def take(self, max_frames: int, timeout: float = 0.0) -> list[Frame]:
        """Up to max_frames waiting camera frames, oldest first; waits `timeout` at most."""
        self.wait(timeout)
        with self._ready:
            batch: list[Frame] = []
            while len(batch) < max_frames and self._slots:
                camera_id = min(self._slots, key=lambda c: self._slots[c][0].received)
                batch.append(self._slots[camera_id].popleft())
                if not self._slots[camera_id]:
                    del self._slots[camera_id]
            return batch

    def waiting(self) -> int:
        with self._ready, self._job_ready:
            return sum(len(q) for q in self._slots.values()) + len(self._jobs)
