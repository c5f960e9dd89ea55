"""Where the plate log keeps its events: a SQLite file (one machine) or PostgreSQL (several processes).

Both hold the same table, written by the same upsert and read by the same queries (written
with `?` placeholders; PostgreSQL's driver, psycopg 3, takes `%s`). `events.database` picks one:
a `postgresql://` URL, or else a SQLite path (relative to the repository root).
"""
from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from time import monotonic, sleep

from detector.config import resolve
from realtime.redact import redacted

SETUP_S = 5.0  # a SQLite file another process is setting up is waited for this long at start-up
SETUP_LOCK = 0x706C61746573  # PostgreSQL: the advisory lock the processes set the table up under
TIMEOUT_S = 2  # PostgreSQL: connecting, and each statement, give up after this long (libpq's least: 2)

TABLE = """
CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY, camera_id TEXT NOT NULL, track_id INTEGER NOT NULL, text TEXT NOT NULL,
    confidence {real} NOT NULL, first_seen {real} NOT NULL, last_seen {real} NOT NULL,
    reads INTEGER NOT NULL, crop {blob})"""
INDEXES = (
    "CREATE INDEX IF NOT EXISTS events_last_seen ON events (last_seen)",
    "CREATE INDEX IF NOT EXISTS events_text ON events (text{pattern})",  # prefix searches
    "CREATE INDEX IF NOT EXISTS events_camera_text ON events (camera_id, text, last_seen)",  # recall
)
UPSERT = """
INSERT INTO events (id, camera_id, track_id, text, confidence, first_seen, last_seen, reads, crop)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT(id) DO UPDATE SET track_id=excluded.track_id, text=excluded.text, confidence=excluded.confidence,
    last_seen=excluded.last_seen, reads=excluded.reads, crop=COALESCE(excluded.crop, events.crop)
"""


class PlateLogError(Exception):
    """The plate log's database cannot be opened: the message names the setting and the place."""


class SqliteStore:
    """A SQLite file in WAL mode: a server killed mid-write leaves a readable database, and readers
    (GET /events) never wait for the writer."""

    errors = (sqlite3.Error,)

    def __init__(self, path: Path):
        self.path = Path(path)
        self.where = str(self.path)

    def setup(self) -> None:
        deadline = monotonic() + SETUP_S
        while True:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with closing(self.connect()) as db:
                    db.execute("PRAGMA journal_mode=WAL")
                    db.executescript(";\n".join([TABLE.format(real="REAL", blob="BLOB")]
                                                + [i.format(pattern="") for i in INDEXES]))
                return
            except sqlite3.OperationalError as exc:
                # processes sharing one file, started together: switching to WAL takes the file for a
                # moment and does not wait for it (busy timeout or not)
                if "locked" not in str(exc) or monotonic() > deadline:
                    raise PlateLogError(f"events.database: cannot use {self.where}: {exc}") from None
                sleep(0.05)
            except (OSError, sqlite3.Error) as exc:
                raise PlateLogError(f"events.database: cannot use {self.where}: {exc}") from None

    def connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=5, check_same_thread=False)
        db.execute("PRAGMA synchronous=NORMAL")
        return db

    def write(self, db: sqlite3.Connection, rows: list[tuple]) -> None:
        with db:
            db.executemany(UPSERT, rows)

    def fetch(self, sql: str, args: list) -> list[tuple]:
        with closing(self.connect()) as db:
            return db.execute(sql, args).fetchall()


class PostgresStore:
    """A PostgreSQL database that several server processes share (psycopg 3)."""

    def __init__(self, url: str):
        import psycopg

        self._psycopg = psycopg
        self.errors = (psycopg.Error,)
        self.url = url
        self.where = redacted(url)

    def setup(self) -> None:
        try:
            with self.connect() as db:
                # processes started together would race to create the table (IF NOT EXISTS is no lock)
                db.execute("SELECT pg_advisory_xact_lock(%s)", [SETUP_LOCK])
                db.execute(TABLE.format(real="DOUBLE PRECISION", blob="BYTEA"))
                for index in INDEXES:
                    db.execute(index.format(pattern=" text_pattern_ops" if "(text" in index else ""))
        except self._psycopg.Error as exc:
            raise PlateLogError(f"events.database: cannot use {self.where}: {exc}") from None

    def connect(self):
        return self._psycopg.connect(self.url, connect_timeout=TIMEOUT_S,
                                     options=f"-c statement_timeout={TIMEOUT_S * 1000}")

    def write(self, db, rows: list[tuple]) -> None:
        with db.transaction():
            db.cursor().executemany(UPSERT.replace("?", "%s"), rows)

    def fetch(self, sql: str, args: list) -> list[tuple]:
        with self.connect() as db:
            return db.execute(sql.replace("?", "%s"), args).fetchall()


def open_store(database: str | Path) -> SqliteStore | PostgresStore:
    """The store `events.database` names (PlateLogError where it cannot be used)."""
    database = str(database)
    store = PostgresStore(database) if is_postgres(database) else SqliteStore(resolve(Path(database)))
    store.setup()
    return store


def is_postgres(database: str) -> bool:
    return database.startswith(("postgresql://", "postgres://"))

