"""Several server processes joined by a real Redis (Debian redis-server on loopback): viewers see
any camera from any process, each camera is served by one process, and Redis trouble hurts no
process's own viewers."""
from __future__ import annotations

import base64
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import requests
import socketio

from deploy.cluster import nginx_config, start_nginx
from realtime.config import load_config
from tests.conftest import (
    ROOT,
    RunningServer,
    clear_shot,
    free_port,
    start_server,
    stop_server,
    wait_healthy,
    write_config,
)
from tests.test_events import EventClient, stream_in_order
from tests.test_server import Client


class RedisServer:
    """redis-server on a free loopback port, nothing saved; stopped, paused and started again by the tests."""

    def __init__(self, directory: Path):
        self.port, self.directory = free_port(), directory
        self.process: subprocess.Popen | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if redis.Redis(port=self.port, socket_timeout=0.5).ping():
                    return
            except redis.RedisError:
                time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)

    def pause(self) -> None:
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)


@dataclass
class Cluster:
    redis: RedisServer
    a: RunningServer
    b: RunningServer


def start_cluster(directory: Path, mode: str, database: str, lease_s: float = 5.0,
                  gate: dict | None = None) -> Cluster:
    """Redis, and two processes joined by it, sharing the plate log `database` (and `gate` settings)."""
    queue = RedisServer(directory)
    config = write_config(directory, database=database, gate=gate, message_queue=queue.url,
                          camera_lease_s=lease_s)
    a, b = (start_server(directory, config=config, args=["--async-mode", mode], wait=False) for _ in range(2))
    cluster = Cluster(queue, a, b)
    try:
        wait_healthy(a)
        wait_healthy(b)
    except BaseException:
        stop_cluster(cluster)
        raise
    return cluster


def stop_cluster(cluster: Cluster) -> None:
    for server in (cluster.a, cluster.b):
        if server.process.poll() is None:
            stop_server(server)
    cluster.redis.resume()
    cluster.redis.stop()


@pytest.fixture(scope="module", params=["eventlet", "threading"])
def cluster(request, tmp_path_factory, postgres):
    started = start_cluster(tmp_path_factory.mktemp(f"cluster-{request.param}"), request.param,
                            postgres.database())
    yield started
    stop_cluster(started)


class Viewer(Client):
    """A dashboard-like client: watches a camera, records its results and plate events with when they came."""

    def __init__(self, url: str, camera_id: str):
        super().__init__(url)
        self.events: list[dict] = []
        self.arrived: list[float] = []
        self.sio.on("plate_event", self.events.append)
        self.sio.on("detection_result", self._result)

        assert self.sio.call("subscribe", {"camera_id": camera_id}, timeout=10) == {"ok": True}

    def _result(self, result: dict) -> None:
        self.results.append(result)
        self.arrived.append(time.monotonic())

    def since(self, moment: float) -> int:
        return sum(1 for t in self.arrived if t > moment)


class Streamer:
    """A camera's sender streaming a picture (`frame`, base64: may be changed) at 8 fps in a thread of its own
    until stopped."""

    def __init__(self, client: Client, camera_id: str, jpeg: bytes):
        self.client, self.camera_id, self.frame = client, camera_id, base64.b64encode(jpeg).decode()
        self.acks: list[dict] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        i = 0
        while not self._stop.is_set() and self.client.sio.connected:
            payload = {"camera_id": self.camera_id, "frame": self.frame, "frame_id": i}
            self.client.sio.emit("video_frame", payload, callback=self.acks.append)
            i += 1
            time.sleep(1 / 8)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def wait_for(condition, timeout: float) -> bool:
    """Whether `condition()` came true within `timeout` seconds (a server not answering yet: not yet)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return True
        except requests.RequestException:
            pass
        time.sleep(0.05)
    return condition()


def health(server: RunningServer) -> dict:
    return requests.get(f"{server.url}/health", timeout=10).json()


def test_a_viewer_on_one_process_sees_a_camera_another_process_serves(cluster):
    shot = clear_shot("cluster-viewer")
    viewer = Viewer(cluster.b.url, "gate1")
    sender = Client(cluster.a.url)
    sender_events: list[dict] = []
    sender.sio.on("plate_event", sender_events.append)
    try:
        sender.stream("gate1", shot.jpeg, fps=8, seconds=3, until_results=10)
        assert wait_for(lambda: viewer.events and len(viewer.results) >= 10, 20)
        a, b = health(cluster.a), health(cluster.b)
    finally:
        sender.close()
        viewer.close()
    assert {r["camera_id"] for r in viewer.results} == {"gate1"}
    # what the viewer saw is what the sender got: the same frames, processed once, on A
    sent = {r["frame_id"]: r["detections"] for r in sender.results}
    assert all(sent.get(r["frame_id"], r["detections"]) == r["detections"] for r in viewer.results)
    assert [e["text"] for e in viewer.events] == [e["text"] for e in sender_events] == [shot.text]
    assert a["role"] == b["role"] == "member" and a["process"] != b["process"]
    assert a["owned_cameras"] == ["gate1"] and "gate1" in a["cameras"]
    assert b["owned_cameras"] == [] and "gate1" not in b["cameras"]
    assert a["message_queue"]["up"] and a["message_queue"]["published"] > 0
    assert "annotated_frame" not in viewer.results[0]
    # one plate log: either process answers the same
    logged = [requests.get(f"{s.url}/events?camera=gate1", timeout=10).json()["events"]
              for s in (cluster.a, cluster.b)]
    assert logged[0] == logged[1] and [e["text"] for e in logged[0]] == [shot.text]
    crops = [requests.get(f"{s.url}{logged[0][0]['crop_url']}", timeout=10) for s in (cluster.a, cluster.b)]
    assert crops[0].ok and crops[0].content == crops[1].content


def test_a_frame_sent_to_the_process_that_does_not_serve_its_camera_is_refused_naming_the_owner(cluster):
    shot = clear_shot("cluster-wrong-process")
    owner = Client(cluster.a.url)
    stray = Client(cluster.b.url)
    try:
        assert owner.send("gate9", base64.b64encode(shot.jpeg).decode(), 0) == {"ok": True}
        assert wait_for(lambda: "gate9" in health(cluster.a)["owned_cameras"], 10)
        ack = stray.send("gate9", base64.b64encode(shot.jpeg).decode(), 1)
    finally:
        owner.close()
        stray.close()
    assert ack["ok"] is False and ack["error"]["code"] == "wrong_process"
    assert health(cluster.a)["process"] in ack["error"]["message"]
    assert stray.errors and stray.errors[0]["code"] == "wrong_process" and not stray.results
    assert "gate9" not in health(cluster.b)["cameras"]
    metrics = requests.get(f"{cluster.b.url}/metrics", timeout=10).text
    assert 'plates_frames_refused_total{code="wrong_process"}' in metrics
    owner_metrics = requests.get(f"{cluster.a.url}/metrics", timeout=10).text
    assert "plates_queue_up 1.0" in owner_metrics and "plates_leases_owned" in owner_metrics
    assert "plates_queue_published_total" in owner_metrics and "plates_queue_dropped_total" in owner_metrics


def test_a_flood_of_camera_ids_is_refused_by_the_process_and_never_takes_a_lease(cluster):
    flooder = Client(cluster.b.url)
    frame = base64.b64encode(clear_shot("cluster-flood").jpeg).decode()
    try:
        acks = [flooder.send(f"flood{i}", frame, i) for i in range(20)]
    finally:
        flooder.close()
    most = load_config(ROOT / "config.yaml", env={}).server.max_cameras_per_client
    assert [a["ok"] for a in acks] == [True] * most + [False] * (20 - most)
    assert {a["error"]["code"] for a in acks[most:]} == {"too_many_cameras"}
    leases = redis.Redis(port=cluster.redis.port).keys("plates:camera:flood*")
    assert len(leases) <= most


def test_redis_hung_or_down_this_processs_viewers_keep_receiving_and_the_others_recover(cluster):
    shot = clear_shot("cluster-outage")
    here, there = Viewer(cluster.a.url, "gate2"), Viewer(cluster.b.url, "gate2")
    sender = Client(cluster.a.url)
    streamer = Streamer(sender, "gate2", shot.jpeg)
    try:
        assert wait_for(lambda: len(there.results) >= 5, 30)
        for outage in ("hung", "down"):
            cluster.redis.pause() if outage == "hung" else cluster.redis.stop()
            began = time.monotonic()
            time.sleep(3)
            # the sender's own viewers on A never wait on Redis
            assert here.since(began + 0.5) >= 8, outage
            report = health(cluster.a)
            assert report["status"] == "degraded" and not report["message_queue"]["up"], outage
            assert cluster.a.process.poll() is None and cluster.b.process.poll() is None
            cluster.redis.resume() if outage == "hung" else cluster.redis.start()
            back = time.monotonic()
            assert wait_for(lambda back=back: there.since(back) >= 3, 10), outage  # B's viewer gets A's again
            assert wait_for(lambda: health(cluster.a)["status"] == "ok", 10), outage
    finally:
        streamer.stop()
        sender.close()
        here.close()
        there.close()
    # the trouble was logged once in a while, not once per emit
    trouble = [line for line in cluster.a.log().splitlines() if "message queue" in line]
    assert 0 < len(trouble) <= 6, trouble


def test_a_killed_process_cameras_move_to_the_other_which_goes_on_with_its_events(tmp_path, postgres):
    cluster = start_cluster(tmp_path, "eventlet", postgres.database(), lease_s=2.0)
    first, second = clear_shot("cluster-failover-1"), clear_shot("cluster-failover-2")
    try:
        sender = EventClient(cluster.a.url)
        sender.stream("gate3", first.jpeg, fps=8, seconds=2, until_results=8)
        assert wait_for(lambda: sender.events, 20) and "gate3" in health(cluster.a)["owned_cameras"]
        cluster.a.process.kill()
        cluster.a.process.wait(10)
        moved = EventClient(cluster.b.url)  # the sender reconnects, and the load balancer sends it to B
        streamer = Streamer(moved, "gate3", first.jpeg)  # the same vehicle, still at the gate
        try:
            # refused while A's lease lasts (lease_s), then served by B
            assert wait_for(lambda: len(moved.results) >= 16, 30)
            assert not moved.events  # A announced it: B goes on with that event (the shared log says so)
            streamer.frame = base64.b64encode(second.jpeg).decode()  # the next vehicle
            assert wait_for(lambda: moved.events, 20)
            time.sleep(1.0)
        finally:
            streamer.stop()
            moved.close()
        codes = {a["error"]["code"] for a in streamer.acks if not a["ok"]}
        assert codes <= {"wrong_process"}
        assert [e["text"] for e in moved.events] == [second.text]
        logged = requests.get(f"{cluster.b.url}/events?camera=gate3", timeout=10).json()["events"]
        assert [e["text"] for e in logged] == [second.text, first.text]
        went_on, announced = logged[1], sender.events[0]  # A's event, seen on by B
        assert went_on["id"] == announced["id"] and went_on["last_seen"] > announced["last_seen"]
    finally:
        stop_cluster(cluster)


def test_behind_nginx_a_camera_always_reaches_its_process_and_a_polling_viewer_sees_it(tmp_path):
    cluster = start_cluster(tmp_path, "eventlet", str(tmp_path / "plates.sqlite3"))  # one machine: one file
    port = free_port()
    servers = [server.url.removeprefix("http://") for server in (cluster.a, cluster.b)]
    site, nginx = f"http://127.0.0.1:{port}", None
    shot = clear_shot("cluster-nginx")
    try:
        nginx = start_nginx(nginx_config(tmp_path / "nginx", f"127.0.0.1:{port}", servers))
        assert wait_for(lambda: requests.get(f"{site}/health", timeout=2).ok, 10)
        # the link is checked from start-up, before any client came
        assert wait_for(lambda: all(health(s)["message_queue"]["up"] for s in (cluster.a, cluster.b)), 10)
        # a viewer on long-polling only: every request of its session must reach the same process
        viewer = socketio.Client(reconnection=False)
        seen: list[dict] = []
        viewer.on("detection_result", seen.append)
        viewer.connect(site, transports=["polling"], wait_timeout=10)
        assert viewer.call("subscribe", {"camera_id": "gate5"}, timeout=10) == {"ok": True}
        acks = []
        for attempt in range(3):  # the sender reconnects: the same camera reaches the same process
            sender = Client(f"{site}/?camera=gate5")
            acks.append(sender.send("gate5", base64.b64encode(shot.jpeg).decode(), attempt))
            sender.wait_results(1)
            sender.close()
        assert wait_for(lambda: len(seen) >= 3, 20)
        viewer.disconnect()
        assert acks == [{"ok": True}] * 3
        owners = [s for s in (cluster.a, cluster.b) if "gate5" in health(s)["owned_cameras"]]
        assert len(owners) == 1 and {r["camera_id"] for r in seen} == {"gate5"}
    finally:
        if nginx is not None:
            nginx.terminate()
            nginx.wait(10)
        stop_cluster(cluster)


def test_a_list_made_on_one_process_opens_the_other_and_an_exit_there_closes_the_session(tmp_path, postgres):
    from tests.test_gate_server import GateClient, vehicle

    gate = {"lists_refresh_s": 1.0, "cameras": {
        "in": {"role": "entry", "allow": ["residents"], "on_match": ["emit"], "on_no_match": ["emit"]},
        "out": {"role": "exit", "open_unlisted": True, "on_match": ["emit"], "on_no_match": ["emit"]}}}
    cluster = start_cluster(tmp_path, "eventlet", postgres.database(), gate=gate)
    plate, frames = vehicle("cluster-gate")

    def decisions_at(server: RunningServer, camera: str) -> list[dict]:
        client = GateClient(server.url)
        try:
            stream_in_order(client, camera, frames)
            assert wait_for(lambda: client.decisions, 20), f"no decision at {camera}"
        finally:
            client.close()
        return client.decisions

    def sessions(server: RunningServer) -> list[dict]:
        return requests.get(f"{server.url}/sessions", timeout=10).json()["sessions"]

    try:
        added = requests.post(f"{cluster.a.url}/lists/residents/plates", json={"plate": plate}, timeout=10)
        assert added.status_code == 201
        assert wait_for(lambda: health(cluster.b)["gate"]["lists"]["plates"] == 1, 10)  # B reloads it
        entered = decisions_at(cluster.b, "in")
        assert [(d["plate"], d["decision"], d["list"]) for d in entered] == [(plate, "open", "residents")]
        time.sleep(1.0)
        left = decisions_at(cluster.a, "out")
        assert [(d["plate"], d["decision"]) for d in left] == [(plate, "open")]
        assert wait_for(lambda: [x["status"] for x in sessions(cluster.b)] == ["closed"], 10)
        (closed,) = sessions(cluster.a)  # the same session from both processes
        assert (closed["plate"], closed["entry_camera"], closed["exit_camera"]) == (plate, "in", "out")
        assert closed["dwell_s"] > 1.0
    finally:
        stop_cluster(cluster)
