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


def yolo_line(box: tuple[int, int, int, int], w: int, h: int) -> str:
    """A plate box in pixels as a YOLO label line (class 0, centre and size relative to the image)."""
    x1, y1, x2, y2 = box
    return f"0 {(x1 + x2) / 2 / w:.6f} {(y1 + y2) / 2 / h:.6f} {(x2 - x1) / w:.6f} {(y2 - y1) / h:.6f}"


def write_example(root: Path, name: str, image, boxes: list, quality: int = 95) -> None:
    """One image and its YOLO label file (its plate boxes, x1 y1 x2 y2 in pixels), root/images/NAME.jpg and
    root/labels/NAME.txt."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "labels").mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(root / "images" / f"{name}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    lines = [yolo_line(box, image.shape[1], image.shape[0]) for box in boxes]
    (root / "labels" / f"{name}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))


def write_yolo_set(root: Path, seed: str, count: int) -> Path:
    """Images and YOLO label files for `count` scenes under root/images and root/labels."""
    (root / "images").mkdir(parents=True, exist_ok=True)  # a set of no scenes is still a set
    (root / "labels").mkdir(parents=True, exist_ok=True)
    for i in range(count):
        sc = scene(seed, i)
        write_example(root, f"{seed}_{i:06d}", sc.image, [p.box for p in sc.plates], quality=92)
    return root


def write_real_yolo_set(
    train_root: Path, val_root: Path, boxes_json: Path, real_dir: Path
) -> tuple[int, int]:
    """The real training photos with a trusted box (training/real_boxes.py) as YOLO folders.

    Only the featured plate is captioned, so the other proposed boxes (perhaps other cars'
    plates) are painted over with the photo's mean colour rather than taught as background.
    A tenth of the photos (by file-name hash, as for the reader) goes to validation.
    """
    from detector.boxes import iou
    from training.real_data import trusted_boxes

    counts = [0, 0]
    for p, held_out in trusted_boxes(boxes_json):
        image = cv2.imread(str(real_dir / "images" / p["file"]), cv2.IMREAD_COLOR)
        mean = tuple(int(c) for c in image.reshape(-1, 3).mean(0))
        for x1, y1, x2, y2 in p["others"]:
            if iou((x1, y1, x2, y2), tuple(p["box"])) == 0:
                cv2.rectangle(image, (x1, y1), (x2, y2), mean, -1)
        write_example(val_root if held_out else train_root, f"real_{Path(p['file']).stem}", image, [p["box"]])
        counts[held_out] += 1
    return counts[0], counts[1]


def write_gate_yolo_set(train_root: Path, val_root: Path, gate_dir: Path) -> tuple[int, int]:
    """vn-gate's training-side CCTV frames (training/gate_data.py) as YOLO folders.

    Only frames with a trusted text are used: an untexted frame may show a plate of the evaluation
    split, which is never trained on. A tenth of the texts (by hash, as for the reader's gate crops)
    goes to validation, so one vehicle's frames stay on one side.
    """
    from training.gate_data import load_frames, split, validation_text

    counts = [0, 0]
    for g in split(load_frames(gate_dir))[0]:
        held_out = validation_text(g.text)
        write_example(val_root if held_out else train_root, f"gate_{g.path.stem}",
                      cv2.imread(str(g.path), cv2.IMREAD_COLOR), [g.box])
        counts[held_out] += 1
    return counts[0], counts[1]
