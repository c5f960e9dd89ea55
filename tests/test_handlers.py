"""The Socket.IO handlers, the runtime and the results pump, through Flask-SocketIO's test client.

No models and no worker thread: the handlers' part ends when a frame is in its camera's slot,
so the worker is marked ready with a stand-in detector and never started. The real server,
models and transport are tested in test_server.py and the others.
"""
from __future__ import annotations

import logging
import sqlite3

import numpy as np
import pytest
from socketio.packet import Packet

from deploy.postgres import PostgresServer
from realtime.app import create_app
from realtime.auth import Refused
from realtime.config import load_config
from realtime.events import PlateEvent
from realtime.frames import FramePayload
from realtime.pump import ResultsPump
from realtime.slots import Frame
from realtime.threads import LoopWaker
from realtime.worker import FrameResult
from tests.conftest import write_config
from training.synth import encode_jpeg

JPEG = encode_jpeg(np.full((48, 64, 3), 120, np.uint8), 80)


class StandInDetector:
    models = {"detector": "stand-in"}
    load_seconds = 0.0


def plate_server(tmp_path, ready: bool = True, **server):
    config = load_config(write_config(tmp_path, async_mode="threading", **server), env={})
    built = create_app(config, load_detector=StandInDetector)
    if ready:
        built.runtime.worker.detector = StandInDetector()
    return built


def client(built, **auth):
    return built.socketio.test_client(built.app, auth=auth or None)


def frame(camera_id: str, frame_id: int = 0) -> dict:
    return {"camera_id": camera_id, "frame": JPEG, "frame_id": frame_id}


def errors(c) -> list[dict]:
    return [m["args"][0] for m in c.get_received() if m["name"] == "error"]


def test_a_token_is_needed_when_one_is_set_and_a_full_server_refuses_more_clients(tmp_path):
    built = plate_server(tmp_path, auth_token="s3cret", max_clients=1)
    assert not client(built).is_connected() and not client(built, token="wrong").is_connected()
    first = client(built, token="s3cret")
    assert first.is_connected() and built.runtime.clients
    assert not client(built, token="s3cret").is_connected()  # too_many_clients
    first.disconnect()
    assert client(built, token="s3cret").is_connected()


def test_a_frame_goes_to_its_cameras_slot_and_a_newer_one_replaces_it(tmp_path):
    built = plate_server(tmp_path)
    c = client(built)
    assert c.emit("video_frame", frame("gate", 1), callback=True) == {"ok": True}
    assert c.emit("video_frame", frame("gate", 2), callback=True) == {"ok": True}
    runtime = built.runtime
    assert (
        runtime.slots.waiting() == 1
        and runtime.stats.total.received == 2
        and runtime.stats.total.dropped == 1
    )
    assert [f.payload.frame_id for f in runtime.slots.take(8, timeout=0)] == [2]


def test_frames_before_the_models_are_loaded_are_refused_as_not_ready(tmp_path):
    built = plate_server(tmp_path, ready=False)
    c = client(built)
    ack = c.emit("video_frame", frame("gate", 7), callback=True)
    assert ack["error"] == {
        "code": "not_ready",
        "message": ack["error"]["message"],
        "camera_id": "gate",
        "frame_id": 7,
    }
    assert errors(c) == [ack["error"]] and built.runtime.slots.waiting() == 0


@pytest.mark.parametrize("payload, code", [
    ({"camera_id": "gate", "frame": b"not an image"}, "invalid_frame"),
    ({"camera_id": "a b", "frame": JPEG}, "invalid_camera_id"),
    ("just text", "invalid_payload"),
])
def test_a_bad_frame_gets_its_code_and_touches_no_slot(tmp_path, payload, code):
    built = plate_server(tmp_path)
    ack = client(built).emit("video_frame", payload, callback=True)
    assert ack["ok"] is False and ack["error"]["code"] == code and built.runtime.slots.waiting() == 0


def test_a_camera_id_cannot_forge_a_log_line(tmp_path, caplog):
    built = plate_server(tmp_path)
    forged = "gate-1\n2026-12-03 12:00:00 INFO plates: client admin connected"
    with caplog.at_level(logging.WARNING, logger="plates"):
        ack = client(built).emit("video_frame", {"camera_id": forged, "frame": JPEG}, callback=True)
    assert ack["error"]["code"] == "invalid_camera_id"
    (line,) = [r.getMessage() for r in caplog.records if "refused frame" in r.getMessage()]
    assert "\n" not in line and "\\n" in line  # escaped, on the one line


def test_the_servers_packets_are_strict_json_and_no_one_elses(tmp_path):
    built = plate_server(tmp_path)
    packet = built.socketio.server.packet_class
    with pytest.raises(ValueError):
        packet(data=["detection_result", {"ts": float("nan")}]).encode()
    assert packet(data=["detection_result", {"ts": 1.5}]).encode() == '2["detection_result",{"ts":1.5}]'
    assert "NaN" in Packet(data=["video_frame", {"ts": float("nan")}]).encode()  # clients' own packets


def test_cameras_past_max_cameras_are_refused_until_a_sender_leaves(tmp_path):
    built = plate_server(tmp_path, max_cameras=2)
    a, b = client(built), client(built)
    assert a.emit("video_frame", frame("one"), callback=True)["ok"]
    assert a.emit("video_frame", frame("two"), callback=True)["ok"]
    assert b.emit("video_frame", frame("three"), callback=True)["error"]["code"] == "too_many_cameras"
    a.disconnect()  # its cameras close, their waiting frames counted as dropped
    assert built.runtime.streams == {} and built.runtime.slots.waiting() == 0
    assert b.emit("video_frame", frame("three"), callback=True)["ok"]


def test_a_camera_belongs_to_its_first_sender_until_it_leaves(tmp_path):
    built = plate_server(tmp_path)
    owner, intruder = client(built), client(built)
    assert owner.emit("video_frame", frame("gate", 1), callback=True)["ok"]
    refused = intruder.emit("video_frame", frame("gate", 2), callback=True)
    assert refused["error"]["code"] == "camera_in_use" and built.runtime.slots.waiting() == 1
    assert owner.emit("video_frame", frame("gate", 3), callback=True)["ok"]  # the owner is not slowed
    owner.disconnect()
    assert intruder.emit("video_frame", frame("gate", 4), callback=True)["ok"]  # free again: now its


def test_one_client_cannot_take_every_camera(tmp_path):
    built = plate_server(tmp_path, max_cameras=16, max_cameras_per_client=3)
    greedy, other = client(built), client(built)
    acks = [greedy.emit("video_frame", frame(f"cam{i}"), callback=True) for i in range(5)]
    assert [a["ok"] for a in acks] == [True, True, True, False, False]
    assert acks[3]["error"]["code"] == "too_many_cameras"
    assert other.emit("video_frame", frame("gate"), callback=True)["ok"]


def test_a_burst_past_the_rate_is_refused_with_one_error_event(tmp_path):
    built = plate_server(tmp_path, max_fps_per_camera=1.0, rate_burst=4)
    c = client(built)
    acks = [c.emit("video_frame", frame("gate", i), callback=True) for i in range(4 + 5)]
    assert all(a["ok"] for a in acks[:4])
    assert {a["error"]["code"] for a in acks[4:]} == {"rate_limited"}
    assert len(errors(c)) == 1  # a flood of refusals is told once a second, not per frame


def test_subscriptions_are_checked_and_bounded(tmp_path):
    built = plate_server(tmp_path, max_subscriptions=5)
    c = client(built)
    assert (
        c.emit("subscribe", {"camera_id": "no spaces"}, callback=True)["error"]["code"] == "invalid_camera_id"
    )
    for i in range(5):
        assert c.emit("subscribe", {"camera_id": f"cam{i}"}, callback=True) == {"ok": True}
    assert (
        c.emit("subscribe", {"camera_id": "one-more"}, callback=True)["error"]["code"]
        == "too_many_subscriptions"
    )
    assert c.emit("unsubscribe", {"camera_id": "cam0"}, callback=True) == {"ok": True}
    assert c.emit("subscribe", {"camera_id": "one-more"}, callback=True) == {"ok": True}


def test_the_pump_sends_a_result_to_its_sender_and_the_cameras_viewers_once_each(tmp_path):
    built = plate_server(tmp_path)
    sender, viewer, stranger = client(built), client(built), client(built)
    for c in (sender, viewer):  # the sender watches its own camera too: it must not get the result twice
        c.emit("subscribe", {"camera_id": "gate"}, callback=True)
    sender.emit("video_frame", frame("gate", 5), callback=True)
    waiting = built.runtime.slots.take(1, timeout=0)[0]
    for c in (sender, viewer, stranger):
        c.get_received()
    ResultsPump(built.socketio, built.runtime, LoopWaker()).deliver(
        FrameResult(waiting, (), (64, 48), {"total": 1.0})
    )
    got = {
        name: [m["args"][0] for m in c.get_received()] for name, c in (("sender", sender), ("viewer", viewer))
    }
    assert [r["frame_id"] for r in got["sender"]] == [5] and [r["frame_id"] for r in got["viewer"]] == [5]
    assert got["viewer"][0]["detections"] == [] and got["viewer"][0]["frame_size"] == [64, 48]
    assert stranger.get_received() == []


def test_a_camera_whose_sender_left_while_its_frame_was_processed_stays_closed(tmp_path):
    built = plate_server(tmp_path)
    sender = client(built)
    sender.emit("video_frame", frame("gate", 1), callback=True)
    waiting = built.runtime.slots.take(1, timeout=0)[0]
    sender.disconnect()  # the frame is in the worker's hands meanwhile
    ResultsPump(built.socketio, built.runtime, LoopWaker()).deliver(FrameResult(waiting, (), (64, 48), {}))
    assert "gate" not in built.runtime.stats.cameras and not built.runtime.streams
    assert "gate" not in built.app.test_client().get("/health").get_json()["cameras"]


def test_health_says_degraded_while_plate_events_cannot_be_written(tmp_path):
    built = plate_server(tmp_path)
    http = built.app.test_client()
    assert http.get("/health").get_json()["status"] == "ok"
    assert http.get("/health").get_json()["role"] == "single"  # no message queue: this process alone
    plate_log = built.runtime.plate_log
    with sqlite3.connect(plate_log.store.path) as db:
        db.execute("CREATE TRIGGER refuse BEFORE INSERT ON events "
                   "BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    plate_log.record(PlateEvent("gate", 1, "51F-123.45", 0.9, 1.0, 2.0, 3, None, id="e1"))
    plate_log.flush()
    health = http.get("/health")
    assert health.status_code == 200 and health.get_json()["status"] == "degraded"  # still serving live
    assert "disk full" in health.get_json()["plate_log"]["last_error"]


def test_events_say_503_while_the_plate_logs_database_does_not_answer(tmp_path):
    database = PostgresServer()
    try:
        http = plate_server(tmp_path, database=database.database()).app.test_client()
        assert http.get("/events").get_json() == {"events": []}
    finally:
        database.stop()
    for path in ("/events", "/events/e1/crop"):
        away = http.get(path)
        assert away.status_code == 503 and away.get_json()["error"]["code"] == "plate_log_unavailable"


def test_a_stopping_server_says_draining_and_takes_no_more_frames(tmp_path):
    built = plate_server(tmp_path)
    c = client(built)
    built.runtime.draining = True
    health = built.app.test_client().get("/health")
    assert health.status_code == 503 and health.get_json()["status"] == "draining"
    assert c.emit("video_frame", frame("gate"), callback=True)["error"]["code"] == "draining"
    assert built.runtime.slots.waiting() == 0


def test_the_plate_log_writes_what_it_was_given_before_it_closes(tmp_path):
    plate_log = plate_server(tmp_path).runtime.plate_log
    for n in range(50):
        plate_log.record(PlateEvent("gate", n, "51F-123.45", 0.9, 1.0, 2.0, 3, None, id=f"e{n}"))
    plate_log.close()
    with sqlite3.connect(plate_log.store.path) as db:
        assert db.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 50 == plate_log.written


def test_the_pump_answers_a_detect_request_through_its_reply(tmp_path):
    built = plate_server(tmp_path)
    reply = {"event": built.socketio.server.eio.create_event(), "result": None}
    result = FrameResult(Frame(FramePayload("http", JPEG, 64, 48, None, None, False), None, reply=reply))
    ResultsPump(built.socketio, built.runtime, LoopWaker()).deliver(result)
    assert reply["event"].is_set() and reply["result"] is result


PROTECTED = [("get", "/events"), ("get", "/events/abc/crop"), ("get", "/metrics"), ("post", "/detect")]


def test_with_a_token_set_every_route_but_health_and_the_dashboard_needs_it(tmp_path):
    http = plate_server(tmp_path, auth_token="s3cret").app.test_client()
    for method, path in PROTECTED:
        refused = getattr(http, method)(path)
        assert refused.status_code == 401 and refused.get_json()["error"]["code"] == "unauthorized", path
    bearer = {"Authorization": "Bearer s3cret"}
    assert http.get("/events", headers=bearer).status_code == 200
    assert http.get("/metrics", headers=bearer).status_code == 200
    assert http.get("/events/abc/crop", headers=bearer).status_code == 404  # let in: there is no such crop
    assert http.get("/health").status_code == 200 and http.get("/").status_code == 200
    assert http.get("/events", headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_the_dashboard_trades_its_token_for_a_cookie(tmp_path):
    http = plate_server(tmp_path, auth_token="s3cret").app.test_client()
    assert http.post("/session").status_code == 401
    got = http.post("/session", headers={"Authorization": "Bearer s3cret"})
    cookie = got.headers["Set-Cookie"]
    assert got.status_code == 204 and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "s3cret" not in cookie  # the cookie is not the token
    assert http.get("/events").status_code == 200  # the test client keeps the cookie, as a browser does


def test_an_address_guessing_tokens_is_refused_for_a_while_and_no_other(tmp_path):
    built = plate_server(tmp_path, auth_token="s3cret", max_auth_failures=3)
    guesser = built.app.test_client()
    guesser.environ_base["REMOTE_ADDR"] = "10.0.0.9"
    wrong = [guesser.get("/events", headers={"Authorization": f"Bearer guess{i}"}).status_code
             for i in range(4)]
    assert wrong == [401, 401, 401, 429]
    right = guesser.get("/events", headers={"Authorization": "Bearer s3cret"})
    assert right.status_code == 429 and right.get_json()["error"]["code"] == "too_many_attempts"
    # a Socket.IO connection from there is refused too; another address is let in
    with pytest.raises(Refused) as refused:
        built.runtime.connect("sid-1", "s3cret", "10.0.0.9")
    assert refused.value.code == "too_many_attempts"
    other = built.app.test_client().get("/events", headers={"Authorization": "Bearer s3cret"})
    assert other.status_code == 200
    assert client(built, token="s3cret").is_connected()


@pytest.mark.parametrize("proxies", [0, 1])
def test_behind_a_trusted_proxy_wrong_tokens_count_against_the_client_it_names(tmp_path, proxies):
    built = plate_server(tmp_path, auth_token="s3cret", max_auth_failures=3, trusted_proxies=proxies)

    def get(client: str, token: str) -> int:  # through a proxy on this machine, which names the client
        http = built.app.test_client()
        http.environ_base["REMOTE_ADDR"] = "127.0.0.1"
        headers = {"Authorization": f"Bearer {token}", "X-Forwarded-For": client}
        return http.get("/events", headers=headers).status_code

    assert [get("203.0.113.7", f"guess{i}") for i in range(4)] == [401, 401, 401, 429]
    # another client behind the same proxy: let in where the proxy is trusted; where it is not, the header is
    # anyone's to write and the proxy's own address is the one refused
    assert get("203.0.113.8", "s3cret") == (200 if proxies else 429)


@pytest.mark.parametrize("host, origin, allowed", [
    ("127.0.0.1:5001", "http://127.0.0.1:5001", True),
    ("localhost:5001", "http://localhost:5001", True),
    ("[::1]:5001", "http://[::1]:5001", True),
    ("192.168.1.20:5001", "http://192.168.1.20:5001", True),
    ("127.0.0.1:5001", "http://evil.example", False),
    # DNS rebinding: a site's own name pointed at this address, its Origin equal to its Host
    ("evil.example:5001", "http://evil.example:5001", False),
    ("parking.example", "https://parking.example", True),  # configured
])
def test_own_origin_is_trusted_only_when_reached_by_address(host, origin, allowed):
    from realtime.app import origin_check

    scheme = origin.split("://")[0]
    check = origin_check(("https://parking.example",))
    assert check(origin, {"HTTP_HOST": host, "wsgi.url_scheme": scheme}) is allowed
