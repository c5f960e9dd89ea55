"""Per-camera tracks and voted reads: the tracker's own logic, with scripted reads instead of the reader."""
import random

import cv2
import numpy as np

from detector.appearance import look, similarity
from detector.results import PlateBox, PlateText
from detector.tracking import CameraTracker, Read, TrackingConfig, text_distance, vote
from training.synth import gate_visits, plate_video


def box(x, y=100, w=120, h=30):
    return PlateBox(x, y, x + w, y + h, 0.9)


def read(text, conf=0.9, valid=None):
    return PlateText(text, text, conf, bool(text) if valid is None else valid, 1)


def frame(*plates: tuple[PlateBox, int]) -> np.ndarray:
    """A grey frame with each plate drawn as a picture of its own (seeded noise) that moves with its box."""
    image = np.full((480, 640, 3), 100, np.uint8)
    for b, seed in plates:
        image[b.y1 : b.y2, b.x1 : b.x2] = np.random.default_rng(seed).integers(
            0, 255, (b.y2 - b.y1, b.x2 - b.x1, 3)
        )
    return image


class Reader:
    """Scripted reads, one per call, the last one repeated; counts the calls."""

    def __init__(self, *texts):
        self.texts, self.calls = list(texts), 0

    def __call__(self, _box) -> PlateText:
        self.calls += 1
        return read(self.texts.pop(0) if len(self.texts) > 1 else self.texts[0])


def see(tracker, plates, now, reader):
    """The sightings of one frame of `plates` ((box, picture seed) pairs)."""
    return tracker.follow(frame(*plates), [b for b, _ in plates], now, reader)


def test_text_distance_counts_changed_missing_and_extra_characters_only():
    assert text_distance("51F-123.45", "51F12345") == 0
    assert text_distance("51F-123.45", "51F-128.45") == 1
    assert text_distance("51F-123.45", "51F-23.45") == 1
    assert text_distance("51F-123.45", "30A-999.99") == 8
    assert text_distance("", "29A1234") == 7


def test_vote_groups_near_identical_reads_and_takes_the_most_confident():
    reads = [Read("51F-123.45", 0.8, True), Read("51F-123.46", 0.95, True), Read("51F-123.45", 0.9, True),
             Read("30A-999.99", 0.99, True)]
    winner, agreeing = vote(reads)
    assert (winner.text, winner.confidence, agreeing) == ("51F-123.45", 0.9, 2)
    # invalid texts only count when nothing valid was read
    assert vote([Read("ABC", 0.99, False), Read("51F-123.45", 0.5, True)])[0].text == "51F-123.45"
    assert vote([Read("ABC", 0.99, False)])[0].text == "ABC"
    assert vote([]) == (None, 0)


def test_an_even_split_keeps_the_text_already_shown():
    reads = [Read("51F-123.45", 0.8, True), Read("51F-123.46", 0.95, True)] * 3
    assert vote(reads, prefer="51F-123.45")[0].text == "51F-123.45"
    assert vote(reads, prefer="51F-123.46")[0].text == "51F-123.46"


def test_boxes_keep_their_track_while_moving_and_new_plates_get_new_ids():
    tracker = CameraTracker(TrackingConfig())
    ids = []
    for i in range(20):
        (seen,) = see(tracker, [(box(100 + 6 * i), 1)], i * 0.1, Reader("51F-123.45"))
        ids.append(seen.track.id)
    assert len(set(ids)) == 1
    a, b = see(tracker, [(box(220), 1), (box(400, 300), 2)], 2.0, Reader("51F-123.45"))
    assert a.track.id == ids[0] and b.track.id != a.track.id


def test_tracks_expire_when_unseen():
    tracker = CameraTracker(TrackingConfig(expire_s=1.0))
    first, again, later = (
        see(tracker, [(box(100), 1)], t, Reader("29A-1234"))[0].track.id for t in (0.0, 0.5, 5.0)
    )
    assert first == again != later


def test_confirmation_needs_agreeing_reads_then_text_holds_against_misreads():
    tracker = CameraTracker(TrackingConfig(confirm_reads=3, reread_every=5))
    texts = ["51F-123.45", "51F-128.45", "51F-123.45", "51F-123.45", "57F-123.45", "31F-123.46", "51F-123.45"]
    shown = []
    for i, text in enumerate(texts):
        # read every frame
        tracker.tracks and setattr(next(iter(tracker.tracks.values())), "frames_since_read", 5)
        (seen,) = see(tracker, [(box(100 + i), 1)], i * 0.1, Reader(text))
        shown.append((seen.shown.text, seen.track.confirmed, seen.track.id))
    assert not shown[1][1]  # two reads never confirm
    confirmed_at = next(i for i, (_, c, _) in enumerate(shown) if c)
    assert all(text == "51F-123.45" for text, _, _ in shown[confirmed_at:])
    assert len({tid for _, _, tid in shown}) == 1  # misreads of one or two characters are not another vehicle
    assert not tracker.needs_read(seen.track)  # confirmed and just read


def test_confirmed_track_is_reread_only_now_and_then_and_reports_when_read():
    tracker = CameraTracker(TrackingConfig(confirm_reads=2, reread_every=4))
    reader, news = Reader("29A-1234"), 0
    for i in range(40):
        (seen,) = see(tracker, [(box(100), 1)], i * 0.1, reader)
        news += seen.news
    assert seen.track.confirmed and reader.calls <= 2 + 40 // 4
    assert news == reader.calls - 1  # a confirmed track has news each time it is read, never in between


def test_an_unconfirmed_track_is_read_every_unconfirmed_every_frames_from_its_first():
    tracker = CameraTracker(TrackingConfig(confirm_reads=3, unconfirmed_every=3))
    reader = Reader("51F-123.45", "", "")  # nothing valid after the first: it stays unconfirmed
    reads = [see(tracker, [(box(100), 1)], i * 0.1, reader)[0].read is not None for i in range(7)]
    assert reads == [True, False, False, True, False, False, True]


def test_a_still_frame_keeps_its_tracks_alive_and_reads_nothing():
    tracker = CameraTracker(TrackingConfig(confirm_reads=3, expire_s=0.5))
    reader = Reader("51F-123.45")
    (first,) = see(tracker, [(box(100), 1)], 0.0, reader)
    stills = [see(tracker, [(box(100), 1)], 0.3 * i, None)[0] for i in range(1, 6)]  # 1.5 s, past expire_s
    assert reader.calls == 1 and all(s.read is None for s in stills)
    assert {s.track.id for s in stills} == {first.track.id} and stills[-1].shown.text == "51F-123.45"
    (looked_at,) = see(tracker, [(box(100), 1)], 1.6, reader)
    assert looked_at.track.id == first.track.id and looked_at.read is not None  # due a read since


def test_a_still_frames_kept_box_keeps_its_track_while_the_vehicle_creeps_under_it():
    # a still frame keeps the last look's boxes; a vehicle creeping a few pixels a frame moves its
    # picture under the kept box, but the frame is still the picture the look saw: no new vehicle there
    tracker = CameraTracker(TrackingConfig(confirm_reads=3))
    (first,) = see(tracker, [(box(100), 1)], 0.0, Reader("51F-123.45"))
    kept = box(100)
    stills = [tracker.follow(frame((box(100 + 3 * i), 1)), [kept], 0.1 * i, None)[0] for i in range(1, 6)]
    assert {s.track.id for s in stills} == {first.track.id}
    assert all(s.shown.text == "51F-123.45" for s in stills)


def test_cameras_do_not_share_track_state():
    a, b = CameraTracker(TrackingConfig()), CameraTracker(TrackingConfig())
    (ta,) = see(a, [(box(100), 1)], 0, Reader("51F-123.45"))
    assert b.tracks == {} and ta.track.reads


def test_a_readable_new_vehicle_at_the_same_spot_gets_its_own_track_on_its_first_frame():
    tracker = CameraTracker(TrackingConfig(confirm_reads=2))
    for i in range(12):
        (parked,) = see(tracker, [(box(100 + i % 2), 1)], i * 0.1, Reader("51F-123.45"))
    assert parked.track.confirmed
    (nxt,) = see(tracker, [(box(101), 2)], 1.2, Reader("30A-999.99"))
    assert nxt.track.id != parked.track.id and nxt.shown.text == "30A-999.99" and not nxt.track.confirmed
    assert not nxt.news  # its plate event waits for its own agreeing reads


def test_a_frame_that_looks_unlike_the_vehicle_once_does_not_split_it_twice_in_a_row_does():
    tracker = CameraTracker(TrackingConfig(confirm_reads=2))
    for i in range(12):
        (parked,) = see(tracker, [(box(100), 1)], i * 0.1, Reader("51F-123.45"))
    # a hand over the plate for one frame: unreadable, looks nothing like it; the car is still there
    (covered,) = see(tracker, [(box(100), 7)], 1.2, Reader(""))
    (back,) = see(tracker, [(box(100), 1)], 1.3, Reader("51F-123.45"))
    assert covered.track.id == back.track.id == parked.track.id and covered.shown.text == "51F-123.45"
    # an unreadable new vehicle: the old text is shown on its first frame at most
    shown = [see(tracker, [(box(100), 8)], 1.4 + i * 0.1, Reader(""))[0] for i in range(5)]
    assert shown[1].track.id != parked.track.id and {s.shown.text for s in shown[1:]} == {""}


def test_a_settled_track_that_reads_a_far_valid_plate_is_another_vehicle_even_if_it_looks_alike():
    tracker = CameraTracker(TrackingConfig(confirm_reads=2, reread_every=3, unconfirmed_every=1))
    # read on frames 0 and 1 (confirmed), then every third frame: 4, 7; the new track of 7 on 8 too
    reader = Reader("51F-123.45", "51F-123.45", "51F-128.46", "30A-999.99")
    sightings = [see(tracker, [(box(100), 1)], i * 0.1, reader)[0] for i in range(9)]
    ids = [s.track.id for s in sightings]
    assert reader.calls == 5
    assert len(set(ids[:7])) == 1 and sightings[4].shown.text == "51F-123.45"  # two characters off: a misread
    assert ids[7] != ids[0] and sightings[7].shown.text == "30A-999.99"  # the re-read found another plate
    assert ids[0] not in tracker.tracks and ids[8] == ids[7]


def test_a_somewhat_changed_look_is_read_again_at_once_on_a_settled_track():
    tracker = CameraTracker(TrackingConfig(confirm_reads=2, reread_every=100))
    for i in range(5):
        see(tracker, [(box(100), 1)], i * 0.1, Reader("51F-123.45"))
    image = frame((box(100), 1))
    image[100:130, 100:220] = cv2.GaussianBlur(image[100:130, 100:220], (0, 0), 3)  # the same plate, blurred
    reader = Reader("51F-123.45")
    (blurred,) = tracker.follow(image, [box(100)], 0.5, reader)
    likeness = similarity(look(frame((box(100), 1)), box(100).bbox), look(image, box(100).bbox))
    assert 0.55 <= likeness < 0.8, likeness  # the case under test: between new_look and same_look
    assert reader.calls == 1 and blurred.read is not None and blurred.news


def test_a_track_keeps_the_crop_of_its_most_confident_read_of_its_text():
    tracker = CameraTracker(TrackingConfig(unconfirmed_every=1))
    for i, conf in enumerate((0.5, 0.9, 0.7)):
        (seen,) = see(tracker, [(box(100), 1)], i * 0.1, lambda _b, c=conf: read("51F-123.45", c))
    crop = cv2.imdecode(np.frombuffer(seen.track.crop, np.uint8), cv2.IMREAD_COLOR)
    assert crop.shape[:2] == (30, 120) and seen.track.crop_confidence == 0.9


def test_a_plate_looks_like_itself_moving_and_unlike_the_next_vehicle_at_the_same_spot():
    scenes = plate_video(random.Random("look"), 10, step=3.0)
    looks = [look(sc.image, sc.plates[0].box) for sc in scenes]
    assert min(similarity(looks[0], later) for later in looks[1:]) >= 0.8
    # vehicles in turn at one spot: each is read at once (below same_look), most look wholly new (below
    # new_look)
    queue = gate_visits(random.Random("look-queue"), list(range(6)), frames=1)
    firsts = [look(sc.image, sc.plates[0].box) for sc in queue]
    pairs = [similarity(a, b) for i, a in enumerate(firsts) for b in firsts[i + 1:]]
    assert max(pairs) < 0.8 and sum(p < 0.55 for p in pairs) >= 0.8 * len(pairs), pairs
