"""Evaluate the detector and the reader(s) on a held-out synthetic set, offline.

    python -m training.evaluate                      # 600 scenes, the configured models
    python -m training.evaluate --readers vn_plate english_g2 --json artifacts/eval.json
    python -m training.evaluate --real               # the real photos' evaluation split instead
                                                     # (detector recall against each photo's reference box)
    python -m training.evaluate --gate               # vn-gate's evaluation split (gate frames) instead

The set is rebuilt from training.datasets.EVAL_SEED, which no training script uses; a
third of its scenes lead with a two-row plate. Reported: detection precision and recall
at IoU 0.5, exact-plate accuracy (the whole canonical text right, a missed plate counts
as wrong) and character accuracy, split by one-row/two-row, and ms per frame for
detection and per plate for reading.
"""
from __future__ import annotations

import argparse
import json
import random
from dataclasses import dataclass, replace
from pathlib import Path
from time import perf_counter

import numpy as np

from detector.boxes import iou
from detector.config import DEFAULT_CONFIG, Profile, VisionConfig, load_yaml, vision_config
from detector.plate_detector import PlateDetector
from detector.plate_format import alnum, edit_distance
from detector.plate_reader import PlateReader
from training.datasets import EVAL_SEED, scene
from training.real_data import streamed_copy

# streamed copies of each evaluation photo whose reference box is read as the live path sees it
STREAMED = 2


def char_accuracy(read: str, truth: str) -> float:
    truth, read = alnum(truth), alnum(read)
    return max(0.0, 1 - edit_distance(read, truth) / max(1, len(truth)))


def _group(layout: str) -> str:
    return "one_row" if layout == "one_row" else "two_row"


def named_reader(config: VisionConfig, name: str, profile: Profile) -> PlateReader:
    """A reader of network `name` reading boxes as `profile` does (unconfigured: from its default place)."""
    configured = {p.network for _, p in config.profiles}
    reader = config.reader if name in configured else replace(config.reader, model_dir=None)
    return PlateReader(reader, replace(profile, network=name))


def evaluate(scenes: int, config_path: Path, readers: list[str]) -> dict:
    config = vision_config(load_yaml(config_path))
    detector = PlateDetector(config.detector, config.profiles.camera)
    plate_readers = {name: named_reader(config, name, config.profiles.camera) for name in readers}
    counts = {"tp": 0, "fp": 0, "fn": 0}
    per_group: dict[str, dict] = {}
    read_stats = {name: {} for name in readers}
    detect_ms, read_ms = [], {name: [] for name in readers}
    for i in range(scenes):
        sc = scene(EVAL_SEED, i)
        t0 = perf_counter()
        boxes = detector.detect_batch([sc.image])[0]
        detect_ms.append((perf_counter() - t0) * 1000)
        used: set[int] = set()
        for plate in sc.plates:
            group = per_group.setdefault(_group(plate.spec.layout), {"plates": 0, "found": 0})
            group["plates"] += 1
            best, best_iou = None, 0.5
            for k, box in enumerate(boxes):
                overlap = iou(plate.box, box.bbox)
                if k not in used and overlap >= best_iou:
                    best, best_iou = k, overlap
            if best is None:
                counts["fn"] += 1
            else:
                used.add(best)
                counts["tp"] += 1
                group["found"] += 1
            for name, reader in plate_readers.items():
                stats = read_stats[name].setdefault(
                    _group(plate.spec.layout), {"plates": 0, "exact": 0, "chars": 0.0}
                )
                stats["plates"] += 1
                if best is None:
                    continue
                b = boxes[best]
                t1 = perf_counter()
                read = reader.read_box(sc.image, b.bbox)  # as the server reads a camera frame's plate
                read_ms[name].append((perf_counter() - t1) * 1000)
                stats["exact"] += read.text == plate.spec.text
                stats["chars"] += char_accuracy(read.text, plate.spec.text)
        counts["fp"] += len(boxes) - len(used)

    def ratio(a, b):
        return round(a / b, 4) if b else None

    report = {
        "set": {"seed": EVAL_SEED, "scenes": scenes, "plates": counts["tp"] + counts["fn"],
                "two_row_plates": per_group.get("two_row", {}).get("plates", 0)},
        "detector": {"weights": str(detector.path), "imgsz": detector.imgsz,
                     "precision": ratio(counts["tp"], counts["tp"] + counts["fp"]),
                     "recall": ratio(counts["tp"], counts["tp"] + counts["fn"]),
                     "recall_by_rows": {g: ratio(v["found"], v["plates"]) for g, v in per_group.items()},
                     "ms_per_frame": round(sum(detect_ms) / len(detect_ms), 2)},
        "readers": {},
    }
    for name, groups in read_stats.items():
        plates = sum(g["plates"] for g in groups.values())
        report["readers"][name] = {
            "exact": ratio(sum(g["exact"] for g in groups.values()), plates),
            "chars": ratio(sum(g["chars"] for g in groups.values()), plates),
            "by_rows": {g: {"exact": ratio(v["exact"], v["plates"]), "chars": ratio(v["chars"], v["plates"])}
                        for g, v in groups.items()},
            "ms_per_plate": round(sum(read_ms[name]) / max(1, len(read_ms[name])), 2),
        }
    return report


@dataclass(frozen=True)
class EvalPhoto:
    """One photo of a real evaluation split, as the report counts it."""

    path: Path
    text: str  # the plate's text, A-Z0-9
    keys: tuple[str, ...]  # the report's rows it counts in: its group, its rows, ..., "all"
    reference: tuple[int, int, int, int] | None  # the plate's box, judging the detector apart from the reader


def _size_keys(rows: tuple[str, ...], box: tuple[int, int, int, int]) -> tuple[str, str]:
    """The width of a plate's characters in its box, overall and for its number of rows."""
    from training.real_data import char_width_bucket

    bucket = char_width_bucket(rows, box)
    return bucket, f"{bucket}, {'two_row' if len(rows) == 2 else 'one_row'}"


def real_photos(root: Path, boxes_paths: list[Path]) -> list[EvalPhoto]:
    """vn-real's evaluation split (training/real_data.py): captions and the captioned plates' boxes
    (by default training/real_eval_boxes.json, and training/real_eval_by_eye.json for the photos
    whose plate no read matched; boxes_paths, the first file's box winning, replace them)."""
    from training.real_data import eval_boxes, load, split

    references = eval_boxes(*boxes_paths)
    photos = []
    for p in split(load(root))[1]:
        ref = references.get(p.path.name)
        keys = (p.group, "two_row" if p.two_row else "one_row",
                *([f"box from {ref.source}", *_size_keys(p.rows, ref.box)] if ref else []), "all")
        photos.append(EvalPhoto(p.path, alnum(p.text), keys, ref.box if ref else None))
    return photos


def gate_photos(root: Path) -> list[EvalPhoto]:
    """vn-gate's evaluation split (training/gate_data.py): the gate frames of 15% of plate texts,
    each with its plate's box, captions checked by eye put right."""
    from training.gate_data import LANES, crop_rows, evaluation_frames

    photos = []
    for g in evaluation_frames(root):
        rows = crop_rows(g.text, g.rows) or (g.text,)
        keys = (LANES[g.lane], "two_row" if len(rows) == 2 else "one_row", *_size_keys(rows, g.box), "all")
        photos.append(EvalPhoto(g.path, g.text, keys, g.box))
    return photos


def streamed_copies(photo: EvalPhoto, image: np.ndarray) -> list[np.ndarray]:
    """The photo's STREAMED copies as a webcam streams it, seeded by its name: the same for every reader,
    so each reader's copies are made again rather than all photos' kept at once."""
    return [streamed_copy(image, random.Random(f"{photo.path.name}:{k}")) for k in range(STREAMED)]


def evaluate_photos(config_path: Path, readers: list[str], photos: list[EvalPhoto], about: dict) -> dict:
    """A real evaluation split, looked at as single photos are (config.yaml profiles.photo: its
    detector and size, its crops of each box; by default read by its network).

    Detector: recall of the reference box (IoU >= 0.5) over the photos that have one, judged
    without any reader. Per reader: "found" counts the plate when some detected box reads at least
    half its characters right; exact and chars use that box's read (the whole pipeline); "box exact"
    reads the reference box itself (the reader alone), "streamed" the same box in STREAMED copies of
    the photo as a webcam streams it (moved by under a pixel, JPEG again: what the live path reads,
    bench/real_replay.py). Every figure is given per row of the report (EvalPhoto.keys). Most frequent
    confusions: (true, read) characters of same-length misreads of the pipeline.
    """
    from collections import Counter

    import cv2

    config = vision_config(load_yaml(config_path))
    detector = PlateDetector(config.detector, config.profiles.photo, "profiles.photo")
    images = {p.path: cv2.imread(str(p.path), cv2.IMREAD_COLOR) for p in photos}
    found_boxes = {path: detector.detect_batch([image])[0] for path, image in images.items()}

    boxed: dict[str, list[int]] = {}
    for photo in photos:
        if photo.reference is not None:
            hit = any(iou(b.bbox, photo.reference) >= 0.5 for b in found_boxes[photo.path])
            for key in photo.keys:
                boxed.setdefault(key, [0, 0])[0] += 1
                boxed[key][1] += hit
    report: dict = {
        "set": {**about, "photos": len(photos),
                "reference_boxes": sum(p.reference is not None for p in photos)},
        "detector": {
            "weights": str(detector.path),
            "imgsz": detector.imgsz,
            "recall": {k: {"photos": n, "recall": round(h / n, 4)} for k, (n, h) in boxed.items()},
        },
        "readers": {},
    }
    for name in readers:
        reader = named_reader(config, name, config.profiles.photo)
        groups: dict[str, dict] = {}
        confusions: Counter = Counter()
        for photo in photos:
            image, truth = images[photo.path], photo.text
            reads = [reader.read_box(image, b.bbox).text for b in found_boxes[photo.path]]
            best = max(reads, key=lambda r: char_accuracy(r, truth), default="")
            chars = char_accuracy(best, truth)
            box_read = None if photo.reference is None else reader.read_box(image, photo.reference).text
            streamed_right = 0 if photo.reference is None else sum(
                alnum(reader.read_box(copy, photo.reference).text) == truth
                for copy in streamed_copies(photo, image))
            for key in photo.keys:
                g = groups.setdefault(key, {"photos": 0, "found": 0, "exact": 0, "chars": 0.0, "boxed": 0,
                                            "box_exact": 0, "streamed": 0})
                g["photos"] += 1
                g["found"] += chars >= 0.5
                g["exact"] += alnum(best) == truth
                g["chars"] += chars
                if box_read is not None:
                    g["boxed"] += 1
                    g["box_exact"] += alnum(box_read) == truth
                    g["streamed"] += streamed_right / STREAMED
            if len(alnum(best)) == len(truth) and alnum(best) != truth:
                confusions.update((t, r) for t, r in zip(truth, alnum(best)) if t != r)
        report["readers"][name] = {
            key: {"photos": g["photos"], "found": round(g["found"] / g["photos"], 4),
                  "exact": round(g["exact"] / g["photos"], 4), "chars": round(g["chars"] / g["photos"], 4),
                  "box_exact": round(g["box_exact"] / g["boxed"], 4) if g["boxed"] else None,
                  "streamed": round(g["streamed"] / g["boxed"], 4) if g["boxed"] else None}
            for key, g in groups.items()}
        report["readers"][name]["confusions"] = [f"{t}->{r}: {n}" for (t, r), n in confusions.most_common(10)]
    return report


def _report_order(key: str) -> tuple[int, str]:
    """Gallery groups, then one-row/two-row, then the reference boxes' sources, then the character
    widths (narrowest first, each followed by its one-row and two-row parts), then all."""
    if key.startswith("chars "):  # "chars 4-6 px wide", "chars 8+ px wide, two_row"
        return 3, key.split()[1].split("-")[0].rstrip("+").zfill(3) + key.partition(",")[2]
    rank = (
        1 if key in ("one_row", "two_row") else 2 if key.startswith("box from") else 4 if key == "all" else 0
    )
    return rank, key


def print_real_report(report: dict) -> None:
    print(f"{report['set']['name']} evaluation split: {report['set']['photos']} photos from "
          f"{report['set']['root']}, {report['set']['reference_boxes']} with a reference box")
    d = report["detector"]
    print(f"\ndetector {d['weights']} @ {d['imgsz']}: {'group':<40} {'boxed':>6} {'recall':>7}")
    pad = len(f"detector {d['weights']} @ {d['imgsz']}: ")
    for key in sorted(d["recall"], key=_report_order):
        print(f"{'':>{pad}}{key:<40} {d['recall'][key]['photos']:>6} {d['recall'][key]['recall']:>7}")
    for name, groups in report["readers"].items():
        print(
            f"\nreader {name}: {'group':<40} {'photos':>6} {'found':>7} {'exact':>7} {'chars':>7} "
            f"{'box exact':>10} {'streamed':>9}"
        )
        for key in sorted((k for k in groups if k != "confusions"), key=_report_order):
            g = groups[key]
            print(f"{'':>{len(name) + 9}}{key:<40} {g['photos']:>6} {g['found']:>7} {g['exact']:>7} "
                  f"{g['chars']:>7} {g['box_exact']!s:>10} {g['streamed']!s:>9}")
        print(f"most frequent confusions: {', '.join(groups['confusions']) or 'none'}")


def print_report(report: dict) -> None:
    d = report["detector"]
    print(f"held-out set: {report['set']['scenes']} scenes, {report['set']['plates']} plates "
          f"({report['set']['two_row_plates']} two-row), seed {report['set']['seed']!r}")
    print(f"detector {d['weights']} @ {d['imgsz']}: precision {d['precision']}  recall {d['recall']}  "
          f"(one-row {d['recall_by_rows'].get('one_row')}, two-row {d['recall_by_rows'].get('two_row')})  "
          f"{d['ms_per_frame']} ms/frame")
    print(f"{'reader':<12} {'exact':>7} {'chars':>7} {'1-row exact':>12} {'2-row exact':>12} {'ms/plate':>9}")
    for name, r in report["readers"].items():
        print(
            f"{name:<12} {r['exact']:>7} {r['chars']:>7} "
            f"{r['by_rows'].get('one_row', {}).get('exact')!s:>12} "
            f"{r['by_rows'].get('two_row', {}).get('exact')!s:>12} {r['ms_per_plate']:>9}"
        )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenes", type=int, default=600)
    ap.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    ap.add_argument("--readers", nargs="+", default=None,
                    help="reader networks to compare (default: the configured one; --real: the photo reader)")
    ap.add_argument("--json", type=Path, help="also write the report here")
    ap.add_argument(
        "--real", action="store_true", help="evaluate on the real photos' evaluation split instead"
    )
    ap.add_argument(
        "--real-dir", type=Path, default=None, help="the vn-real folder (default: ../shared/data/vn-real)"
    )
    ap.add_argument(
        "--gate", action="store_true", help="evaluate on vn-gate's evaluation split (its gate frames) instead"
    )
    ap.add_argument(
        "--gate-dir", type=Path, default=None, help="the vn-gate folder (default: ../shared/data/vn-gate)"
    )
    ap.add_argument(
        "--eval-boxes",
        type=Path,
        nargs="+",
        default=None,
        help="reference boxes of the real evaluation split, the first file's box winning (default: "
        "training/real_eval_boxes.json, then training/real_eval_by_eye.json)",
    )
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)  # the figures of the realtime server's one inference core
    profiles = vision_config(load_yaml(args.config)).profiles
    readers = args.readers or [profiles.photo.network if args.real or args.gate else profiles.camera.network]
    if args.real or args.gate:
        from training.gate_data import GATE_DIR
        from training.real_data import REAL_DIR

        root = (args.gate_dir or GATE_DIR) if args.gate else (args.real_dir or REAL_DIR)
        photos = gate_photos(root) if args.gate else real_photos(root, args.eval_boxes or [])
        about = {"name": "vn-gate" if args.gate else "vn-real", "root": str(root)}
        report = evaluate_photos(args.config, readers, photos, about)
        print_real_report(report)
    else:
        report = evaluate(args.scenes, args.config, readers)
        print_report(report)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
