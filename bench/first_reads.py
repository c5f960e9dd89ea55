"""Each vehicle's first careful read, made as the careful lane makes it, on the replay's own frames.

    python -m bench.first_reads                 # vn-real's evaluation photos, as six cameras stream them
    python -m bench.first_reads --set gate --limit 60

A live replay (bench/real_replay.py) moves by about 0.01 from run to run with the host's load: too much
to judge a change to how the careful lane reads one vehicle. This reads the same thing with no server
and no clock: each evaluation photo's frames as its camera in the replay streams them (`camera_frames`,
the same seeds), the camera lane's box in each of the first --offered frames (the frames a vehicle
offers before its job is due: careful.gather_s is 0.4 s, four frames at 10 fps), offered to a real
CarefulLane (realtime/careful.py) in that order, and its job read by the lane's own `read_track`
(the box found again in recent frames, their median, fusion, the careful profile's reader).

Printed: the photos, those whose plate the camera lane saw, and of the first reads: right; decided at
once (by the lane's own rule, `CarefulLane.decide`: valid and careful.decide_at sure) right and wrong;
unsure (left to a second read). A sure wrong read is a wrong plate event live; a right one is a photo read.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from bench.real_replay import camera_frames, camera_id, evaluation_photos
from bench.stream_bench import ROOT
from detector import PersistentDetector
from detector.boxes import iou
from detector.config import load_yaml, vision_config
from detector.plate_format import alnum
from detector.results import PlateBox
from detector.tracking import Track
from realtime.careful import UNCONFIRMED, CarefulLane
from realtime.config import load_config


def plate_boxes(camera, frames: list[np.ndarray]) -> list[PlateBox | None]:
    """The camera lane's box of one vehicle in each frame: the surest in the first frame it sees a plate
    in, then the one overlapping the last most (None: not seen in that frame)."""
    last, boxes = None, []
    for found in camera.locate_batch(frames):
        if last is not None:
            found = [b for b in found if iou(b.bbox, last.bbox) > 0]
        box = max(found, key=lambda b: b.confidence if last is None else iou(b.bbox, last.bbox), default=None)
        boxes.append(box)
        last = box or last
    return boxes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=["real", "gate"], default="real")
    parser.add_argument("--cameras", type=int, default=6, help="as the replay streams them")
    parser.add_argument("--hold", type=int, default=15)
    parser.add_argument("--gap", type=int, default=3)
    parser.add_argument("--offered", type=int, default=5, help="frames offered before the read")
    parser.add_argument("--limit", type=int, default=0, help="photos at most (0: all), spread over the set")
    parser.add_argument("--out", type=Path, default=ROOT / "artifacts" / "bench")
    args = parser.parse_args()

    config = load_config(ROOT / "config.yaml", env={})
    detector = PersistentDetector(vision_config(load_yaml(ROOT / "config.yaml")))
    # no threads started: jobs are taken and read here in order, with no wait for a sharper frame
    lane = CarefulLane(replace(config.careful, gather_s=0.0), detector.careful)
    photos = evaluation_photos(args.set)
    if args.limit and len(photos) > args.limit:
        photos = photos[:: len(photos) // args.limit][: args.limit]
    rows = []
    for index in range(args.cameras):
        mine = photos[index :: args.cameras]
        stream = camera_frames(mine, args.hold, args.gap, seed=index)
        for k, photo in enumerate(mine):
            first = k * (args.hold + args.gap)
            frames = [cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
                      for jpeg in stream[first : first + args.offered]]
            boxes = plate_boxes(detector.camera, frames)
            row = {"photo": str(photo.path), "text": photo.text, "seen": any(boxes)}
            if row["seen"]:
                track = Track(len(rows), next(b for b in boxes if b), 0.0, 0.0)
                for frame, box in zip(frames, boxes):
                    if box is not None:
                        lane.offer(camera_id(index), track, UNCONFIRMED, frame, box)
                read = lane.read_track(detector.careful, lane.next_job()).text
                row |= {"read": alnum(read.text), "confidence": round(read.confidence, 3),
                        "decided": lane.decide([read], "") is not None}
            rows.append(row)

    read = [r for r in rows if r["seen"]]
    decided = [r for r in read if r["decided"]]
    figures = {
        "photos": len(rows),
        "seen": len(read),
        "right": sum(r["read"] == r["text"] for r in read),
        "decided_right": sum(r["read"] == r["text"] for r in decided),
        "decided_wrong": sum(r["read"] != r["text"] for r in decided),
        "unsure": len(read) - len(decided),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"first-reads-{args.set}.json"
    path.write_text(json.dumps(figures | {"per_photo": rows}, indent=1))
    print(f"{args.set}: {figures['photos']} photos, {figures['seen']} seen by the camera lane; first careful "
          f"read right {figures['right']}; decided at once right {figures['decided_right']}, "
          f"wrong {figures['decided_wrong']}; unsure {figures['unsure']}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
