"""Plate lists: named lists of plates (`residents`, `blocked`...) in the plate-log database.

Managed over HTTP (/lists) and imported or exported as CSV; matched on the loop side from an
index held in memory, so a gate decision never waits on the database. Each process reloads the
index when a list changes: at once for its own changes, within `gate.lists_refresh_s` for another
process's (a thread of its own compares the lists' change times).
"""
from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import date
from time import time

from detector.plate_format import alnum
from detector.plate_match import near_keys, plate_key
from realtime.plate_stores import PlateLogUnavailable, Store
from realtime.threads import real_threading
from realtime.throttle import Throttle

log = logging.getLogger("plates")
LIST_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MAX_LABEL = 200
MAX_IMPORT = 20_000  # plates one CSV import may hold (a site's residents: hundreds to thousands)
CSV_FIELDS = ("plate", "label", "valid_from", "valid_until")
ERROR_LOG_S = 60.0  # a database away is logged once in this long, not at every refresh


class ListError(ValueError):
    """A request about lists that cannot be done: `status` 400 (bad input) or 404 (no such list)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ListedPlate:
    list: str
    plate: str  # canonical (detector/plate_match.py plate_key)
    label: str = ""
    valid_from: str | None = None  # first day it counts (YYYY-MM-DD, the server's local date), None: always
    valid_until: str | None = None  # last day it counts

    def valid_on(self, day: str) -> bool:
        return (self.valid_from or day) <= day <= (self.valid_until or day)


@dataclass(frozen=True)
class ListMatch:
    """A read found on a list, and how: `exact`, or `confusion` with what was misread."""

    list: str
    plate: str  # as listed
    label: str
    kind: str
    detail: str

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        """residents: 51F-123.46, confusion (6 read as 5 in the number)"""
        return f"{self.list}: {self.plate}, {self.kind}" + (f" ({self.detail})" if self.detail else "")


class PlateLists:
    def __init__(self, store: Store, refresh_s: float):
        self.store, self.refresh_s = store, refresh_s
        self._index: dict[str, list[ListedPlate]] = {}  # plate key -> its entries on every list
        self._signature: tuple | None = None
        self.counts = {"lists": 0, "plates": 0}
        self.reload_error: str | None = None
        self._log_throttle = Throttle(ERROR_LOG_S)

    # ------------------------------------------------------------------ matching (loop side, in memory)

    def match(self, text: str, names: Iterable[str], day: str) -> ListMatch | None:
        """The best match of a read on these lists (exact before a confusion), counting only entries valid on
        `day`; None: on none of them."""
        names = set(names)
        if not names or not text:
            return None
        index = self._index
        for key, how in near_keys(text):
            for entry in index.get(key, ()):
                if entry.list in names and entry.valid_on(day):
                    return ListMatch(entry.list, entry.plate, entry.label, how.kind, how.detail)
        return None

    # ------------------------------------------------------------------ keeping the index fresh

    def start(self) -> None:
        """Load the lists, then keep them fresh (a database away at start: the refresh thread tries again)."""
        try:
            self.reload()
        except PlateLogUnavailable as exc:
            self.reload_error = str(exc)
        real_threading().Thread(target=self._refresh_forever, name="plate-lists", daemon=True).start()

    def _refresh_forever(self) -> None:
        sleep = real_threading().Event().wait
        while True:
            sleep(self.refresh_s)
            try:
                self.reload(only_if_changed=True)
            except PlateLogUnavailable as exc:  # the database away: the lists in memory stand
                self.reload_error = str(exc)
                if self._log_throttle.due():
                    log.error("plate lists not reloaded: %s", exc)

    def reload(self, only_if_changed: bool = False) -> None:
        signature = tuple(self._fetch("SELECT COUNT(*), COALESCE(SUM(changed), 0) FROM plate_lists", [])[0])
        if only_if_changed and signature == self._signature:
            return
        index: dict[str, list[ListedPlate]] = {}
        rows = self._fetch("SELECT list, plate, label, valid_from, valid_until FROM list_plates", [])
        for row in rows:
            entry = ListedPlate(*row)
            index.setdefault(entry.plate, []).append(entry)
        self._index, self._signature, self.reload_error = index, signature, None
        self.counts = {"lists": signature[0], "plates": len(rows)}

    def _fetch(self, sql: str, args: list) -> list[tuple]:
        with self.store.answering("the plate lists"):
            return self.store.fetch(sql, args)

    def _change(self, statements: list[tuple[str, list]]) -> None:
        with self.store.answering("the plate lists"):
            self.store.execute(statements)
        self.reload()

    # ------------------------------------------------------------------ managing (GET/PUT/POST/DELETE /lists)

    def lists(self) -> list[dict]:
        rows = self._fetch("SELECT l.name, l.description, l.changed, COUNT(p.plate) FROM plate_lists l "
                           "LEFT JOIN list_plates p ON p.list = l.name "
                           "GROUP BY l.name, l.description, l.changed ORDER BY l.name", [])
        return [{"name": n, "description": d, "changed": c, "plates": k} for n, d, c, k in rows]

    def plates(self, name: str) -> list[dict]:
        self._known(name)
        rows = self._fetch("SELECT list, plate, label, valid_from, valid_until FROM list_plates "
                           "WHERE list = ? ORDER BY plate", [name])
        return [asdict(ListedPlate(*row)) for row in rows]

    def create(self, name: str, description: str = "") -> None:
        _check_name(name)
        if not isinstance(description, str) or len(description) > MAX_LABEL:
            raise ListError(f"description: a text of at most {MAX_LABEL} characters")
        self._change([("INSERT INTO plate_lists (name, description, changed) VALUES (?, ?, ?) "
                       "ON CONFLICT (name) DO UPDATE SET description = excluded.description, "
                       "changed = excluded.changed", [name, description, time()])])

    def delete(self, name: str) -> None:
        self._known(name)
        self._change([("DELETE FROM list_plates WHERE list = ?", [name]),
                      ("DELETE FROM plate_lists WHERE name = ?", [name])])

    def add(self, name: str, entries: list[dict], replace: bool = False,
            where: Callable[[int], str] | None = None) -> list[ListedPlate]:
        """Add (or update) plates on a list, made if it is new; `replace`: they become the whole list.
        `where(i)` names entry i in an error (default: "plate", or "plate 3" of several)."""
        _check_name(name)
        where = where or (lambda i: "plate" if len(entries) == 1 else f"plate {i + 1}")
        plates = [listed_plate(name, e, where(i)) for i, e in enumerate(entries)]
        statements = [("INSERT INTO plate_lists (name, description, changed) VALUES (?, '', ?) "
                       "ON CONFLICT (name) DO UPDATE SET changed = excluded.changed", [name, time()])]
        if replace:
            statements.append(("DELETE FROM list_plates WHERE list = ?", [name]))
        statements += [("INSERT INTO list_plates (list, plate, label, valid_from, valid_until) "
                        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (list, plate) DO UPDATE SET "
                        "label = excluded.label, valid_from = excluded.valid_from, "
                        "valid_until = excluded.valid_until",
                        [p.list, p.plate, p.label, p.valid_from, p.valid_until]) for p in plates]
        self._change(statements)
        return plates

    def remove(self, name: str, plate: str) -> None:
        self._known(name)
        key = plate_key(plate)
        if not self._fetch("SELECT 1 FROM list_plates WHERE list = ? AND plate = ?", [name, key]):
            raise ListError(f"{key} is not on {name}", 404)
        self._change([("DELETE FROM list_plates WHERE list = ? AND plate = ?", [name, key]),
                      ("UPDATE plate_lists SET changed = ? WHERE name = ?", [time(), name])])

    def import_csv(self, name: str, text: str, replace: bool) -> list[ListedPlate]:
        """A CSV with a header naming `plate` (and optionally label, valid_from, valid_until)."""
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames or "plate" not in [f.strip().lower() for f in reader.fieldnames]:
            raise ListError(f"CSV: the first line must name the columns: {','.join(CSV_FIELDS)}")
        entries = []
        for row in reader:
            if len(entries) >= MAX_IMPORT:
                raise ListError(f"CSV: at most {MAX_IMPORT} plates at once")
            entries.append({(k or "").strip().lower(): (v or "").strip() for k, v in row.items()})
        return self.add(name, entries, replace, where=lambda i: f"CSV line {i + 2}")  # the header is line 1

    def export_csv(self, name: str) -> str:
        out = io.StringIO()
        writer = csv.DictWriter(out, CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in self.plates(name):
            writer.writerow({k: v or "" for k, v in row.items()})
        return out.getvalue()

    def _known(self, name: str) -> None:
        _check_name(name)
        if not self._fetch("SELECT 1 FROM plate_lists WHERE name = ?", [name]):
            raise ListError(f"no list named {name}", 404)


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not LIST_NAME.match(name):
        raise ListError("a list's name is 1-64 characters of A-Z a-z 0-9 _ . -")


def listed_plate(name: str, entry: object, where: str) -> ListedPlate:
    """A plate to list from `{plate, label?, valid_from?, valid_until?}`; ListError names what is wrong."""
    if not isinstance(entry, dict):
        raise ListError(f"{where}: expected an object {{plate, label, valid_from, valid_until}}")
    plate = entry.get("plate")
    if not isinstance(plate, str) or not 4 <= len(alnum(plate)) <= 12:
        raise ListError(f"{where}: expected a plate's text (4-12 letters and digits), got {plate!r}")
    label = entry.get("label") or ""
    if not isinstance(label, str) or len(label) > MAX_LABEL:
        raise ListError(f"{where}: label must be a text of at most {MAX_LABEL} characters")
    days = []
    for field in ("valid_from", "valid_until"):
        value = entry.get(field) or None
        if value is not None:
            try:
                value = date.fromisoformat(value).isoformat() if isinstance(value, str) else None
            except ValueError:
                value = None
            if value is None:
                raise ListError(f"{where}: {field} must be a date, YYYY-MM-DD, got {entry.get(field)!r}")
        days.append(value)
    if days[0] and days[1] and days[0] > days[1]:
        raise ListError(f"{where}: valid_from is after valid_until")
    return ListedPlate(name, plate_key(plate), label, *days)
