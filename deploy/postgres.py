"""A throw-away PostgreSQL server on loopback, for `make cluster --postgres` and the tests."""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """Debian's PostgreSQL in a folder of its own on a loopback port (as the postgres user when run as
    root: PostgreSQL refuses root), with trust authentication, nothing kept: removed when stopped."""

    def __init__(self, port: int | None = None) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not found:
            raise RuntimeError("PostgreSQL is missing: install the Debian package postgresql (make test)")
        self.bin, self.port = Path(found[-1]).parent, port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="plates-pg-"))
        as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if as_postgres:
            shutil.chown(self.dir, "postgres")
        self._run = lambda *cmd: subprocess.run(as_postgres + [str(self.bin / cmd[0]), *cmd[1:]], check=True,
                                                capture_output=True)
        self._run("initdb", "-D", str(self.dir / "data"), "-A", "trust", "-U", "plates")
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-l", str(self.dir / "log"), "-w", "start", "-o",
                  f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off")
        self._databases = 0

    def database(self) -> str:
        """The URL of a new, empty database."""
        import psycopg

        self._databases += 1
        name = f"plates{self._databases}"
        with psycopg.connect(f"postgresql://plates@127.0.0.1:{self.port}/postgres", autocommit=True) as db:
            db.execute(f"CREATE DATABASE {name}")
        return f"postgresql://plates@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)
