"""The real photo set (../shared/data/vn-real): captions and a fixed, stratified split.

15% of each gallery group, chosen by a hash of the file name, is the real evaluation split
and is never trained on. The images are never committed; see the set's README.
"""
from __future__ import annotations

import csv
import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path

REAL_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "vn-real"
EVAL_SHARE = 0.15
# Reference boxes of the captioned plate in the evaluation photos: they judge the detector apart from
# the reader and are never trained on. Most are the proposed box whose read matched the caption
# (training/real_boxes.py --split eval); the photos where none matched have a box picked or drawn by eye.
EVAL_BOXES = Path(__file__).resolve().parent / "real_eval_boxes.json"
EVAL_BOXES_BY_EYE = Path(__file__).resolve().parent / "real_eval_by_eye.json"


@dataclass(frozen=True)
class RealPhoto:
    path: Path
    text: str  # the gallery's caption of the featured plate
    group: str

    @property
    def two_row(self) -> bool:
        return " " in self.text  # captions print two-row plates as "60-AA 499.10"

    @property
    def rows(self) -> tuple[str, ...]:
        """The printed rows of the caption (caption_rows; one row where no cut is known)."""
        from detector.plate_format import alnum

        return caption_rows(self.text, 2 if self.two_row else 1) or (alnum(self.text),)


def load(root: Path = REAL_DIR) -> list[RealPhoto]:
    with open(root / "labels.csv", newline="", encoding="utf-8") as f:
        return [
            RealPhoto(root / "images" / row["file"], row["text"], row["group"]) for row in csv.DictReader(f)
        ]


def split(photos: list[RealPhoto]) -> tuple[list[RealPhoto], list[RealPhoto]]:
    """(train, eval): per group, the EVAL_SHARE of files with the smallest name hash."""
    train, evaluation = [], []
    for group in sorted({p.group for p in photos}):
        members = sorted((p for p in photos if p.group == group),
                         key=lambda p: hashlib.sha1(p.path.name.encode()).hexdigest())
        cut = round(len(members) * EVAL_SHARE)
        evaluation += members[:cut]
        train += members[cut:]
    return train, evaluation


def caption_rows(text: str, rows: int) -> tuple[str, ...] | None:
    """The caption cut into `rows` printed rows (A-Z0-9 each), None where that cut is unknown.

    Two-row captions print a space between the rows ("60-AA 499.10"); a one-string caption on a
    two-row plate (a yellow "51D-297.63", a red "KP-38-92") breaks after its first dash.
    """
    from detector.plate_format import alnum

    if rows == 1:
        return None if " " in text.strip() else (alnum(text),)
    if rows != 2:
        return None
    top, sep, bottom = text.strip().partition(" ") if " " in text.strip() else text.strip().partition("-")
    return (alnum(top), alnum(bottom)) if sep and alnum(top) and alnum(bottom) else None


def trusted_boxes(boxes_json: Path) -> list[tuple[dict, bool]]:
    """The trusted proposals of training/real_boxes.py, each with whether it is held out for
    validation (a tenth of the photos, by file-name hash: the same ones for both trainers)."""
    proposals = json.loads(boxes_json.read_text())
    return [(p, int(hashlib.sha1(p["file"].encode()).hexdigest(), 16) % 10 == 0)
            for p in proposals["proposals"] if p["box"] is not None and p["score"] >= proposals["trust"]]


@dataclass(frozen=True)
class ReferenceBox:
    box: tuple[int, int, int, int]
    source: str  # the file it came from (its stem), so reports can tell the easy photos from the hard


CHAR_WIDTH_BOUNDS = (0, 4, 6, 8)  # px: under 4 a character is a few blurred pixels wide


def char_width_bucket(rows: tuple[str, ...], box: tuple[int, int, int, int]) -> str:
    """How wide each character of a plate printed in `rows` is in `box` ("chars 4-6 px wide"): the
    box's width over the characters of its longest row."""
    width = (box[2] - box[0]) / max(1, max(map(len, rows)))
    low = max(b for b in CHAR_WIDTH_BOUNDS if width >= b)
    high = next((b for b in CHAR_WIDTH_BOUNDS if b > low), None)
    return f"chars {low}-{high} px wide" if high else f"chars {low}+ px wide"


def eval_boxes(*paths: Path) -> dict[str, ReferenceBox]:
    """file name -> reference box of its captioned plate, for the evaluation photos that have one
    (default: EVAL_BOXES, then EVAL_BOXES_BY_EYE for the photos it lacks; a missing file adds none)."""
    boxes: dict[str, ReferenceBox] = {}
    for path in paths or (EVAL_BOXES, EVAL_BOXES_BY_EYE):
        if path.exists():
            for name, box in json.loads(path.read_text())["boxes"].items():
                boxes.setdefault(name, ReferenceBox(tuple(box), path.stem))
    return boxes


def webcam_frame(image, dx: float, dy: float) -> bytes:
    """A still scene's next webcam frame: the picture moved by (dx, dy) pixels and compressed again."""
    import cv2

    from detector.fusion import moved

    return cv2.imencode(".jpg", moved(image, (dx, dy)), [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes()


def streamed_frame(image, rng: random.Random) -> bytes:
    """One webcam frame of a still scene: the picture moved by a random fraction of a pixel each way."""
    return webcam_frame(image, rng.uniform(-1, 1), rng.uniform(-1, 1))


def streamed_copy(image, rng: random.Random):
    """The image as one webcam frame of it shows it (streamed_frame), decoded (grey stays grey)."""
    import cv2
    import numpy as np

    return cv2.imdecode(np.frombuffer(streamed_frame(image, rng), np.uint8), cv2.IMREAD_UNCHANGED)
