"""Per-camera slots keep the newest frame only; the benchmark's naive reference keeps everything."""
import time

from bench.naive_server import QueuedSlots
from realtime.frames import FramePayload
from realtime.slots import Frame, FrameSlots


def frame(camera: str, n: int) -> Frame:
    return Frame(FramePayload(camera, b"", 1, 1, n, None, False), sid="s")


def test_newest_frame_replaces_the_waiting_one():
    slots = FrameSlots()
    assert slots.put(frame("a", 1)) is None
    older = slots.put(frame("a", 2))
    assert older.payload.frame_id == 1
    slots.put(frame("b", 1))
    assert slots.waiting() == 2
    batch = slots.take(8, timeout=0)
    assert [(f.payload.camera_id, f.payload.frame_id) for f in batch] == [("a", 2), ("b", 1)]
    assert slots.take(8, timeout=0.01) == [] and slots.waiting() == 0


def test_thousands_of_frames_never_grow_a_queue():
    slots = FrameSlots()
    dropped = sum(slots.put(frame(f"cam{i % 6}", i)) is not None for i in range(6000))
    assert slots.waiting() == 6 and dropped == 6000 - 6


def test_photos_wait_in_a_bounded_list_of_their_own_never_in_a_cameras_batch():
    slots = FrameSlots(max_jobs=2)
    slots.put(frame("a", 1))
    assert slots.put_job(frame("http", 1)) and slots.put_job(frame("http", 2))
    assert not slots.put_job(frame("http", 3))
    assert slots.waiting() == 3
    assert [f.payload.camera_id for f in slots.take(8)] == ["a"]
    assert [slots.take_job(0).payload.frame_id for _ in range(2)] == [1, 2]
    started = time.monotonic()
    assert slots.take_job(0.05) is None and time.monotonic() - started >= 0.04
    assert slots.put_job(frame("http", 4))  # room again


def test_the_naive_references_slots_queue_every_frame_in_arrival_order():
    slots = QueuedSlots()
    for i in range(5):
        assert slots.put(frame("a", i)) is None
    slots.put(frame("b", 0))
    assert slots.waiting() == 6
    assert [f.payload.frame_id for f in slots.take(3, timeout=0)] == [0, 1, 2]
    assert slots.discard("a") == 2
