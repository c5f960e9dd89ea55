"""The gate's parts on their own: plate matching, plate lists, parking sessions, webhooks, its config."""
from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time

import pytest

from bench.webhook_receiver import WebhookReceiver as Receiver
from detector.config import ConfigError
from detector.plate_match import match_plate, near_keys, number_positions, plate_key
from realtime.events import PlateEvent
from realtime.gate import Gate, gate_config
from realtime.parking import ParkingSessions, sessions_csv
from realtime.plate_lists import ListError, PlateLists
from realtime.plate_log import PlateLog
from realtime.stats import Stats
from realtime.webhooks import Webhooks, signature
from tests.test_plate_log import database

# ---------------------------------------------------------------- matching


@pytest.mark.parametrize("read, listed, kind", [
    ("51F-123.45", "51f12345", "exact"),  # the canonical form: case and separators do not count
    ("60-AA 244.88", "60aa24488", "exact"),  # a motorbike listed as typed, its rows not given
    ("59-X2 123.45", "59X212345", "exact"),
    ("51F-123.45", "51F-123.46", "confusion"),  # 6 read as 5
    ("59-X1 123.95", "59-X1 123.85", "confusion"),  # 8 read as 9, a motorbike
    ("KP-47-90", "KP-47-98", "confusion"),  # military
    ("29A-1234", "29A-1284", "confusion"),  # an older four-digit number
    ("51F-123.45", "57F-123.45", None),  # never another province...
    ("51F-123.45", "51E-123.45", None),  # ... nor another series
    ("59-X1 123.45", "59-X7 123.45", None),  # the series' digit is the series
    ("51F-123.45", "51F-124.46", None),  # two characters off
    ("51F-123.45", "51F-123.42", None),  # 2 and 5 are no known confusion
    ("51F-123.45", "51F-123.4", None),  # one character short
])
def test_a_read_matches_a_listed_plate_only_exactly_or_one_known_confusion_away(read, listed, kind):
    found = match_plate(read, listed)
    assert (found.kind if found else None) == kind
    if kind == "confusion":
        assert "read as" in found.detail and "in the number" in found.detail


def test_the_number_is_where_the_format_says():
    assert number_positions(plate_key("51F-123.45")) == range(3, 8)
    assert number_positions(plate_key("59-X1 123.45")) == range(4, 9)
    assert number_positions(plate_key("60 737-HR")) == range(2, 5)
    assert number_positions("NOT A PLATE") is None
    assert [k for k, _ in near_keys("NOT A PLATE")] == ["NOTAPLATE"]  # no format: exact only


# ---------------------------------------------------------------- lists


@pytest.fixture(params=["sqlite", "postgresql"])
def plate_log(tmp_path, request):
    """The plate log's database, where lists and sessions are kept: a SQLite file, or PostgreSQL."""
    log = PlateLog(database(request.param, tmp_path, request))
    yield log
    log.close()


def test_lists_are_managed_matched_dated_and_kept_in_the_database(plate_log):
    lists = PlateLists(plate_log.store, refresh_s=5)
    lists.create("residents", "flats A and B")
    lists.add("residents", [{"plate": "51F-123.45", "label": "flat 12"},
                            {"plate": "59x1 12395", "valid_until": "2020-01-31"}])
    lists.add("blocked", [{"plate": "30E-999.99"}])  # made by its first plate
    assert [(li["name"], li["plates"]) for li in lists.lists()] == [("blocked", 1), ("residents", 2)]
    today = "2026-12-06"
    found = lists.match("51F-123.46", ["residents"], today)
    assert (found.list, found.plate, found.label, found.kind) == (
        "residents", "51F-123.45", "flat 12", "confusion")
    assert lists.match("51F-123.45", ["residents"], today).kind == "exact"
    assert lists.match("51F-123.45", ["blocked"], today) is None  # only the lists asked about
    assert lists.match("59-X1 123.95", ["residents"], today) is None  # out of its dates
    assert lists.match("59-X1 123.95", ["residents"], "2020-01-31").kind == "exact"
    # another process's view of the same database
    other = PlateLists(plate_log.store, refresh_s=5)
    other.reload()
    assert other.match("30E-999.99", ["blocked"], today).kind == "exact"
    lists.remove("residents", "51f-12345")
    other.reload(only_if_changed=True)
    assert other.match("51F-123.45", ["residents"], today) is None
    lists.delete("blocked")
    assert [li["name"] for li in lists.lists()] == ["residents"]
    with pytest.raises(ListError) as missing:
        lists.plates("blocked")
    assert missing.value.status == 404


def test_a_csv_round_trips_and_a_bad_line_is_named(plate_log):
    lists = PlateLists(plate_log.store, refresh_s=5)
    text = "plate,label,valid_from,valid_until\n51F-123.45,flat 12,2026-01-01,2026-12-31\n30E99999,,,\n"
    assert len(lists.import_csv("staff", text, replace=False)) == 2
    exported = lists.export_csv("staff")
    assert exported.splitlines() == ["plate,label,valid_from,valid_until", "30E-999.99,,,",
                                     "51F-123.45,flat 12,2026-01-01,2026-12-31"]
    with pytest.raises(ListError, match="CSV line 3: valid_from must be a date"):
        lists.import_csv("staff", "plate,valid_from\n51F-123.45,\n51F-123.46,31/12/2026\n", replace=True)
    assert len(lists.plates("staff")) == 2  # nothing of a refused import is kept
    lists.import_csv("staff", "plate\n29A-1234\n", replace=True)
    assert [p["plate"] for p in lists.plates("staff")] == ["29A-1234"]
    for bad in ("", "label\nx\n"):
        with pytest.raises(ListError, match="first line"):
            lists.import_csv("staff", bad, replace=False)


@pytest.mark.parametrize("entry, message", [
    ({"plate": "51"}, "expected a plate"),
    ({"plate": 51123}, "expected a plate"),
    ({"plate": "51F-123.45", "label": "x" * 201}, "label"),
    ({"plate": "51F-123.45", "valid_from": "2026-13-01"}, "valid_from"),
    ({"plate": "51F-123.45", "valid_from": "2026-12-02", "valid_until": "2026-12-01"}, "after"),
])
def test_a_bad_plate_is_refused_with_a_reason(plate_log, entry, message):
    with pytest.raises(ListError, match=message):
        PlateLists(plate_log.store, refresh_s=5).add("residents", [entry])


def test_a_bad_list_name_is_refused(plate_log):
    for name in ("", "a b", "x" * 65, "../etc"):
        with pytest.raises(ListError, match="name"):
            PlateLists(plate_log.store, refresh_s=5).create(name)


# ---------------------------------------------------------------- parking sessions


def event(event_id: str, camera_id: str, text: str, at: float) -> PlateEvent:
    return PlateEvent(camera_id, 1, text, 0.9, at, at + 2, 5, None, id=event_id)


def test_entry_then_exit_is_one_closed_session_with_its_dwell(plate_log):
    sessions = ParkingSessions(plate_log, overdue_h=24)
    now = time.time()
    sessions.entry(event("e1", "gate-in", "51F-123.45", now - 3600))
    sessions.entry(event("e2", "gate-in", "30E-999.99", now - 1800))
    sessions.exit(event("x1", "gate-out", "51F-123.46", now - 60))  # misread at the exit: one confusion
    sessions.exit(event("x2", "gate-out", "29A-1234", now - 30))  # never seen entering
    plate_log.flush()
    rows = {s["plate"]: s for s in sessions.query()}
    closed = rows["51F-123.45"]
    assert closed["status"] == "closed" and closed["dwell_s"] == pytest.approx(3540, abs=0.1)
    assert closed["exit_plate"] == "51F-123.46" and closed["exit_match"].startswith("confusion")
    assert rows["30E-999.99"]["status"] == "open" and rows["30E-999.99"]["inside_s"] >= 1800
    assert rows["29A-1234"]["flags"] == ["no_entry"]
    assert [s["plate"] for s in sessions.query(open_only=True)] == ["30E-999.99"]
    assert [s["plate"] for s in sessions.query(flagged=True)] == ["29A-1234"]
    assert [s["plate"] for s in sessions.query(prefix="51F")] == ["51F-123.45"]
    assert {s["plate"] for s in sessions.query(since=now - 100)} == {"51F-123.45", "29A-1234"}  # left then
    assert [s["plate"] for s in sessions.query(until=now - 3000)] == ["51F-123.45"]  # entered then
    assert "51F-123.45,closed,,gate-in" in sessions_csv(sessions.query())


def test_overdue_and_entered_twice_are_flagged_and_a_corrected_read_corrects_its_session(plate_log):
    sessions = ParkingSessions(plate_log, overdue_h=1)
    now = time.time()
    sessions.entry(event("e1", "gate-in", "51F-123.45", now - 7200))
    sessions.entry(event("e2", "gate-in", "51F-123.45", now - 600))  # in again, never seen leaving
    sessions.entry(event("e3", "gate-in", "30E-999.98", now - 5000))
    sessions.entry(event("e3", "gate-in", "30E-999.99", now - 5000))  # the same vehicle, its text corrected
    sessions.exit(event("x1", "gate-out", "43A-555.55", now - 10))  # first read: nothing entered as that
    sessions.exit(event("x1", "gate-out", "51F-123.45", now - 10))  # corrected: the open one closes
    plate_log.flush()
    rows = sessions.query()
    assert sorted((s["plate"], s["status"]) for s in rows) == [
        ("30E-999.99", "open"), ("51F-123.45", "closed"), ("51F-123.45", "no_exit")]
    assert next(s for s in rows if s["status"] == "closed")["entry_event"] == "e2"
    assert {s["plate"]: s["flags"] for s in sessions.query(flagged=True)} == {
        "30E-999.99": ["overdue"], "51F-123.45": ["no_exit"]}


# ---------------------------------------------------------------- decisions


def test_each_role_decides_deny_first_unless_the_allowed_plate_is_exactly_the_read(plate_log):
    lists = PlateLists(plate_log.store, refresh_s=5)
    lists.add("residents", [{"plate": "51F-123.45"}, {"plate": "30E-111.11"}])
    lists.add("blocked", [{"plate": "51F-123.46"}, {"plate": "30E-111.11"}, {"plate": "29A-1234"}])
    hooks = Webhooks("s", 1, 0, 1, 10, 1, Stats())  # not started: what would be sent waits in its queue
    config = gate_config({"webhook_secret": "s", "cameras": {
        "in": {"role": "entry", "allow": ["residents"], "deny": ["blocked"], "on_match": ["emit", "webhook"],
               "on_no_match": ["log"], "webhook": "http://127.0.0.1:9/in"},
        "out": {"role": "exit", "open_unlisted": True, "deny": ["blocked"], "on_no_match": ["emit"]},
        "yard": {"role": "watch", "allow": ["residents"], "deny": ["blocked"]}}})
    gate = Gate(config, lists, ParkingSessions(plate_log, 24), hooks, Stats(), "http://plates.local")
    now = time.time()

    def decide(camera: str, text: str) -> dict | None:
        return gate.decide(event(f"{camera}-{text}", camera, text, now))

    assert decide("in", "51F-123.45")["decision"] == "open"  # listed as read; blocked 51F-123.46: a misread
    assert decide("in", "30E-111.11")["decision"] == "denied"  # on both: deny first
    denied = decide("in", "29A-1284")  # one confusion from a blocked plate
    assert (denied["decision"], denied["list"], denied["match"]["kind"]) == ("denied", "blocked", "confusion")
    assert decide("in", "43A-555.55") is None  # on no list: no_match actions (log only)
    assert decide("out", "43A-555.55")["decision"] == "open"  # anyone may leave...
    assert decide("out", "29A-1234")["decision"] == "denied"  # ... but a blocked plate
    assert [decide("yard", t)["decision"] for t in ("51F-123.45", "29A-1234", "43A-555.55")] == [
        "known", "alert", "unknown"]
    assert decide("elsewhere", "51F-123.45") is None  # a camera without rules
    posted = [json.loads(d.body) for d in hooks._fresh]
    assert [(p["plate"], p["decision"]) for p in posted] == [
        ("51F-123.45", "open"), ("30E-111.11", "denied"), ("29A-1284", "denied")]
    assert posted[0]["crop_url"] == "http://plates.local/events/in-51F-123.45/crop"
    plate_log.flush()
    sessions = ParkingSessions(plate_log, 24).query()
    # every entry opened a session, whatever its decision; 29A-1234 left as what entered as 29A-1284
    assert sorted(s["plate"] for s in sessions if s["status"] == "open") == ["30E-111.11", "51F-123.45"]
    assert sorted(s["plate"] for s in sessions if s["status"] == "closed") == ["29A-1284", "43A-555.55"]


# ---------------------------------------------------------------- webhooks


def threads_webhooks(**kwargs) -> Webhooks:
    settings = {"secret": "s3cret", "timeout_s": 0.5, "retries": 2, "backoff_s": 0.1, "max_pending": 100,
                "senders": 2, **kwargs}
    hooks = Webhooks(stats=Stats(), **settings)
    hooks.start(lambda f: threading.Thread(target=f, daemon=True).start(), threading.Event)
    return hooks


def wait_until(predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_webhook_is_signed_and_delivered_once():
    receiver, hooks = Receiver(), threads_webhooks()
    try:
        hooks.send(receiver.url, {"plate": "51F-123.45"})
        wait_until(lambda: hooks.counts["delivered"] == 1)
        headers, body = receiver.posts[0]
        assert json.loads(body) == {"plate": "51F-123.45"}
        expected = hmac.new(b"s3cret", headers["X-Plates-Timestamp"].encode() + b"." + body,
                            hashlib.sha256).hexdigest()
        assert headers["X-Plates-Signature"] == f"sha256={expected}" == signature(
            "s3cret", headers["X-Plates-Timestamp"], body)
        time.sleep(0.3)
        assert len(receiver.posts) == 1 and hooks.figures()["pending"] == 0
    finally:
        receiver.close()


@pytest.mark.parametrize("status, delay, tries", [(500, 0.0, 3), (200, 2.0, 3), (404, 0.0, 1), (302, 0.0, 1)])
def test_a_failing_receiver_is_retried_with_back_off_then_given_up(status, delay, tries):
    receiver, hooks = Receiver(status, delay), threads_webhooks()
    try:
        started = time.monotonic()
        hooks.send(receiver.url, {"plate": "51F-123.45"})
        wait_until(lambda: hooks.counts["failed"] == 1)
        assert len(receiver.posts) == tries  # 5xx, no answer: tried again; 404, 302: its answer (unfollowed)
        assert hooks.counts["retried"] == tries - 1 and hooks.counts["delivered"] == 0
        assert len({h["X-Plates-Delivery"] for h, _ in receiver.posts}) == 1  # one delivery, tried again
        if tries == 3 and delay == 0:
            assert time.monotonic() - started >= 0.1 + 0.2  # backed off 0.1 s, then 0.2 s
    finally:
        receiver.close()


def test_the_queue_is_bounded_and_drops_the_oldest():
    hooks = Webhooks("s", 0.5, 0, 0.1, 3, 1, Stats())  # not started: nothing is sent
    for i in range(5):
        hooks.send("http://127.0.0.1:9/hook", {"n": i})
    assert hooks.figures()["pending"] == 3 and hooks.counts["dropped"] == 2
    assert [json.loads(d.body)["n"] for d in hooks._fresh] == [2, 3, 4]


# ---------------------------------------------------------------- config


def test_gate_config_reads_cameras_and_names_a_wrong_key():
    config = gate_config({"webhook_secret": "k", "cameras": {"gate-in": {
        "role": "entry", "allow": ["residents"], "on_match": ["emit", "webhook"], "webhook": "http://x/y"}}})
    assert config.cameras["gate-in"].role == "entry" and config.cameras["gate-in"].allow == ("residents",)
    assert gate_config(None, secret="env").webhook_secret == "env"
    for data, message in [
        ({"cameras": {"gate-in": {"role": "door"}}}, "gate.cameras.gate-in.role"),
        ({"cameras": {"gate-in": {"on_match": ["ring"]}}}, "gate.cameras.gate-in.on_match"),
        ({"cameras": {"gate-in": {"on_match": ["webhook"]}}}, "gate.cameras.gate-in.webhook"),
        ({"cameras": {"gate-in": {"on_match": ["webhook"], "webhook": "http://x"}}}, "gate.webhook_secret"),
        ({"cameras": {"bad id": {}}}, "not a camera id"),
        ({"cameras": {"gate-in": {"allow": "residents"}}}, "gate.cameras.gate-in.allow"),
        ({"webhook_queue": 0}, "webhook_queue"),
        ({"colour": 1}, "unknown setting"),
    ]:
        with pytest.raises(ConfigError, match=message):
            gate_config(data)
