"""Vietnamese plate formats: turn raw OCR rows into the canonical printed text.

Pure Python, no models. The reader gives one string per plate row; `normalise_rows`
fits them to the known layouts, fixes letter/digit confusions by position and says
whether the result is a real plate:

    one-row car        51F-123.45   29A-1234   51LD-123.45
    two-row car        51F / 123.45          -> 51F-123.45
    two-row motorbike  59-X1 / 123.45        -> 59-X1 123.45
                       60-AA / 499.10        -> 60-AA 499.10
                       60-MD1 / 011.61       -> 60-MD1 011.61   (MĐ electric, Đ written D)
    four-digit series  71LA-0072    (LA, SA, XA; RM trailers carry five: 36RM-000.81)
    military (red)     KP-47-90     CD-10-44   FH-14-68
    two-row military   QH / 54-54            -> QH-54-54
    old motorbike      60 / 737-HR           -> 60 737-HR      (series after the number: 43 475-M, 13 267-G9)

Texts are compared on A-Z0-9 only, so Đ is written D.
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

# Province / city codes in use (Circular 24/2023 annex; 39 Dong Nai and 41 Ho Chi Minh City are the
# newest), 80 = central agencies.
PROVINCE_CODES = frozenset(
    {11, 12, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33,
     34, 35, 36, 37, 38, 39, 40, 41, 43, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61,
     62, 63, 64, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 83,
     84, 85, 86, 88, 89, 90, 92, 93, 94, 95, 97, 98, 99}
)
# Codes no longer issued that old-style plates (60 737-HR) still carry on the road.
RETIRED_CODES = frozenset({13})
# Series letters: I, J, O, Q, W are never issued (they look like digits or other letters).
SERIES_LETTERS = frozenset("ABCDEFGHKLMNPRSTUVXYZ")
# Two-letter special series on cars: joint ventures, economic zones, diplomats, foreigners...
SPECIAL_SERIES = frozenset({"LD", "KT", "NG", "NN", "QT", "CV", "HC", "TD", "MD", "DA", "NM", "CD", "KD"})
# Two-letter car series that take one length of number only: LA, SA, XA four digits (71LA-0072),
# RM (trailers, "ro-mooc") five (36RM-000.81). Without them a 71LA-0072 read right became 71L-400.72.
FIXED_TAIL_SERIES = {"LA": 4, "SA": 4, "XA": 4, "RM": 5}
# Letters a series slot can hold: Q only appears in special series such as QT.
SLOT_LETTERS = SERIES_LETTERS | frozenset("".join(SPECIAL_SERIES | FIXED_TAIL_SERIES.keys()))
# First letters of military unit codes (red plates, e.g. KP-47-90, TM-12-34, CD-10-44, FH-14-68, DB-18-89).
MILITARY_FIRST = frozenset("ABCDFHKPQTV")

# Position-dependent confusions: what a character most likely was in a digit or a letter slot.
TO_DIGIT = {"O": "0", "D": "0", "Q": "0", "U": "0", "I": "1", "L": "1", "J": "1", "T": "1",
            "Z": "2", "S": "5", "B": "8", "G": "6", "A": "4", "E": "8"}
# (a letter slot may have several candidates: 0 is D on most plates, Q in the QT series)
TO_LETTER = {"0": "DQ", "1": "L", "2": "Z", "5": "S", "8": "B", "6": "G", "4": "A", "7": "T",
             "O": "DQ", "Q": "D", "I": "L", "J": "L"}


@dataclass(frozen=True)
class FormattedPlate:
    """A normalised plate: canonical text, whether it fits a real format, and its layout."""

    text: str
    valid: bool
    kind: str  # "car", "motorbike", "military" or "unknown"


def alnum(text: str) -> str:
    """Upper-case A-Z0-9 only, with Đ as D: the form plates are compared on."""
    return re.sub(r"[^A-Z0-9]", "", text.upper().replace("Đ", "D").replace("đ", "D"))


def edit_distance(a: str, b: str) -> int:
    """Characters to change, add or drop to turn one string into the other (Levenshtein)."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def _fit(chars: str, pattern: str) -> list[tuple[str, int]]:
    """Every way to force `chars` into a pattern of D (digit) / L (letter) slots, with its fix count."""
    if len(chars) != len(pattern):
        return []
    options, fixes = [], 0
    for ch, slot in zip(chars, pattern):
        if slot == "D" and not ch.isdigit():
            ch, fixes = TO_DIGIT.get(ch, ""), fixes + 1
        elif slot == "L" and (not ch.isalpha() or ch not in SLOT_LETTERS) and ch in TO_LETTER:
            ch, fixes = TO_LETTER[ch], fixes + 1
        if not ch:
            return []
        options.append(ch)
    return [("".join(letters), fixes) for letters in itertools.product(*options)]


def _digits(tail: str) -> str:
    """123.45 for five digits, 1234 for four (older plates)."""
    return f"{tail[:3]}.{tail[3:]}" if len(tail) == 5 else tail


def _series_ok(series: str, kind: str, tail: int) -> bool:
    letters = "".join(c for c in series if c.isalpha())
    if not all(c in SLOT_LETTERS for c in letters) or (len(letters) == 1 and letters not in SERIES_LETTERS):
        return False
    if len(letters) == 2 and kind == "car":
        return letters in SPECIAL_SERIES or FIXED_TAIL_SERIES.get(letters) == tail
    if len(letters) == 2 and len(series) == 2:  # motorbike 60-AA; LD, KT... are car series
        return letters not in SPECIAL_SERIES
    if len(series) == 3:  # motorbike 60-MD1: only the electric series carries two letters and a digit
        return letters == "MD"
    return True


@dataclass(frozen=True)
class _Layout:
    series: str  # slot pattern of the series after the province code, e.g. "L", "LD", "LLD"
    # number of trailing digits: 5 (123.45) or 4 (1234); on old plates, the number before the series
    tail: int
    kind: str
    old: bool = False  # an old motorbike plate: province on the top row, then number and series (60 737-HR)

    @property
    def pattern(self) -> str:
        if self.old:
            return "DD" + "D" * self.tail + self.series
        return ("" if self.kind == "military" else "DD") + self.series + "D" * self.tail

    @property
    def top_len(self) -> int:
        """Characters on the top row when the plate has two rows (a square military plate: its letters)."""
        return 2 if self.old else (0 if self.kind == "military" else 2) + len(self.series)


_CAR = [_Layout("L", 5, "car"), _Layout("L", 4, "car"), _Layout("LL", 5, "car"), _Layout("LL", 4, "car")]
_MOTO = [_Layout("LD", 5, "motorbike"), _Layout("LD", 4, "motorbike"), _Layout("LL", 5, "motorbike"),
         _Layout("LLD", 5, "motorbike"), _Layout("LLD", 4, "motorbike"), _Layout("LL", 4, "motorbike"),
         _Layout("LL", 3, "motorbike", old=True), _Layout("LD", 3, "motorbike", old=True),
         _Layout("L", 3, "motorbike", old=True)]
_MILITARY = [_Layout("LL", 4, "military")]


def _render(text: str, layout: _Layout, fixes: int) -> FormattedPlate:
    """Canonical string and validity of `text` already fitted to `layout` with `fixes` characters changed."""
    if layout.kind == "military":
        return FormattedPlate(f"{text[:2]}-{text[2:4]}-{text[4:]}", text[0] in MILITARY_FIRST, "military")
    if layout.old:
        province, number, series = text[:2], text[2:2 + layout.tail], text[2 + layout.tail:]
        # old plates are rare (one photo in a hundred of the gallery): only a read that fits one as read is
        # taken for one, else a current plate's misread digits pass for an old plate's series
        valid = (int(province) in PROVINCE_CODES | RETIRED_CODES and fixes == 0
                 and all(c in SERIES_LETTERS for c in series if c.isalpha()))
        return FormattedPlate(f"{province} {number}-{series}", valid, "motorbike")
    province, series, tail = text[:2], text[2:layout.top_len], text[layout.top_len:]
    digits = _digits(tail)
    valid = int(province) in PROVINCE_CODES and _series_ok(series, layout.kind, len(tail))
    if layout.kind == "car":
        return FormattedPlate(f"{province}{series}-{digits}", valid, "car")
    return FormattedPlate(f"{province}-{series} {digits}", valid, "motorbike")


def normalise_rows(rows: list[str]) -> FormattedPlate:
    """Canonical text of a plate read as one or two rows of OCR output."""
    cleaned = [alnum(r) for r in rows if alnum(r)]
    if not cleaned:
        return FormattedPlate("", False, "unknown")
    joined = "".join(cleaned)
    # one row is a car (or military) plate; two rows fix where the series ends
    layouts = _CAR + _MILITARY + _MOTO if len(cleaned) == 1 else _MOTO + _CAR + _MILITARY
    best: tuple[int, int, FormattedPlate] | None = None
    for order, layout in enumerate(layouts):
        if len(cleaned) == 2 and len(cleaned[0]) != layout.top_len:
            continue
        for text, fixes in _fit(joined, layout.pattern):
            plate = _render(text, layout, fixes)
            # an invalid fit costs three fixes (prefer a real plate), a motorbike read as one row four
            cost = (
                fixes
                + (0 if plate.valid else 3)
                + (4 if len(cleaned) == 1 and layout.kind == "motorbike" else 0)
            )
            if best is None or (cost, order) < best[:2]:
                best = (cost, order, plate)
    return best[2] if best else FormattedPlate(joined, False, "unknown")


def normalise(text: str) -> FormattedPlate:
    """Canonical text of a plate given as one string (rows may be split by a space or '/')."""
    parts = [alnum(p) for p in re.split(r"[\s/|]+", text.strip()) if alnum(p)]
    if len(parts) == 2 and len(parts[1]) in (4, 5) and len(parts[0]) in (2, 3, 4, 5):
        return normalise_rows(parts)
    joined = "".join(parts)
    plate = normalise_rows([joined])
    if plate.valid or re.search(r"[^0-9A-Za-zĐđ]", text.strip()):
        return plate  # separators say how the plate is written
    # letters and digits alone say nothing of the rows (60AA24488, as typed into a plate list, is the
    # motorbike plate 60-AA 244.88, not a car's invalid 60AA-244.88): where one row fits no plate, two may
    for top in (3, 4, 5):
        rows = normalise_rows([joined[:top], joined[top:]])
        if rows.valid:
            return rows
    return plate
