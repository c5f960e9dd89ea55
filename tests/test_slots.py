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


def test_jobs_are_bounded_and_taken_first_one_per_batch():
    slots = FrameSlots(max_jobs=2)
    slots.put(frame("a", 1))
    assert slots.put_job(frame("http", 1)) and slots.put_job(frame("http", 2))
    assert not slots.put_job(frame("http", 3))
    # the camera is not starved
    assert [f.payload.camera_id for f in slots.take(2, timeout=0)] == ["http", "a"]
    slots.put(frame("a", 2))
    assert [(f.payload.camera_id, f.payload.frame_id) for f in slots.take(8, timeout=0)] == [("a", 2)]


def test_photos_get_at_most_half_the_worker_while_cameras_wait():
    slots = FrameSlots()
    for n in range(3):
        slots.put_job(frame("http", n))
    slots.put(frame("a", 0))
    assert [f.payload.camera_id for f in slots.take(8)] == ["http", "a"]
    time.sleep(0.2)  # the photo's batch took 0.2 s: the cameras are owed as long
    slots.put(frame("a", 1))
    assert [f.payload.camera_id for f in slots.take(8)] == ["a"]
    slots.put(frame("a", 2))
    assert [f.payload.camera_id for f in slots.take(8)] == ["a"]  # still owed
    time.sleep(0.25)
    slots.put(frame("a", 3))
    assert [f.payload.camera_id for f in slots.take(8)] == ["http", "a"]
    # with no camera waiting a photo never waits
    assert [f.payload.camera_id for f in slots.take(8)] == ["http"]


def test_the_naive_references_slots_queue_every_frame_in_arrival_order():
    slots = QueuedSlots()
    for i in range(5):
        assert slots.put(frame("a", i)) is None
    slots.put(frame("b", 0))
    assert slots.waiting() == 6
    assert [f.payload.frame_id for f in slots.take(3, timeout=0)] == [0, 1, 2]
    assert slots.discard("a") == 2
