"""The plate log: events in SQLite (WAL), written by a thread of its own, never on the event loop.

WAL mode means a server killed mid-write leaves a readable database (the last committed
events survive), and readers (GET /events) never wait for the writer.
"""
from __future__ import annotations

import logging
import sqlite3
from collections import deque
from contextlib import closing
from pathlib import Path
from time import monotonic, sleep

from realtime.events import PlateEvent
from realtime.threads import real_threading

log = logging.getLogger("plates")
ERROR_LOG_S = 60.0  # a failing disk is logged once in this long, not once per batch
SETUP_S = 5.0  # a database another process is setting up is waited for this long at start-up

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY, camera_id TEXT NOT NULL, track_id INTEGER NOT NULL, text TEXT NOT NULL,
    confidence REAL NOT NULL, first_seen REAL NOT NULL, last_seen REAL NOT NULL, reads INTEGER NOT NULL,
    crop BLOB);
CREATE INDEX IF NOT EXISTS events_last_seen ON events (last_seen);
CREATE INDEX IF NOT EXISTS events_text ON events (text);
"""
UPSERT = """
INSERT INTO events (id, camera_id, track_id, text, confidence, first_seen, last_seen, reads, crop)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT(id) DO UPDATE SET track_id=excluded.track_id, text=excluded.text, confidence=excluded.confidence,
    last_seen=excluded.last_seen, reads=excluded.reads, crop=COALESCE(excluded.crop, events.crop)
"""
COLUMNS = "id, camera_id, track_id, text, confidence, first_seen, last_seen, reads"


class PlateLogError(Exception):
    """The plate log's database cannot be opened: the message names the setting and the path."""


class PlateLog:
    def __init__(self, path: Path):
        self.path = Path(path)
        deadline = monotonic() + SETUP_S
        while True:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with closing(self._connect()) as db:
                    db.execute("PRAGMA journal_mode=WAL")
                    db.executescript(SCHEMA)
                break
            except sqlite3.OperationalError as exc:
                # processes sharing one file, started together: switching to WAL takes the file for a moment
                # and does not wait for it (busy timeout or not)
                if "locked" not in str(exc) or monotonic() > deadline:
                    raise PlateLogError(f"events.database: cannot use {self.path}: {exc}") from None
                sleep(0.05)
            except (OSError, sqlite3.Error) as exc:
                raise PlateLogError(f"events.database: cannot use {self.path}: {exc}") from None
        threading = real_threading()
        self._pending: deque[PlateEvent] = deque()
        self.write_errors = 0  # batches SQLite refused (reported by GET /health)
        self.last_error: str | None = None
        self.failing = False  # the last batch was refused: /health says degraded until one is written
        self._logged_error = -1e9  # when a refused batch was last logged
        self.written = 0  # events written (inserts and updates)
        self._closing = False
        self._wake = threading.Condition(threading.Lock())
        self._thread = threading.Thread(target=self._write_forever, name="plate-log", daemon=True)
        self._thread.start()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=5, check_same_thread=False)
        db.execute("PRAGMA synchronous=NORMAL")
        return db

    def record(self, event: PlateEvent) -> None:
        """Queue an insert-or-update; returns at once."""
        with self._wake:
            self._pending.append(event)
            self._wake.notify()

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until what was recorded so far is written (tests, shutdown)."""
        with self._wake:
            self._wake.wait_for(lambda: not self._pending, timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Write what was recorded (waiting `timeout` at most), then close the database (shutdown)."""
        with self._wake:
            self._closing = True
            self._wake.notify_all()
        self._thread.join(timeout)

    def _write_forever(self) -> None:
        db = self._connect()
        while True:
            with self._wake:
                self._wake.wait_for(lambda: self._pending or self._closing)
                if not self._pending:  # closing, and everything is written
                    db.close()
                    return
                batch = list(self._pending)
            rows = [
                (
                    e.id,
                    e.camera_id,
                    e.track_id,
                    e.text,
                    e.confidence,
                    e.first_seen,
                    e.last_seen,
                    e.reads,
                    e.crop,
                )
                for e in batch
            ]
            try:
                with db:
                    db.executemany(UPSERT, rows)
                self.failing = False
                self.written += len(rows)
            except sqlite3.Error as exc:  # a full or locked disk loses this batch, never the writer
                self.write_errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                self.failing = True
                if monotonic() - self._logged_error >= ERROR_LOG_S:
                    self._logged_error = monotonic()
                    log.error("plate log %s: %d event(s) not written: %s (%d refused batches so far)",
                              self.path, len(rows), self.last_error, self.write_errors)
            with self._wake:
                for _ in batch:
                    self._pending.popleft()
                self._wake.notify_all()

    def query(self, prefix: str = "", camera_id: str | None = None, since: float | None = None,
              until: float | None = None, limit: int = 100) -> list[dict]:
        sql, args = f"SELECT {COLUMNS} FROM events WHERE text LIKE ? ESCAPE '\\'", [_like_prefix(prefix)]
        if camera_id:
            sql, args = sql + " AND camera_id = ?", args + [camera_id]
        if since is not None:
            sql, args = sql + " AND last_seen >= ?", args + [since]
        if until is not None:
            sql, args = sql + " AND first_seen <= ?", args + [until]
        sql += " ORDER BY last_seen DESC LIMIT ?"
        with closing(self._connect()) as db:
            rows = db.execute(sql, args + [limit]).fetchall()
        names = [c.strip() for c in COLUMNS.split(",")]
        return [dict(zip(names, row)) for row in rows]

    def crop(self, event_id: str) -> bytes | None:
        with closing(self._connect()) as db:
            row = db.execute("SELECT crop FROM events WHERE id = ?", (event_id,)).fetchone()
        return row[0] if row else None


def _like_prefix(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
