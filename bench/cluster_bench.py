"""Two server processes behind nginx, joined by Redis, against one process: the same cameras.

    python -m bench.cluster_bench                       # 12 cameras x 10 fps x 60 s, 2 processes
    python -m bench.cluster_bench --cameras 12 --processes 2 --duration 30

First one server process serves all the cameras (bench/stream_bench.py's camera clients, as its
own run); then redis-server, --processes server processes (server.message_queue set) and nginx
(deploy/nginx.conf, cameras routed by ?camera=) on loopback, and the same cameras stream to
nginx. Printed for each: frames offered, processed, and what the servers counted for the rest
(dropped, refused, waiting: every frame is one of these), processed fps, latency p50/p95 (send ->
result), exact reads; for the cluster also each process's frames and the Redis hop: a viewer
on every process watches every camera, and a result's hop is how much later it reached the
viewer of the process that does not serve its camera than the viewer of the one that does.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import subprocess
import threading
import time
from pathlib import Path

import requests

from bench.stream_bench import ROOT, free_port, percentile, run_camera, run_server, start_server, summarise
from deploy.cluster import nginx_config, start_nginx, start_redis, wait

COUNTED = ("frames", "dropped", "refused", "waiting", "ocr_calls")


def totals(urls: list[str]) -> dict:
    """The servers' /health counters, summed over the processes."""
    reports = [requests.get(f"{url}/health", timeout=5).json() for url in urls]
    return {key: sum(r.get(key, 0) for r in reports) for key in COUNTED}


class HopProbe:
    """A viewer on each process, each watching every camera; arrival times per (camera, frame)."""

    def __init__(self, urls: list[str], cameras: int):
        import socketio

        self.arrivals: dict[tuple[str, int], list[float]] = {}
        self._lock = threading.Lock()
        self.clients = []
        for url in urls:
            client = socketio.Client(reconnection=False)
            client.on("detection_result", self._arrived)
            client.connect(url, transports=["websocket"], wait_timeout=20)
            for i in range(cameras):
                client.call("subscribe", {"camera_id": f"bench{i}"}, timeout=10)
            self.clients.append(client)

    def _arrived(self, result: dict) -> None:
        with self._lock:
            key = (result["camera_id"], result["frame_id"])
            self.arrivals.setdefault(key, []).append(time.perf_counter())

    def hops_ms(self) -> list[float]:
        """Per result seen by every viewer: the last arrival after the first (the Redis hop)."""
        return [(max(t) - min(t)) * 1000 for t in self.arrivals.values() if len(t) == len(self.clients)]

    def close(self) -> None:
        for client in self.clients:
            client.disconnect()


def run_cluster(processes: int, cameras: int, fps: float, duration: float, out: Path) -> dict:
    run = out / "cluster"
    run.mkdir(parents=True, exist_ok=True)
    started: list[subprocess.Popen] = []
    try:
        redis_port = free_port()
        started.append(start_redis(redis_port, run))
        overrides = {"server": {"message_queue": f"redis://127.0.0.1:{redis_port}/0", "max_cameras": 16},
                     "events": {"database": str(run / "plates.sqlite3")}}  # one machine: one shared file
        urls = []
        for n in range(processes):
            process, url = start_server(overrides, run / f"server-{n}.log")
            started.append(process)
            urls.append(url)
        site_port = free_port()
        upstreams = [u.removeprefix("http://") for u in urls]
        started.append(start_nginx(nginx_config(run / "nginx", f"127.0.0.1:{site_port}", upstreams)))
        site = f"http://127.0.0.1:{site_port}"
        wait(lambda: requests.get(f"{site}/health", timeout=2).ok, "nginx", 10)
        probe = HopProbe(urls, cameras)
        before, frames_before = totals(urls), [totals([u])["frames"] for u in urls]
        ctx = mp.get_context("spawn")
        queue = ctx.Queue()
        clients = [ctx.Process(target=run_camera, args=(site, i, fps, duration, False, queue))
                   for i in range(cameras)]
        for client in clients:
            client.start()
        per_camera = [queue.get(timeout=duration + 120) for _ in clients]
        for client in clients:
            client.join(30)
        after, frames_after = totals(urls), [totals([u])["frames"] for u in urls]
        probe.close()
        report = summarise(per_camera, [], before, after, duration)
        hops = probe.hops_ms()
        report["redis_hop_ms"] = {"results": len(hops), "p50": percentile(hops, 50),
                                  "p95": percentile(hops, 95)}
        report["frames_per_process"] = [a - b for a, b in zip(frames_after, frames_before)]
        return report
    finally:
        for process in reversed(started):
            process.terminate()
        for process in started:
            process.wait(30)


def row(name: str, r: dict) -> str:
    counted = r["server_counted"]
    return (f"{name:<22} {r['offered']:>7} {r['processed']:>9} {counted['dropped']:>7} "
            f"{counted['refused']:>7} {r['unaccounted']:>11} {r['processed_fps']:>6} "
            f"{r['latency_ms']['p50']!s:>7} {r['latency_ms']['p95']!s:>7} {r['accuracy']!s:>6}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int, default=12)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--fps", type=float, default=10.0)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--out", type=Path, default=ROOT / "artifacts" / "bench")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    one = run_server({"server": {"max_cameras": 16}}, args.out / "cluster-single.log", args.cameras, args.fps,
                     args.duration, False)
    cluster = run_cluster(args.processes, args.cameras, args.fps, args.duration, args.out)
    print(f"{args.cameras} cameras x {args.fps:g} fps x {args.duration:g} s")
    print(f"{'':<22} {'offered':>7} {'processed':>9} {'dropped':>7} {'refused':>7} {'unaccounted':>11} "
          f"{'fps':>6} {'p50 ms':>7} {'p95 ms':>7} {'exact':>6}")
    print(row("one process", one))
    print(row(f"{args.processes} processes + nginx", cluster))
    hop = cluster["redis_hop_ms"]
    print(f"frames processed by each process: {cluster['frames_per_process']}; Redis hop (the other "
          f"process's viewer later by) p50 {hop['p50']} ms, p95 {hop['p95']} ms ({hop['results']} results)")
    path = args.out / f"cluster-{args.cameras}cam-{args.processes}proc.json"
    path.write_text(json.dumps({"one_process": one, "cluster": cluster}, indent=2, default=str))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
