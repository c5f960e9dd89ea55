"""Per-camera tracks and voted reads (pure logic, no models)."""
from detector.results import PlateBox, PlateText
from detector.tracking import CameraTracker, Read, TrackingConfig, vote


def box(x, y=100, w=120, h=30):
    return PlateBox(x, y, x + w, y + h, 0.9)


def read(text, conf=0.9, valid=True):
    return PlateText(text, text, conf, valid, 1)


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
        (track,) = tracker.update([box(100 + 6 * i)], now=i * 0.1)
        ids.append(track.id)
    assert len(set(ids)) == 1
    a, b = tracker.update([box(220), box(400, 300)], now=2.0)
    assert a.id == ids[0] and b.id != a.id


def test_tracks_expire_when_unseen():
    tracker = CameraTracker(TrackingConfig(expire_s=1.0))
    (first,) = tracker.update([box(100)], now=0.0)
    (again,) = tracker.update([box(100)], now=0.5)
    (later,) = tracker.update([box(100)], now=5.0)
    assert first.id == again.id != later.id


def test_confirmation_needs_agreeing_reads_then_text_holds_against_misreads():
    config = TrackingConfig(confirm_reads=3, reread_every=5)
    tracker = CameraTracker(config)
    texts = ["51F-123.45", "51F-128.45", "51F-123.45", "51F-123.45", "57F-123.45", "31F-123.46", "51F-123.45"]
    shown = []
    for i, text in enumerate(texts):
        (track,) = tracker.update([box(100 + i)], now=i * 0.1)
        tracker.add_read(track, read(text))
        shown.append((track.text, track.confirmed))
    assert not shown[1][1]  # two reads never confirm
    confirmed_at = next(i for i, (_, c) in enumerate(shown) if c)
    assert all(text == "51F-123.45" for text, _ in shown[confirmed_at:])
    assert not tracker.needs_read(track)  # confirmed and just read


def test_confirmed_track_is_reread_only_now_and_then():
    tracker = CameraTracker(TrackingConfig(confirm_reads=2, reread_every=4))
    reads = 0
    for i in range(40):
        (track,) = tracker.update([box(100)], now=i * 0.1)
        if tracker.needs_read(track):
            tracker.add_read(track, read("29A-1234"))
            reads += 1
    assert track.confirmed and reads <= 2 + 40 // 4


def test_cameras_do_not_share_track_state():
    a, b = CameraTracker(TrackingConfig()), CameraTracker(TrackingConfig())
    (ta,) = a.update([box(100)], now=0)
    (tb,) = b.update([box(100)], now=0)
    a.add_read(ta, read("51F-123.45"))
    assert tb.reads == type(tb.reads)() and ta is not tb
