"""Hostile and careless peers against the real server, while a canary camera streams (issue 22).

    python -m bench.hostile                              # every case, a 10-minute soak, 20 stops
    python -m bench.hostile --soak-min 0 --stops 0 --cases detect_loops,malformed

A canary camera sends a rendered vehicle at 5 fps the whole time; each case runs beside it for
--case-s seconds, and the canary's latency (send -> result) over that time is printed with what
the case got back (target: canary p95 <= 150 ms in every case). The server runs with a token set,
as a site exposed to others would. Then the soak: six cameras at 10 fps for --soak-min minutes,
the server's RSS every 10 s, and its slope after the first minute (target <= 1 MB/min). Then
--stops times: a fresh server, three cameras streaming until plate events come, SIGTERM; a stop
counts when the process exits 0 and every announced event is in its plate log.
"""
from __future__ import annotations

import argparse
import socket
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import requests
import socketio
import websocket

from bench.stream_bench import ROOT, camera_frames, percentile, start_server

TOKEN = "bench-secret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Camera:
    """A camera client: frames at `fps` from its own thread; results' latencies by when they were sent."""

    def __init__(self, url: str, camera_id: str, fps: float, index: int = 0, token: str = TOKEN):
        self.frames = [jpeg for jpeg, _ in camera_frames(index, 10)]
        self.camera_id, self.fps = camera_id, fps
        self.sent: dict[int, float] = {}
        self.done: list[tuple[float, float]] = []  # (sent, latency ms)
        self.events: list[str] = []
        self.errors: Counter = Counter()
        self.sio = socketio.Client(reconnection=False)
        self.sio.on("detection_result", self._result)
        self.sio.on("plate_event", lambda e: self.events.append(e["id"]))
        self.sio.on("error", lambda e: self.errors.update([e["code"]]))
        self.sio.connect(url, auth={"token": token}, transports=["websocket"], wait_timeout=20)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _result(self, r: dict) -> None:
        at = self.sent.get(r["frame_id"])
        if at is not None:
            self.done.append((at, (time.perf_counter() - at) * 1000))

    def _run(self) -> None:
        start, i = time.perf_counter(), 0
        while not self._stop.is_set() and self.sio.connected:
            self.sent[i] = time.perf_counter()
            try:
                self.sio.emit("video_frame", {"camera_id": self.camera_id, "frame": self.frames[i % 10],
                                              "frame_id": i})
            except socketio.exceptions.SocketIOError:
                return
            i += 1
            self._stop.wait(max(0.0, start + i / self.fps - time.perf_counter()))

    def latencies(self, since: float, until: float) -> tuple[list[float], int]:
        """Latencies of the frames sent in [since, until), and how many of those were sent."""
        sent = sum(since <= t < until for t in self.sent.values())
        return [ms for t, ms in self.done if since <= t < until], sent

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sio.disconnect()


def _raw_ws(url: str, **headers) -> websocket.WebSocket:
    ws = websocket.create_connection(url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket",
                                     timeout=10, **headers)
    ws.recv()
    ws.send(f'40{{"token":"{TOKEN}"}}')
    ws.recv()
    return ws


def _client(url: str, codes: Counter | None = None) -> socketio.Client:
    """A connected Socket.IO client with the token; its `error` events' codes counted in `codes`."""
    sio = socketio.Client(reconnection=False)
    if codes is not None:
        sio.on("error", lambda e: codes.update([e["code"]]))
    sio.connect(url, auth={"token": TOKEN}, transports=["websocket"])
    return sio


def _send(sio: socketio.Client, payload: dict) -> str:
    """Send a frame and wait for its ack: "ok" or the error code."""
    return sio.call("video_frame", payload, timeout=10).get("error", {}).get("code", "ok")


def _together(tasks: list[Callable[[], None]]) -> None:
    """Run each task in a thread of its own, all at once, until all are done."""
    threads = [threading.Thread(target=task) for task in tasks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _until(seconds: float, step: Callable[[], None]) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        step()


# ------------------------------------------------------------------ the cases: each returns what it got back

def idle_connections(url: str, seconds: float) -> str:
    port = int(url.rsplit(":", 1)[1])
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(1050)]
    time.sleep(seconds)
    refused = 0
    for s in socks:
        s.settimeout(0.01)
        try:
            refused += s.recv(20).startswith(b"HTTP/1.1 503")
        except OSError:
            pass
        s.close()
    return f"1050 idle connections: {refused} got 503 too_many_connections"


def nan_ts(url: str, seconds: float) -> str:
    codes = Counter()
    sio = _client(url, codes)
    payload = {"camera_id": "nan", "frame": camera_frames(1, 1)[0][0], "ts": float("nan")}
    _until(seconds, lambda: (sio.emit("video_frame", payload), time.sleep(1 / 15)))
    sio.disconnect()
    return f"ts NaN: {dict(codes)}"


def many_camera_ids(url: str, seconds: float) -> str:
    sio, frame = _client(url), camera_frames(2, 1)[0][0]
    codes = Counter(_send(sio, {"camera_id": f"grab{k}", "frame": frame}) for k in range(20))
    time.sleep(seconds)
    sio.disconnect()
    return f"20 camera ids from one client: {dict(codes)}"


def hijack(url: str, seconds: float) -> str:
    sio, frame, codes = _client(url), camera_frames(3, 1)[0][0], Counter()

    def step() -> None:
        codes.update([_send(sio, {"camera_id": "canary", "frame": frame})])
        time.sleep(1 / 15)

    _until(seconds, step)
    sio.disconnect()
    return f"frames under the canary's id: {dict(codes)}"


def huge_pngs(url: str, seconds: float) -> str:
    png = cv2.imencode(".png", np.zeros((4096, 4096, 3), np.uint8))[1].tobytes()
    codes = Counter()

    def camera(k: int) -> None:
        sio = _client(url, codes)
        _until(seconds, lambda: (sio.emit("video_frame", {"camera_id": f"png{k}", "frame": png}),
                                 time.sleep(1 / 15)))
        sio.disconnect()

    _together([lambda k=k: camera(k) for k in range(4)])
    return f"4 cameras x 15 fps of {len(png) // 1000} KB PNGs of 4096x4096: {dict(codes)}"


def detect_loops(url: str, seconds: float) -> str:
    photo, statuses = camera_frames(4, 1)[0][0], Counter()

    def post() -> None:
        reply = requests.post(f"{url}/detect", data=photo, headers={**AUTH, "Content-Type": "image/jpeg"},
                              timeout=30)
        statuses.update([reply.status_code])

    _together([lambda: _until(seconds, post)] * 6)
    return f"six /detect loops: HTTP {dict(statuses)}"


def attachments(url: str, seconds: float) -> str:
    before = requests.get(f"{url}/health", timeout=5).json()["memory"]["rss_mb"]
    ws = _raw_ws(url)
    ws.send('45999999999-["video_frame",{"camera_id":"x","frame":{"_placeholder":true,"num":0}}]')
    sent = 0
    try:
        for _ in range(300):
            ws.send_binary(b"\0" * 1_000_000)
            sent += 1
    except OSError:
        pass
    ws.close()
    time.sleep(seconds)
    after = requests.get(f"{url}/health", timeout=5).json()["memory"]["rss_mb"]
    return f"a billion attachments announced, {sent} MB sent: RSS {before:.0f} -> {after:.0f} MB"


def malformed(url: str, seconds: float) -> str:
    ws, closed = _raw_ws(url), 0
    for k in range(2000):
        try:
            ws.send(["x", "4", "42[", "9999", "40{bad", ""][k % 6])
        except OSError:
            closed += 1
            ws = _raw_ws(url)
    ws.close()
    time.sleep(seconds)
    return f"2,000 malformed packets (empty frames among them): closed by the server {closed} times"


def one_frame_clients(url: str, seconds: float) -> str:
    frame = camera_frames(5, 1)[0][0]
    for k in range(300):
        sio = _client(url)
        _send(sio, {"camera_id": f"once{k}", "frame": frame})
        sio.disconnect()
    time.sleep(seconds)
    cameras = requests.get(f"{url}/health", timeout=5).json()["cameras"]
    return f"300 clients sent one frame each and left: cameras in /health after: {sorted(cameras)}"


def wrong_tokens(url: str, seconds: float) -> str:
    codes = Counter()
    for _ in range(300):
        sio = socketio.Client(reconnection=False)
        sio.on("connect_error", lambda e: codes.update([((e or {}).get("data") or {}).get("code", "?")]))
        try:
            sio.connect(url, auth={"token": "guess"}, transports=["websocket"], wait_timeout=5)
        except socketio.exceptions.ConnectionError:
            pass
    time.sleep(seconds)
    return f"300 wrong tokens from one address: {dict(codes)}"


def rebinding(url: str, seconds: float) -> str:
    host = f"evil.example:{url.rsplit(':', 1)[1]}"
    try:
        _raw_ws(url, host=host, origin=f"http://{host}").close()
        outcome = "accepted"
    except websocket.WebSocketBadStatusException as exc:
        outcome = f"refused ({exc.status_code})"
    time.sleep(seconds)
    return f"Origin equal to a rebound Host: {outcome}"


CASES = {f.__name__: f for f in (idle_connections, nan_ts, many_camera_ids, hijack, huge_pngs, detect_loops,
                                  attachments, malformed, one_frame_clients, wrong_tokens, rebinding)}


def run_cases(names: list[str], case_s: float, out: Path) -> None:
    server, url = start_server({"server": {"auth_token": TOKEN}}, out / "server-hostile.log")
    try:
        canary = Camera(url, "canary", fps=5)
        time.sleep(3)
        print(f"{'case':18}{'canary p95 ms':>14}{'answered':>10}  what the case got back")
        for name in ["quiet", *names]:
            since = time.perf_counter()
            outcome = "nothing hostile" if name == "quiet" else CASES[name](url, case_s)
            if name == "quiet":
                time.sleep(case_s)
            until = time.perf_counter()
            time.sleep(1.0)  # the last results of the case's time
            latencies, sent = canary.latencies(since, until)
            verdict = "PASS" if latencies and percentile(latencies, 95) <= 150 else "FAIL"
            answered = len(latencies) / max(1, sent)
            p95 = percentile(latencies, 95)
            print(f"{name:18}{p95!s:>9} {verdict}{answered:>10.0%}  {outcome}", flush=True)
        canary.close()
    finally:
        server.terminate()
        server.wait(30)


def soak(minutes: float, out: Path) -> None:
    server, url = start_server({}, out / "server-soak.log")
    try:
        cameras = [Camera(url, f"soak{k}", fps=10, index=k, token="") for k in range(6)]
        samples: list[tuple[float, float]] = []
        start = time.monotonic()
        while time.monotonic() - start < minutes * 60:
            time.sleep(10)
            rss = requests.get(f"{url}/health", timeout=5).json()["memory"]["rss_mb"]
            samples.append(((time.monotonic() - start) / 60, rss))
        for c in cameras:
            c.close()
        warm = [(t, r) for t, r in samples if t >= 1.0]
        slope = float(np.polyfit([t for t, _ in warm], [r for _, r in warm], 1)[0]) if len(warm) > 2 else None
        verdict = "PASS" if slope is not None and slope <= 1.0 else "FAIL"
        each_minute = [round(r) for t, r in samples if round(t * 6) % 6 == 0]
        print(f"soak: RSS MB each minute: {each_minute}")
        print(f"soak: six cameras x 10 fps for {minutes:g} min: RSS {samples[0][1]:.0f} -> "
              f"{samples[-1][1]:.0f} MB, slope after the first minute "
              f"{slope if slope is None else round(slope, 2)} MB/min {verdict}")
    finally:
        server.terminate()
        server.wait(30)


def stops(runs: int, out: Path) -> None:
    clean = 0
    for run in range(runs):
        log = out / f"server-stop-{run}.log"
        server, url = start_server({}, log)
        cameras = [Camera(url, f"stop{k}", fps=10, index=k, token="") for k in range(3)]
        deadline = time.monotonic() + 60
        while sum(len(c.events) for c in cameras) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(run % 4 * 0.25)  # the signal lands at different points of a batch
        server.terminate()
        try:
            code = server.wait(15)
        except Exception:
            server.kill()
            code = None
        announced = {e for c in cameras for e in c.events}
        for c in cameras:
            c.close()
        with sqlite3.connect(log.with_suffix(".sqlite3")) as db:
            logged = {row[0] for row in db.execute("SELECT id FROM events")}
        ok = code == 0 and announced and announced <= logged
        clean += bool(ok)
        print(f"stop {run + 1}: exit {code}, {len(announced)} events announced, "
              f"{len(announced - logged)} missing from the log", flush=True)
    print(f"SIGTERM while streaming: {clean} of {runs} clean {'PASS' if clean == runs else 'FAIL'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated, of: " + ", ".join(CASES))
    parser.add_argument("--case-s", type=float, default=10.0, help="seconds each case runs beside the canary")
    parser.add_argument("--soak-min", type=float, default=10.0, help="minutes of the soak (0: none)")
    parser.add_argument("--stops", type=int, default=20, help="SIGTERM runs (0: none)")
    parser.add_argument("--out", type=Path, default=ROOT / "artifacts" / "bench")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    names = [n for n in args.cases.split(",") if n]
    if unknown := [n for n in names if n not in CASES]:
        parser.error(f"unknown case(s): {', '.join(unknown)}")
    if names:
        run_cases(names, args.case_s, args.out)
    if args.soak_min:
        soak(args.soak_min, args.out)
    if args.stops:
        stops(args.stops, args.out)


if __name__ == "__main__":
    main()
