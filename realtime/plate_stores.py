"""Where the plate log keeps its events: a SQLite file (one machine) or PostgreSQL (several processes).

Both hold the same table, written by the same upsert and read by the same queries (written
with `?` placeholders; PostgreSQL's driver, psycopg 3, takes `%s`). `events.database` picks one:
a `postgresql://` URL, or else a SQLite path (relative to the repository root).
"""
from __future__ import annotations

import sqlite3
from contextlib import closing, contextmanager
from pathlib import Path
from time import monotonic, sleep

from detector.config import resolve
from realtime.redact import redacted

SETUP_S = 5.0  # a SQLite file another process is setting up is waited for this long at start-up
SETUP_LOCK = 0x706C61746573  # PostgreSQL: the advisory lock the processes set the table up under
TIMEOUT_S = 2  # PostgreSQL: connecting, and each statement, give up after this long (libpq's least: 2)

TABLES = (
    """CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY, camera_id TEXT NOT NULL, track_id INTEGER NOT NULL, text TEXT NOT NULL,
    confidence {real} NOT NULL, first_seen {real} NOT NULL, last_seen {real} NOT NULL,
    reads INTEGER NOT NULL, crop {blob})""",
    # plate lists (realtime/plate_lists.py): `changed` tells the other processes to reload a list
    "CREATE TABLE IF NOT EXISTS plate_lists (name TEXT PRIMARY KEY, description TEXT NOT NULL, "
    "changed {real} NOT NULL)",
    "CREATE TABLE IF NOT EXISTS list_plates (list TEXT NOT NULL, plate TEXT NOT NULL, label TEXT NOT NULL, "
    "valid_from TEXT, valid_until TEXT, PRIMARY KEY (list, plate))",
    # parking sessions (realtime/parking.py)
    """CREATE TABLE IF NOT EXISTS parking_sessions (
    id TEXT PRIMARY KEY, plate TEXT NOT NULL, status TEXT NOT NULL,
    entry_camera TEXT, entry_event TEXT, entry_at {real}, exit_camera TEXT, exit_event TEXT, exit_at {real},
    exit_plate TEXT, exit_match TEXT)""",
)
INDEXES = (
    "CREATE INDEX IF NOT EXISTS events_last_seen ON events (last_seen)",
    "CREATE INDEX IF NOT EXISTS events_text ON events (text{pattern})",  # prefix searches
    "CREATE INDEX IF NOT EXISTS events_camera_text ON events (camera_id, text, last_seen)",  # recall
    "CREATE INDEX IF NOT EXISTS sessions_plate ON parking_sessions (plate{pattern}, status)",
    "CREATE INDEX IF NOT EXISTS sessions_entry_event ON parking_sessions (entry_event)",
    "CREATE INDEX IF NOT EXISTS sessions_exit_event ON parking_sessions (exit_event)",
    "CREATE INDEX IF NOT EXISTS sessions_entry_at ON parking_sessions (entry_at)",
    "CREATE INDEX IF NOT EXISTS sessions_exit_at ON parking_sessions (exit_at)",
)
UPSERT = """
INSERT INTO events (id, camera_id, track_id, text, confidence, first_seen, last_seen, reads, crop)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT(id) DO UPDATE SET track_id=excluded.track_id, text=excluded.text, confidence=excluded.confidence,
    last_seen=excluded.last_seen, reads=excluded.reads, crop=COALESCE(excluded.crop, events.crop)
"""


class PlateLogError(Exception):
    """The plate log's database cannot be opened: the message names the setting and the place."""


class PlateLogUnavailable(Exception):
    """The database did not answer (a PostgreSQL server down or hung, a broken disk): the routes say 503."""


class Store:
    """What both stores share: a connection, a transaction on it, a statement run on it."""

    errors: tuple[type[Exception], ...]
    where: str

    def connect(self):
        raise NotImplementedError

    def transaction(self, db):
        """A context in which the statements run on `db` are one transaction, committed at its end."""
        raise NotImplementedError

    def run(self, db, sql: str, args: list) -> list[tuple]:
        """Run one statement (`?` placeholders) on `db`; its rows, if it returns any."""
        raise NotImplementedError

    def write(self, db, rows: list[tuple]) -> None:
        """Insert or update events (the plate log's batches)."""
        raise NotImplementedError

    def fetch(self, sql: str, args: list) -> list[tuple]:
        """One query on a connection of its own (the HTTP routes: they never share the writer's)."""
        with closing(self.connect()) as db:
            return self.run(db, sql, args)

    def execute(self, statements: list[tuple[str, list]]) -> None:
        """The statements in one transaction, on a connection of their own."""
        with closing(self.connect()) as db, self.transaction(db):
            for sql, args in statements:
                self.run(db, sql, args)

    @contextmanager
    def answering(self, what: str):
        """This store's errors inside, as PlateLogUnavailable naming `what` ("the plate lists") and where."""
        try:
            yield
        except self.errors as exc:
            raise PlateLogUnavailable(f"{what} ({self.where}) does not answer: "
                                      f"{type(exc).__name__}") from None


class SqliteStore(Store):
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
                    db.executescript(";\n".join([t.format(real="REAL", blob="BLOB") for t in TABLES]
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

    def transaction(self, db: sqlite3.Connection):
        return db

    def run(self, db: sqlite3.Connection, sql: str, args: list) -> list[tuple]:
        return db.execute(sql, args).fetchall()

    def write(self, db: sqlite3.Connection, rows: list[tuple]) -> None:
        with db:
            db.executemany(UPSERT, rows)


class PostgresStore(Store):
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
                for table in TABLES:
                    db.execute(table.format(real="DOUBLE PRECISION", blob="BYTEA"))
                for index in INDEXES:
                    db.execute(index.format(pattern=" text_pattern_ops"))
        except self._psycopg.Error as exc:
            raise PlateLogError(f"events.database: cannot use {self.where}: {exc}") from None

    def connect(self):
        return self._psycopg.connect(self.url, connect_timeout=TIMEOUT_S,
                                     options=f"-c statement_timeout={TIMEOUT_S * 1000}")

    def transaction(self, db):
        return db.transaction()

    def run(self, db, sql: str, args: list) -> list[tuple]:
        cursor = db.execute(sql.replace("?", "%s"), args)
        return cursor.fetchall() if cursor.description else []

    def write(self, db, rows: list[tuple]) -> None:
        with db.transaction():
            db.cursor().executemany(UPSERT.replace("?", "%s"), rows)


def open_store(database: str | Path) -> Store:
    """The store `events.database` names (PlateLogError where it cannot be used)."""
    database = str(database)
    store = PostgresStore(database) if is_postgres(database) else SqliteStore(resolve(Path(database)))
    store.setup()
    return store


def is_postgres(database: str) -> bool:
    return database.startswith(("postgresql://", "postgres://"))

