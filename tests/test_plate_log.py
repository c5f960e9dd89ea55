"""The plate log on its own: upserts, filters, and a refused write that does not stop the writer."""
import sqlite3

from realtime.events import PlateEvent
from realtime.plate_log import PlateLog


def event(
    i: int, text: str = "51F-123.45", camera: str = "gate", seen: float = 100.0, crop=b"jpeg"
) -> PlateEvent:
    return PlateEvent(camera, i, text, 0.9, seen, seen + 1, 3, crop, id=f"e{i}")


def test_upsert_filter_and_keep_the_crop(tmp_path):
    log = PlateLog(tmp_path / "log.db")
    log.record(event(1))
    log.record(event(2, "30A-999.99", "yard", seen=200.0))
    log.record(event(1, crop=None))  # an update without a new crop keeps the old one
    log.flush()
    assert [e["id"] for e in log.query()] == ["e2", "e1"]
    assert [e["id"] for e in log.query(prefix="51F")] == ["e1"]
    assert [e["id"] for e in log.query(camera_id="yard")] == ["e2"]
    assert [e["id"] for e in log.query(since=150.0)] == ["e2"]
    assert [e["id"] for e in log.query(until=150.0)] == ["e1"]
    assert log.query(prefix="5_%") == []  # LIKE wildcards are taken literally
    assert log.crop("e1") == b"jpeg" and log.crop("nope") is None


def test_a_refused_write_is_counted_and_the_writer_goes_on(tmp_path):
    log = PlateLog(tmp_path / "log.db")
    with sqlite3.connect(tmp_path / "log.db") as db:
        db.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON events WHEN NEW.text = 'BAD' "
            "BEGIN SELECT RAISE(ABORT, 'no'); END"
        )
    log.record(event(1, "BAD"))
    log.flush()
    log.record(event(2))
    log.flush()
    assert log.write_errors == 1 and "no" in log.last_error
    assert [e["id"] for e in log.query()] == ["e2"]
