"""The parking-gate CCTV set (../shared/data/vn-gate): its frames with plate boxes, and a fixed split.

The evaluation split is 15% of the plate TEXTS, chosen by a hash of the text: the same plate
comes back day after day, so a split by frame would put one vehicle on both sides. It is never
trained on. The images are never committed; see the set's README.
"""
from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from detector.plate_format import alnum

GATE_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "vn-gate"
EVAL_SHARE = 0.15
# the lanes' own CCTV frames (the rest are other photos)
GATE_FRAME = re.compile(r"(xemay|CarLongPlate)(\d+)\.jpg")


@dataclass(frozen=True)
class GateFrame:
    path: Path
    box: tuple[int, int, int, int]  # the plate, in pixels of the frame
    text: str  # A-Z0-9, "" where the set has no trusted text
    lane: str  # xemay (motorbikes) | CarLongPlate (cars)
    number: int  # the frame's number in its lane: frames in number order follow each other


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
        frames.append(GateFrame(root / "scenes" / name, box, alnum(row["text"]), match[1], int(match[2])))
    return sorted(frames, key=lambda g: (g.lane, g.number))


def split(frames: list[GateFrame]) -> tuple[list[GateFrame], list[GateFrame]]:
    """(train, eval) of the frames with a trusted text; frames without one are in neither."""
    labelled = [g for g in frames if g.text]
    return [g for g in labelled if not in_evaluation(g.text)], [g for g in labelled if in_evaluation(g.text)]
