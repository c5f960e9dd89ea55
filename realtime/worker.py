"""The inference worker: one real OS thread that owns the models.

It loads the PersistentDetector, then loops: take every waiting frame (one batch), decode,
find plates in the whole batch with one YOLO call, read each plate, and hand the results
to the loop side through an outbox. It never emits, logs per frame or touches the
metrics itself: all of that happens on the loop side, which keeps eventlet's green
primitives out of this thread. Each track's best box also goes to the careful lane
(realtime/careful.py), and so does a frame in which the camera lane sees no plate (a wide
look); the careful lane's reads and finds come back into the cameras' tracks here.

A still frame (nothing in it moved since its camera's last frame looked at, at most
`tracking.still_s` before) is not detected: it keeps that frame's boxes, and its tracks go on.
With a careful lane it is not read either: a vehicle at a gate stands still for most of its
frames, and the camera lane reads the same picture the same way again; that time is the careful
lane's, whose reads are better.
"""
from __future__ import annotations

import base64
import itertools
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from time import perf_counter

import cv2
import numpy as np

from detector import PersistentDetector, PlateBox, PlateRead
from detector.annotate import draw_reads
from detector.appearance import MOVED, SCENE, changed, thumbnail
from detector.tracking import CameraTracker, TrackingConfig
from realtime.careful import CarefulConfig, CarefulLane, priority
from realtime.events import TrackReport
from realtime.frames import FrameError, decode
from realtime.slots import Frame, FrameSlots
from realtime.threads import LoopWaker, real_threading, run_in_background


@dataclass(frozen=True)
class FrameResult:
    frame: Frame
    reads: tuple[PlateRead, ...] = ()
    frame_size: tuple[int, int] = (0, 0)
    timing_ms: dict | None = None
    annotated: str | None = None  # data URL, only when the frame asked for it
    error: FrameError | None = None
    reports: tuple[TrackReport, ...] = ()  # confirmed tracks with news: seen here, or gone and read since
    ocr_calls: int = 0
    still: bool = False  # answered from its camera's last frame looked at (nothing was detected or read)


@dataclass(frozen=True)
class LastLook:
    """A camera's last frame looked at (detected): what a still frame after it keeps."""

    picture: np.ndarray  # its SCENE thumbnail
    size: tuple[int, ...]  # its height and width: boxes fit no frame of another size
    boxes: list[PlateBox]  # what was found in it
    at: float

    def still(self, image: np.ndarray, picture: np.ndarray, now: float, still_s: float) -> bool:
        """This frame shows what the look saw, recently enough to keep its boxes."""
        recent = now - self.at < still_s and image.shape[:2] == self.size
        return recent and not changed(picture, self.picture, MOVED)


@dataclass
class Camera:
    """What the worker keeps per camera: its tracks, and its last frame looked at."""

    tracker: CameraTracker
    last_frame: float  # when its last frame came (a camera silent for camera_idle_s is forgotten)
    last_look: LastLook | None = None


class InferenceWorker:
    def __init__(
        self,
        load: Callable[[], PersistentDetector],
        slots: FrameSlots,
        waker: LoopWaker,
        max_batch: int,
        tracking: TrackingConfig,
        careful: CarefulConfig | None = None,
        annotate_quality: int = 80,
    ):
        self._load = load
        self._tracking = tracking
        self._careful_config = careful  # None: no careful lane
        self.careful: CarefulLane | None = None
        self._cameras: dict[str, Camera] = {}
        self._track_ids = itertools.count(1)  # track ids unique across cameras; nothing else is shared
        self._slots = slots
        self._waker = waker
        self._max_batch = max_batch
        self._annotate_quality = annotate_quality
        threading = real_threading()
        self._lock = threading.Lock()
        self._outbox: deque[FrameResult] = deque()
        self._failures: list[str] = []  # tracebacks of frames the models broke on, for the loop side to log
        self._thread = threading.Thread(target=self._run, name="inference-worker", daemon=True)
        self.detector: PersistentDetector | None = None
        self.load_error: str | None = None
        self._in_hand = False  # a batch is being processed

    @property
    def ready(self) -> bool:
        return self.detector is not None

    def start(self) -> None:
        self._thread.start()

    def idle(self) -> bool:
        """Nothing waiting, nothing in hand, every result taken by the loop side (a stop waits for it)."""
        with self._lock:
            return not self._in_hand and not self._outbox and not self._slots.waiting()

    def drain(self) -> tuple[list[FrameResult], list[str]]:
        """Results and failure tracebacks handed over since the last call."""
        with self._lock:
            out, failures = list(self._outbox), self._failures
            self._outbox.clear()
            self._failures = []
        return out, failures

    def _run(self) -> None:
        try:
            self.detector = self._load()
        except Exception as exc:  # reported by the loop side, which stops the server
            self.load_error = f"{type(exc).__name__}: {exc}"
            self._waker.notify()
            return
        if self._careful_config is not None:
            self.careful = CarefulLane(self._careful_config, self.detector.careful)
            self.careful.start()
        real_threading().Thread(target=self._serve_photos, name="photo-worker", daemon=True).start()
        self._waker.notify()
        while True:
            self._slots.wait(0.5)
            with self._lock:  # taken and in hand at once: a stop (idle) sees one or the other
                frames = self._slots.take(self._max_batch)
                self._in_hand = bool(frames)
            if not frames:
                continue
            self._count_careful_reads()
            results = self.process(frames)
            self._forget_idle_cameras(frames[-1].at)
            self._hand_over(results)
            with self._lock:
                self._in_hand = False

    def _serve_photos(self) -> None:
        """POST /detect's photos, one at a time, beside the cameras' thread and below it in priority: a
        photo costs 100-350 ms, and no camera frame may wait behind one (six /detect loops took a
        camera's p95 from 50 to 240 ms when photos shared its batches)."""
        run_in_background()
        while True:
            if (photo := self._slots.take_job(0.5)) is not None:
                self._hand_over(self.process([photo]))

    def _hand_over(self, results: list[FrameResult]) -> None:
        with self._lock:
            self._outbox.extend(results)
        self._waker.notify()

    def process(self, frames: list[Frame]) -> list[FrameResult]:
        """Results for a batch; a frame that breaks the models fails alone."""
        started = perf_counter()
        decoded: list[tuple[Frame, np.ndarray, float]] = []
        results: list[FrameResult] = []
        for frame in frames:
            t0 = perf_counter()
            try:
                decoded.append((frame, decode(frame.payload.data), (perf_counter() - t0) * 1000))
            except FrameError as exc:
                results.append(FrameResult(frame, error=exc))
        if not decoded:
            return results
        try:
            results += self._infer(decoded, started)
        except Exception:
            if len(decoded) == 1:
                self._note_failure()
                failed = FrameError("inference_failed", "the models failed on this frame")
                results.append(FrameResult(decoded[0][0], error=failed))
            else:  # find the frame that broke the batch: run them one by one
                for item in decoded:
                    results += self.process([item[0]])
        return results

    def _note_failure(self) -> None:
        with self._lock:
            self._failures.append(traceback.format_exc(limit=3))

    def _infer(self, decoded: list[tuple[Frame, np.ndarray, float]], started: float) -> list[FrameResult]:
        assert self.detector is not None
        located: dict[int, tuple[list[PlateBox], float]] = {}  # index -> boxes, detect ms per frame
        pictures = {}  # index -> thumbnail of a camera frame to look at
        for i, (frame, image, _) in enumerate(decoded):
            if frame.profile == "camera":
                last, picture = self._camera(frame).last_look, thumbnail(image, SCENE)
                if last is not None and last.still(image, picture, frame.at, self._tracking.still_s):
                    located[i] = (last.boxes, 0.0)
                else:
                    pictures[i] = picture
        for profile in ("camera", "photo"):  # camera frames, then one-off photos (looked at in more detail)
            group = [i for i, (f, _, _) in enumerate(decoded) if f.profile == profile and i not in located]
            if group:
                t0 = perf_counter()
                boxes = self.detector.pipelines[profile].locate_batch([decoded[i][1] for i in group])
                detect_ms = (perf_counter() - t0) * 1000 / len(group)
                located.update((i, (b, detect_ms)) for i, b in zip(group, boxes))
        results = []
        for i, (frame, image, decode_ms) in enumerate(decoded):
            frame_boxes, detect_ms = located[i]
            still = frame.profile == "camera" and i not in pictures
            t1 = perf_counter()
            if frame.profile == "photo":  # read every plate, no tracks
                texts = [self.detector.photo.read(image, b) for b in frame_boxes]
                reads = tuple(PlateRead.of(b, t) for b, t in zip(frame_boxes, texts))
                reports, ocr_calls = (), sum(t.passes for t in texts)
            else:
                camera = self._cameras[frame.payload.camera_id]
                if not still:
                    camera.last_look = LastLook(pictures[i], image.shape[:2], frame_boxes, frame.at)
                reads, reports, ocr_calls = self._track(frame, camera, image, frame_boxes, still)
            ocr_ms = (perf_counter() - t1) * 1000
            annotated = None
            if frame.payload.annotate:
                ok, jpeg = cv2.imencode(
                    ".jpg", draw_reads(image, list(reads)), [cv2.IMWRITE_JPEG_QUALITY, self._annotate_quality]
                )
                annotated = (
                    "data:image/jpeg;base64," + base64.b64encode(jpeg.tobytes()).decode() if ok else None
                )
            timing = {"queue": round((started - frame.received) * 1000, 2), "decode": round(decode_ms, 2),
                      "detect": round(detect_ms, 2), "ocr": round(ocr_ms, 2)}
            timing["total"] = round((perf_counter() - frame.received) * 1000, 2)
            results.append(FrameResult(frame, reads, (image.shape[1], image.shape[0]), timing, annotated,
                                       reports=reports, ocr_calls=ocr_calls, still=still))
        return results

    def _camera(self, frame: Frame) -> Camera:
        camera = self._cameras.get(frame.payload.camera_id)
        if camera is None:
            camera = self._cameras[frame.payload.camera_id] = Camera(
                CameraTracker(self._tracking, self._track_ids), frame.at
            )
        camera.last_frame = frame.at
        return camera

    def _track(self, frame: Frame, camera: Camera, image: np.ndarray, boxes: list[PlateBox], still: bool):
        """Reads of a camera frame through its tracker: only tracks that need it are read (none in a still
        frame when the careful lane reads them)."""
        camera_id = frame.payload.camera_id
        read = None if still and self.careful is not None else partial(self.detector.camera.read, image)
        sightings = camera.tracker.follow(image, boxes, frame.at, read)
        if self.careful is not None:
            for s in sightings:
                if (rank := priority(s.track, self.careful.config)) is not None:
                    self.careful.offer(camera_id, s.track, rank, image, s.box)
            if not sightings:  # nothing in view: maybe a plate too small for the camera lane
                self.careful.look_wide(camera_id, image, frame.at)
        reads = tuple(PlateRead.of(s.box, s.shown, s.track.id, s.track.confirmed) for s in sightings)
        news = [s.track for s in sightings if s.news] + camera.tracker.careful_news_out_of_view()
        reports = tuple(TrackReport.of(camera_id, t) for t in news)
        return reads, reports, sum(s.read.passes for s in sightings if s.read is not None)

    def _count_careful_reads(self) -> None:
        """The careful lane's reads into their tracks (a track closed meanwhile is gone)."""
        if self.careful is None:
            return
        for read in self.careful.take_reads():
            camera = self._cameras.get(read.camera_id)
            if camera is None:
                continue
            tracker = camera.tracker
            if read.track_id is None:  # a plate a wide look found
                tracker.add_found(read.box, read.text, read.look, read.crop, read.at)
            else:
                tracker.add_careful_read(read.track_id, read.text, read.crop, self.careful.decide)

    def _forget_idle_cameras(self, now: float) -> None:
        for camera_id in [
            c for c, camera in self._cameras.items() if now - camera.last_frame > self._tracking.camera_idle_s
        ]:
            del self._cameras[camera_id]
