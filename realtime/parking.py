"""Parking sessions: a vehicle's entry and exit, paired by plate, with how long it stayed.

An `entry` camera's plate event opens a session for its plate; the next `exit` camera's event of
the same plate (exact, or one known reader confusion away: detector/plate_match.py) closes the
newest open one. The database does the pairing, so an entry seen by one process and an exit by
another (PostgreSQL) pair all the same. Updates run on the plate log's writer thread, never on
the loop. A session's status says what was seen:
    open       entered, not out yet (flagged `overdue` past gate.session_overdue_h)
    closed     entered and left: dwell_s
    no_entry   seen leaving, never entering (flagged)
    no_exit    entered, then entered again with no exit between (flagged; the new entry is open)
An event whose text is corrected (the event book announces it again) corrects its session.
"""
from __future__ import annotations

import csv
import io
import uuid
from time import time

from detector.plate_match import near_keys, plate_key
from realtime.events import PlateEvent
from realtime.plate_log import PlateLog, like_prefix

COLUMNS = ("id", "plate", "status", "entry_camera", "entry_event", "entry_at", "exit_camera", "exit_event",
           "exit_at", "exit_plate", "exit_match")
FLAGGED = ("no_entry", "no_exit")
CSV_FIELDS = ("plate", "status", "flags", "entry_camera", "entry_at", "exit_camera", "exit_at", "dwell_s",
              "exit_plate", "exit_match", "id")


class ParkingSessions:
    def __init__(self, plate_log: PlateLog, overdue_h: float):
        self.plate_log, self.store = plate_log, plate_log.store
        self.overdue_s = overdue_h * 3600

    def entry(self, event: PlateEvent) -> None:
        self.plate_log.run(lambda db: self._enter(db, event))

    def exit(self, event: PlateEvent) -> None:
        self.plate_log.run(lambda db: self._leave(db, event))

    def _enter(self, db, event: PlateEvent) -> None:
        run, key = self.store.run, plate_key(event.text)
        opened = run(db, "SELECT id FROM parking_sessions WHERE entry_event = ?", [event.id])
        if opened:  # the same vehicle, its text corrected
            run(db, "UPDATE parking_sessions SET plate = ? WHERE id = ?", [key, opened[0][0]])
            return
        run(db, "UPDATE parking_sessions SET status = 'no_exit' WHERE plate = ? AND status = 'open'", [key])
        run(db, "INSERT INTO parking_sessions (id, plate, status, entry_camera, entry_event, entry_at) "
                "VALUES (?, ?, 'open', ?, ?, ?)", [uuid.uuid4().hex, key, event.camera_id, event.id,
                                                   event.first_seen])

    def _leave(self, db, event: PlateEvent) -> None:
        run = self.store.run
        seen = run(db, "SELECT id, status FROM parking_sessions WHERE exit_event = ?", [event.id])
        if seen and seen[0][1] == "closed":  # this exit already closed its vehicle's session
            return
        keys = near_keys(event.text)
        marks = ", ".join("?" * len(keys))
        found = run(db, "SELECT id, plate, entry_at FROM parking_sessions "
                        f"WHERE status = 'open' AND plate IN ({marks})", [k for k, _ in keys])
        rank = {k: i for i, (k, _) in enumerate(keys)}
        exit_fields = [event.camera_id, event.id, event.first_seen, plate_key(event.text)]
        if found:
            session_id, plate, _ = min(found, key=lambda s: (rank[s[1]], -s[2]))  # exact first, then newest
            how = keys[rank[plate]][1]
            if seen:  # first read as a plate seen nowhere, now corrected to one that entered
                run(db, "DELETE FROM parking_sessions WHERE id = ?", [seen[0][0]])
            run(db, "UPDATE parking_sessions SET status = 'closed', exit_camera = ?, exit_event = ?, "
                    "exit_at = ?, exit_plate = ?, exit_match = ? WHERE id = ?",
                exit_fields + [how.kind + (f": {how.detail}" if how.detail else ""), session_id])
        elif seen:
            run(db, "UPDATE parking_sessions SET plate = ?, exit_plate = ? WHERE id = ?",
                [exit_fields[3], exit_fields[3], seen[0][0]])
        else:
            run(db, "INSERT INTO parking_sessions (id, plate, status, exit_camera, exit_event, exit_at, "
                    "exit_plate) VALUES (?, ?, 'no_entry', ?, ?, ?, ?)",
                [uuid.uuid4().hex, exit_fields[3]] + exit_fields)

    def query(self, prefix: str = "", since: float | None = None, until: float | None = None,
              open_only: bool = False, flagged: bool = False, limit: int = 100) -> list[dict]:
        """Sessions whose plate starts with `prefix`, that entered or left within [since, until], newest
        first; `open_only`: vehicles inside now; `flagged`: those that need a look."""
        now = time()
        sql, args = (f"SELECT {', '.join(COLUMNS)} FROM parking_sessions WHERE plate LIKE ? ESCAPE '\\'",
                     [like_prefix(prefix)])
        if since is not None or until is not None:
            within = []
            for column in ("entry_at", "exit_at"):
                parts = [f"{column} >= ?"] * (since is not None) + [f"{column} <= ?"] * (until is not None)
                within.append("(" + " AND ".join(parts) + ")")
                args += [t for t in (since, until) if t is not None]
            sql += f" AND ({' OR '.join(within)})"
        if open_only:
            sql += " AND status = 'open'"
        if flagged:
            sql += " AND (status IN ('no_entry', 'no_exit') OR (status = 'open' AND entry_at < ?))"
            args.append(now - self.overdue_s)
        sql += " ORDER BY COALESCE(exit_at, entry_at) DESC LIMIT ?"
        with self.store.answering("the parking sessions"):
            rows = self.store.fetch(sql, args + [limit])
        return [self._session(dict(zip(COLUMNS, row)), now) for row in rows]

    def _session(self, row: dict, now: float) -> dict:
        status, entered, left = row["status"], row["entry_at"], row["exit_at"]
        overdue = status == "open" and entered is not None and now - entered > self.overdue_s
        return {**row, "dwell_s": round(left - entered, 1) if status == "closed" else None,
                "inside_s": round(now - entered, 1) if status == "open" else None,
                "flags": [status] * (status in FLAGGED) + ["overdue"] * overdue}


def sessions_csv(sessions: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for s in sessions:
        writer.writerow({**{k: "" if v is None else v for k, v in s.items()}, "flags": ";".join(s["flags"])})
    return out.getvalue()
