"""The parking-gate CCTV set (../shared/data/vn-gate): its frames with plate boxes, and a fixed split.

The evaluation split is 15% of the plate TEXTS, chosen by a hash of the text: the same plate
comes back day after day, so a split by frame would put one vehicle on both sides. It is never
trained on. Its captions that differ from the printed plate, as far as they were checked by eye,
are put right by training/gate_eval_by_eye.json (`evaluation_frames`). The images are never
committed; see the set's README.
"""
from __future__ import annotations

import csv
import hashlib
import json
import re
from dataclasses import dataclass, replace
from pathlib import Path

from detector.plate_format import alnum, normalise_rows

GATE_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "vn-gate"
BY_EYE = Path(__file__).resolve().parent / "gate_eval_by_eye.json"
EVAL_SHARE = 0.15
# the lanes' own CCTV frames (the rest are other photos)
GATE_FRAME = re.compile(r"(xemay|CarLongPlate)(\d+)\.jpg")
LANES = {"xemay": "motorbike lane", "CarLongPlate": "car lane"}
# the README's filter: a text that fits is a whole plate (the rest mostly miss characters)
PLATE_TEXT = re.compile(r"(?P<top>(1[1-9]|[2-9]\d)(?P<series>[A-Z]{1,2}))(?P<digits>\d{4,6})")


@dataclass(frozen=True)
class GateFrame:
    path: Path
    box: tuple[int, int, int, int]  # the plate, in pixels of the frame
    text: str  # A-Z0-9, "" where the set has no trusted text
    lane: str  # xemay (motorbikes) | CarLongPlate (cars)
    number: int  # the frame's number in its lane: frames in number order follow each other
    rows: int  # the plate's printed rows (1 or 2), 0 where the set has no trusted text


@dataclass(frozen=True)
class GateCrop:
    path: Path
    rows: tuple[str, ...]  # the printed rows, top first, A-Z0-9 each
    validation: bool  # held out from training to choose the epoch (a tenth of the training texts)


def crop_rows(text: str, rows: int) -> tuple[str, ...] | None:
    """A crop's text cut into its printed rows, None where it is not a whole plate (the README's
    filter) or not a real one (detector/plate_format: 9 texts, e.g. 23MB1 for 23MD1, B read for Đ).

    The set writes two-row plates with no separator (`59X124340` = 59-X1 243.40): the top row is
    the province, the series and, when the number is long enough for one, the series digit.
    """
    match = PLATE_TEXT.fullmatch(text)
    if match is None or rows not in (1, 2):
        return None
    if rows == 1:
        cut = (text,)
    else:
        digits = match["digits"]
        at = len(match["top"]) + (len(digits) == 6 or (len(match["series"]) == 1 and len(digits) == 5))
        cut = text[:at], text[at:]
    plate = normalise_rows(list(cut))
    return cut if plate.valid and alnum(plate.text) == text else None


def load_crops(root: Path = GATE_DIR) -> list[GateCrop]:
    """The training side's plate crops whose text is a whole plate; the evaluation texts never."""
    crops = []
    with open(root / "crops.csv", newline="") as f:
        for row in csv.DictReader(f):
            rows = crop_rows(row["text"], int(row["rows"]))
            if rows is None or in_evaluation(row["text"]):
                continue
            crops.append(GateCrop(root / "crops" / row["file"], rows, validation_text(row["text"])))
    return crops


def validation_text(text: str) -> bool:
    """Whether a training-side text is held out to choose the epoch (a tenth of the texts, by hash)."""
    return int(hashlib.sha1(f"val:{text}".encode()).hexdigest(), 16) % 10 == 0


def in_evaluation(text: str) -> bool:
    """Whether a plate text belongs to the evaluation split (EVAL_SHARE of texts, by hash)."""
    digest = hashlib.sha1(alnum(text).encode()).hexdigest()
    return int(digest[:8], 16) < EVAL_SHARE * 16 ** 8


def load_frames(root: Path = GATE_DIR) -> list[GateFrame]:
    """The CCTV frames with exactly one plate box, lane by lane in frame order."""
    boxes: dict[str, list[dict]] = {}
    with open(root / "scenes.csv", newline="") as f:
        for row in csv.DictReader(f):
            boxes.setdefault(row["file"], []).append(row)
    frames = []
    for name, rows in boxes.items():
        match = GATE_FRAME.fullmatch(name)
        if not match or len(rows) != 1:
            continue
        row = rows[0]
        box = tuple(int(row[k]) for k in ("x1", "y1", "x2", "y2"))
        frames.append(GateFrame(root / "scenes" / name, box, alnum(row["text"]), match[1], int(match[2]),
                                int(row["rows"] or 0)))
    return sorted(frames, key=lambda g: (g.lane, g.number))


def split(frames: list[GateFrame]) -> tuple[list[GateFrame], list[GateFrame]]:
    """(train, eval) of the frames with a trusted text; frames without one are in neither."""
    labelled = [g for g in frames if g.text]
    return [g for g in labelled if not in_evaluation(g.text)], [g for g in labelled if in_evaluation(g.text)]


def evaluation_frames(root: Path = GATE_DIR, by_eye: Path = BY_EYE) -> list[GateFrame]:
    """The evaluation split as it is scored: captions checked by eye put right, and frames whose printed
    plate the training side holds left out (training/gate_eval_by_eye.json)."""
    checked = json.loads(by_eye.read_text())
    corrected, trained_on = checked["corrected"], checked["trained_on"]
    return [replace(g, text=corrected.get(g.path.name, g.text)) for g in split(load_frames(root))[1]
            if g.path.name not in trained_on]
