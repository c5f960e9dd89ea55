"""The plate log on its own: upserts, filters, and a refused write that does not stop the writer."""
import logging
import re
import sqlite3

import pytest

from deploy.postgres import PostgresServer
from realtime.events import PlateEvent
from realtime.plate_log import PlateLog, PlateLogError, PlateLogUnavailable


def event(
    i: int, text: str = "51F-123.45", camera: str = "gate", seen: float = 100.0, crop=b"jpeg"
) -> PlateEvent:
    return PlateEvent(camera, i, text, 0.9, seen, seen + 1, 3, crop, id=f"e{i}")


def database(kind: str, tmp_path, request):
    """A new plate log database of that kind: a SQLite file, or a database of the tests' PostgreSQL."""
    return tmp_path / "log.db" if kind == "sqlite" else request.getfixturevalue("postgres").database()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_upsert_filter_and_keep_the_crop(tmp_path, request, kind):
    log = PlateLog(database(kind, tmp_path, request))
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


def test_refused_writes_are_counted_logged_once_a_minute_and_the_writer_goes_on(tmp_path, caplog):
    log = PlateLog(tmp_path / "log.db")
    with sqlite3.connect(tmp_path / "log.db") as db:
        db.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON events WHEN NEW.text = 'BAD' "
            "BEGIN SELECT RAISE(ABORT, 'no'); END"
        )
    with caplog.at_level(logging.ERROR, logger="plates"):
        for i in range(3):  # a failing disk: batch after batch refused
            log.record(event(i, "BAD"))
            log.flush()
    assert log.write_errors == 3 and "no" in log.last_error and log.failing
    assert len([r for r in caplog.records if "not written" in r.getMessage()]) == 1  # not one per batch
    log.record(event(9))
    log.flush()
    assert [e["id"] for e in log.query()] == ["e9"] and not log.failing  # written again: no longer failing


@pytest.mark.parametrize("make", ["garbage", "parent is a file"])
def test_a_database_that_cannot_be_opened_names_the_setting_and_the_path(tmp_path, make):
    path = tmp_path / "log.db"
    if make == "garbage":
        path.write_bytes(b"not a database" * 100)
    else:
        (tmp_path / "file").write_text("")
        path = tmp_path / "file" / "log.db"
    with pytest.raises(PlateLogError, match=f"events.database: cannot use {re.escape(str(path))}"):
        PlateLog(path)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_two_processes_logs_on_one_database_see_each_others_events_and_recall_them(tmp_path, request, kind):
    shared = database(kind, tmp_path, request)
    here, there = PlateLog(shared), PlateLog(shared)
    there.record(event(1, seen=100.0))
    there.flush()
    assert [e["id"] for e in here.query()] == ["e1"] and here.crop("e1") == b"jpeg"
    recalled = here.recall("gate", "51F-123.45", since=90.0)
    assert recalled is not None and recalled.id == "e1" and recalled.last_seen == 101.0
    assert here.recall("gate", "51F-123.45", since=102.0) is None  # too long ago
    assert here.recall("yard", "51F-123.45", since=90.0) is None  # another camera


def test_a_postgresql_database_that_is_not_there_names_the_setting_and_hides_the_password(postgres):
    url = postgres.database().replace("plates@", "plates:secret@").rsplit("/", 1)[0] + "/missing"
    expected = re.escape("events.database: cannot use postgresql://plates:***@")
    with pytest.raises(PlateLogError, match=expected) as info:
        PlateLog(url)
    assert "secret" not in str(info.value)


def test_a_postgresql_server_that_goes_away_costs_writes_and_reads_counted_never_the_writer():
    server = PostgresServer()
    try:
        log = PlateLog(server.database())
        log.record(event(1))
        log.flush()
        assert [e["id"] for e in log.query()] == ["e1"] and not log.failing
    finally:
        server.stop()
    log.record(event(2))
    log.flush()
    assert log.write_errors == 1 and log.failing  # counted, /health says degraded
    with pytest.raises(PlateLogUnavailable, match="does not answer"):
        log.query()
    assert log.recall("gate", "51F-123.45", since=0.0) is None  # a new event rather than none
    log.close(5)
