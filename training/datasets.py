"""Seeded synthetic sets: YOLO detection folders and plate-row crops for the reader.

Every scene i of a set is drawn from `random.Random(f"{seed}:{i}")`, so a set is rebuilt
exactly from its seed and size. Training uses seeds "train"/"val"; evaluation uses
EVAL_SEED, which no training script touches.
"""
from __future__ import annotations

import random
from pathlib import Path

import cv2

from training.synth import Scene, render_scene

EVAL_SEED = "heldout-2026"


def scene(seed: str, index: int) -> Scene:
    rng = random.Random(f"{seed}:{index}")
    # every third scene leads with a two-row plate, so a third of each set is two-row
    layouts = [rng.choice(["motorbike", "motorbike", "two_row_car"]), None, None] if index % 3 == 0 else None
    return render_scene(rng, layouts=layouts)


def write_yolo_set(root: Path, seed: str, count: int) -> Path:
    """Images and YOLO label files for `count` scenes under root/images and root/labels."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "labels").mkdir(parents=True, exist_ok=True)
    for i in range(count):
        sc = scene(seed, i)
        h, w = sc.image.shape[:2]
        name = f"{seed}_{i:06d}"
        cv2.imwrite(str(root / "images" / f"{name}.jpg"), sc.image, [cv2.IMWRITE_JPEG_QUALITY, 92])
        lines = []
        for p in sc.plates:
            x1, y1, x2, y2 = p.box
            lines.append(f"0 {(x1 + x2) / 2 / w:.6f} {(y1 + y2) / 2 / h:.6f} {(x2 - x1) / w:.6f} {(y2 - y1) / h:.6f}")
        (root / "labels" / f"{name}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))
    return root
