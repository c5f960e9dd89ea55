"""The inference worker with the real models: a frame that breaks the models fails alone."""
import cv2
import numpy as np
import pytest

from detector import PersistentDetector
from detector.config import DetectorConfig, Profiles
from detector.persistent import Pipeline
from detector.plate_detector import PlateDetector
from detector.tracking import TrackingConfig
from realtime.frames import parse_frame
from realtime.slots import Frame, FrameSlots
from realtime.threads import LoopWaker
from realtime.worker import InferenceWorker
from tests.conftest import clear_shot

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


def frame(camera_id: str, jpeg: bytes) -> Frame:
    return Frame(
        parse_frame({"camera_id": camera_id, "frame": jpeg}, 2_000_000, 10**8), sid="sid-" + camera_id
    )


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
