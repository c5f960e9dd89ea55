"""Per-camera plate tracks: one track is one vehicle, and it votes over its reads.

A car at a gate is seen in 20-50 frames. `CameraTracker` follows each plate box across the
frames of ONE camera (IoU against the box predicted from its last motion), and each track
votes over its reads: near-identical texts are grouped, the largest group wins and its most
confident read is the committed text. A track is confirmed after `confirm_reads` agreeing
valid reads; a confirmed track is re-read only every `reread_every` frames, which saves OCR
time, and its text only changes when another group clearly outvotes it. A valid read by the
careful lane (realtime/careful.py, the photo-grade pipeline) is surer than any number of
camera-lane reads: it decides the track's text and confirms it, and the camera lane's reads
then only keep the track to its vehicle.

At a gate the next vehicle stops where the last one stood, so overlap alone would carry one
vehicle's text onto the next. Two checks keep a track to one vehicle:
- its look (detector/appearance.py), against the crop the track last read as its text: a box
  that looks somewhat different (below `same_look`) is read again at once, however settled the
  track; one that looks unlike it (below `new_look`) twice in a row starts a new track. Once is
  not enough: a hand or a blurred frame changes one frame's look as much as a new vehicle does;
- its text: a valid read `new_text_distance` or more characters away from the track's valid
  text starts a new track with that read (so a readable new vehicle gets its own track on its
  first frame). An unconfirmed track only splits so when its look changed too: a parked car
  whose first reads disagree must still settle on one track.

Over 300 lines because the vote, the look checks and the careful reads all act on the same
Track and a change to one is a change to the others: apart, they would be read side by side.
A new track shows nothing it has not read itself.

Plates the camera lane's detector cannot see (small, distant) can still be found by a closer
look elsewhere (realtime/careful.py's wide look): `add_found` gives such a plate a track of its
own, held in place by its look: while the detector still misses it, a frame whose picture at
its box still looks like it (`same_look`) sights it there.
"""
from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import cv2
import numpy as np

from detector.appearance import Look, look, similarity
from detector.boxes import iou
from detector.plate_format import alnum, edit_distance
from detector.results import PlateBox, PlateText

MIN_DT_S = 0.05  # frames closer than this in time count as this far apart when estimating motion
CROP_QUALITY = 85  # JPEG quality of a track's best crop (the plate event's picture)

# what a track's careful reads so far decide, given the camera lane's valid text ("": none); None: nothing yet
Decide = Callable[[list[PlateText], str], PlateText | None]


def valid_last(tries: list[PlateText], camera_text: str) -> PlateText | None:
    """The careful reads' decision when nothing else is said: the last read, if it is valid."""
    return tries[-1] if tries[-1].valid else None


@dataclass(frozen=True)
class TrackingConfig:
    iou: float = 0.3  # least overlap between a predicted track box and a new box to match
    expire_s: float = 2.0  # a track unseen for this long is closed
    confirm_reads: int = 3  # agreeing valid reads that confirm a track
    reread_every: int = 10  # a confirmed track is read again every this many frames
    # an unconfirmed track is read every this many frames (the careful lane reads it too)
    unconfirmed_every: int = 1
    max_reads: int = 30  # reads kept per track (the vote's memory)
    # a box that looks less like its track's last read than this twice in a row is another vehicle
    new_look: float = 0.55
    same_look: float = 0.8  # one that looks less like it than this is read again at once
    # a valid read this many characters from the track's valid text is another vehicle
    new_text_distance: int = 3
    camera_idle_s: float = 60.0  # a camera silent for this long loses its tracks (a client that left)
    # a frame whose picture has not changed since its camera's last frame looked at, this long ago at most,
    # keeps that frame's boxes and is not read (realtime/worker.py); 0: every frame is looked at
    still_s: float = 1.0

    def validate(self) -> None:
        from detector.config import ConfigError

        if not 0 < self.iou <= 1 or self.expire_s <= 0 or self.camera_idle_s <= 0 or self.still_s < 0:
            raise ConfigError(
                "tracking.iou must be in (0, 1], tracking.expire_s and camera_idle_s positive, still_s >= 0"
            )
        if min(self.confirm_reads, self.reread_every, self.unconfirmed_every, self.max_reads) < 1 \
                or self.max_reads < self.confirm_reads:
            raise ConfigError(
                "tracking.confirm_reads, reread_every, unconfirmed_every and max_reads must be >= 1, "
                "max_reads >= confirm_reads"
            )
        if not -1 <= self.new_look <= self.same_look <= 1:
            raise ConfigError("tracking.new_look and same_look must be in [-1, 1], new_look <= same_look")
        if self.new_text_distance < 2:
            raise ConfigError(
                "tracking.new_text_distance must be >= 2 (one character is a misread, not a new vehicle)"
            )


@dataclass(frozen=True)
class Read:
    text: str
    confidence: float
    valid: bool


def text_distance(a: str, b: str) -> int:
    """Characters to change, add or drop to turn one plate text into the other (punctuation aside)."""
    return edit_distance(alnum(a), alnum(b))


def _similar(a: str, b: str) -> bool:
    """Same plate up to one character wrong, missing or extra (text_distance <= 1, the vote's fast path)."""
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
    """One vehicle's plate on one camera: where it is, what it was read as, what to report."""

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
    last_read: PlateText | None = None
    look: Look | None = None  # of the last crop read as this track's text: the vehicle as it was read
    looked_unlike: bool = False  # its last box looked unlike `look` (below new_look)
    crop: bytes | None = None  # JPEG of the most confident read of the committed text
    crop_confidence: float = -1.0  # that read's confidence
    careful_reads: int = 0  # reads of it by the careful lane (realtime/careful.py) counted so far
    careful: PlateText | None = None  # the careful read that decided its text: decides it from then on
    careful_tries: list[tuple[PlateText, bytes | None]] = field(default_factory=list)  # careful reads, crops
    careful_news: bool = False  # a careful read set its text since its last sighting
    held: bool = False  # found by a wide look (add_found): sighted by its look where the detector misses it

    def predicted(self, now: float) -> tuple[float, float, float, float]:
        dt = now - self.last_seen
        dx, dy = self.velocity[0] * dt, self.velocity[1] * dt
        b = self.box
        return (b.x1 + dx, b.y1 + dy, b.x2 + dx, b.y2 + dy)


@dataclass(frozen=True)
class Sighting:
    """One box of a frame as its track sees it."""

    box: PlateBox
    track: Track
    shown: PlateText  # what to show for the box: the track's voted text
    read: PlateText | None  # the read made of this box, when the track needed one
    # a confirmed vehicle read again, here or carefully (its plate event is due or up for an update)
    news: bool = False


def crop_jpeg(image: np.ndarray, box: PlateBox) -> bytes | None:
    """The JPEG of a box's crop (a plate event's picture)."""
    x1, y1, x2, y2 = box.bbox
    ok, jpeg = cv2.imencode(".jpg", image[y1:y2, x1:x2], [cv2.IMWRITE_JPEG_QUALITY, CROP_QUALITY])
    return jpeg.tobytes() if ok else None


def _centre(b) -> tuple[float, float]:
    return ((b[0] + b[2]) / 2, (b[1] + b[3]) / 2)


class CameraTracker:
    """Tracks of one camera. Never share one between cameras: ids and state are per camera."""

    def __init__(self, config: TrackingConfig, ids: Iterator[int] | None = None):
        self.config = config
        self.tracks: dict[int, Track] = {}
        self._ids = ids or itertools.count(1)  # pass one shared counter to keep ids unique across cameras

    def follow(self, image: np.ndarray, boxes: list[PlateBox], now: float,
               read: Callable[[PlateBox], PlateText] | None) -> list[Sighting]:
        """This frame's boxes on their tracks, read with `read` where a track needs it, in box order; then the
        held tracks the detector missed whose look is still there. `read` None: a still frame (the picture
        of the last one read), whose boxes only keep their tracks alive: reading it again would read the
        same picture the same way."""
        # a still frame's boxes are its last look's: the picture under them is what that look saw, so
        # there is nothing to compare (a vehicle creeping under a kept box is not another vehicle)
        looks = [None if read is None else look(image, b.bbox) for b in boxes]
        sightings = []
        for box, box_look, (track, likeness) in zip(boxes, looks, self._match(boxes, looks, now)):
            changed = likeness < self.config.same_look
            text = read(box) if read is not None and (changed or self.needs_read(track)) else None
            if text is not None:
                if self._another_vehicle(track, text, changed):
                    del self.tracks[track.id]
                    track = self._open(box, now)
                self._add_read(track, text, box_look, image)
            sightings.append(self._sighting(box, track, text))
        seen = {s.track.id for s in sightings}
        for track in [t for t in self.tracks.values() if t.held and t.id not in seen]:
            if (
                track.look is not None
                and similarity(track.look, look(image, track.box.bbox)) >= self.config.same_look
            ):
                track.last_seen = now
                sightings.append(self._sighting(track.box, track, None))
        return sightings

    def _sighting(self, box: PlateBox, track: Track, text: PlateText | None) -> Sighting:
        news = track.confirmed and (text is not None or track.careful_news)
        track.careful_news = False
        return Sighting(box, track, self.voted(track), text, news)

    def careful_news_out_of_view(self) -> list[Track]:
        """Tracks a careful read decided that no frame has sighted since (after `follow`): their vehicle left
        before the read came, and is still to be announced."""
        news = [t for t in self.tracks.values() if t.careful_news]
        for track in news:
            track.careful_news = False
        return news

    def add_careful_read(
        self, track_id: int, read: PlateText, crop: bytes | None = None, decide: Decide = valid_last
    ) -> None:
        """A photo-grade read of one of the track's boxes. The read that the track's careful reads so far
        decide (`decide`, told the camera lane's valid text; by default a valid last one) sets the track's
        text and confirms it, and its crop becomes the track's picture (a closed track's read is dropped)."""
        track = self.tracks.get(track_id)
        if track is None:
            return
        track.careful_reads += 1
        track.careful_tries.append((read, crop))
        decided = decide([t for t, _ in track.careful_tries], track.text if track.valid else "")
        if decided is not None:
            crop = next(c for t, c in track.careful_tries if t is decided)  # an earlier try's, maybe
            track.careful = decided
            track.reads.append(Read(decided.text, decided.confidence, decided.valid))
            track.text, track.valid, track.confidence, track.confirmed = (
                decided.text,
                True,
                decided.confidence,
                True,
            )
            if crop:
                track.crop, track.crop_confidence = crop, decided.confidence
            track.careful_news = True
            track.careful_tries.clear()

    def add_found(
        self, box: PlateBox, read: PlateText, box_look: Look, crop: bytes | None, now: float
    ) -> None:
        """A valid plate found where the camera lane saw none, read carefully: the careful read of the track
        already there, or a held track of its own."""
        there = [t for t in self.tracks.values() if iou(t.box.bbox, box.bbox) >= self.config.iou]
        if there:
            self.add_careful_read(there[0].id, read, crop)
            return
        track = self._open(box, now)
        track.held, track.look, track.last_read, track.frames_since_read = True, box_look, read, 0
        self.add_careful_read(track.id, read, crop)

    def _match(
        self, boxes: list[PlateBox], looks: list[Look | None], now: float
    ) -> list[tuple[Track, float]]:
        """The track of each box (greedy by IoU) and how alike it looks to the track's last read (1: new)."""
        self.tracks = {i: t for i, t in self.tracks.items() if now - t.last_seen <= self.config.expire_s}
        # the last box counts too: a prediction from a jittery velocity must not lose a parked car
        pairs = sorted(((max(iou(t.predicted(now), b.bbox), iou(t.box.bbox, b.bbox)), tid, k)
                        for tid, t in self.tracks.items() for k, b in enumerate(boxes)), reverse=True)
        assigned: dict[int, tuple[Track, float]] = {}
        used: set[int] = set()
        for overlap, tid, k in pairs:
            if overlap < self.config.iou:
                break
            if k in assigned or tid in used:
                continue
            track = self.tracks[tid]
            likeness = 1.0 if track.look is None or looks[k] is None else similarity(track.look, looks[k])
            if likeness < self.config.new_look and track.looked_unlike:  # another vehicle where this one was
                continue
            track.looked_unlike = likeness < self.config.new_look
            # frames can arrive in bursts: a floor on dt and a running mean keep the velocity sane
            dt = max(MIN_DT_S, now - track.last_seen)
            (cx0, cy0), (cx1, cy1) = _centre(track.box.bbox), _centre(boxes[k].bbox)
            vx, vy = track.velocity
            track.velocity = (0.5 * vx + 0.5 * (cx1 - cx0) / dt, 0.5 * vy + 0.5 * (cy1 - cy0) / dt)
            track.box, track.last_seen = boxes[k], now
            track.frames_since_read += 1
            assigned[k], used = (track, likeness), used | {tid}
        for k, box in enumerate(boxes):
            if k not in assigned:
                assigned[k] = (self._open(box, now), 1.0)
        return [assigned[k] for k in range(len(boxes))]

    def _open(self, box: PlateBox, now: float) -> Track:
        track = Track(next(self._ids), box, now, now, reads=deque(maxlen=self.config.max_reads))
        track.frames_since_read = self.config.reread_every  # never read yet
        self.tracks[track.id] = track
        return track

    def _another_vehicle(self, track: Track, read: PlateText, look_changed: bool) -> bool:
        """A valid read far from the track's valid text: on a track the camera lane settled, or one whose
        look changed (a careful read is surer than a far camera-lane read: only a new look splits it)."""
        settled = track.confirmed and track.careful is None
        if not (track.reads and track.valid and read.valid) or not (settled or look_changed):
            return False
        return text_distance(read.text, track.text) >= self.config.new_text_distance

    def voted(self, track: Track) -> PlateText:
        """What to show for a track now: its committed text, with the layout of its last read."""
        rows = track.last_read.rows if track.last_read else 1
        raw = track.last_read.raw_text if track.last_read and track.frames_since_read == 0 else ""
        return PlateText(track.text, raw, track.confidence, track.valid, rows)

    def needs_read(self, track: Track) -> bool:
        every = self.config.reread_every if track.confirmed else self.config.unconfirmed_every
        return track.frames_since_read >= every

    def _add_read(self, track: Track, read: PlateText, read_look: Look, image: np.ndarray) -> None:
        """Count a read in the track's vote; keep its look when it agrees, its crop when it is the best."""
        track.frames_since_read = 0
        track.last_read = read
        self._vote(track, read)
        if track.look is None or _similar(read.text, track.text):
            track.look = read_look
        if read.text == track.text and read.confidence > track.crop_confidence:
            crop = crop_jpeg(image, track.box)
            if crop:
                track.crop, track.crop_confidence = crop, read.confidence

    def _vote(self, track: Track, read: PlateText) -> None:
        """Count a read in the track's vote and commit the winner (unless a careful read decided the text)."""
        track.reads.append(Read(read.text, read.confidence, read.valid))
        if track.careful is not None:
            return
        winner, agreeing = vote(list(track.reads), prefer=track.text)
        if winner is None:
            return
        changed = winner.text != track.text
        # once confirmed, the text only moves when the new winner is itself confirmed
        if not track.confirmed or (changed and agreeing >= self.config.confirm_reads and winner.valid):
            track.text, track.valid = winner.text, winner.valid
        if track.text == winner.text:
            track.confidence = winner.confidence
        track.confirmed = track.confirmed or (winner.valid and agreeing >= self.config.confirm_reads)
