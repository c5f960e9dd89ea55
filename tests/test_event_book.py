"""One event per vehicle: the same track, or the same plate back within the window, is one event."""
from realtime.events import EventBook, TrackReport


def report(track: int, text: str, seen: float, reads: int = 3, camera: str = "gate") -> TrackReport:
    return TrackReport(camera, track, text, 0.9, seen - 1, seen, reads, b"jpeg")


def test_a_track_is_announced_once_and_again_only_when_its_text_changes():
    book = EventBook(window_s=60)
    first, announce = book.observe(report(1, "51F-123.45", 10))
    assert announce
    again, announce = book.observe(report(1, "51F-123.45", 11, reads=5))
    assert not announce and again.id == first.id and again.reads == 5
    changed, announce = book.observe(report(1, "51F-128.45", 12, reads=8))
    assert announce and changed.id == first.id and changed.text == "51F-128.45"


def test_the_same_plate_back_within_the_window_continues_its_event_later_makes_a_new_one():
    book = EventBook(window_s=60)
    first, _ = book.observe(report(1, "29A-1234", 100))
    back, announce = book.observe(report(2, "29A-1234", 130, reads=2))
    assert not announce and back.id == first.id and back.reads == 5 and back.track_id == 2
    other_camera, announce = book.observe(report(3, "29A-1234", 131, camera="yard"))
    assert announce and other_camera.id != first.id
    later, announce = book.observe(report(4, "29A-1234", 300))
    assert announce and later.id != first.id
