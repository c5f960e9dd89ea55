"""The careful lane: vehicles read once with the photo-grade pipeline, fed back into their tracks' votes."""
from __future__ import annotations

import random
import threading
import time
from dataclasses import replace
from functools import partial

import cv2
import numpy as np
import pytest

from detector import PersistentDetector
from detector.appearance import look, sharpness, similarity
from detector.boxes import iou, median_box
from detector.fusion import fuse
from detector.plate_format import alnum
from detector.results import PlateBox
from detector.tracking import CameraTracker, TrackingConfig
from realtime.careful import (
    AGREEING,
    BOX_FRAMES,
    GONE_S,
    MAX_FUSED_PIXELS,
    MAX_WINDOWS,
    NEVER_CAREFUL,
    RETRY,
    UNCONFIRMED,
    CarefulConfig,
    CarefulLane,
    cut,
    decision,
    priority,
    quality,
    region_around,
    window_around,
)
from realtime.frames import decode
from tests.conftest import start_server, stop_server, write_config
from tests.test_events import EventClient, stream_in_order
from tests.test_fusion import plate
from tests.test_fusion import streamed as streamed_frames
from tests.test_tracking import Reader, box, frame, read, see
from training import gate_data, real_data
from training.real_data import streamed_frame


class Reads:
    """A stand-in careful pipeline that reads with `read` and finds what it is told to."""

    def __init__(self, read, found=()):
        self.read, self.found = read, list(found)

    def locate_batch(self, images):
        return [self.found for _ in images]

    def refine(self, regions, box):
        return [box for _ in regions]

    def twin(self):  # holds nothing a second thread could disturb
        return self


def test_a_valid_careful_read_decides_its_tracks_text_and_confirms_it_at_once():
    tracker = CameraTracker(TrackingConfig(confirm_reads=3))
    (first,) = see(tracker, [(box(100), 1)], 0.0, Reader("51F-128.45"))
    tracker.add_careful_read(first.track.id, read("51F-123.45"), b"careful crop")
    (after,) = see(tracker, [(box(100), 1)], 0.1, Reader("51F-128.45"))
    assert after.track.confirmed and after.shown.text == "51F-123.45" and after.news
    assert after.track.crop == b"careful crop"  # the event's picture is the crop that was read carefully
    (later,) = see(tracker, [(box(100), 1)], 0.2, Reader("51F-128.45"))
    assert not later.news  # the careful read's news is told once


def test_a_careful_read_that_comes_after_its_vehicle_left_is_news_out_of_view_once():
    tracker = CameraTracker(TrackingConfig(confirm_reads=3))
    (first,) = see(tracker, [(box(100), 1)], 0.0, Reader("51F-128.45"))
    assert see(tracker, [], 0.3, Reader("")) == [] and tracker.careful_news_out_of_view() == []  # it left
    tracker.add_careful_read(first.track.id, read("51F-123.45"))
    assert see(tracker, [], 0.4, Reader("")) == []
    (told,) = tracker.careful_news_out_of_view()
    assert told.id == first.track.id and told.text == "51F-123.45" and told.confirmed
    assert tracker.careful_news_out_of_view() == []  # told once


def test_no_count_of_camera_lane_misreads_outvotes_a_careful_read():
    # the camera lane misreads one plate the same way frame after frame: a larger group than any weight
    tracker = CameraTracker(TrackingConfig(confirm_reads=3, reread_every=1, max_reads=30))
    for i in range(10):
        (seen,) = see(tracker, [(box(100), 1)], i * 0.1, Reader("51F-128.45"))
    assert seen.track.confirmed and seen.shown.text == "51F-128.45"
    tracker.add_careful_read(seen.track.id, read("51F-123.45"))
    for i in range(10, 40):
        (seen,) = see(tracker, [(box(100), 1)], i * 0.1, Reader("51F-128.45"))
        assert seen.shown.text == "51F-123.45"
    tracker.add_careful_read(seen.track.id, read(""))  # found nothing: only the try counts
    assert seen.track.careful_reads == 2 and seen.track.text == "51F-123.45"
    tracker.add_careful_read(12345, read("30A-999.99"))  # a track closed meanwhile
    assert all(t.text != "30A-999.99" for t in tracker.tracks.values())


def test_a_far_camera_lane_read_splits_a_carefully_read_track_only_when_its_look_changed():
    tracker = CameraTracker(TrackingConfig(confirm_reads=3, reread_every=1))
    (seen,) = see(tracker, [(box(100), 1)], 0.0, Reader("51F-123.45"))
    tracker.add_careful_read(seen.track.id, read("51F-123.45"))
    (misread,) = see(tracker, [(box(100), 1)], 0.1, Reader("30A-999.99"))  # same vehicle, a wild misread
    assert misread.track.id == seen.track.id and misread.shown.text == "51F-123.45"
    (other,) = see(tracker, [(box(100), 2)], 0.2, Reader("30A-999.99"))  # another vehicle there, read
    assert other.track.id != seen.track.id and other.shown.text == "30A-999.99"


def test_unconfirmed_tracks_come_first_and_no_vehicle_is_read_over_and_over():
    config = CarefulConfig(per_track=2)
    tracker = CameraTracker(TrackingConfig(confirm_reads=2, unconfirmed_every=1))
    (new,) = see(tracker, [(box(100), 1)], 0.0, Reader("51F-123.45"))
    assert priority(new.track, config) == UNCONFIRMED
    (settled,) = see(tracker, [(box(100), 1)], 0.1, Reader("51F-123.45"))
    assert settled.track.confirmed and priority(settled.track, config) == NEVER_CAREFUL
    tracker.add_careful_read(settled.track.id, read("51F-123.45"))
    assert priority(settled.track, config) is None  # read carefully and valid: done
    (other,) = see(tracker, [(box(400, 300), 2)], 0.2, Reader(""))
    tracker.add_careful_read(other.track.id, read(""))
    assert priority(other.track, config) == RETRY  # nothing valid found: one more try
    tracker.add_careful_read(other.track.id, read(""))
    assert priority(other.track, config) is None  # per_track reached


def careful_track(config: CarefulConfig, camera_read: str = ""):
    """A new track (read once by the camera lane), and a way to add a careful read of it as the worker does
    (the lane's decision)."""
    tracker = CameraTracker(TrackingConfig(confirm_reads=3))
    (seen,) = see(tracker, [(box(100), 1)], 0.0, Reader(camera_read))
    return seen.track, lambda text, crop: tracker.add_careful_read(
        seen.track.id, text, crop, partial(decision, config=config))


def test_a_sure_careful_read_decides_at_once_and_an_unsure_one_waits_for_another_frame_to_agree():
    config = CarefulConfig(per_track=3, min_confidence=0.6, decide_at=0.7)
    track, add = careful_track(config)
    add(read("51F-999.45", conf=0.95), b"sure")
    assert track.confirmed and track.text == "51F-999.45" and track.crop == b"sure"
    assert priority(track, config) is None
    track, add = careful_track(config)
    add(read("51F-123.45", conf=0.65), b"first")
    # undecided: a second look comes before wide looks, while the vehicle is there
    assert not track.confirmed and track.careful is None and priority(track, config) == AGREEING
    add(read("51F-128.45", conf=0.69), b"second")  # another frame read otherwise: still undecided
    assert not track.confirmed and priority(track, config) == AGREEING
    add(read("51F-123.45", conf=0.62), b"third")  # agrees with the first
    assert track.confirmed and track.text == "51F-123.45" and track.crop == b"third"
    assert priority(track, config) is None


def test_an_unsure_careful_read_that_the_camera_lanes_vote_agrees_with_decides_at_once():
    config = CarefulConfig(per_track=3, min_confidence=0.6, decide_at=0.7)
    track, add = careful_track(config, camera_read="51F-123.45")
    assert track.valid and not track.confirmed
    add(read("51F-128.45", conf=0.65), b"other")  # unsure, and the camera lane read otherwise
    assert not track.confirmed and track.careful is None
    add(read("51F-123.45", conf=0.65), b"agrees")  # unsure, as the camera lane read it: another reader agrees
    assert track.confirmed and track.careful is not None and track.crop == b"agrees"


def test_two_frames_read_alike_decide_a_plate_that_each_read_alone_is_too_unsure_of():
    config = CarefulConfig(per_track=3, min_confidence=0.6, decide_at=0.7, agree_at=0.5)

    def unsure(text, conf):  # as the lane hands on a read under min_confidence: not valid
        return read(text, conf=conf, valid=False)

    track, add = careful_track(config)
    add(unsure("51F-123.45", 0.52), None)
    # another frame may agree with it: a second look comes before wide looks, while the vehicle is there
    assert not track.confirmed and priority(track, config) == AGREEING
    add(unsure("51F-123.45", 0.55), None)  # another frame, read alike
    assert track.confirmed and track.text == "51F-123.45" and priority(track, config) is None
    for first, second in [(unsure("51F-123.45", 0.45), unsure("51F-123.45", 0.55)),  # one under agree_at
                          (unsure("51F-123.45", 0.52), unsure("51F-128.45", 0.55)),  # read otherwise
                          (unsure("50281", 0.55), unsure("50281", 0.58))]:  # alike, but no plate's format
        track, add = careful_track(config)
        add(first, None)
        add(second, None)
        assert not track.confirmed and track.careful is None, (first, second)
    for nothing_to_agree_with in (unsure("51F-123.45", 0.45), unsure("50281", 0.55)):
        track, add = careful_track(config)
        add(nothing_to_agree_with, None)
        assert priority(track, config) == RETRY, nothing_to_agree_with  # one more try, when nothing waits


def test_after_its_last_careful_read_a_track_takes_its_surest_valid_one_if_any():
    config = CarefulConfig(per_track=3, min_confidence=0.6, decide_at=0.7)
    track, add = careful_track(config)
    add(read(""), None)
    assert not track.confirmed and priority(track, config) == RETRY  # nothing valid yet: last in line
    add(read("51F-128.45", conf=0.66), b"second")
    add(read("51F-123.45", conf=0.61), b"third")
    assert track.confirmed and track.text == "51F-128.45" and track.crop == b"second"  # the surest, its crop
    track, add = careful_track(config)
    for _ in range(3):
        add(read("51F-123.45", conf=0.45, valid=False), None)  # under min_confidence and agree_at
    assert not track.confirmed and track.careful is None and priority(track, config) is None  # tries spent


def test_the_lane_keeps_each_tracks_best_offer_and_reads_the_most_urgent_first():
    gate, order = threading.Event(), []

    def slow_read(region, plate_box):
        gate.wait(10)
        order.append(plate_box.confidence)
        return read("51F-123.45")

    # all due at once; one thread, which takes them in turn
    lane = CarefulLane(CarefulConfig(cpu_share=1.0, gather_s=0.0, threads=1), Reads(slow_read))
    image = np.zeros((480, 640, 3), np.uint8)
    tracker = CameraTracker(TrackingConfig())
    a, b, c = (see(tracker, [(box(100 + 200 * k, 50), k)], 0.0, Reader(""))[0].track for k in range(3))
    lane.offer("cam", a, 1, image, PlateBox(100, 50, 220, 80, 0.5))
    lane.offer("cam", a, 1, image, PlateBox(100, 50, 220, 80, 0.9))  # a better box of the same track
    lane.offer("cam", a, 1, image, PlateBox(100, 50, 220, 80, 0.6))  # a worse one: the better stays
    lane.offer("cam", b, 0, image, PlateBox(300, 50, 420, 80, 0.7))
    lane.offer("cam", c, 2, image, PlateBox(500, 50, 620, 80, 0.8))
    lane.start()
    gate.set()
    deadline = time.monotonic() + 10
    reads = []
    while len(reads) < 3 and time.monotonic() < deadline:
        reads += lane.take_reads()
        time.sleep(0.01)
    assert order == [0.7, 0.9, 0.8]  # priority 0, 1, 2; track a's best offer
    assert [r.track_id for r in reads] == [b.id, a.id, c.id] and lane.done == 3


def test_a_vehicle_that_left_the_picture_waits_behind_one_still_in_view():
    order = []

    def reading(region, plate_box):
        order.append(plate_box.confidence)
        return read("51F-123.45")

    lane = CarefulLane(CarefulConfig(cpu_share=1.0, gather_s=0.0, threads=1), Reads(reading))
    image = np.zeros((480, 640, 3), np.uint8)
    tracker = CameraTracker(TrackingConfig())
    gone, here = (see(tracker, [(box(100 + 300 * k, 50), k)], 0.0, Reader(""))[0].track for k in range(2))
    lane.offer("cam", gone, UNCONFIRMED, image, PlateBox(100, 50, 220, 80, 0.9))  # the better box
    stop = time.monotonic() + GONE_S + 0.2
    while time.monotonic() < stop:  # only `here` is still seen
        lane.offer("cam", here, UNCONFIRMED, image, PlateBox(400, 50, 520, 80, 0.5))
        time.sleep(0.05)
    lane.start()
    deadline = time.monotonic() + 10
    while len(order) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert order == [0.5, 0.9]


def test_two_threads_read_two_vehicles_at_once():
    both_reading = threading.Barrier(2, timeout=5)  # passed only when two reads are under way together

    def reading(region, plate_box):
        both_reading.wait()
        return read("51F-123.45")

    lane = CarefulLane(CarefulConfig(cpu_share=1.0, gather_s=0.0, threads=2), Reads(reading))
    a, b, reads = read_two_tracks(lane, PlateBox(100, 50, 220, 80, 0.9), PlateBox(400, 50, 520, 80, 0.8))
    assert sorted(r.track_id for r in reads) == sorted([a.id, b.id]) and lane.failed == 0
    assert all(r.text.valid for r in reads) and lane.done == 2


def test_a_twin_of_the_careful_models_is_a_copy_of_its_own_that_reads_the_same():
    original = PersistentDetector().careful
    twin = original.twin()
    assert twin.detector.model is not original.detector.model
    assert twin.reader.reader.recognizer is not original.reader.reader.recognizer
    image = cv2.resize(plate(), None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)
    plate_box = PlateBox(60, 45, 420, 135, 1.0)
    assert twin.read(image, plate_box) == original.read(image, plate_box)
    assert twin.read(image, plate_box).text == "51F-123.45"


def test_a_vehicle_is_read_from_its_sharpest_frame_offered_while_its_job_gathers():
    plate = PlateBox(300, 200, 420, 230, 0.9)
    sharp = frame((plate, 7))
    blurred = cv2.GaussianBlur(sharp, (0, 0), 1.0)
    seen: list[tuple[float, float]] = []  # (when, how sharp) of each region the lane read

    def reading(region, plate_box):
        seen.append((time.monotonic(), sharpness(region, plate_box.bbox)))
        return read("51F-123.45")

    lane = CarefulLane(CarefulConfig(cpu_share=1.0, gather_s=0.5), Reads(reading))
    (sighting,) = see(CameraTracker(TrackingConfig()), [(plate, 7)], 0.0, Reader(""))
    lane.start()
    first_offer = time.monotonic()
    lane.offer("cam", sighting.track, UNCONFIRMED, blurred, plate)
    # the sharp frame, a little less surely a plate, beats the blurred one; a blurred one after it does not
    lane.offer("cam", sighting.track, UNCONFIRMED, sharp, replace(plate, confidence=0.8))
    lane.offer("cam", sighting.track, UNCONFIRMED, blurred, plate)
    deadline = time.monotonic() + 10
    while not lane.take_reads() and time.monotonic() < deadline:
        time.sleep(0.01)
    ((read_at, how_sharp),) = seen
    assert read_at - first_offer >= 0.5  # it waited for better frames
    assert how_sharp == pytest.approx(sharpness(sharp, plate.bbox))
    assert sharpness(sharp, plate.bbox) > 2 * sharpness(blurred, plate.bbox)


def test_a_wide_look_waiting_to_be_taken_takes_a_sharper_copy_of_its_picture_only():
    plate = PlateBox(300, 200, 420, 230, 0.9)
    car = frame((plate, 7))
    blurred, blurrier = cv2.GaussianBlur(car, (0, 0), 0.7), cv2.GaussianBlur(car, (0, 0), 1.5)
    other = frame((plate, 7), (PlateBox(100, 300, 220, 330, 0.9), 8))  # one more vehicle: sharper still
    looked_at: list[np.ndarray] = []

    class Remembers(Reads):
        def locate_batch(self, images):
            looked_at.extend(images)
            return [[] for _ in images]

    lane = CarefulLane(CarefulConfig(cpu_share=1.0, wide_look_s=0.1, gather_s=0.5),
                       Remembers(lambda i, b: read("")))
    lane.look_wide("cam", blurred, 1.0)
    lane.look_wide("cam", car, 1.1)  # sharper: taken instead
    lane.look_wide("cam", blurrier, 1.2)  # blurrier: not
    lane.look_wide("cam", other, 1.3)  # another picture (a vehicle came or left): not, however sharp
    lane.start()
    deadline = time.monotonic() + 10
    while lane.wide_looks < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)
    assert len(looked_at) == 1 and looked_at[0] is car and sharpness(other) > sharpness(car)


def read_two_tracks(lane: CarefulLane, first: PlateBox, second: PlateBox):
    """Two new tracks, a box of each offered (the first more urgent), lane started: (a, b, their reads)."""
    image = np.zeros((480, 640, 3), np.uint8)
    tracker = CameraTracker(TrackingConfig())
    a, b = (see(tracker, [(box(100 + 300 * k, 50), k)], 0.0, Reader(""))[0].track for k in range(2))
    lane.offer("cam", a, 0, image, first)
    lane.offer("cam", b, 1, image, second)
    lane.start()
    deadline, reads = time.monotonic() + 10, []
    while len(reads) < 2 and time.monotonic() < deadline:
        reads += lane.take_reads()
        time.sleep(0.01)
    return a, b, reads


def test_a_read_the_models_break_on_spends_the_try_and_the_lane_goes_on():
    def breaking_read(region, plate_box):
        if plate_box.confidence < 0.5:
            raise RuntimeError("the models broke on this region")
        return read("51F-123.45")

    lane = CarefulLane(CarefulConfig(cpu_share=1.0), Reads(breaking_read))
    a, b, reads = read_two_tracks(lane, PlateBox(100, 50, 220, 80, 0.3), PlateBox(400, 50, 520, 80, 0.9))
    assert [(r.track_id, r.text.text) for r in reads] == [(a.id, ""), (b.id, "51F-123.45")]
    assert lane.failed == 1 and lane.done == 2


def test_a_tracks_box_is_found_again_before_it_is_read_and_read_as_given_where_that_breaks():
    refined = PlateBox(90, 45, 230, 85, 0.95)

    class Refines(Reads):
        def refine(self, regions, box):
            if box.confidence < 0.5:
                raise RuntimeError("the detector broke on this region")
            return [refined for _ in regions]

    seen = []
    lane = CarefulLane(
        CarefulConfig(cpu_share=1.0), Refines(lambda region, b: seen.append(b) or read("51F-123.45"))
    )
    _, _, reads = read_two_tracks(lane, PlateBox(400, 250, 520, 280, 0.9), PlateBox(400, 250, 520, 280, 0.3))
    # the region is cut around the box with MARGIN on each side: the box sits at (120, 30) in it
    assert seen == [refined, PlateBox(120, 30, 240, 60, 0.3)]
    assert all(r.text.valid and r.crop for r in reads) and lane.failed == 1 and lane.done == 2


def test_the_median_of_boxes_of_one_plate_is_taken_side_by_side():
    boxes = [PlateBox(12, 10, 50, 20, 0.6), PlateBox(10, 11, 51, 20, 0.9), PlateBox(11, 10, 50, 22, 0.7)]
    assert median_box(boxes) == PlateBox(11, 10, 50, 20, 0.9)  # the surest one's confidence
    assert median_box(boxes[:1]) == boxes[0]


def test_a_careful_read_is_of_the_median_of_the_boxes_found_in_the_tracks_recent_frames():
    # six frames of one still vehicle, each of its own grey level: the stand-in detector's box depends on it
    found = {0: (12, 10, 50, 20), 1: (0, 0, 5, 5), 2: (10, 11, 51, 20), 3: (280, 60, 330, 80),
             4: (280, 60, 330, 80), 5: (11, 10, 50, 22)}
    refined, read_as = [], []

    class Jittery(Reads):
        def refine(self, regions, plate_box):
            ks = [(int(region[0, 0, 0]) - 20) // 10 for region in regions]
            refined.append(ks)  # one detector call
            return [PlateBox(*found[k], 0.8) for k in ks]

    lane = CarefulLane(CarefulConfig(cpu_share=1.0, gather_s=0.0),
                       Jittery(lambda region, b: read_as.append(b) or read("51F-123.45")))
    frames = [np.full((480, 640, 3), 20 + 10 * k, np.uint8) for k in range(6)]
    read_one_track(lane, [(f, PlateBox(100, 100, 220, 130, 0.9)) for f in frames])
    # the job is the first offer (all alike); BOX_FRAMES - 1 of the most recent others are looked at too
    assert refined == [[0, 2, 3, 4, 5]] and BOX_FRAMES == 5
    # frames 3 and 4 found the box elsewhere (the vehicle moved): the median of the job's, 2's and 5's
    assert read_as == [PlateBox(11, 10, 50, 20, 0.8)]


def test_frames_where_the_careful_detector_finds_no_plate_count_not_in_the_median():
    # the stand-in detector finds a box in a frame by its grey level, none in the frames of level 30 and 40;
    # its boxes lie over the camera lane's (100, 30, 220, 60 in the region), so that box would vote in the
    # median were it put in for a frame where nothing was found
    found = {0: (104, 32, 224, 62), 1: None, 2: (102, 33, 222, 61), 3: (103, 31, 223, 63), 4: None}
    read_as = []

    class Blind(Reads):
        def refine(self, regions, plate_box):
            ks = [(int(region[0, 0, 0]) - 20) // 10 for region in regions]
            return [None if found[k] is None else PlateBox(*found[k], 0.8) for k in ks]

    def lane():
        return CarefulLane(CarefulConfig(cpu_share=1.0, gather_s=0.0),
                           Blind(lambda region, b: read_as.append(b) or read("51F-123.45")))

    frames = [np.full((480, 640, 3), 20 + 10 * k, np.uint8) for k in range(5)]
    camera = PlateBox(100, 100, 220, 130, 0.9)
    read_one_track(lane(), [(frames[k], camera) for k in range(4)])
    # the median of the job's box (frame 0) and frames 2 and 3's; frame 1, where nothing was found, left out
    # (with the camera lane's box in its place: 102, 32, 222, 62)
    assert read_as == [PlateBox(103, 32, 223, 62, 0.8)]
    # nothing found in the job's frame: the camera lane's box, in the region's pixels, is read
    read_one_track(lane(), [(frames[4], camera)])
    assert read_as[1:] == [PlateBox(100, 30, 220, 60, 0.9)]


def test_a_careful_read_under_min_confidence_decides_nothing_and_the_track_may_try_again():
    def unsure_read(region, plate_box):
        return read("51F-123.45", conf=0.3)  # a valid plate, read unsure

    lane = CarefulLane(CarefulConfig(cpu_share=1.0, min_confidence=0.4), Reads(unsure_read))
    image = np.zeros((480, 640, 3), np.uint8)
    tracker = CameraTracker(TrackingConfig())
    track = see(tracker, [(box(100), 1)], 0.0, Reader(""))[0].track
    lane.offer("cam", track, 0, image, PlateBox(100, 100, 220, 130, 0.9))
    lane.start()
    deadline, reads = time.monotonic() + 10, []
    while not reads and time.monotonic() < deadline:
        reads += lane.take_reads()
        time.sleep(0.01)
    (unsure,) = reads
    assert unsure.text.text == "51F-123.45" and not unsure.text.valid and unsure.crop is None
    tracker.add_careful_read(track.id, unsure.text)
    assert not track.confirmed and track.careful is None
    assert priority(track, lane.config) == RETRY  # found nothing sure: one more try


def read_one_track(lane: CarefulLane, offers: list[tuple[np.ndarray, PlateBox]]) -> list:
    """One new track, each (frame, box) offered in turn, the lane started: its reads."""
    track = see(CameraTracker(TrackingConfig()), [(box(10, 20), 1)], 0.0, Reader(""))[0].track
    for image, plate_box in offers:
        lane.offer("cam", track, UNCONFIRMED, image, plate_box)
    lane.start()
    deadline, reads = time.monotonic() + 10, []
    while not reads and time.monotonic() < deadline:
        reads += lane.take_reads()
        time.sleep(0.01)
    return reads


def test_a_job_is_a_copy_of_the_region_around_its_box():
    image = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    plate, regions = PlateBox(10, 20, 130, 50, 0.9), []
    lane = CarefulLane(CarefulConfig(cpu_share=1.0, gather_s=0.0, fuse_frames=1),
                       Reads(lambda region, b: regions.append((region, b)) or read("51F-123.45")))
    expected = image[20:50, 10:130].copy()
    lane.offer("cam", see(CameraTracker(TrackingConfig()), [(box(10, 20), 1)], 0.0, Reader(""))[0].track,
               UNCONFIRMED, image, plate)
    image[:] = 0  # a copy: the frame can go
    lane.start()
    deadline = time.monotonic() + 10
    while not regions and time.monotonic() < deadline:
        time.sleep(0.01)
    ((region, b),) = regions
    assert np.array_equal(region[b.y1:b.y2, b.x1:b.x2], expected)
    # the box's own width and height on each side (MARGIN), clipped at the frame's edge
    assert region.shape[:2] == (20 + 30 + 30, 10 + 120 + 120)


def small_plate_frames(count: int) -> tuple[list[np.ndarray], PlateBox]:
    """count webcam frames of a still scene with a small plate (as the real replay streams it), its box."""
    scene = np.full((240, 320, 3), 90, np.uint8)
    scene[100:130, 100:220] = plate()[15:45, 20:140]
    moved = streamed_frames(scene, count)[0]
    return moved, PlateBox(100, 100, 220, 130, 0.9)


def test_a_vehicle_is_read_from_its_recent_frames_fused_into_one_picture():
    frames, plate_box = small_plate_frames(8)
    read_from = []
    lane = CarefulLane(CarefulConfig(cpu_share=1.0, gather_s=0.0),
                       Reads(lambda region, b: read_from.append(region) or read("51F-123.45")))
    (careful,) = read_one_track(lane, [(f, plate_box) for f in frames])
    (region,) = read_from
    best = max(range(8), key=lambda k: quality(frames[k], plate_box))  # the job: the best offer
    regions = [cut(f, (0, 70, 320, 160)) for f in frames]  # MARGIN around the first box, clipped
    assert np.array_equal(region, fuse(regions[best], regions))
    assert sharpness(region) > sharpness(regions[best])  # not the best frame alone (tests/test_fusion.py)
    assert lane.fused == 1 and careful.text.valid and careful.crop


def test_frames_of_another_place_in_the_picture_are_not_fused_and_one_frame_alone_is_read_as_it_is():
    frames, plate_box = small_plate_frames(3)
    seen = []
    # the vehicle drove on: its plate 100 px lower, off the window its first frames were cut at
    drove_on, moved_off = np.roll(frames[2], 100, axis=0), replace(plate_box, y1=200, y2=230, confidence=1.0)
    lane = CarefulLane(CarefulConfig(cpu_share=1.0, gather_s=0.0),
                       Reads(lambda region, b: seen.append(region) or read("51F-123.45")))
    reads = read_one_track(lane, [(frames[0], plate_box), (frames[1], plate_box), (drove_on, moved_off)])
    assert len(reads) == 1 and lane.fused == 0  # the last window holds one frame: read alone, as cut
    assert np.array_equal(seen[0], cut(drove_on, window_around(drove_on.shape, moved_off)))
    seen.clear()
    lane = CarefulLane(CarefulConfig(cpu_share=1.0, gather_s=0.0, fuse_frames=1),
                       Reads(lambda region, b: seen.append(region) or read("")))
    best_first = sorted(frames, key=lambda f: -quality(f, plate_box))  # later, worse frames are kept too
    read_one_track(lane, [(f, plate_box) for f in best_first])
    best = best_first[0]
    assert lane.fused == 0 and np.array_equal(seen[0], cut(best, (0, 70, 320, 160)))  # fuse_frames 1: alone


def test_a_fusion_that_breaks_is_counted_and_the_best_frame_is_read_alone(monkeypatch):
    def breaks(reference, others):
        raise RuntimeError("fusion broke on these frames")

    monkeypatch.setattr("realtime.careful.fuse", breaks)  # a fault put in: no real frames break it today
    frames, plate_box = small_plate_frames(4)
    seen = []
    lane = CarefulLane(CarefulConfig(cpu_share=1.0, gather_s=0.0),
                       Reads(lambda region, b: seen.append(region) or read("51F-123.45")))
    (careful,) = read_one_track(lane, [(f, plate_box) for f in frames])
    best = max(frames, key=lambda f: quality(f, plate_box))
    assert np.array_equal(seen[0], cut(best, (0, 70, 320, 160))) and careful.text.valid
    assert lane.failed == 1 and lane.fused == 0 and lane.done == 1


def test_the_frames_kept_for_fusion_are_bounded_in_tracks_and_in_size():
    lane = CarefulLane(CarefulConfig(), Reads(lambda r, b: read("")))  # not started: offers pile up
    tracker = CameraTracker(TrackingConfig())
    image = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    tracks = [see(tracker, [(box(10 * k, 20), k)], 0.0, Reader(""))[0].track for k in range(3 * MAX_WINDOWS)]

    def offer_each(tracks, times):
        for _ in range(times):
            for k, track in enumerate(tracks):
                lane.offer(f"cam{k % 6}", track, UNCONFIRMED, image, PlateBox(10, 20, 130, 50, 0.9))
            lane.offer("big", tracks[0], UNCONFIRMED, image, PlateBox(100, 100, 400, 300, 0.9))  # a close-up

    offer_each(tracks[:MAX_WINDOWS - 1], 2 * lane.config.fuse_frames)
    windows = lane._windows
    assert [len(w.frames) for w in windows.values()] == [lane.config.fuse_frames] * (MAX_WINDOWS - 1) + [1]
    offer_each(tracks, 1)  # more tracks than windows: the least recently offered are forgotten
    assert len(windows) == MAX_WINDOWS and ("cam0", tracks[0].id) not in windows
    assert len(windows["big", tracks[0].id].frames) == 1  # too large to be worth fusing: the latest alone


def test_a_plate_a_wide_look_found_is_held_by_its_look_while_the_camera_lane_misses_it():
    tracker = CameraTracker(TrackingConfig(expire_s=1.0))
    plate = box(300, 200)
    image = frame((plate, 7))
    tracker.add_found(plate, read("51F-123.45"), look(image, plate.bbox), b"jpeg", 0.0)
    (held,) = tracker.follow(image, [], 0.1, Reader("never called"))  # the camera lane sees no plate
    assert held.track.confirmed and held.shown.text == "51F-123.45" and held.box == plate and held.news
    assert held.read is None and held.track.crop == b"jpeg"
    for now in (0.6, 1.1, 1.6):  # held past expire_s: it is still there
        (still,) = tracker.follow(image, [], now, Reader("never called"))
        assert not still.news and still.track.id == held.track.id
    assert tracker.follow(frame((plate, 8)), [], 1.7, Reader("")) == []  # another picture there: not sighted
    assert tracker.follow(image, [], 2.7, Reader("")) == [] and not tracker.tracks  # gone: closed
    # a plate found where the camera lane has a track already is that track's careful read
    (seen,) = see(tracker, [(plate, 7)], 3.0, Reader("51F-128.45"))
    tracker.add_found(plate, read("51F-123.45"), look(image, plate.bbox), None, 3.0)
    assert len(tracker.tracks) == 1 and seen.track.text == "51F-123.45" and seen.track.careful_reads == 1


def test_a_wide_look_is_taken_when_the_picture_changes_and_finds_only_valid_plates():
    plates = [PlateBox(300, 200, 420, 230, 0.9), PlateBox(10, 10, 40, 20, 0.5)]
    texts = {plates[0].bbox: "51F-123.45", plates[1].bbox: "x"}
    lane = CarefulLane(CarefulConfig(cpu_share=1.0, wide_look_s=0.2),
                       Reads(lambda image, b: read(texts[b.bbox], valid=texts[b.bbox] != "x"), plates))
    empty, car = frame(), frame((plates[0], 7))
    lane.look_wide("cam", empty, 1.0)
    lane.start()
    deadline = time.monotonic() + 10
    while lane.wide_looks < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)
    lane.look_wide("cam", empty, 2.0)  # the same picture: not looked at again
    time.sleep(0.1)
    assert lane.wide_looks == 1
    lane.look_wide("cam", car, 3.0)  # a vehicle came
    while lane.wide_looks < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)
    found = lane.take_reads()
    # (the stand-in finds the same plates in every picture) only the valid reads, with where, how and when
    assert [(f.track_id, f.text.text, f.box, f.at) for f in found] == [
        (None, "51F-123.45", plates[0], t) for t in (1.0, 3.0)
    ]
    assert similarity(found[-1].look, look(car, plates[0].bbox)) > 0.99 and found[-1].crop


def test_the_empty_gate_is_not_looked_at_again_between_vehicles():
    plate = PlateBox(300, 200, 420, 230, 0.9)

    class PlatesOnVehicles(Reads):  # finds the plate only where a vehicle is drawn
        def locate_batch(self, images):
            return [[plate] if (image != 100).any() else [] for image in images]

    lane = CarefulLane(
        CarefulConfig(cpu_share=1.0, wide_look_s=0.01), PlatesOnVehicles(lambda i, b: read("51F-123.45"))
    )
    lane.start()
    deadline = time.monotonic() + 10

    def look_at(picture, looks):
        lane.look_wide("cam", picture, 0.0)
        while lane.wide_looks < looks and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)

    empty = frame()
    look_at(empty, 1)  # nothing there: this is what the gate looks like empty
    look_at(frame((plate, 7)), 2)  # a vehicle came
    look_at(empty, 2)  # it left: the picture changed, but to the empty gate
    look_at(frame((plate, 8)), 3)  # the next vehicle
    assert lane.wide_looks == 3 and len(lane.take_reads()) == 2


def sure(ocr_confidence: float) -> bool:
    """A careful read that decides its track on its own (careful.decide_at)."""
    return ocr_confidence >= CarefulConfig().decide_at


def streamed(path) -> tuple[bytes, np.ndarray]:
    """A photo as a camera streams it (JPEG, quality 90), and as the server decodes that."""
    jpeg = cv2.imencode(".jpg", cv2.imread(str(path)), [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
    return jpeg, decode(jpeg)


def real_photos_only_the_careful_profile_finds(count: int) -> list[tuple[bytes, str]]:
    """Real photos (vn-real's evaluation split) in which the camera profile finds no plate and the careful
    profile finds and surely reads the caption's."""
    if not real_data.REAL_DIR.exists():
        pytest.skip("../shared/data/vn-real is not here")
    detector, found = PersistentDetector(), []
    for photo in real_data.split(real_data.load())[1]:
        jpeg, image = streamed(photo.path)
        if detector.camera.locate_batch([image])[0]:
            continue
        sure_reads = [alnum(r.text) for r in detector.careful.detect(image) if sure(r.ocr_confidence)]
        if alnum(photo.text) in sure_reads:
            found.append((jpeg, alnum(photo.text)))
        if len(found) >= count:
            return found
    raise AssertionError(f"only {len(found)} such photos")


def region_refined(detector, image: np.ndarray, b: PlateBox) -> tuple[np.ndarray, PlateBox]:
    """A camera-lane box as the careful lane reads it: the region around it, the box found again there."""
    region, moved = region_around(image, b)
    return region, detector.careful.refine([region], moved)[0]


def misread_gate_photos(count: int) -> list[tuple[bytes, str]]:
    """Real gate frames (vn-gate's evaluation split) whose plate the camera lane finds but misreads,
    and the photo-grade read of that same box surely reads right."""
    if not gate_data.GATE_DIR.exists():
        pytest.skip("../shared/data/vn-gate is not here")
    detector, found = PersistentDetector(), []
    for shot in gate_data.split(gate_data.load_frames())[1]:
        jpeg, image = streamed(shot.path)
        for b in detector.camera.locate_batch([image])[0]:
            careful = detector.careful.read(*region_refined(detector, image, b))
            if iou(b.bbox, shot.box) >= 0.5 and alnum(detector.camera.read(image, b).text) != shot.text \
                    and alnum(careful.text) == shot.text and sure(careful.confidence):
                found.append((jpeg, shot.text))
        if len(found) >= count:
            return found
    raise AssertionError(f"only {len(found)} such frames")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("careful")
    srv = start_server(log_dir, config=write_config(log_dir))
    yield srv
    stop_server(srv)


@pytest.mark.slow
@pytest.mark.parametrize("photos", [misread_gate_photos, real_photos_only_the_careful_profile_finds])
def test_a_real_plate_the_camera_lane_misreads_or_misses_ends_with_the_careful_reads_text(server, photos):
    for k, (jpeg, truth) in enumerate(photos(2)):
        jpegs = [jpeg] * 20  # held 2 s
        client = EventClient(server.url)
        try:
            stream_in_order(client, f"real-{photos.__name__[:4]}-{k}", jpegs, fps=10)
            time.sleep(1.0)
        finally:
            client.close()
        results = sorted(client.results, key=lambda r: r["frame_id"])
        assert len(results) >= 15
        last = [alnum(d["text"]) for d in results[-1]["detections"]]
        assert truth in last, (truth, [[d["text"] for d in r["detections"]] for r in results])
        assert truth in [alnum(e["text"]) for e in client.events], (truth, client.events)
    careful = server.health().json()["careful"]
    assert careful["reads"] >= 2 and careful["failed"] == 0


@pytest.fixture(scope="module")
def agreeing_server(tmp_path_factory):
    """A server whose careful reads never decide alone (careful.decide_at 1): a second one must agree."""
    log_dir = tmp_path_factory.mktemp("careful-agreeing")
    srv = start_server(log_dir, config=write_config(log_dir, careful={"decide_at": 1.0, "per_track": 2}))
    yield srv
    stop_server(srv)


@pytest.mark.slow
def test_the_server_decides_a_vehicle_by_the_lanes_rule_an_unsure_read_waits_for_a_second(agreeing_server):
    """The worker hands the lane's decision rule to the tracker: under decide_at, the vehicle's first careful
    read decides nothing, its second (of a later frame, read the same) agrees and decides."""
    detector = PersistentDetector()
    one_plate = [(j, t) for j, t in misread_gate_photos(3)
                 if len(detector.camera.locate_batch([decode(j)])[0]) == 1]
    assert one_plate, "none of the misread gate frames shows the camera lane one plate"
    jpeg, truth = one_plate[0]
    client = EventClient(agreeing_server.url)
    try:
        stream_in_order(client, "agreeing-0", [jpeg] * 30, fps=10)  # held 3 s
        time.sleep(1.0)
    finally:
        client.close()
    assert [alnum(e["text"]) for e in client.events] == [truth], client.events
    careful = agreeing_server.health().json()["careful"]
    assert careful["reads"] == 2 and careful["failed"] == 0, careful  # one read alone decided nothing


def small_real_plate() -> np.ndarray:
    """A real photo (vn-real's evaluation split) whose plate the camera profile finds, small enough for the
    careful lane to fuse its frames."""
    if not real_data.REAL_DIR.exists():
        pytest.skip("../shared/data/vn-real is not here")
    detector = PersistentDetector()
    for photo in real_data.split(real_data.load())[1]:
        _, image = streamed(photo.path)
        boxes = detector.camera.locate_batch([image])[0]
        if len(boxes) == 1:
            x1, y1, x2, y2 = window_around(image.shape, boxes[0])
            if (x2 - x1) * (y2 - y1) <= MAX_FUSED_PIXELS:
                return cv2.imread(str(photo.path))
    raise AssertionError("no vn-real photo with one small plate")


@pytest.mark.slow
def test_the_server_reads_a_small_plate_from_its_frames_fused(server):
    """A still vehicle streamed as a webcam streams it (each frame moved by a fraction of a pixel): its
    careful read is of its frames fused, and every frame still gets its result."""
    image = small_real_plate()
    rng = random.Random(0)
    jpegs = [streamed_frame(image, rng) for _ in range(20)]  # held 2 s
    before = server.health().json()["careful"]
    client = EventClient(server.url)
    try:
        stream_in_order(client, "fused-0", jpegs, fps=10)
        time.sleep(1.0)
    finally:
        client.close()
    careful = server.health().json()["careful"]
    assert len(client.results) == len(jpegs)
    assert careful["fused"] > before["fused"] and careful["failed"] == before["failed"], careful
