"""How well a box's look (detector/appearance.py) tells one vehicle from the next at the same spot.

    python -m bench.look_bench            # synthetic vehicles, and ../shared/data/vn-gate where present
    python -m bench.look_bench --gate 400 # more gate frames

Boxes come from the camera detector, as in the server. Printed: the spread of `similarity`
between (same) one vehicle's box now and its box some frames later: synthetic drifting vehicles,
every fourth frame blurred hard as in the event tests, and real gate frames moved by a few pixels,
recompressed and some blurred; (next) two different vehicles at one spot: synthetic vehicles of
the same plate layout, and the gate camera's consecutive motorbikes. tracking.same_look and
tracking.new_look in config.yaml are chosen from these figures.
"""
from __future__ import annotations

import argparse
import csv
import itertools
import random
import re

import cv2
import numpy as np

from detector import PersistentDetector
from detector.appearance import look, similarity
from detector.boxes import iou
from training.real_data import REAL_DIR
from training.synth import encode_jpeg, plate_video

GATE_DIR = REAL_DIR.parent / "vn-gate"


def _recompressed(image: np.ndarray, quality: int = 85) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(encode_jpeg(image, quality), np.uint8), cv2.IMREAD_COLOR)


def _found(detector: PersistentDetector, image: np.ndarray, truth) -> tuple[int, int, int, int] | None:
    """The detector's box over the true plate, None when it misses it."""
    boxes = detector.locate_batch([image])[0]
    best = max(boxes, key=lambda b: iou(b.bbox, truth), default=None)
    return best.bbox if best is not None and iou(best.bbox, truth) > 0.3 else None


def synthetic(detector: PersistentDetector, vehicles: int) -> tuple[list[float], list[float]]:
    same, first_looks = [], []
    for v in range(vehicles):
        scenes = plate_video(random.Random(f"look-{v}"), 20, step=2.0)
        images = [_recompressed(cv2.GaussianBlur(sc.image, (0, 0), 3.0) if i % 4 == 2 else sc.image)
                  for i, sc in enumerate(scenes)]
        looks = [None if (b := _found(detector, im, sc.plates[0].box)) is None else look(im, b)
                 for im, sc in zip(images, scenes)]
        if looks[0] is None:
            continue
        same += [similarity(looks[0], later) for later in looks[1:] if later is not None]
        first_looks.append((scenes[0].plates[0].spec.layout, looks[0]))
    following = [similarity(a, b) for (la, a), (lb, b) in itertools.combinations(first_looks, 2) if la == lb]
    return same, following


def gate(detector: PersistentDetector, frames: int) -> tuple[list[float], list[float]]:
    boxes: dict[str, list[tuple[int, ...]]] = {}
    with open(GATE_DIR / "scenes.csv", newline="") as f:
        for row in csv.DictReader(f):
            if re.fullmatch(r"xemay\d+\.jpg", row["file"]):  # the motorbike lane's own CCTV frames
                boxes.setdefault(row["file"], []).append(tuple(int(row[k]) for k in ("x1", "y1", "x2", "y2")))
    names = sorted((n for n, b in boxes.items() if len(b) == 1), key=lambda n: int(n[5:-4]))[:frames]
    rng, same, following, previous = random.Random(0), [], [], None
    for name in names:
        image, truth = cv2.imread(str(GATE_DIR / "scenes" / name)), boxes[name][0]
        box = _found(detector, image, truth)
        if box is None:
            continue
        now = look(image, box)
        for k in range(3):  # the same vehicle a moment later: moved a little, recompressed, sometimes blurred
            moved = cv2.warpAffine(image, np.float32([[1, 0, rng.uniform(-3, 3)], [0, 1, rng.uniform(-2, 2)]]),
                                   image.shape[1::-1], borderMode=cv2.BORDER_REPLICATE)
            later_image = _recompressed(cv2.GaussianBlur(moved, (0, 0), 1.5) if k == 0 else moved, 70)
            later_box = _found(detector, later_image, truth)
            if later_box is not None:
                same.append(similarity(now, look(later_image, later_box)))
        if previous is not None:
            following.append(similarity(previous, now))
        previous = now
    return same, following


def spread(values: list[float]) -> str:
    v = np.array(values)
    cuts = " ".join(f"p{q}={np.percentile(v, q):.2f}" for q in (1, 5, 50, 95, 99))
    return f"n={len(v):4d}  min={v.min():.2f} {cuts} max={v.max():.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vehicles", type=int, default=25, help="synthetic vehicles")
    parser.add_argument("--gate", type=int, default=200, help="gate frames (0: none)")
    args = parser.parse_args()
    detector = PersistentDetector()
    rows = dict(zip(("synthetic same", "synthetic next"), synthetic(detector, args.vehicles)))
    if args.gate and (GATE_DIR / "scenes.csv").exists():
        rows.update(zip(("gate same", "gate next"), gate(detector, args.gate)))
    for name, values in rows.items():
        print(f"{name:15s} {spread(values)}")


if __name__ == "__main__":
    main()
