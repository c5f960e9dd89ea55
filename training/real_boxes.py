"""Boxes for the real training photos: proposed by detectors, trusted through the caption.

    python -m training.real_boxes                    # writes runs/real/boxes.json + sample sheets
    python -m training.real_boxes --reader runs/real/r1/vn_plate.pth --out runs/real/r1/boxes.json
                                                     # again with a better reader (boxes cached)
    python -m training.real_boxes --split eval       # reference boxes of the evaluation photos
                                                     # (training/real_eval_boxes.json; never trained on)

The photos carry only the caption of the featured plate. Every box the detectors propose
(by default the registry base detector and the shipped one, at a low confidence; cached in
--work, as they do not change between reader rounds) is read in both polarities; the box
whose read is closest to the caption (character accuracy, as evaluated) is kept, and trusted
when that accuracy reaches --trust (0.6: below it, some kept boxes were logos or wheels). Sample
sheets of kept and rejected boxes are drawn to PNG so a person can look at them.
Only the training part of the split is touched, unless --split eval.
"""
from __future__ import annotations

import argparse
import json
import random
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from detector.boxes import iou
from detector.config import DEFAULT_CONFIG, load_yaml, vision_config
from detector.plate_detector import PlateDetector
from detector.plate_reader import PlateReader
from detector.results import PlateBox
from training.evaluate import char_accuracy
from training.real_data import EVAL_BOXES, REAL_DIR, RealPhoto, load, split
from training.train_detector import registry_base_weights

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "runs" / "real"


@dataclass(frozen=True)
class Proposal:
    file: str
    caption: str
    box: tuple[int, int, int, int] | None  # the best-matching box, None when no box was proposed
    read: str
    score: float  # character accuracy of the read against the caption
    others: tuple[tuple[int, int, int, int], ...]  # the other proposed boxes: maybe plates, maybe not


def merge(boxes: list[PlateBox]) -> list[PlateBox]:
    """One box per plate from several detectors: the most confident of each overlapping group."""
    kept: list[PlateBox] = []
    for box in sorted(boxes, key=lambda b: -b.confidence):
        if all(iou(box.bbox, k.bbox) < 0.5 for k in kept):
            kept.append(box)
    return kept


def pad(box: PlateBox, shape: tuple[int, ...], share: float = 0.04) -> tuple[int, int, int, int]:
    """The box grown a little (detectors cut real plates tight at the edges), clipped to the image."""
    dx, dy = round((box.x2 - box.x1) * share), round((box.y2 - box.y1) * share)
    return max(0, box.x1 - dx), max(0, box.y1 - dy), min(shape[1], box.x2 + dx), min(shape[0], box.y2 + dy)


def candidates(photo: RealPhoto, detectors: list[PlateDetector]) -> list[tuple[int, int, int, int]]:
    """Every plate box the detectors propose in the photo, padded."""
    image = cv2.imread(str(photo.path), cv2.IMREAD_COLOR)
    return [pad(b, image.shape) for b in merge([b for d in detectors for b in d.detect_batch([image])[0]])]


def choose(photo: RealPhoto, boxes: list[tuple[int, int, int, int]], reader: PlateReader) -> Proposal:
    """The box whose read is closest to the caption, read as the server reads a camera frame's plate
    (one crop, levelled). Both polarities are read: white-on-red and white-on-blue plates are light
    text on dark, which a reader may not know yet."""
    image = cv2.imread(str(photo.path), cv2.IMREAD_COLOR)
    inverted = 255 - image
    best = Proposal(photo.path.name, photo.text, None, "", 0.0, ())
    for box in boxes:
        for read in (reader.read_box(image, box).text, reader.read_box(inverted, box).text):
            score = char_accuracy(read, photo.text)
            if best.box is None or score > best.score:
                best = replace(best, box=tuple(box), read=read, score=round(score, 4))
    return replace(best, others=tuple(b for b in boxes if b != best.box))


def sheet(proposals: list[Proposal], root: Path, out: Path, columns: int = 6) -> None:
    """A grid of crops with caption / read / score under each, for a person to look at."""
    tiles = [np.full((110, 220, 3), 255, np.uint8)] if not proposals else []
    for p in proposals:
        tile = np.full((110, 220, 3), 255, np.uint8)
        if p.box is not None:
            x1, y1, x2, y2 = p.box
            crop = cv2.imread(str(root / "images" / p.file), cv2.IMREAD_COLOR)[y1:y2, x1:x2]
            scale = min(200 / crop.shape[1], 70 / crop.shape[0])
            crop = cv2.resize(crop, (max(1, int(crop.shape[1] * scale)), max(1, int(crop.shape[0] * scale))))
            tile[5:5 + crop.shape[0], 10:10 + crop.shape[1]] = crop
        cv2.putText(tile, f"{p.caption}", (4, 88), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
        cv2.putText(tile, f"{p.read} {p.score:.2f}", (4, 104), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 200), 1)
        tiles.append(tile)
    while len(tiles) % columns:
        tiles.append(np.full_like(tiles[0], 255))
    rows = [np.hstack(tiles[i:i + columns]) for i in range(0, len(tiles), columns)]
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), np.vstack(rows))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--real-dir", type=Path, default=REAL_DIR)
    ap.add_argument(
        "--reader",
        type=Path,
        default=None,
        help="reader weights NETWORK.pth to read boxes with (default: the shipped reader of config.yaml)",
    )
    ap.add_argument("--imgsz", type=int, default=480, help="detector size for the 460x350 photos")
    ap.add_argument("--trust", type=float, default=0.6, help="least character accuracy of a trusted box")
    ap.add_argument(
        "--detectors",
        type=Path,
        nargs="+",
        default=None,
        help="weights proposing boxes (default: pyplatex's registry detector and models/plate_yolov8n.pt)",
    )
    ap.add_argument("--work", type=Path, default=WORK, help="where the proposed boxes are cached")
    ap.add_argument("--out", type=Path, default=None, help="the chosen boxes (default: WORK/boxes.json)")
    ap.add_argument(
        "--split",
        choices=("train", "eval"),
        default="train",
        help="eval: reference boxes of the evaluation split (judging the detector apart from "
        "the reader, never for training): written to --out, default " + str(EVAL_BOXES.relative_to(ROOT)),
    )
    args = ap.parse_args(argv)
    config = vision_config(load_yaml(DEFAULT_CONFIG))
    # EasyOCR finds weights by network name, so the file name says which network they are.
    reader_config, profile = (
        (config.reader, config.profiles.camera)
        if args.reader is None
        else (
            replace(config.reader, model_dir=args.reader.parent.resolve()),
            replace(config.profiles.camera, network=args.reader.stem),
        )
    )
    import torch

    torch.set_num_threads(2)
    evaluation = args.split == "eval"
    photos = split(load(args.real_dir))[evaluation]
    out = args.out or (EVAL_BOXES if evaluation else args.work / "boxes.json")
    # Sheets show the photos: never beside the committed reference boxes.
    sheets, prefix = (args.work, "eval_") if evaluation else (out.parent, "")
    cache = args.work / f"candidates_{args.imgsz}{'_eval' if evaluation else ''}.json"
    if not cache.exists():  # detection is the slow half and does not change between reader rounds
        weights = args.detectors or [registry_base_weights(), ROOT / "models" / "plate_yolov8n.pt"]
        detectors = [
            PlateDetector(
                replace(config.detector, confidence=0.1, device="cpu"),
                replace(config.profiles.camera, weights=w, imgsz=args.imgsz),
            )
            for w in weights
        ]
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps({p.path.name: candidates(p, detectors) for p in photos}))
    boxes = {name: [tuple(b) for b in found] for name, found in json.loads(cache.read_text()).items()}
    reader = PlateReader(reader_config, profile)

    proposals = [choose(photo, boxes[photo.path.name], reader) for photo in photos]
    trusted = [p for p in proposals if p.box is not None and p.score >= args.trust]
    out.parent.mkdir(parents=True, exist_ok=True)
    if evaluation:  # file names and boxes only: no caption or pixel of the set is committed
        lines = ",\n".join(
            f"  {json.dumps(p.file)}: {list(p.box)}" for p in sorted(trusted, key=lambda p: p.file)
        )
        # a box a line: readable diffs
        out.write_text(f'{{"trust": {args.trust}, "boxes": {{\n{lines}\n}}}}\n')
    else:
        out.write_text(
            json.dumps({"trust": args.trust, "proposals": [asdict(p) for p in proposals]}, indent=1)
        )
    print(f"{len(proposals)} {args.split} photos, {sum(p.box is None for p in proposals)} with no box, "
          f"{len(trusted)} with a trusted box (read >= {args.trust} of the caption's characters)")
    rng = random.Random(0)
    rejected = [p for p in proposals if p not in trusted]
    kept, dropped = sheets / f"{prefix}kept.png", sheets / f"{prefix}rejected.png"
    sheet(rng.sample(trusted, min(48, len(trusted))), args.real_dir, kept)
    sheet(rng.sample(rejected, min(48, len(rejected))), args.real_dir, dropped)
    print(f"sample sheets: {kept}, {dropped}")


if __name__ == "__main__":
    main()
