"""Per-camera plate tracks and voted reads.

A car at a gate is seen in 20-50 frames. `CameraTracker` follows each plate box across the
frames of ONE camera (IoU against the box predicted from its last motion), and each track
votes over its reads: near-identical texts are grouped, the largest group wins and its most
confident read is the committed text. A track is confirmed after `confirm_reads` agreeing
valid reads; a confirmed track is re-read only every `reread_every` frames, which saves OCR
time, and its text only changes when another group clearly outvotes it.
"""
from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field
from typing import Iterator

from detector.boxes import iou
from detector.plate_format import alnum
from detector.results import PlateBox, PlateText


MIN_DT_S = 0.05  # frames closer than this in time count as this far apart when estimating motion


@dataclass(frozen=True)
class TrackingConfig:
    iou: float = 0.3  # least overlap between a predicted track box and a new box to match
    expire_s: float = 2.0  # a track unseen for this long is closed
    confirm_reads: int = 3  # agreeing valid reads that confirm a track
    reread_every: int = 10  # a confirmed track is read again every this many frames
    max_reads: int = 30  # reads kept per track (the vote's memory)

    def validate(self) -> None:
        from detector.config import ConfigError

        if not 0 < self.iou <= 1 or self.expire_s <= 0:
            raise ConfigError("tracking.iou must be in (0, 1] and tracking.expire_s positive")
        if min(self.confirm_reads, self.reread_every, self.max_reads) < 1 or self.max_reads < self.confirm_reads:
            raise ConfigError("tracking.confirm_reads, reread_every and max_reads must be >= 1, max_reads >= confirm_reads")


@dataclass(frozen=True)
class Read:
    text: str
    confidence: float
    valid: bool


def _similar(a: str, b: str) -> bool:
    """Same plate up to one character read wrongly, missing or extra."""
    a, b = alnum(a), alnum(b)
    if a == b:
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b)) <= 1
    short, long_ = sorted((a, b), key=len)
    return any(long_[:i] + long_[i + 1:] == short for i in range(len(long_)))


def vote(reads: list[Read], prefer: str = "") -> tuple[Read | None, int]:
    """The winning read and how many reads agree with it exactly.

    Reads are grouped around each distinct text (a read joins every group whose text it is
    near); the largest group wins, ties going to the higher summed confidence; within it the
    text read most often exactly wins, then the most confident read of that text. Ties go to
    `prefer` (the text already shown), so an even split never flips it. Invalid texts only
    vote when no read is valid.
    """
    voters = [r for r in reads if r.valid and r.text] or [r for r in reads if r.text]
    if not voters:
        return None, 0
    best_key, best_group = None, []
    for text in sorted({r.text for r in voters}):
        group = [r for r in voters if _similar(r.text, text)]
        key = (len(group), text == prefer, sum(r.confidence for r in group))
        if best_key is None or key > best_key:
            best_key, best_group = key, group
    exact = {r.text: sum(o.text == r.text for o in best_group) for r in best_group}
    winner = max(best_group, key=lambda r: (exact[r.text], r.text == prefer, r.confidence))
    return winner, exact[winner.text]


@dataclass
class Track:
    id: int
    box: PlateBox
    first_seen: float
    last_seen: float
    velocity: tuple[float, float] = (0.0, 0.0)  # pixels per second of the box centre
    reads: deque = field(default_factory=deque)
    text: str = ""
    confidence: float = 0.0
    valid: bool = False
    confirmed: bool = False
    frames_since_read: int = 0
    best_read_confidence: float = -1.0  # of the read that supplied the best crop
    last_read: PlateText | None = None

    def predicted(self, now: float) -> tuple[float, float, float, float]:
        dt = now - self.last_seen
        dx, dy = self.velocity[0] * dt, self.velocity[1] * dt
        b = self.box
        return (b.x1 + dx, b.y1 + dy, b.x2 + dx, b.y2 + dy)



def _centre(b) -> tuple[float, float]:
    return ((b[0] + b[2]) / 2, (b[1] + b[3]) / 2)


class CameraTracker:
    """Tracks of one camera. Never share one between cameras: ids and state are per camera."""

    def __init__(self, config: TrackingConfig, ids: Iterator[int] | None = None):
        self.config = config
        self.tracks: dict[int, Track] = {}
        self._ids = ids or itertools.count(1)  # pass one shared counter to keep ids unique across cameras

    def update(self, boxes: list[PlateBox], now: float) -> list[Track]:
        """Match this frame's boxes to tracks (greedy by IoU); return the track of each box, in order."""
        self.tracks = {i: t for i, t in self.tracks.items() if now - t.last_seen <= self.config.expire_s}
        # the last box counts too: a prediction from a jittery velocity must not lose a parked car
        pairs = sorted(((max(iou(t.predicted(now), b.bbox), iou(t.box.bbox, b.bbox)), tid, k)
                        for tid, t in self.tracks.items() for k, b in enumerate(boxes)), reverse=True)
        assigned: dict[int, Track] = {}
        used: set[int] = set()
        for overlap, tid, k in pairs:
            if overlap < self.config.iou:
                break
            if k in assigned or tid in used:
                continue
            track = self.tracks[tid]
            # frames can arrive in bursts: a floor on dt and a running mean keep the velocity sane
            dt = max(MIN_DT_S, now - track.last_seen)
            (cx0, cy0), (cx1, cy1) = _centre(track.box.bbox), _centre(boxes[k].bbox)
            vx, vy = track.velocity
            track.velocity = (0.5 * vx + 0.5 * (cx1 - cx0) / dt, 0.5 * vy + 0.5 * (cy1 - cy0) / dt)
            track.box, track.last_seen = boxes[k], now
            track.frames_since_read += 1
            assigned[k], used = track, used | {tid}
        for k, box in enumerate(boxes):
            if k not in assigned:
                track = Track(next(self._ids), box, now, now, reads=deque(maxlen=self.config.max_reads))
                track.frames_since_read = self.config.reread_every  # never read yet
                self.tracks[track.id] = track
                assigned[k] = track
        return [assigned[k] for k in range(len(boxes))]

    def voted(self, track: Track) -> PlateText:
        """What to show for a track now: its committed text, with the layout of its last read."""
        rows = track.last_read.rows if track.last_read else 1
        raw = track.last_read.raw_text if track.last_read and track.frames_since_read == 0 else ""
        return PlateText(track.text, raw, track.confidence, track.valid, rows)

    def needs_read(self, track: Track) -> bool:
        return not track.confirmed or track.frames_since_read >= self.config.reread_every

    def add_read(self, track: Track, read: PlateText) -> bool:
        """Count a read in the track's vote; True when it is the most confident read so far."""
        track.frames_since_read = 0
        track.last_read = read
        track.reads.append(Read(read.text, read.confidence, read.valid))
        winner, agreeing = vote(list(track.reads), prefer=track.text)
        if winner is not None:
            changed = winner.text != track.text
            # once confirmed, the text only moves when the new winner is itself confirmed
            if not track.confirmed or (changed and agreeing >= self.config.confirm_reads and winner.valid):
                track.text, track.valid = winner.text, winner.valid
            if track.text == winner.text:
                track.confidence = winner.confidence
            track.confirmed = track.confirmed or (winner.valid and agreeing >= self.config.confirm_reads)
        best = read.text == track.text and read.confidence > track.best_read_confidence
        if best:
            track.best_read_confidence = read.confidence
        return best
