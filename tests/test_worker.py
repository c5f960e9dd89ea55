"""The inference worker with the real models: a frame that breaks the models fails alone."""
import time

import cv2
import numpy as np
import pytest

from detector import PersistentDetector
from detector.config import DetectorConfig, Profiles
from detector.persistent import Pipeline
from detector.plate_detector import PlateDetector
from detector.tracking import TrackingConfig
from realtime.careful import CarefulConfig, CarefulLane
from realtime.frames import parse_frame
from realtime.slots import Frame, FrameSlots
from realtime.threads import LoopWaker
from realtime.worker import InferenceWorker
from tests.conftest import clear_shot
from training.real_data import webcam_frame

pytestmark = pytest.mark.slow  # the shipped models

POISON = (0, 0, 255)  # a frame of pure red makes the wrapped models raise


class PoisonedPipeline:
    """A real profile's models, made to raise on one marked image: no real input breaks them on demand."""

    def __init__(self, real: Pipeline):
        self.real = real

    def locate_batch(self, images):
        if any((image == POISON).all() for image in images):
            raise RuntimeError("the models broke on this image")
        return self.real.locate_batch(images)

    def read(self, image, box):
        return self.real.read(image, box)


class PoisonedModels:
    def __init__(self, real: PersistentDetector):
        self.pipelines = {name: PoisonedPipeline(p) for name, p in real.pipelines.items()}
        self.camera, self.photo = self.pipelines["camera"], self.pipelines["photo"]


def frame(camera_id: str, jpeg: bytes, at: float | None = None) -> Frame:
    """A camera frame, sent at `at` (wall clock; now if None)."""
    payload = parse_frame({"camera_id": camera_id, "frame": jpeg}, 2_000_000, 10**8)
    return Frame(payload, sid="sid-" + camera_id, at=time.time() if at is None else at)


def test_a_frame_that_breaks_the_models_fails_alone_and_the_batch_goes_on():
    worker = InferenceWorker(lambda: None, FrameSlots(), LoopWaker(), 8, TrackingConfig())
    worker.detector = PoisonedModels(PersistentDetector())
    shots = [clear_shot(f"worker-{i}") for i in range(2)]
    poison = cv2.imencode(".png", np.full((480, 640, 3), POISON, np.uint8))[1].tobytes()
    results = worker.process([frame("a", shots[0].jpeg), frame("b", poison), frame("c", shots[1].jpeg)])
    by_camera = {r.frame.payload.camera_id: r for r in results}
    assert by_camera["b"].error.code == "inference_failed"
    assert by_camera["a"].error is None and by_camera["a"].reads[0].text == shots[0].text
    assert by_camera["c"].error is None and by_camera["c"].reads[0].text == shots[1].text
    _, failures = worker.drain()
    assert len(failures) == 1 and "broke on this image" in failures[0]


def wide_photo(jpeg_of_frame: bytes) -> bytes:
    """A frame shrunk into a 1280x960 photo: its plate is small, as in a photo of a whole street."""
    image = cv2.imdecode(np.frombuffer(jpeg_of_frame, np.uint8), cv2.IMREAD_COLOR)
    small = cv2.resize(image, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    canvas = np.full((960, 1280, 3), 110, np.uint8)
    canvas[300:300 + small.shape[0], 500:500 + small.shape[1]] = small
    return cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()


def test_single_photos_are_looked_at_in_more_detail_than_camera_frames():
    # at the camera-frame size (256) these plates are a few pixels high and misread; at photo_imgsz, read
    worker = InferenceWorker(lambda: None, FrameSlots(), LoopWaker(), 8, TrackingConfig())
    worker.detector = PersistentDetector()
    shots = [clear_shot(f"photo-{i}") for i in range(6)]
    photos = [
        Frame(parse_frame({"camera_id": "http", "frame": wide_photo(s.jpeg)}, 2_000_000, 10**8), sid=None)
        for s in shots
    ]
    camera_jpeg = wide_photo(shots[0].jpeg)
    results = worker.process([frame("cam", camera_jpeg)] + photos)  # one batch, both kinds
    assert [r.reads[0].text for r in results if r.frame.profile == "photo"] == [s.text for s in shots]
    # recogniser passes
    assert all(r.ocr_calls >= len(r.reads) for r in results if r.frame.profile == "photo")
    (camera,) = [r for r in results if r.frame.profile == "camera"]
    # the camera frame was looked at at the camera size by the camera model: the boxes of a
    # detector that knows no other size and no other model
    only_camera_size = PlateDetector(DetectorConfig(), Profiles().camera)
    image = cv2.imdecode(np.frombuffer(camera_jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert [r.bbox for r in camera.reads] == [b.bbox for b in only_camera_size.detect_batch([image])[0]]


def nudged(jpeg: bytes, dx: float) -> bytes:
    """The same picture moved by a fraction of a pixel: a webcam's next frame of a still scene."""
    return webcam_frame(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR), dx, 0.0)


@pytest.mark.parametrize("careful", [False, True])
def test_a_still_frame_keeps_the_last_boxes_and_a_change_or_still_s_looks_again(careful):
    worker = InferenceWorker(lambda: None, FrameSlots(), LoopWaker(), 8, TrackingConfig(still_s=1.0))
    worker.detector = PersistentDetector()
    if careful:  # a lane that is never started: only whether the worker leaves still frames' reads to it
        worker.careful = CarefulLane(CarefulConfig(), worker.detector.careful)
    parked, next_car = clear_shot("still-0"), clear_shot("still-1")
    image = cv2.imdecode(np.frombuffer(parked.jpeg, np.uint8), cv2.IMREAD_COLOR)
    larger = cv2.imencode(".jpg", cv2.resize(image, None, fx=1.5, fy=1.5))[1].tobytes()  # the same scene
    first, still, moved_on, resized, other, late = (
        worker.process([frame("gate", jpeg, at)])[0]
        for jpeg, at in (
            (parked.jpeg, 0.0),
            (nudged(parked.jpeg, 0.6), 0.1),
            (nudged(parked.jpeg, -0.4), 0.2),
            (larger, 0.25),  # looks the same, but the last look's boxes would not fit it
            (next_car.jpeg, 0.3),
            (nudged(next_car.jpeg, 0.5), 1.4),  # unchanged, but the last look is over still_s old
        )
    )
    assert first.reads[0].text == parked.text and not first.still and first.timing_ms["detect"] > 0
    for result in (still, moved_on):  # the same boxes, the same track, nothing detected
        assert result.still and result.timing_ms["detect"] == 0
        assert [(r.bbox, r.track_id, r.text) for r in result.reads] == [
            (r.bbox, r.track_id, r.text) for r in first.reads
        ]
        # the track is unconfirmed: without a careful lane the camera lane reads it every frame, still or not
        assert (result.ocr_calls == 0) == careful
    assert not resized.still and resized.timing_ms["detect"] > 0 and resized.frame_size == (960, 720)
    assert not other.still and other.reads[0].text == next_car.text
    assert other.reads[0].track_id != first.reads[0].track_id
    assert not late.still and late.timing_ms["detect"] > 0


def test_a_careful_read_that_comes_after_its_vehicle_left_is_still_reported():
    slots = FrameSlots()
    worker = InferenceWorker(PersistentDetector, slots, LoopWaker(), 8, TrackingConfig(), CarefulConfig())
    worker.start()
    deadline = time.monotonic() + 60
    while not (worker.ready and worker.careful) and time.monotonic() < deadline:
        time.sleep(0.1)
    shot = clear_shot("gone-0")
    empty = cv2.imencode(".jpg", np.full((480, 640, 3), 110, np.uint8))[1].tobytes()
    results = []

    def send(jpeg):
        slots.put(frame("gate", jpeg))
        while time.monotonic() < deadline:
            if done := worker.drain()[0]:
                results.extend(done)
                return
            time.sleep(0.01)

    send(shot.jpeg)  # one frame: one camera-lane read, which never confirms a track
    assert results[0].reads[0].text == shot.text and not results[0].reports
    while not any(r.reports for r in results) and time.monotonic() < deadline:
        send(empty)  # the vehicle has left; its careful read is still on its way
        time.sleep(0.1)
    (report,) = [report for r in results for report in r.reports]
    assert report.track_id == results[0].reads[0].track_id and report.text == shot.text
    assert all(not r.reads for r in results[1:]) and worker.careful.done >= 1
