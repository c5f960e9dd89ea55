"""Shared helpers: the real server in a subprocess on a free loopback port, rendered frames."""
from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import yaml

from deploy.postgres import PostgresServer, free_port  # noqa: F401  (free_port: re-exported)
from detector.boxes import iou  # noqa: F401  (re-exported for the tests)
from training.synth import Scene, encode_jpeg, render_scene

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts"





@dataclass
class Shot:
    """One rendered frame with a single clearly visible plate, and its truth."""

    scene: Scene
    jpeg: bytes

    @property
    def text(self) -> str:
        return self.scene.plates[0].spec.text

    @property
    def box(self):
        return self.scene.plates[0].box


def clear_shot(seed: str, layout: str | None = None) -> Shot:
    """A frame whose one plate is big enough to read (what a gate camera sees): rows of 25+ px."""
    for attempt in range(200):
        rng = random.Random(f"{seed}:{attempt}")
        scene = render_scene(rng, n_plates=1, layouts=[layout] if layout else None)
        min_height = 45 if scene.plates and scene.plates[0].spec.layout == "one_row" else 60
        if scene.plates and scene.plates[0].box[3] - scene.plates[0].box[1] >= min_height:
            return Shot(scene, encode_jpeg(scene.image, 90))
    raise AssertionError("no clear shot rendered")


def write_config(tmp_path: Path, database: Path | None = None, gate: dict | None = None,
                 careful: dict | None = None, **server) -> Path:
    """config.yaml with some server (gate, careful) settings replaced and a plate log of its own, in
    tmp_path."""
    data = yaml.safe_load((ROOT / "config.yaml").read_text())
    data["server"].update(server)
    data["gate"].update(gate or {})
    data["careful"].update(careful or {})
    data["events"]["database"] = str(database or tmp_path / "plates.sqlite3")
    path = tmp_path / f"config-{len(list(tmp_path.glob('config-*')))}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@dataclass
class RunningServer:
    url: str
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def health(self, timeout: float = 5.0) -> requests.Response:
        return requests.get(f"{self.url}/health", timeout=timeout)


def start_server(log_dir: Path, config: Path | None = None, args: list[str] = (), env: dict | None = None,
                 wait: bool = True, port: int | None = None) -> RunningServer:
    port = port or free_port()
    log_path = log_dir / f"server-{port}-{time.monotonic_ns()}.log"
    config = config or write_config(log_dir)  # never the repo's own plate log
    cmd = [sys.executable, str(ROOT / "server.py"), "--port", str(port), "--config", str(config)] + list(args)
    log_file = open(log_path, "w")
    process = subprocess.Popen(cmd, cwd=ROOT, stdout=log_file, stderr=subprocess.STDOUT,
                               env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
    server = RunningServer(f"http://127.0.0.1:{port}", process, log_path)
    if wait:
        try:
            wait_healthy(server)
        except BaseException:  # a server that never became healthy is not left running (it held a core)
            stop_server(server)
            raise
    return server


def wait_healthy(server: RunningServer, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(f"server exited with {server.process.returncode}:\n{server.log()}")
        try:
            if server.health(timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise AssertionError(f"server not healthy after {timeout}s:\n{server.log()}")


def stop_server(server: RunningServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(10)


@contextmanager
def running_server(log_dir: Path, **kwargs):
    server = start_server(log_dir, **kwargs)
    try:
        yield server
    finally:
        stop_server(server)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def postgres():
    server = PostgresServer()
    yield server
    server.stop()
