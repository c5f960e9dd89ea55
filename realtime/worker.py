"""The inference worker: one real OS thread that owns the models.

It loads the PersistentDetector, then loops: take every waiting frame (one batch), decode,
find plates in the whole batch with one YOLO call, read each plate, and hand the results
to the loop side through an outbox. It never emits, logs per frame or touches the
metrics itself: all of that happens on the loop side, which keeps eventlet's green
primitives out of this thread.
"""
from __future__ import annotations

import base64
import traceback
from collections import deque
from dataclasses import dataclass
from time import perf_counter
from typing import Callable

import cv2
import numpy as np

from detector import PersistentDetector, PlateRead
from detector.annotate import draw_reads
from realtime.frames import FrameError, decode
from realtime.slots import Frame, FrameSlots
from realtime.threads import LoopWaker, real_threading


@dataclass(frozen=True)
class FrameResult:
    frame: Frame
    reads: tuple[PlateRead, ...] = ()
    frame_size: tuple[int, int] = (0, 0)
    timing_ms: dict | None = None
    annotated: str | None = None  # data URL, only when the frame asked for it
    error: FrameError | None = None


class InferenceWorker:
    def __init__(self, load: Callable[[], PersistentDetector], slots: FrameSlots, waker: LoopWaker, max_batch: int):
        self._load = load
        self._slots = slots
        self._waker = waker
        self._max_batch = max_batch
        threading = real_threading()
        self._lock = threading.Lock()
        self._outbox: deque[FrameResult] = deque()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="inference-worker", daemon=True)
        self.detector: PersistentDetector | None = None
        self.load_error: str | None = None
        self.failures: list[str] = []  # worker-level errors for the loop side to log

    @property
    def ready(self) -> bool:
        return self.detector is not None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def drain(self) -> list[FrameResult]:
        with self._lock:
            out = list(self._outbox)
            self._outbox.clear()
        return out

    def _run(self) -> None:
        try:
            self.detector = self._load()
        except Exception as exc:  # reported by the loop side, which stops the server
            self.load_error = f"{type(exc).__name__}: {exc}"
            self._waker.notify()
            return
        self._waker.notify()
        while not self._stop.is_set():
            frames = self._slots.take(self._max_batch, timeout=0.5)
            if not frames:
                continue
            results = self.process(frames)
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
                results.append(FrameResult(decoded[0][0], error=FrameError("inference_failed", "the models failed on this frame")))
            else:  # find the frame that broke the batch: run them one by one
                for item in decoded:
                    results += self.process([item[0]])
        return results

    def _note_failure(self) -> None:
        with self._lock:
            self.failures.append(traceback.format_exc(limit=3))

    def _infer(self, decoded: list[tuple[Frame, np.ndarray, float]], started: float) -> list[FrameResult]:
        assert self.detector is not None
        t0 = perf_counter()
        boxes = self.detector.locate_batch([image for _, image, _ in decoded])
        detect_ms = (perf_counter() - t0) * 1000 / len(decoded)
        results = []
        for (frame, image, decode_ms), frame_boxes in zip(decoded, boxes):
            t1 = perf_counter()
            reads = tuple(PlateRead.of(box, self.detector.read(image, box)) for box in frame_boxes)
            ocr_ms = (perf_counter() - t1) * 1000
            annotated = None
            if frame.payload.annotate:
                ok, jpeg = cv2.imencode(".jpg", draw_reads(image, list(reads)), [cv2.IMWRITE_JPEG_QUALITY, 80])
                annotated = "data:image/jpeg;base64," + base64.b64encode(jpeg.tobytes()).decode() if ok else None
            timing = {"queue": round((started - frame.received) * 1000, 2), "decode": round(decode_ms, 2),
                      "detect": round(detect_ms, 2), "ocr": round(ocr_ms, 2)}
            timing["total"] = round((perf_counter() - frame.received) * 1000, 2)
            results.append(FrameResult(frame, reads, (image.shape[1], image.shape[0]), timing, annotated))
        return results
