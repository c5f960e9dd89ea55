"""The careful lane: each vehicle read once with the `careful` profile, in threads of its own.

The camera lane reads every frame quickly (profiles.camera: a 256 px detector, `vn_plate64`, one
crop). A vehicle is seen for 20-50 frames, so the budget that matters is per vehicle. Two kinds
of job come here from the worker:
- a track's box: each frame's box of a track that wants a careful read is offered, the lane keeps
  the best offer per track (largest x most confident x sharpest) for `gather_s` at least and until
  it is free, finds the plate again in the region around it with profiles.careful's detector at the
  region's own scale (the camera lane's 256 px box is often cut short or loose) and in a few of the
  track's recent frames (the median of those boxes is read: `_steady_box`), and reads it with
  profiles.careful (nearly as a single photo is read: `vn_plate_g2`, two crops, both row splits) in
  that region fused with the track's other recent frames of the same place (detector/fusion.py: each
  frame of a small plate is blurred by the webcam's sub-pixel resampling in its own way; together
  they make one sharper picture). A sure read decides the track's text (detector/tracking.py,
  `decision` below); an unsure one waits for the track's next careful read, made from a later frame,
  to agree. Order: unconfirmed tracks first, then tracks whose unsure read waits, then wide looks
  (below), then confirmed tracks never read carefully, then tracks whose careful reads found nothing
  valid; a track gets `per_track` careful reads at most, so a parked vehicle is not read over and
  over;
- a wide look: a camera frame in which the camera lane sees no plate, at most every
  `wide_look_s` per camera and only when the picture changed since that camera's last look
  (a vehicle came or left), and never when it looks like the picture in which its last wide
  look found nothing (the empty gate, shown again between each two vehicles), is searched
  with profiles.careful's detector (480 px, which finds the small and distant plates 256 px
  misses) and what it finds is read; a valid read becomes a track of its own (detector/tracking.py
  `add_found`), held by its look while the camera lane still cannot see it. It too waits `gather_s`
  for a sharper frame of its camera.

Waiting for the sharpest frame: a still vehicle's frames are not all alike sharp (focus, motion
blur, a webcam's resampling), and a careful read of a small plate is decided by a pixel's blur.
On vn-real's evaluation photos streamed as a camera does (bench/real_replay.py, 15 frames each),
the photo path reads 0.596 of the first frames, 0.612 of the sharpest of the first five, 0.620 of
the sharpest of all, 0.542 of the blurriest.

Under load, jobs of vehicles still in view go before those of vehicles that left (GONE_S), whose reads
could no longer open a gate. `threads` jobs are done at once (one by default: on two cores a second read
no more).

The lane keeps out of the camera lane's way: its threads run at a lower CPU priority
(realtime/threads.py `run_in_background`) and each spends
at most `cpu_share` of one core's time (it rests in proportion after each job); it uses models
of its own (profiles.careful), keeps no frame but those it is asked to look at wide (one per
camera at most) and small copies of plate regions (`fuse_frames` a track at most, for MAX_WINDOWS
tracks), and hands its results back through
`take_reads`, which the worker drains between batches.
"""
from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, replace
from time import monotonic
from typing import Protocol

import numpy as np

from detector.appearance import Look, changed, look, sharpness, thumbnail
from detector.boxes import iou, median_box
from detector.fusion import fuse
from detector.plate_format import normalise
from detector.results import PlateBox, PlateText
from detector.tracking import Track, crop_jpeg
from realtime.threads import real_threading, run_in_background

log = logging.getLogger("plates")

# the region copied around a box, as a share of its width and height on each side: room for the careful
# detector to find the plate again (Pipeline.refine) where the camera lane's box cut it short
MARGIN = 1.0
STALE_S = 3.0  # a job not taken this long after it was offered is dropped: its vehicle has likely gone
# a track none of whose frames came this long has left the picture (at 10 fps, five frames): its job waits
# behind the jobs of vehicles still in view, whose reads can still open their gate (six vn-real cameras:
# 0.599, 0.586 without, 0.602, 0.609, 0.612 with)
GONE_S = 0.5
MAX_JOBS = 64  # pending jobs at most (one per track, one wide look per camera): the oldest go first
NOTHING = PlateText("", "", 0.0, False, 1, passes=0)
WIDE_PLATES = 2  # plates a wide look reads at most (the most confident)
MAX_CAMERAS = 256  # cameras whose last wide look is remembered (the least recent are forgotten)
# tracks whose recent frames are kept for fusion at once (the least recently offered go first), and the
# largest region kept more than once: fusion is for small plates (a larger one reads well from one frame),
# and this bounds the frames kept to MAX_WINDOWS x fuse_frames x 100 KB
MAX_WINDOWS = 16
MAX_FUSED_PIXELS = 34_000
# a careful read's box is the median of the careful detector's boxes in this many of the track's recent frames
# (one detector call for them all: ~30 ms for five, against ~9 ms for one). vn-real's evaluation photos, each
# vehicle's first read on the replay's own frames (five, fused) read as the lane reads them: 237 right, 16
# sure-and-wrong, against 228 and 24 from the best frame's box alone
BOX_FRAMES = 5
SAME_BOX = 0.5  # least overlap of a frame's box with the job frame's to count in the median (else it moved)

# job priorities, lowest first: a vehicle in view before a plate that may be there (most wide looks find
# nothing; when they came first, six vn-real cameras got 0.19 of their vehicles right instead of 0.44);
# a vehicle's second look for an unsure read comes before wide looks too: its vehicle leaves soon
PRIORITIES = ("unconfirmed", "agreeing", "wide_look", "never_careful", "retry")  # their names, for the log
UNCONFIRMED, AGREEING, WIDE_LOOK, NEVER_CAREFUL, RETRY = range(len(PRIORITIES))


class Pipeline(Protocol):  # detector.persistent.Pipeline as the lane uses it (importing it would load torch)
    def locate_batch(self, images: list[np.ndarray]) -> list[list[PlateBox]]: ...
    def refine(self, regions: list[np.ndarray], box: PlateBox) -> list[PlateBox | None]: ...
    def read(self, image: np.ndarray, box: PlateBox) -> PlateText: ...
    def twin(self) -> Pipeline: ...


@dataclass(frozen=True)
class CarefulConfig:
    enabled: bool = True  # false: the camera lane alone reads the live frames
    cpu_share: float = 1.0  # of one core's time, at most, the lane spends on its jobs (it rests between them)
    per_track: int = 3  # careful reads one vehicle gets at most (each from a later frame than the last)
    # a valid read less confident than this decides nothing (counts as no plate found): on vn-real's photos
    # it drops 22 of 40 valid wrong careful reads (four crops) and 2 of 103 right ones
    min_confidence: float = 0.6
    # a valid read at least this sure decides its track at once; a less sure one decides when another careful
    # read of the track agrees, or as the surest after per_track reads. Six vn-real cameras, reads of a median
    # box (BOX_FRAMES): 0.618 of the photos right at 0.6, 0.605 at 0.7, wrong events 31 and 24 (with one
    # frame's box, 0.7 read best: 0.612 against 0.589 at 0.6, wrong 41 against 44)
    decide_at: float = 0.6
    # two careful reads of a track (two frames) that read the same plate-format text decide it when each is at
    # least this sure, under min_confidence too: six vn-real cameras, the reads of one run replayed with 0.5
    # decide 3 more photos right (0.4: 5, and 3 more wrong), none right before turned wrong
    agree_at: float = 0.5
    # a camera whose frames show no plate is looked at wide at most this often; 0: never
    wide_look_s: float = 0.5
    # a job waits this long after its first offer for a sharper frame of its vehicle (or camera) to be read
    gather_s: float = 0.4
    # a track's most recent frames fused into one picture for each careful read (detector/fusion.py); 1: its
    # best frame read alone
    fuse_frames: int = 12
    # careful jobs done at once, each in a thread with its own copy of the careful models: for more cores. On
    # two, six vn-real cameras leave half a core idle with one thread, yet two read no more (0.612 both) and
    # slow the camera lane (p95 131 ms against 99)
    threads: int = 1

    def validate(self) -> None:
        from detector.config import ConfigError

        if not 0 < self.cpu_share <= 1 or self.per_track < 1 or self.wide_look_s < 0 \
                or not 0 <= self.agree_at <= self.min_confidence <= self.decide_at <= 1 \
                or not 0 <= self.gather_s < STALE_S \
                or not 1 <= self.fuse_frames <= 30 or not 1 <= self.threads <= 8:
            raise ConfigError(
                "careful.cpu_share must be in (0, 1], careful.per_track >= 1, careful.wide_look_s >= 0, "
                "careful.agree_at <= careful.min_confidence <= careful.decide_at, all in [0, 1], "
                f"careful.gather_s in [0, {STALE_S}), careful.fuse_frames in [1, 30], "
                "careful.threads in [1, 8]"
            )


@dataclass(frozen=True)
class CarefulJob:
    camera_id: str
    track_id: int | None  # None: a wide look at a whole frame
    priority: int  # 0 first
    quality: float  # of the box (a wide look: of the frame): the better of two offers is kept
    region: np.ndarray  # a copy of the frame around the box (a wide look: the whole frame, as decoded)
    box: PlateBox | None  # in pixels of the region (a wide look: None)
    window: tuple[int, int, int, int] | None  # where the region is in its frames (a wide look: None)
    offered: float  # when this offer came (stale STALE_S after)
    since: float  # when the first offer of its track (or wide look) came: read no sooner than gather_s after
    at: float = 0.0  # a wide look: the frame's wall-clock time
    picture: np.ndarray | None = None  # a wide look: the frame's thumbnail


@dataclass(frozen=True)
class CarefulRead:
    camera_id: str
    track_id: int | None  # None: a plate a wide look found (box, look and at say where and when)
    text: PlateText
    crop: bytes | None = None  # JPEG of the plate as read (the event's picture when the read decides it)
    box: PlateBox | None = None
    look: Look | None = None
    at: float = 0.0


def priority(track: Track, config: CarefulConfig) -> int | None:
    """How soon a track should be read carefully; None: not now (or never again)."""
    if track.careful is not None or track.careful_reads >= config.per_track:
        return None  # decided, or its tries are spent
    if track.careful_reads == 0:
        return UNCONFIRMED if not track.confirmed else NEVER_CAREFUL
    if any(agreeable(t, config) for t, _ in track.careful_tries):
        return AGREEING  # an unsure read waits for another frame to agree while the vehicle is there
    return RETRY  # nothing that could agree found: one more try when nothing more urgent waits


def agreeable(read: PlateText, config: CarefulConfig) -> bool:
    """Whether another read of the same text would decide this one: it fits a plate format and is agree_at
    sure. The lane clears `valid` of a read under min_confidence, so the format is asked again here."""
    return read.confidence >= config.agree_at and normalise(read.text).valid


def decision(tries: list[PlateText], camera_text: str, config: CarefulConfig) -> PlateText | None:
    """What a track's careful reads so far (the last one last; valid only when at least min_confidence
    sure) decide, None: nothing yet. The last read decides when it is valid and decide_at sure, or valid
    and the camera lane's vote (another reader) agrees with it, or when an earlier one (another frame)
    read the same plate-format text and both are agree_at sure (at most min_confidence: two valid reads
    that agree always do); after per_track reads, the surest valid one does."""
    last = tries[-1]
    if last.valid and (last.confidence >= config.decide_at or last.text == camera_text):
        return last
    if agreeable(last, config) and any(t.text == last.text and agreeable(t, config) for t in tries[:-1]):
        return last
    if len(tries) >= config.per_track:
        return max((t for t in tries if t.valid), key=lambda t: t.confidence, default=None)
    return None


def most_recent(frames: list[np.ndarray], count: int) -> list[np.ndarray]:
    """The last `count` of frames kept oldest first (none for 0)."""
    return frames[max(0, len(frames) - count):]


def quality(image: np.ndarray, box: PlateBox) -> float:
    """How good a box of an image is to read carefully: large, surely a plate, and sharp."""
    return (box.x2 - box.x1) * (box.y2 - box.y1) * box.confidence * sharpness(image, box.bbox)


def window_around(shape: tuple[int, ...], box: PlateBox) -> tuple[int, int, int, int]:
    """Where the region around a box (MARGIN) is in a frame of this shape: (x1, y1, x2, y2), clipped."""
    h, w = shape[:2]
    mx, my = int((box.x2 - box.x1) * MARGIN), int((box.y2 - box.y1) * MARGIN)
    return max(0, box.x1 - mx), max(0, box.y1 - my), min(w, box.x2 + mx), min(h, box.y2 + my)


def cut(image: np.ndarray, window: tuple[int, int, int, int]) -> np.ndarray:
    """A copy of the image within a window (the frame can go)."""
    x1, y1, x2, y2 = window
    return image[y1:y2, x1:x2].copy()


def region_around(image: np.ndarray, box: PlateBox) -> tuple[np.ndarray, PlateBox]:
    """A copy of the image around a box (MARGIN), and the box in its pixels."""
    window = window_around(image.shape, box)
    return cut(image, window), moved_into(box, window)


def moved_into(box: PlateBox, window: tuple[int, int, int, int]) -> PlateBox:
    x, y = window[:2]
    return PlateBox(box.x1 - x, box.y1 - y, box.x2 - x, box.y2 - y, box.confidence)


@dataclass
class Window:
    """A track's most recent frames, each cut at one window of its camera's frames (for fusion)."""
    at: tuple[int, int, int, int]
    frames: deque  # of regions, the newest last
    offered: float = 0.0  # when its last frame came (monotonic)

    def holds(self, box: PlateBox) -> bool:
        """Whether a box lies within the window (its vehicle has not moved off it)."""
        x1, y1, x2, y2 = self.at
        return x1 <= box.x1 and y1 <= box.y1 and box.x2 <= x2 and box.y2 <= y2


class CarefulLane:
    """The careful lane's threads: `offer` and `look_wide` jobs from the worker, `take_reads` back."""

    def __init__(self, config: CarefulConfig, pipeline: Pipeline):
        """`pipeline`: the first thread's models; each other thread loads a twin of them."""
        self.config = config
        pipelines = [pipeline] + [pipeline.twin() for _ in range(config.threads - 1)]
        threading = real_threading()
        self._ready = threading.Condition()
        self._jobs: dict[tuple[str, int | None], CarefulJob] = {}
        self._busy: set[tuple[str, int | None]] = set()  # the jobs being done
        self._reads: list[CarefulRead] = []  # done, not yet taken: their tracks want no more offers
        # track -> its recent frames, the least recently offered first
        self._windows: dict[tuple[str, int | None], Window] = {}
        # camera -> when and what its last wide look saw
        self._looked: dict[str, tuple[float, np.ndarray]] = {}
        self._empty: dict[str, np.ndarray] = {}  # camera -> the last picture a wide look found no plate in
        self._pause = threading.Event()  # never set: a real sleep, also under eventlet
        self.done = 0  # careful reads made (for /health)
        self.failed = 0  # jobs the models raised on (a read, a wide look, or a refine read as boxed; a fusion
        # that broke: read from the best frame alone)
        self.wide_looks = 0  # wide looks made
        self.fused = 0  # careful reads of a picture fused from more than one frame
        self._threads = [threading.Thread(target=self._run, args=(p,), name=f"careful-lane-{i}", daemon=True)
                         for i, p in enumerate(pipelines)]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def offer(self, camera_id: str, track: Track, rank: int, image: np.ndarray, box: PlateBox) -> None:
        """A box of a track that wants a careful read: its region is kept among the track's recent frames (for
        fusion), and becomes the track's job if it beats the last offer."""
        key = (camera_id, track.id)
        good = quality(image, box)
        with self._ready:
            window = self._keep(key, image, box)
            old = self._jobs.get(key)
            answered = any((r.camera_id, r.track_id) == key for r in self._reads)
            if key in self._busy or answered or old is not None and old.quality >= good:
                return
            now = monotonic()
            self._add(key, CarefulJob(camera_id, track.id, rank, good, window.frames[-1],
                                      moved_into(box, window.at), window.at, now,
                                      now if old is None else old.since))

    def _keep(self, key: tuple[str, int | None], image: np.ndarray, box: PlateBox) -> Window:
        """The track's window with this frame's region added: a new window where the box left the last one."""
        window = self._windows.pop(key, None)  # put back last: the most recently offered
        if window is None or not window.holds(box):
            at = window_around(image.shape, box)
            small = (at[2] - at[0]) * (at[3] - at[1]) <= MAX_FUSED_PIXELS
            window = Window(at, deque(maxlen=self.config.fuse_frames if small else 1))
        window.frames.append(cut(image, window.at))
        window.offered = monotonic()
        self._windows[key] = window
        if len(self._windows) > MAX_WINDOWS:
            del self._windows[next(iter(self._windows))]
        return window

    def look_wide(self, camera_id: str, image: np.ndarray, at: float) -> None:
        """A frame of a camera whose camera lane sees no plate: looked at wide if it is due, the picture
        changed since its last look, and it is not the empty gate: the picture of its last fruitless look."""
        if not self.config.wide_look_s:
            return
        key, now = (camera_id, None), monotonic()
        with self._ready:
            if (pending := self._jobs.get(key)) is not None:
                # gathering: a sharper copy of the same picture is looked at instead
                small = thumbnail(image)
                if not changed(small, pending.picture) and (sharp := sharpness(image)) > pending.quality:
                    self._jobs[key] = replace(pending, quality=sharp, region=image, at=at, picture=small)
                return
            last = self._looked.get(camera_id)
            if key in self._busy or last is not None and now - last[0] < self.config.wide_look_s:
                return
            small, empty = thumbnail(image), self._empty.get(camera_id)
            if last is not None and not changed(small, last[1]):
                return
            if empty is not None and not changed(small, empty):
                # the gate is empty again: the next vehicle is a change from it, however like the last one it
                # looks
                self._looked[camera_id] = (last[0] if last else now, empty)
                return
            self._looked.pop(camera_id, None)
            self._looked[camera_id] = (now, small)
            if len(self._looked) > MAX_CAMERAS:
                forgotten = next(iter(self._looked))
                del self._looked[forgotten]
                self._empty.pop(forgotten, None)
            # the worker's decoded frame is never written to once decoded: kept as it is, not copied
            self._add(key, CarefulJob(camera_id, None, WIDE_LOOK, sharpness(image), image, None, None, now,
                                      now, at, small))

    def _add(self, key: tuple[str, int | None], new: CarefulJob) -> None:
        self._jobs[key] = new
        if len(self._jobs) > MAX_JOBS:
            del self._jobs[min(self._jobs, key=lambda k: self._jobs[k].offered)]
        self._ready.notify()

    def decide(self, tries: list[PlateText], camera_text: str) -> PlateText | None:
        """What a track's careful reads so far decide (`decision` with this lane's config)."""
        return decision(tries, camera_text, self.config)

    def take_reads(self) -> list[CarefulRead]:
        with self._ready:
            reads, self._reads = self._reads, []
        return reads

    def next_job(self) -> CarefulJob:
        """The job to do now (waits for one): the most urgent of those due."""
        with self._ready:
            while True:
                now = monotonic()
                self._jobs = {k: j for k, j in self._jobs.items() if now - j.offered <= STALE_S}
                self._windows = {k: w for k, w in self._windows.items() if now - w.offered <= STALE_S}
                due = [k for k, j in self._jobs.items() if now - j.since >= self.config.gather_s]
                if due:
                    key = min(due, key=lambda k: (self._jobs[k].priority, self._gone(k, now),
                                                  -self._jobs[k].quality))
                    self._busy.add(key)
                    return self._jobs.pop(key)
                due_in = min((j.since + self.config.gather_s - now for j in self._jobs.values()), default=1.0)
                self._ready.wait(min(1.0, max(0.001, due_in)))

    def _gone(self, key: tuple[str, int | None], now: float) -> bool:
        """Whether a track's vehicle has left its camera's picture: no frame of it offered for GONE_S."""
        window = self._windows.get(key)
        return key[1] is not None and (window is None or now - window.offered > GONE_S)

    def _run(self, pipeline: Pipeline) -> None:
        run_in_background()
        rest = (1 - self.config.cpu_share) / self.config.cpu_share
        while True:
            current = self.next_job()
            started = monotonic()
            if current.box is None:
                reads = self._wide(pipeline, current)
                if not reads:  # the gate as it looks empty: not looked at again while it looks so
                    with self._ready:
                        self._empty[current.camera_id] = current.picture
            else:
                reads = [self.read_track(pipeline, current)]
            with self._ready:
                self._reads += reads
                self._busy.discard((current.camera_id, current.track_id))
            self._pause.wait((monotonic() - started) * rest)  # the budget: cpu_share of a core at most

    def read_track(self, pipeline: Pipeline, current: CarefulJob) -> CarefulRead:
        """A track's careful read: its job's box found again (`_steady_box`), read in the job's region fused
        with the track's other recent frames (`_fused`)."""
        waited = monotonic() - current.since
        others = self._others(current)
        box = self._steady_box(pipeline, current, others)
        region = self._fused(current, others)
        text = self._read(pipeline, region, box)
        crop = crop_jpeg(region, box) if text.valid else None
        # what each vehicle's careful reads said, to look at a misread one (server.log_level DEBUG;
        # bench/real_replay.py --careful-log)
        log.debug("careful read camera=%r track=%d %s fused=%s text=%r confidence=%.3f valid=%s "
                  "waited=%.2f", current.camera_id, current.track_id, PRIORITIES[current.priority],
                  region is not current.region, text.text, text.confidence, text.valid, waited)
        return CarefulRead(current.camera_id, current.track_id, text, crop)

    def _count(self, counter: str, by: int = 1) -> None:
        with self._ready:  # the lane's threads count into the same totals
            setattr(self, counter, getattr(self, counter) + by)

    def _others(self, current: CarefulJob) -> list[np.ndarray]:
        """The track's other recent frames of the job's window (fuse_frames - 1 at most, the most recent)."""
        with self._ready:
            window = self._windows.get((current.camera_id, current.track_id))
            kept = list(window.frames) if window is not None and window.at == current.window else []
        others = [frame for frame in kept if frame is not current.region]
        return most_recent(others, self.config.fuse_frames - 1)

    def _steady_box(self, pipeline: Pipeline, current: CarefulJob, others: list[np.ndarray]) -> PlateBox:
        """The job's box found again by the careful detector in its frame and in up to BOX_FRAMES - 1 of the
        others, as their median: a box's edges move by a pixel from frame to frame, and a pixel can cut off a
        small plate's first character. Frames where it finds no plate, or one that moved off the job's (the
        vehicle moved), count not; where it finds none in the job's frame, the camera lane's box is read."""
        try:
            regions = [current.region, *most_recent(others, BOX_FRAMES - 1)]
            first, *found = pipeline.refine(regions, current.box)
        except Exception:  # regions the detector breaks on are read as the camera lane boxed it
            self._count("failed")
            return current.box
        box = first or current.box
        return median_box([box] + [b for b in found if b is not None and iou(b.bbox, box.bbox) >= SAME_BOX])

    def _fused(self, current: CarefulJob, others: list[np.ndarray]) -> np.ndarray:
        """The job's region fused with the others (the region alone where there are none, or fusion breaks on
        them)."""
        if not others:
            return current.region
        try:
            fused = fuse(current.region, others)
        except Exception:  # a picture fusion breaks on is read from its best frame alone
            self._count("failed")
            return current.region
        self._count("fused", fused is not current.region)
        return fused

    def _read(self, pipeline: Pipeline, image: np.ndarray, box: PlateBox) -> PlateText:
        """The careful read of a box; valid only when it is sure enough to decide a track."""
        self._count("done")
        try:
            text = pipeline.read(image, box)
        except Exception:  # a region the models break on: the vehicle's try is spent, the lane goes on
            self._count("failed")
            return NOTHING
        return text if text.confidence >= self.config.min_confidence else replace(text, valid=False)

    def _wide(self, pipeline: Pipeline, current: CarefulJob) -> list[CarefulRead]:
        """The valid reads of the plates a wide look finds in its frame."""
        self._count("wide_looks")
        image, found = current.region, []
        try:
            boxes = sorted(pipeline.locate_batch([image])[0], key=lambda b: -b.confidence)[:WIDE_PLATES]
        except Exception:
            self._count("failed")
            return []
        for box in boxes:
            if (text := self._read(pipeline, image, box)).valid:
                found.append(CarefulRead(current.camera_id, None, text, crop_jpeg(image, box), box,
                                         look(image, box.bbox), current.at))
        return found
