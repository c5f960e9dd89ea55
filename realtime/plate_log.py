"""The plate log: events in SQLite or PostgreSQL (realtime/plate_stores.py), written by a thread of
its own, never on the event loop. The same thread runs the parking sessions' updates (realtime/parking.py),
in order with the events, on its one connection.
"""
from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from itertools import groupby
from pathlib import Path

from realtime.events import PlateEvent
from realtime.plate_stores import PlateLogError, PlateLogUnavailable, open_store
from realtime.threads import real_threading
from realtime.throttle import Throttle

__all__ = ["PlateLog", "PlateLogError", "PlateLogUnavailable"]

log = logging.getLogger("plates")
ERROR_LOG_S = 60.0  # a failing database is logged once in this long, not once per batch
COLUMNS = "id, camera_id, track_id, text, confidence, first_seen, last_seen, reads"


class PlateLog:
    def __init__(self, database: str | Path):
        self.store = open_store(database)
        threading = real_threading()
        self._pending: deque[PlateEvent | Callable] = deque()
        self.write_errors = 0  # batches the database refused (reported by GET /health)
        self.last_error: str | None = None
        self.failing = False  # the last batch was refused: /health says degraded until one is written
        self._log_throttle = Throttle(ERROR_LOG_S)
        self.written = 0  # events written (inserts and updates)
        self._closing = False
        self._wake = threading.Condition(threading.Lock())
        self._thread = threading.Thread(target=self._write_forever, name="plate-log", daemon=True)
        self._thread.start()

    def record(self, event: PlateEvent) -> None:
        """Queue an insert-or-update; returns at once."""
        with self._wake:
            self._pending.append(event)
            self._wake.notify()

    def run(self, job: Callable[[object], None]) -> None:
        """Queue `job(db)`, to run in one transaction on the writer's connection; returns at once."""
        with self._wake:
            self._pending.append(job)
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
        db = None  # connected at the first batch, again after a refused one (a database restarted)
        while True:
            with self._wake:
                self._wake.wait_for(lambda: self._pending or self._closing)
                if not self._pending:  # closing, and everything is written
                    if db is not None:
                        db.close()
                    return
                batch = list(self._pending)
            try:
                if db is None:
                    db = self.store.connect()
                for is_job, part in groupby(batch, callable):
                    if is_job:
                        for job in part:
                            with self.store.transaction(db):
                                job(db)
                    else:
                        rows = [(e.id, e.camera_id, e.track_id, e.text, e.confidence, e.first_seen,
                                 e.last_seen, e.reads, e.crop) for e in part]
                        self.store.write(db, rows)
                        self.written += len(rows)
                self.failing = False
            except self.store.errors as exc:  # a full disk, a database away: the batch lost, not the writer
                self.write_errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                self.failing = True
                if db is not None:
                    db.close()
                    db = None
                if self._log_throttle.due():
                    log.error("plate log %s: %d write(s) not written: %s (%d refused batches so far)",
                              self.store.where, len(batch), self.last_error, self.write_errors)
            except Exception:  # a job's own fault: its batch lost, not the writer
                log.exception("plate log: a write failed")
            with self._wake:
                for _ in batch:
                    self._pending.popleft()
                self._wake.notify_all()

    def query(self, prefix: str = "", camera_id: str | None = None, since: float | None = None,
              until: float | None = None, limit: int = 100) -> list[dict]:
        sql, args = f"SELECT {COLUMNS} FROM events WHERE text LIKE ? ESCAPE '\\'", [like_prefix(prefix)]
        if camera_id:
            sql, args = sql + " AND camera_id = ?", args + [camera_id]
        if since is not None:
            sql, args = sql + " AND last_seen >= ?", args + [since]
        if until is not None:
            sql, args = sql + " AND first_seen <= ?", args + [until]
        sql += " ORDER BY last_seen DESC LIMIT ?"
        names = [c.strip() for c in COLUMNS.split(",")]
        return [dict(zip(names, row)) for row in self._fetch(sql, args + [limit])]

    def crop(self, event_id: str) -> bytes | None:
        rows = self._fetch("SELECT crop FROM events WHERE id = ?", [event_id])
        return bytes(rows[0][0]) if rows and rows[0][0] is not None else None

    def _fetch(self, sql: str, args: list) -> list[tuple]:
        """The rows, or PlateLogUnavailable where the database does not answer (GET /events says 503)."""
        with self.store.answering("the plate log"):
            return self.store.fetch(sql, args)

    def recall(self, camera_id: str, text: str, since: float) -> PlateEvent | None:
        """The latest event of this plate on this camera seen since `since`, as the log has it (another
        process may have written it: the camera was served there before); None where there is none or the
        database does not answer (a new event then)."""
        sql = (f"SELECT {COLUMNS} FROM events WHERE camera_id = ? AND text = ? AND last_seen >= ? "
               "ORDER BY last_seen DESC LIMIT 1")
        try:
            rows = self._fetch(sql, [camera_id, text, since])
        except PlateLogUnavailable:
            return None
        if not rows:
            return None
        event_id, camera_id, track_id, text, confidence, first_seen, last_seen, reads = rows[0]
        return PlateEvent(camera_id, track_id, text, confidence, first_seen, last_seen, reads, None,
                          id=event_id)


def like_prefix(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
