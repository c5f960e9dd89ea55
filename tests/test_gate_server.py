"""The gate through the real server: lists over HTTP, decisions on streamed vehicles, signed webhooks to a
receiver on loopback, parking sessions from an entry and an exit camera."""
from __future__ import annotations

import hashlib
import hmac
import json
import random
import threading
import time

import pytest
import requests

from bench.webhook_receiver import WebhookReceiver as Receiver
from detector.plate_match import near_keys
from tests.conftest import running_server, write_config
from tests.test_events import EventClient, stream_in_order
from tests.test_gate import wait_until
from training.synth import encode_jpeg, plate_video

pytestmark = pytest.mark.slow  # a real server with the shipped models
SECRET = "gate-secret"


def vehicle(seed: str) -> tuple[str, list[bytes]]:
    """A car coming up to the gate camera: its plate's text, and its frames."""
    scenes = plate_video(random.Random(seed), 30, layout="one_row", step=2.0)
    return scenes[0].plates[0].spec.text, [encode_jpeg(s.image, 90) for s in scenes]


class GateClient(EventClient):
    def __init__(self, url):
        super().__init__(url)
        self.decisions: list[dict] = []
        self.arrivals: list[float] = []  # when each result came
        self.sio.on("gate_decision", lambda d: self.decisions.append({**d, "received": time.time()}))
        self.sio.on("detection_result", self.result)

    def result(self, result: dict) -> None:
        self.results.append(result)
        self.arrivals.append(time.time())


def stream_all(url: str, streams: dict[str, list[bytes]]) -> dict[str, GateClient]:
    """Each camera's frames from a client of its own, all at once; the clients once their results are in."""
    clients = {camera: GateClient(url) for camera in streams}
    threads = [threading.Thread(target=stream_in_order, args=(clients[c], c, jpegs))
               for c, jpegs in streams.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    time.sleep(2.0)  # the last careful reads
    for client in clients.values():
        client.close()
    return clients


def entry_rule(url: str, **rule) -> dict:
    return {"role": "entry", "allow": ["residents"], "deny": ["blocked"],
            "on_match": ["emit", "webhook", "log"], "on_no_match": ["emit", "webhook", "log"], "webhook": url,
            **rule}


def signed(headers: dict, body: bytes) -> bool:
    expected = hmac.new(SECRET.encode(), headers["X-Plates-Timestamp"].encode() + b"." + body, hashlib.sha256)
    return hmac.compare_digest(headers["X-Plates-Signature"], "sha256=" + expected.hexdigest())


def test_listed_plates_open_a_misread_still_matches_others_are_denied_and_sessions_pair(tmp_path):
    (a, a_frames), (b, b_frames), (c, c_frames) = (vehicle(f"gate-{n}") for n in "abc")
    b_listed = near_keys(b)[1][0]  # B is listed one known confusion away from what it reads as
    c_other_province = ("12" if not c.startswith("12") else "14") + c[2:]
    receiver = Receiver()
    gate = {"webhook_secret": SECRET, "cameras": {
        "in-a": entry_rule(receiver.url), "in-b": entry_rule(receiver.url), "in-c": entry_rule(receiver.url),
        "out": {"role": "exit", "open_unlisted": True, "on_match": ["emit"], "on_no_match": ["emit"]}}}
    try:
        with running_server(tmp_path, config=write_config(tmp_path, gate=gate)) as srv:
            lists = f"{srv.url}/lists"
            made = requests.put(f"{lists}/residents", json={"description": "flats"}, timeout=5)
            assert made.status_code == 200
            added = requests.post(f"{lists}/residents/plates", timeout=5, json={"plates": [
                {"plate": a, "label": "flat 1"}, {"plate": b_listed, "label": "flat 2"}]})
            assert added.status_code == 201, added.text
            csv = requests.post(f"{lists}/blocked/csv", data=f"plate,label\n{c_other_province},stolen\n",
                                headers={"Content-Type": "text/csv"}, timeout=5)
            assert csv.json() == {"name": "blocked", "imported": 1}
            assert requests.get(lists, timeout=5).json()["lists"][1]["plates"] == 2

            entered = stream_all(srv.url, {"in-a": a_frames, "in-b": b_frames, "in-c": c_frames})
            decisions = {cam: client.decisions for cam, client in entered.items()}
            assert [d["plate"] for d in decisions["in-a"]] == [a], decisions
            assert [d["plate"] for d in decisions["in-b"]] == [b]
            assert [d["plate"] for d in decisions["in-c"]] == [c]
            da, db, dc = decisions["in-a"][0], decisions["in-b"][0], decisions["in-c"][0]
            assert (da["decision"], da["list"], da["match"]["kind"], da["match"]["label"]) == (
                "open", "residents", "exact", "flat 1")
            assert (db["decision"], db["match"]["kind"], db["match"]["plate"]) == (
                "open", "confusion", b_listed)
            assert "read as" in db["match"]["detail"]
            assert (dc["decision"], dc["match"]) == ("denied", None)  # a different province is another plate
            assert da["crop_url"].endswith(f"/events/{da['event_id']}/crop")

            wait_until(lambda: len(receiver.posts) == 3)
            posted = {json.loads(body)["camera_id"]: (headers, json.loads(body))
                      for headers, body in receiver.posts}
            for camera, decision in (("in-a", da), ("in-b", db), ("in-c", dc)):
                headers, body = posted[camera]
                assert signed(headers, json.dumps(body, separators=(",", ":")).encode())
                assert body["type"] == "gate_decision" and body["decision"] == decision["decision"]
                assert body["plate"] == decision["plate"] and body["event_id"] == decision["event_id"]
            assert 'plates_webhooks_total{result="delivered"} 3.0' in requests.get(f"{srv.url}/metrics").text

            time.sleep(2.0)  # the vehicle stays a while
            left = stream_all(srv.url, {"out": a_frames})["out"].decisions
            assert [(d["plate"], d["decision"], d["role"]) for d in left] == [(a, "open", "exit")]
            sessions = requests.get(f"{srv.url}/sessions", timeout=5).json()["sessions"]
            by_plate = {s["plate"]: s for s in sessions}
            assert len(sessions) == 3 and by_plate[a]["status"] == "closed"
            assert by_plate[a]["dwell_s"] == pytest.approx(left[0]["first_seen"] - da["first_seen"], abs=0.1)
            assert by_plate[a]["dwell_s"] >= 2.0
            inside = requests.get(f"{srv.url}/sessions", params={"open": 1}, timeout=5).json()["sessions"]
            assert sorted(s["plate"] for s in inside) == sorted([b, c])
            exported = requests.get(f"{srv.url}/sessions.csv", params={"prefix": a[:3]}, timeout=5)
            assert exported.headers["Content-Type"].startswith("text/csv") and f"{a},closed" in exported.text
            health = srv.health().json()["gate"]
            assert health["cameras"]["out"] == "exit" and health["lists"] == {
                "lists": 2, "plates": 3, "reload_error": None}
    finally:
        receiver.close()


def test_a_receiver_that_hangs_or_fails_never_holds_results_up_and_is_retried_then_given_up(tmp_path):
    hanging, failing = Receiver(delay=8.0), Receiver(status=500)
    gate = {"webhook_secret": SECRET, "webhook_timeout_s": 1.0, "webhook_retries": 1,
            "webhook_backoff_s": 0.5,
            "cameras": {"hang": entry_rule(hanging.url), "fail": entry_rule(failing.url)}}
    (_, hang_frames), (_, fail_frames) = vehicle("gate-hang"), vehicle("gate-fail")
    try:
        config = write_config(tmp_path, gate=gate)
        with running_server(tmp_path, config=config, args=["--async-mode", "threading"]) as srv:
            clients = stream_all(srv.url, {"hang": hang_frames * 2, "fail": fail_frames * 2})
            for camera, client in clients.items():
                assert len(client.decisions) == 1, (camera, client.decisions)
            wait_until(lambda: len(hanging.posts) == 2 and len(failing.posts) == 2, timeout=20)
            # the first try reached the receiver, which held it for the try's whole timeout (1 s): the
            # decision was not held behind it, and the camera's frames went on being answered meanwhile
            hung_from = hanging.arrived[0]
            assert clients["hang"].decisions[0]["received"] < hung_from + 1.0
            assert [t for t in clients["hang"].arrivals if hung_from < t < hung_from + 1.0], \
                "no results while the webhook hung"
            time.sleep(1.5)  # the last try's timeout
            assert srv.health().json()["gate"]["webhooks"] == {
                "pending": 0, "delivered": 0, "retried": 2, "failed": 2, "dropped": 0}
            metrics = requests.get(f"{srv.url}/metrics", timeout=5).text
            assert 'plates_webhooks_total{result="retried"} 2.0' in metrics
            assert 'plates_webhooks_total{result="failed"} 2.0' in metrics
            assert "webhook to" in srv.log() and "will retry" in srv.log()
    finally:
        hanging.close()
        failing.close()


def test_bad_requests_about_lists_and_sessions_get_a_clear_error_and_hurt_nothing(tmp_path):
    with running_server(tmp_path, config=write_config(tmp_path, auth_token="t0ken")) as srv:
        assert requests.get(f"{srv.url}/lists", timeout=5).status_code == 401  # behind the token
        http = requests.Session()
        http.headers["Authorization"] = "Bearer t0ken"
        lists = f"{srv.url}/lists"
        for method, path, kwargs, status, says in [
            ("get", "/nope", {}, 404, "no list named nope"),
            ("put", "/bad name", {}, 400, "a list's name is"),
            ("put", "/" + "x" * 65, {}, 400, "a list's name is"),
            ("put", "/ok", {"json": {"description": ["not", "text"]}}, 400, "description"),
            ("post", "/ok/plates", {"data": b"\xff\x00 not json"}, 400, "expected a JSON object"),
            ("post", "/ok/plates", {"json": [1, 2]}, 400, "expected a JSON object"),
            ("post", "/ok/plates", {"json": {"plates": [{"plate": "51F-123.45"}, {"plate": 7}]}}, 400,
             "plate 2: expected a plate's text"),
            ("post", "/ok/plates", {"json": {"plate": "51F-123.45", "valid_until": "tomorrow"}}, 400,
             "valid_until must be a date"),
            ("post", "/ok/csv", {"data": b"\x89PNG\r\n\x1a\n\x00\x00"}, 400, "first line must name"),
            ("post", "/ok/csv", {"data": b"plate\n" + b"51F-123.45\n" * 20_001}, 400, "at most 20000"),
            ("post", "/ok/csv", {"data": b"plate\n" + b"x" * 3_000_000}, 413, "request body over"),
            ("delete", "/ok/plates/51F-123.45", {}, 404, "no list named ok"),
        ]:
            answer = getattr(http, method)(lists + path, timeout=10, **kwargs)
            assert answer.status_code == status, (path, answer.text)
            assert says in answer.json()["error"]["message"], (path, answer.text)
        for params in ({"limit": "many"}, {"limit": 0}, {"since": "yesterday"}):
            answer = http.get(f"{srv.url}/sessions", params=params, timeout=5)
            assert answer.status_code == 400 and answer.json()["error"]["code"] == "invalid_request"
        assert http.get(lists, timeout=5).json() == {"lists": []}  # nothing of it was kept
        assert srv.health().json()["status"] == "ok"


def test_without_a_token_lists_are_changed_from_this_machine_only(tmp_path):
    # behind a proxy (trusted_proxies: 1) the client's own address counts: here, another machine's
    with running_server(tmp_path, config=write_config(tmp_path, trusted_proxies=1)) as srv:
        elsewhere = {"X-Forwarded-For": "192.168.1.50"}
        refused = requests.put(f"{srv.url}/lists/residents", headers=elsewhere, timeout=5)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "token_required"
        added = requests.post(f"{srv.url}/lists/residents/plates", json={"plate": "51F-123.45"},
                              headers=elsewhere, timeout=5)
        assert added.status_code == 403
        assert requests.get(f"{srv.url}/lists", headers=elsewhere, timeout=5).json() == {"lists": []}
        assert requests.put(f"{srv.url}/lists/residents", timeout=5).status_code == 200  # from this machine
