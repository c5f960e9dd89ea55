"""Several plate servers behind nginx on this machine, joined by Redis (README: scale-out).

    python -m deploy.cluster                      # 2 processes behind http://127.0.0.1:8080
    python -m deploy.cluster --processes 4 --port 9000 --config my.yaml
    python -m deploy.cluster --postgres           # their plate log in a throw-away PostgreSQL

Starts redis-server (nothing saved to disk), N `server.py` processes (ports --base-port,
--base-port + 1, ...; each with MESSAGE_QUEUE set to that Redis, TRUSTED_PROXIES=1) and nginx
with deploy/nginx.conf, all on loopback; files and logs go to --run. Ctrl-C or SIGTERM stops
them all. The processes share the config's plate log (`events.database`), or with --postgres a
PostgreSQL server started here (its data is removed when the cluster stops).
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis
import requests
import yaml

from deploy.postgres import PostgresServer

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = Path(__file__).resolve().parent / "nginx.conf"


def nginx_config(run: Path, listen: str, servers: list[str]) -> Path:
    """deploy/nginx.conf for these upstream servers (HOST:PORT), written into run/."""
    text = TEMPLATE.read_text().replace("@RUN@", str(run)).replace("@LISTEN@", listen)
    text = text.replace("@SERVERS@", "\n        ".join(f"server {s};" for s in servers))
    run.mkdir(parents=True, exist_ok=True)
    path = run / "nginx.conf"
    path.write_text(text)
    return path


def start_nginx(config: Path) -> subprocess.Popen:
    """nginx in the foreground on `config` (its master process; stop it with terminate())."""
    check = subprocess.run(["nginx", "-t", "-q", "-p", str(config.parent), "-c", str(config)],
                           capture_output=True, text=True)
    if check.returncode:
        raise RuntimeError(f"nginx refused {config}: {check.stderr.strip()}")
    return subprocess.Popen(["nginx", "-p", str(config.parent), "-c", str(config), "-g", "daemon off;"])


def start_redis(port: int, run: Path) -> subprocess.Popen:
    process = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no", "--dir", str(run)], stdout=subprocess.DEVNULL)
    wait(lambda: redis.Redis(port=port, socket_timeout=0.5).ping(), "redis-server", 10)
    return process


def start_servers(
    count: int, base_port: int, queue: str, config: Path | None, run: Path
) -> list[subprocess.Popen]:
    processes = []
    for port in range(base_port, base_port + count):
        cmd = [sys.executable, str(ROOT / "server.py"), "--port", str(port)]
        log = open(run / f"server-{port}.log", "w")
        processes.append(subprocess.Popen(cmd + (["--config", str(config)] if config else []), cwd=ROOT,
                                          stdout=log, stderr=subprocess.STDOUT,
                                          env={**os.environ, "MESSAGE_QUEUE": queue, "TRUSTED_PROXIES": "1"}))
    for port in range(base_port, base_port + count):
        wait(lambda port=port: requests.get(f"http://127.0.0.1:{port}/health", timeout=2).ok,
             f"the server on port {port}", 180)
    return processes


def wait(ready, what: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if ready():
                return
        except Exception:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not come up in {seconds:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--port", type=int, default=8080, help="nginx's port: the one address clients use")
    parser.add_argument("--base-port", type=int, default=5101, help="the first server process's port")
    parser.add_argument("--redis-port", type=int, default=6390)
    parser.add_argument("--config", type=Path, help="the servers' config file (default: config.yaml)")
    parser.add_argument("--run", type=Path, default=ROOT / "runs" / "cluster", help="nginx's files, the logs")
    parser.add_argument("--postgres", action="store_true", help="the plate log in a PostgreSQL started here")
    args = parser.parse_args()
    run = args.run.resolve()
    run.mkdir(parents=True, exist_ok=True)
    started: list[subprocess.Popen] = []
    postgres = None
    signal.signal(signal.SIGTERM, stop)
    try:
        if args.postgres:
            postgres = PostgresServer()
            args.config = with_database(args.config, postgres.database(), run)
        started.append(start_redis(args.redis_port, run))
        queue = f"redis://127.0.0.1:{args.redis_port}/0"
        started += start_servers(args.processes, args.base_port, queue, args.config, run)
        servers = [f"127.0.0.1:{p}" for p in range(args.base_port, args.base_port + args.processes)]
        started.append(start_nginx(nginx_config(run, f"127.0.0.1:{args.port}", servers)))
        print(f"{args.processes} plate servers behind http://127.0.0.1:{args.port} (Redis {queue}); "
              f"logs in {run}. Ctrl-C stops them.", flush=True)
        while all(p.poll() is None for p in started):
            time.sleep(1)
        print("a process of the cluster exited: stopping the others", file=sys.stderr)
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    finally:
        for process in reversed(started):
            process.terminate()
        for process in started:
            process.wait(15)
        if postgres is not None:
            postgres.stop()


def stop(*_) -> None:
    """SIGTERM: stop the cluster once (a second signal while it stops would cut the stopping short)."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise SystemExit(0)


def with_database(config: Path | None, database: str, run: Path) -> Path:
    """A copy of the config (default config.yaml) in run/ whose plate log is `database`."""
    data = yaml.safe_load((config or ROOT / "config.yaml").read_text())
    data.setdefault("events", {})["database"] = database
    path = run / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


if __name__ == "__main__":
    main()
