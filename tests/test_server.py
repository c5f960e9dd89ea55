"""The real server (python server.py) on a loopback port, driven by real Socket.IO clients.

Every protocol test runs against both async modes: eventlet (default) and threading.
"""
from __future__ import annotations

import base64
import threading
import time

import pytest
import requests
import socketio
from prometheus_client.parser import text_string_to_metric_families

from detector.plate_format import alnum
from tests.conftest import clear_shot, iou, running_server, start_server, stop_server, write_config

pytestmark = pytest.mark.slow  # a real server with the shipped models


class Client:
    """A Socket.IO client that records what the server sends it."""

    def __init__(self, url: str, auth: dict | None = None, refusals: list | None = None):
        self.sio = socketio.Client(reconnection=False)
        self.results: list[dict] = []
        self.errors: list[dict] = []
        self.sio.on("detection_result", self.results.append)
        self.sio.on("error", self.errors.append)
        if refusals is not None:
            self.sio.on("connect_error", refusals.append)
        self.sio.connect(url, auth=auth, transports=["websocket"], wait_timeout=10)

    def send(self, camera_id: str, frame, frame_id=None, **extra) -> dict:
        payload = {"camera_id": camera_id, "frame": frame, "frame_id": frame_id, **extra}
        return self.sio.call("video_frame", payload, timeout=10)

    def stream(self, camera_id: str, jpeg: bytes, fps: float, seconds: float, until_results: int = 0) -> None:
        """Send at `fps` for `seconds`, and on (up to a minute) until `until_results` results came back."""
        frame = base64.b64encode(jpeg).decode()
        start, i = time.monotonic(), 0
        while time.monotonic() - start < seconds or (
            len(self.results) < until_results and time.monotonic() - start < 60
        ):
            self.sio.emit(
                "video_frame", {"camera_id": camera_id, "frame": frame, "frame_id": i, "ts": time.time()}
            )
            i += 1
            time.sleep(1 / fps)

    def wait_results(self, count: int, timeout: float = 30.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(self.results) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.results

    def close(self):
        self.sio.disconnect()


@pytest.fixture(scope="module", params=["eventlet", "threading"])
def server(request, tmp_path_factory):
    log_dir = tmp_path_factory.mktemp(f"server-{request.param}")
    srv = start_server(log_dir, args=["--async-mode", request.param])
    yield srv
    stop_server(srv)


@pytest.fixture(scope="module")
def shots():
    return [clear_shot(f"server-cam{i}", ["one_row", "motorbike", "two_row_car"][i % 3]) for i in range(6)]


def test_six_cameras_stream_and_each_gets_its_own_reads(server, shots):
    clients = [Client(server.url) for _ in range(6)]
    watcher = Client(server.url)
    assert watcher.sio.call("subscribe", {"camera_id": "cam0"}, timeout=10) == {"ok": True}
    health_times = []

    def poll_health():
        for _ in range(8):
            t0 = time.monotonic()
            assert server.health(timeout=5).status_code == 200
            health_times.append(time.monotonic() - t0)
            time.sleep(0.4)

    threads = [
        threading.Thread(target=c.stream, args=(f"cam{i}", shots[i].jpeg, 10, 6, 5))
        for i, c in enumerate(clients)
    ]
    threads.append(threading.Thread(target=poll_health))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        for i, client in enumerate(clients):
            results = client.wait_results(5)
            assert len(results) >= 5, f"cam{i} got {len(results)} results"
            assert {r["camera_id"] for r in results} == {f"cam{i}"}
            right = [
                r
                for r in results
                if any(
                    d["text"] == shots[i].text and iou(d["bbox"], shots[i].box) >= 0.5
                    for d in r["detections"]
                )
            ]
            assert len(right) >= 0.8 * len(results), (shots[i].text, [r["detections"] for r in results[:3]])
            first = results[0]
            assert first["frame_size"] == [640, 480]
            assert set(first["timing_ms"]) == {"queue", "decode", "detect", "ocr", "total"}
            assert first["detection"]["text"] == shots[i].text
            assert set(first["stats"]) >= {"fps", "frames", "detections", "dropped"}
        watched = watcher.wait_results(5)
        assert watched and {r["camera_id"] for r in watched} == {"cam0"}
        assert any(r["detection"] and r["detection"]["text"] == shots[0].text for r in watched)
        assert max(health_times) < 1.0, health_times
    finally:
        for c in clients + [watcher]:
            c.close()


def _jpeg_with_claimed_size(jpeg: bytes, width: int, height: int) -> bytes:
    """The same JPEG whose frame header claims another size."""
    i = jpeg.index(b"\xff\xc0")
    return jpeg[:i + 5] + height.to_bytes(2, "big") + width.to_bytes(2, "big") + jpeg[i + 9:]


BAD_FRAMES = {
    "not base64": ({"camera_id": "bad", "frame": "this is not base64 !!"}, "invalid_frame"),
    "base64 of text": (
        {"camera_id": "bad", "frame": base64.b64encode(b"hello world, no image").decode()},
        "invalid_frame",
    ),
    "empty string": ({"camera_id": "bad", "frame": ""}, "invalid_frame"),
    "frame missing": ({"camera_id": "bad"}, "invalid_frame"),
    "frame a number": ({"camera_id": "bad", "frame": 12345}, "invalid_frame"),
    "frame a list": ({"camera_id": "bad", "frame": [1, 2, 3]}, "invalid_frame"),
    "camera_id missing": ({"frame": "AAAA"}, "invalid_camera_id"),
    "camera_id a number": ({"camera_id": 7, "frame": "AAAA"}, "invalid_camera_id"),
    "camera_id empty": ({"camera_id": "", "frame": "AAAA"}, "invalid_camera_id"),
    "camera_id too long": ({"camera_id": "c" * 65, "frame": "AAAA"}, "invalid_camera_id"),
    "camera_id with spaces": ({"camera_id": "cam 1; drop", "frame": "AAAA"}, "invalid_camera_id"),
    "frame_id a dict": ({"camera_id": "bad", "frame": "AAAA", "frame_id": {"a": 1}}, "invalid_payload"),
    "ts a string": ({"camera_id": "bad", "frame": "AAAA", "ts": "yesterday"}, "invalid_payload"),
    "ts NaN": ({"camera_id": "bad", "frame": "AAAA", "ts": float("nan")}, "invalid_payload"),
    "ts Infinity": ({"camera_id": "bad", "frame": "AAAA", "ts": float("inf")}, "invalid_payload"),
    "camera_id with a trailing newline": ({"camera_id": "gate-1\n", "frame": "AAAA"}, "invalid_camera_id"),
    "annotate a string": ({"camera_id": "bad", "frame": "AAAA", "annotate": "yes"}, "invalid_payload"),
    "payload a string": ("just a string", "invalid_payload"),
    "payload a list": ([1, 2], "invalid_payload"),
}


def test_bad_inputs_get_their_error_and_hurt_no_one(server, shots):
    good, bad = Client(server.url), Client(server.url)
    jpeg = shots[0].jpeg
    cases = dict(BAD_FRAMES)
    cases["truncated JPEG"] = (
        {"camera_id": "bad", "frame": base64.b64encode(jpeg[: len(jpeg) // 2]).decode()},
        "invalid_frame",
    )
    cases["huge claimed size"] = (
        {"camera_id": "bad", "frame": base64.b64encode(_jpeg_with_claimed_size(jpeg, 60000, 60000)).decode()},
        "image_too_large",
    )
    # max_frame_bytes is 2,000,000
    just_over = jpeg[:-2] + b"\0" * (2_000_000 + 1000 - len(jpeg)) + b"\xff\xd9"
    cases["over max_frame_bytes"] = (
        {"camera_id": "bad", "frame": base64.b64encode(just_over).decode()},
        "frame_too_large",
    )
    cases["binary garbage"] = ({"camera_id": "bad", "frame": b"\x00\x01garbage"}, "invalid_frame")
    cases["corrupt pixels"] = (
        {
            "camera_id": "bad",
            "frame": base64.b64encode(jpeg[:200] + bytes(len(jpeg) - 202) + b"\xff\xd9").decode(),
        },
        "invalid_frame",
    )
    try:
        stream = threading.Thread(target=good.stream, args=("good", jpeg, 8, 4 + len(cases) * 0.05, 10))
        stream.start()
        for name, (payload, code) in cases.items():
            ack = bad.sio.call("video_frame", payload, timeout=10)
            if code == "invalid_frame" and name == "corrupt pixels":
                # header and end marker look right: refused by the worker, as an error event
                assert ack == {"ok": True}
                continue
            assert ack["ok"] is False and ack["error"]["code"] == code, (name, ack)
            assert ack["error"]["message"]
        stream.join()
        deadline = time.monotonic() + 10
        while (
            not any(
                e["code"] == "invalid_frame" and e.get("camera_id") == "bad" and "decoded" in e["message"]
                for e in bad.errors
            )
            and time.monotonic() < deadline
        ):
            time.sleep(0.1)
        assert any("decoded" in e["message"] for e in bad.errors), bad.errors[-3:]
        assert {e["code"] for e in bad.errors} >= {"invalid_frame", "invalid_camera_id", "invalid_payload"}
        assert len(good.wait_results(10)) >= 10
        assert not good.errors
        assert server.health().status_code == 200
    finally:
        good.close()
        bad.close()


def test_payload_beyond_transport_limit_drops_only_that_client(server, shots):
    good, flood = Client(server.url), Client(server.url)
    try:
        flood.sio.emit("video_frame", {"camera_id": "flood", "frame": "A" * 6_000_000})
        deadline = time.monotonic() + 10
        while flood.sio.connected and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not flood.sio.connected
        assert good.send("good2", base64.b64encode(shots[1].jpeg).decode())["ok"]
        assert good.wait_results(1)
        assert server.health().status_code == 200
    finally:
        good.close()
        flood.close()


def test_thousands_of_bad_frames_do_not_grow_memory(server, shots):
    client = Client(server.url)
    truncated = base64.b64encode(shots[0].jpeg[:3000]).decode()
    payloads = [p for p, _ in BAD_FRAMES.values()] + [{"camera_id": "bad", "frame": truncated}]
    try:
        for i in range(300):  # warm-up: allocator pools, logging throttles
            client.sio.emit("video_frame", payloads[i % len(payloads)])
        client.sio.call("subscribe", {"camera_id": "x"}, timeout=10)
        before = server.health().json()["memory"]["rss_mb"]
        for i in range(3000):
            client.sio.emit("video_frame", payloads[i % len(payloads)])
            if i % 500 == 0:
                client.sio.call("subscribe", {"camera_id": "x"}, timeout=30)  # let the server keep up
        client.sio.call("subscribe", {"camera_id": "x"}, timeout=30)
        after = server.health().json()["memory"]["rss_mb"]
        assert after - before < 25, (before, after)
        assert len(client.errors) > 2000  # the frames really were refused, one error each
    finally:
        client.close()


def test_health_and_metrics(server, shots):
    client = Client(server.url)
    try:
        client.send("metrics-cam", base64.b64encode(shots[2].jpeg).decode())
        client.wait_results(1)
        health = server.health().json()
        assert health["status"] == "ok"
        assert set(health) >= {
            "status",
            "models",
            "uptime_s",
            "clients",
            "cameras",
            "fps",
            "dropped",
            "memory",
        }
        assert health["clients"] >= 1 and "metrics-cam" in health["cameras"]
        models = health["models"]  # per profile
        assert [models[p]["reader"] for p in ("camera", "photo", "careful")] == [
            "vn_plate64",
            "vn_plate_g2",
            "vn_plate_g2",
        ]
        assert (models["camera"]["imgsz"], models["photo"]["imgsz"]) == (256, 480)
        text = requests.get(f"{server.url}/metrics", timeout=5).text
        families = {f.name: f for f in text_string_to_metric_families(text)}
        processed = [s for s in families["plates_frames_processed"].samples
                     if s.labels.get("camera") == "metrics-cam" and s.name.endswith("_total")]
        assert processed and processed[0].value >= 1
        assert "plates_stage_seconds" in families and "plates_connected_clients" in families
    finally:
        client.close()


def test_http_detect_accepts_its_body_forms_chunked_too_and_refuses_bad_ones(server, shots):
    shot = shots[0]
    url = f"{server.url}/detect"
    responses = [
        requests.post(url, files={"image": ("f.jpg", shot.jpeg, "image/jpeg")}, timeout=30),
        requests.post(url, data=shot.jpeg, headers={"Content-Type": "image/jpeg"}, timeout=30),
        requests.post(url, json={"image": base64.b64encode(shot.jpeg).decode()}, timeout=30),
        # a generator body goes chunked (no Content-Length), as streaming clients send it
        requests.post(url, data=iter([shot.jpeg[:1000], shot.jpeg[1000:]]),
                      headers={"Content-Type": "image/jpeg"}, timeout=30),
    ]
    for r in responses:
        assert r.status_code == 200, r.text
        texts = [d["text"] for d in r.json()["detections"]]
        assert shot.text in texts
    bad = requests.post(url, data=b"not an image", headers={"Content-Type": "image/jpeg"}, timeout=10)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_frame"
    assert requests.post(url, json={"nothing": 1}, timeout=10).status_code == 400
    assert (
        requests.post(url, data=b"x", headers={"Content-Type": "text/plain"}, timeout=10).status_code == 415
    )
    big = requests.post(
        url, data=b"\xff\xd8" + bytes(3_000_000), headers={"Content-Type": "image/jpeg"}, timeout=10
    )
    assert big.status_code == 413 and big.json()["error"]["code"] == "frame_too_large"
    endless = requests.post(url, data=iter([b"\xff\xd8"] + [bytes(1_000_000)] * 4),
                            headers={"Content-Type": "image/jpeg"}, timeout=10)  # chunked, over the limit
    assert endless.status_code == 413 and endless.json()["error"]["code"] == "frame_too_large"


def test_annotated_frame_only_when_asked(server, shots):
    client = Client(server.url)
    try:
        frame = base64.b64encode(shots[1].jpeg).decode()
        client.send("ann", frame, frame_id="plain")
        client.wait_results(1)
        time.sleep(0.3)
        client.send("ann", frame, frame_id="drawn", annotate=True)
        results = client.wait_results(2)
        by_id = {r["frame_id"]: r for r in results}
        assert "annotated_frame" not in by_id["plain"]
        assert by_id["drawn"]["annotated_frame"].startswith("data:image/jpeg;base64,")
    finally:
        client.close()


def test_limits_token_and_camera_count(tmp_path, shots):
    config = write_config(tmp_path, max_cameras=2, max_fps_per_camera=4, auth_token="s3cret")
    frame = base64.b64encode(shots[0].jpeg).decode()
    with running_server(tmp_path, config=config) as srv:
        refusals: list = []
        with pytest.raises(socketio.exceptions.ConnectionError):
            Client(srv.url, refusals=refusals)
        assert (
            refusals
            and refusals[0]["data"]["code"] == "unauthorized"
            and "token" in refusals[0]["data"]["message"]
        )
        client = Client(srv.url, auth={"token": "s3cret"})
        try:
            assert client.send("a", frame)["ok"] and client.send("b", frame)["ok"]
            third = client.send("c", frame)
            assert third["ok"] is False and third["error"]["code"] == "too_many_cameras"
            acks = [client.send("a", frame) for _ in range(12)]
            assert any(a.get("error", {}).get("code") == "rate_limited" for a in acks)
            subs = [client.sio.call("subscribe", {"camera_id": f"w{i}"}, timeout=10) for i in range(70)]
            assert subs[63] == {"ok": True} and subs[64]["error"]["code"] == "too_many_subscriptions"
            assert srv.health().status_code == 200
        finally:
            client.close()
        assert "bad or missing token" in srv.log()


def test_a_flood_of_connections_is_refused_past_max_clients_and_leaves_nothing_behind(tmp_path, shots):
    frame = base64.b64encode(shots[0].jpeg).decode()
    with running_server(tmp_path, config=write_config(tmp_path, max_clients=3)) as srv:
        camera, watchers = Client(srv.url), [Client(srv.url), Client(srv.url)]
        try:
            stream = threading.Thread(target=camera.stream, args=("gate", shots[0].jpeg, 5, 4.0, 5))
            stream.start()
            refusals: list = []
            flood_started = time.monotonic()
            for _ in range(40):  # the server is full: every newcomer is told so, nobody else notices
                with pytest.raises(socketio.exceptions.ConnectionError):
                    Client(srv.url, refusals=refusals)
            flood_s = time.monotonic() - flood_started
            stream.join()
            assert len(refusals) == 40 and {r["data"]["code"] for r in refusals} == {"too_many_clients"}
            assert len(camera.wait_results(5)) >= 5 and not camera.errors
            assert srv.health().json()["clients"] == 3
        finally:
            camera.close()
            for watcher in watchers:
                watcher.close()
        for _ in range(30):  # warm-up: allocator pools
            Client(srv.url).close()
        before = srv.health().json()["memory"]["rss_mb"]
        for i in range(150):  # connect, watch, send, leave: what each leaves behind must go with it
            client = Client(srv.url)
            client.sio.call("subscribe", {"camera_id": f"w{i}"}, timeout=10)
            assert client.send(f"c{i % 5}", frame)["ok"]
            client.close()
        deadline = time.monotonic() + 10
        while srv.health().json()["clients"] and time.monotonic() < deadline:
            time.sleep(0.1)
        health = srv.health().json()
        assert health["clients"] == 0 and health["memory"]["rss_mb"] - before < 20, (before, health["memory"])
        last = Client(srv.url)  # and the server takes newcomers again
        try:
            assert last.send("gate", frame)["ok"] and last.wait_results(1)
        finally:
            last.close()
        # a line per 10 s, not per refusal
        assert 1 <= srv.log().count("3 clients already") <= 1 + flood_s // 10


def test_results_echo_frame_id_and_ts(server, shots):
    client = Client(server.url)
    try:
        client.send("echo", base64.b64encode(shots[3].jpeg).decode(), frame_id="f-42", ts=1234.5)
        result = client.wait_results(1)[0]
        assert result["frame_id"] == "f-42" and result["ts"] == 1234.5
        # a data URL and a binary attachment are frames too
        client.send(
            "echo", "data:image/jpeg;base64," + base64.b64encode(shots[3].jpeg).decode(), frame_id="url"
        )
        time.sleep(0.3)
        client.send("echo", shots[3].jpeg, frame_id="binary")
        results = client.wait_results(3)
        assert {r["frame_id"] for r in results} >= {"url", "binary"}
        assert all(alnum(r["detection"]["text"]) == alnum(shots[3].text) for r in results)
    finally:
        client.close()
