"""Is this read that listed plate? Exact on the canonical form, or one known reader confusion away.

Readers get a character of a plate's number wrong in known ways (models/MODEL_CARD.md counts
8->9, 6->5, 5->6, 7->1, 9->8 as the most frequent). A read one such confusion away from a listed
plate is taken for it, and says so; anything else is another plate. The province code and the
series are never bent: 51F-123.45 is not 57F-123.45 nor 51E-123.45, whatever the confusion.

Pure Python, no models: the gate (realtime/gate.py) matches plate lists and parking sessions with it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from detector.plate_format import alnum, normalise

# Digit pairs a reader mixes up in a plate's number (either way): the evaluation's confusion counts and
# the shapes of the plate font. A letter read in a digit slot (D for 0, B for 8, S for 5) is already put
# right by the canonical form (detector/plate_format.py), so plates differ only by digits there.
CONFUSION_PAIRS = ("89", "56", "17", "14", "08", "38", "68", "06", "09", "27")
CONFUSED_WITH: dict[str, str] = {}
for _a, _b in CONFUSION_PAIRS:
    CONFUSED_WITH[_a] = CONFUSED_WITH.get(_a, "") + _b
    CONFUSED_WITH[_b] = CONFUSED_WITH.get(_b, "") + _a

# Where the number is in a canonical plate (normalise's output); what comes before it (province and series)
# or after it (an old plate's series) must match exactly.
_NUMBER = (
    re.compile(r"^(\d\d[A-Z]{1,2})-(\d{3}\.\d\d|\d{4})$"),  # car 51F-123.45, 29A-1234, 51LD-123.45
    re.compile(r"^(\d\d-[A-Z]{1,2}\d?) (\d{3}\.\d\d|\d{4})$"),  # motorbike 59-X1 123.45, 60-MD1 011.61
    re.compile(r"^([A-Z]{2}-)(\d\d-\d\d)$"),  # military KP-47-90
    re.compile(r"^(\d\d )(\d{3})-[A-Z]+\d?$"),  # old motorbike 60 737-HR
)


def plate_key(text: str) -> str:
    """The form plates are stored and compared in: the canonical text when it is a plate, else as written
    (upper case, A-Z0-9 and separators)."""
    plate = normalise(text)
    return plate.text if plate.valid else alnum(text)


def number_positions(key: str) -> range | None:
    """The positions of a canonical plate's number in its A-Z0-9 form; None: not a plate format."""
    for pattern in _NUMBER:
        found = pattern.match(key)
        if found:
            start = len(alnum(found.group(1)))
            return range(start, start + len(alnum(found.group(2))))
    return None


@dataclass(frozen=True)
class PlateMatch:
    kind: str  # "exact" (the same canonical plate) or "confusion" (one known misread in the number)
    detail: str  # how: "" when exact, else e.g. "6 read as 5 in the number"


EXACT = PlateMatch("exact", "")


def near_keys(read: str) -> list[tuple[str, PlateMatch]]:
    """The plates a read may be, best first: itself, then each one-confusion variant of its number."""
    key = plate_key(read)
    keys = [(key, EXACT)]
    span = number_positions(key)
    if span is None:
        return keys
    chars, where = alnum(key), [i for i, c in enumerate(key) if c.isalnum()]
    for i in span:
        for other in CONFUSED_WITH.get(chars[i], ""):
            variant = key[:where[i]] + other + key[where[i] + 1:]
            keys.append((variant, PlateMatch("confusion", f"{other} read as {chars[i]} in the number")))
    return keys


def match_plate(read: str, listed: str) -> PlateMatch | None:
    """How `read` matches `listed`, or None where it is another plate."""
    wanted = plate_key(listed)
    return next((how for key, how in near_keys(read) if key == wanted), None)
