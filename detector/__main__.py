"""python -m detector IMAGE_OR_DIR... [--annotate OUT_DIR] [--config config.yaml]

Prints one JSON object per image per line: {"image": PATH, "detections": [...]}, or
{"image": PATH, "error": "..."} for a file that cannot be read.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2

from detector.annotate import draw_reads
from detector.config import DEFAULT_CONFIG, ConfigError, load_yaml, vision_config
from detector.errors import ModelLoadError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}


def images_in(paths: list[str]) -> list[Path]:
    found = []
    for p in map(Path, paths):
        if p.is_dir():
            found += sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
        else:
            found.append(p)
    return found


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m detector", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="+", help="image files or folders")
    ap.add_argument(
        "--annotate", type=Path, help="write each image with boxes and texts drawn into this folder"
    )
    ap.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    args = ap.parse_args(argv)
    try:
        from detector.persistent import PersistentDetector

        detector = PersistentDetector(vision_config(load_yaml(args.config)))
    except (ConfigError, ModelLoadError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.annotate:
        args.annotate.mkdir(parents=True, exist_ok=True)
    failures = 0
    for path in images_in(args.paths):
        image = cv2.imread(str(path), cv2.IMREAD_COLOR) if path.is_file() else None
        if image is None:
            failures += 1
            print(json.dumps({"image": str(path), "error": "not a readable image file"}), flush=True)
            continue
        reads = detector.photo.detect(image)
        print(json.dumps({"image": str(path), "detections": [r.to_dict() for r in reads]}), flush=True)
        if args.annotate:
            cv2.imwrite(str(args.annotate / f"{path.stem}.jpg"), draw_reads(image, reads))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
