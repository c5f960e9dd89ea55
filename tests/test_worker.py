"""The inference worker with the real models: a frame that breaks the models fails alone."""
import cv2
import numpy as np

from detector import PersistentDetector
from realtime.frames import parse_frame
from realtime.slots import Frame, FrameSlots
from realtime.threads import LoopWaker
from realtime.worker import InferenceWorker
from detector.tracking import TrackingConfig
from tests.conftest import clear_shot

POISON = (0, 0, 255)  # a frame of pure red makes the wrapped models raise


class PoisonedModels:
    """The real detector, made to raise on one marked image: no real input breaks it on demand."""

    def __init__(self, real: PersistentDetector):
        self.real = real

    def locate_batch(self, images):
        if any((image == POISON).all() for image in images):
            raise RuntimeError("the models broke on this image")
        return self.real.locate_batch(images)

    def read(self, image, box):
        return self.real.read(image, box)


def frame(camera_id: str, jpeg: bytes) -> Frame:
    return Frame(parse_frame({"camera_id": camera_id, "frame": jpeg}, 2_000_000, 10**8), sid="sid-" + camera_id)


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
