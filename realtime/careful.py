"""The careful lane: each vehicle read once with the photo-grade pipeline, in a thread of its own.

The camera lane reads every frame quickly (a 256 px detector, `vn_plate`, one crop). A vehicle
is seen for 20-50 frames, so the budget that matters is per vehicle: the worker offers this
lane each frame's box of a track that wants a careful read, the lane keeps the best offer per
track (largest x most confident) until it is free, and reads it as a single photo is read
(`reader.photo_network`, several crops, both row splits: about a quarter of a second of one
core), at most `reads_per_s` a second. The read goes back into the track's vote, counted
`weight` times. Order: unconfirmed tracks first, then confirmed tracks never read carefully;
a track gets `per_track` careful reads at most, the second only when the first found no valid
plate, so a parked vehicle is not read over and over.

The lane keeps out of the camera lane's way: its thread runs at the lowest CPU priority, it
uses no model of the camera lane's (the photo reader it shares with single photos, taking
turns), it keeps no frame (only small copies of plate regions), and it hands its reads back
through `take_reads`, which the worker drains between batches.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from time import monotonic
from typing import Callable

import numpy as np

from detector.results import PlateBox, PlateText
from detector.tracking import Track
from realtime.threads import real_threading

MARGIN = 0.5  # the region copied around a box, as a share of its width and height on each side
STALE_S = 3.0  # a job not taken this long after it was offered is dropped: its vehicle has likely gone
MAX_JOBS = 64  # pending jobs at most (one per track): the oldest go first
NOTHING = PlateText("", "", 0.0, False, 1, passes=0)
NICE = 19  # the lane's thread yields the CPU to the camera lane and the event loop whenever they want it


@dataclass(frozen=True)
class CarefulConfig:
    enabled: bool = True  # false: the camera lane alone reads the live frames
    reads_per_s: float = 2.0  # careful reads a second at most, all cameras together
    per_track: int = 2  # careful reads one vehicle gets at most
    weight: int = 4  # a careful read counts as this many camera-lane reads in its track's vote

    def validate(self) -> None:
        from detector.config import ConfigError

        if self.reads_per_s <= 0 or min(self.per_track, self.weight) < 1:
            raise ConfigError("careful.reads_per_s must be positive, careful.per_track and weight >= 1")


@dataclass(frozen=True)
class CarefulJob:
    camera_id: str
    track_id: int
    priority: int  # 0 first
    quality: float  # of the box: the better of two offers for one track is kept
    region: np.ndarray  # a copy of the frame around the box
    box: PlateBox  # in pixels of the region
    offered: float


@dataclass(frozen=True)
class CarefulRead:
    camera_id: str
    track_id: int
    text: PlateText


def priority(track: Track, config: CarefulConfig) -> int | None:
    """How soon a track should be read carefully; None: not now (or never again)."""
    if track.careful_reads >= config.per_track:
        return None
    if track.careful_reads == 0:
        return 0 if not track.confirmed else 1
    return 2 if not track.valid else None  # the careful read found nothing valid: one more try


def quality(box: PlateBox) -> float:
    """How good a box is to read carefully: large and surely a plate."""
    return (box.x2 - box.x1) * (box.y2 - box.y1) * box.confidence


def job(camera_id: str, track: Track, rank: int, image: np.ndarray, box: PlateBox) -> CarefulJob:
    """A job for one box of a frame: a copy of the region around it, the box in its pixels."""
    h, w = image.shape[:2]
    mx, my = int((box.x2 - box.x1) * MARGIN), int((box.y2 - box.y1) * MARGIN)
    x0, y0 = max(0, box.x1 - mx), max(0, box.y1 - my)
    region = image[y0:min(h, box.y2 + my), x0:min(w, box.x2 + mx)].copy()
    moved = PlateBox(box.x1 - x0, box.y1 - y0, box.x2 - x0, box.y2 - y0, box.confidence)
    return CarefulJob(camera_id, track.id, rank, quality(box), region, moved, monotonic())


class CarefulLane:
    """The careful reads' thread: `offer` jobs from the worker, `take_reads` back."""

    def __init__(self, config: CarefulConfig, read: Callable[[np.ndarray, PlateBox], PlateText]):
        self.config = config
        self._read = read
        threading = real_threading()
        self._ready = threading.Condition()
        self._jobs: dict[tuple[str, int], CarefulJob] = {}
        self._busy: tuple[str, int] | None = None  # the job being read
        self._reads: list[CarefulRead] = []  # read, not yet taken: their tracks want no more offers
        self._pause = threading.Event()  # never set: a real sleep, also under eventlet
        self.done = 0  # careful reads made (for /health)
        self.failed = 0  # of them, reads the models raised on
        self._thread = threading.Thread(target=self._run, name="careful-lane", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def offer(self, camera_id: str, track: Track, rank: int, image: np.ndarray, box: PlateBox) -> None:
        """A box of a track that wants a careful read; its region is copied only if it beats the track's last offer."""
        key = (camera_id, track.id)
        with self._ready:
            old = self._jobs.get(key)
            answered = any((r.camera_id, r.track_id) == key for r in self._reads)
            if key == self._busy or answered or (old is not None and old.quality >= quality(box)):
                return
            self._jobs[key] = job(camera_id, track, rank, image, box)
            if len(self._jobs) > MAX_JOBS:
                del self._jobs[min(self._jobs, key=lambda k: self._jobs[k].offered)]
            self._ready.notify()

    def take_reads(self) -> list[CarefulRead]:
        with self._ready:
            reads, self._reads = self._reads, []
        return reads

    def _next(self) -> CarefulJob:
        with self._ready:
            while True:
                now = monotonic()
                self._jobs = {k: j for k, j in self._jobs.items() if now - j.offered <= STALE_S}
                if self._jobs:
                    key = min(self._jobs, key=lambda k: (self._jobs[k].priority, -self._jobs[k].quality))
                    self._busy = key
                    return self._jobs.pop(key)
                self._ready.wait(1.0)

    def _run(self) -> None:
        try:  # Linux keeps a nice value per thread
            os.setpriority(os.PRIO_PROCESS, self._thread.native_id, NICE)
        except (AttributeError, OSError):
            pass
        interval = 1.0 / self.config.reads_per_s
        while True:
            current = self._next()
            started = monotonic()
            try:
                text = self._read(current.region, current.box)
            except Exception:  # a region the models break on: the vehicle's try is spent, the lane goes on
                text = NOTHING
                self.failed += 1
            with self._ready:
                self._reads.append(CarefulRead(current.camera_id, current.track_id, text))
                self._busy = None
                self.done += 1
            self._pause.wait(interval - (monotonic() - started))  # the budget: reads_per_s at most
