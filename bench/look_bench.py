"""How well a box's look (detector/appearance.py) tells one vehicle from the next at the same spot.

    python -m bench.look_bench            # synthetic vehicles, and ../shared/data/vn-gate where present
    python -m bench.look_bench --gate 400 # more gate frames

Boxes come from the camera detector, as in the server. Printed: the spread of `similarity`
between (same) one vehicle's box now and its box some frames later: synthetic drifting vehicles,
every fourth frame blurred hard as in the event tests, and real gate frames moved by a few pixels,
recompressed and some blurred; (next) two different vehicles at one spot: synthetic vehicles of
the same plate layout, and the gate camera's consecutive motorbikes. tracking.same_look and
tracking.new_look in config.yaml are chosen from these figures.

Then the gate queue (with vn-gate): its consecutive motorbikes, each held --hold frames (moved a
pixel or two, recompressed) with no gap, through a camera tracker and the event book with the
real camera reader, in-process, as the server's worker runs them: once with the shipped
tracking settings and once with overlap alone (looks and far reads ignored: the tracker before
it knew a vehicle from the next). Printed: plate events, events carrying an earlier vehicle's
text, frames showing an earlier vehicle's text, vehicles whose own text got an event.
"""
from __future__ import annotations

import argparse
import itertools
import random
from dataclasses import replace

import cv2
import numpy as np

from detector import PersistentDetector
from detector.appearance import look, similarity
from detector.boxes import iou
from detector.config import DEFAULT_CONFIG, from_mapping, load_yaml
from detector.plate_format import alnum
from detector.tracking import CameraTracker, TrackingConfig
from realtime.events import EventBook, TrackReport
from training.gate_data import GATE_DIR, GateFrame, load_frames
from training.synth import encode_jpeg, plate_video


def _recompressed(image: np.ndarray, quality: int = 85) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(encode_jpeg(image, quality), np.uint8), cv2.IMREAD_COLOR)


def _found(detector: PersistentDetector, image: np.ndarray, truth) -> tuple[int, int, int, int] | None:
    """The detector's box over the true plate, None when it misses it."""
    boxes = detector.camera.locate_batch([image])[0]
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


def motorbike_lane(count: int, labelled: bool = False) -> list[GateFrame]:
    """The first `count` frames of the gate's motorbike lane, in order (those with a text, if `labelled`)."""
    return [g for g in load_frames() if g.lane == "xemay" and (g.text or not labelled)][:count]


def _nudged(image: np.ndarray, rng: random.Random, pixels: float, quality: int) -> np.ndarray:
    """The frame moved by up to `pixels` each way and recompressed: the same scene a moment later."""
    shift = np.float32([[1, 0, rng.uniform(-pixels, pixels)], [0, 1, rng.uniform(-pixels, pixels)]])
    moved = cv2.warpAffine(image, shift, image.shape[1::-1], borderMode=cv2.BORDER_REPLICATE)
    return _recompressed(moved, quality)


def gate(detector: PersistentDetector, frames: int) -> tuple[list[float], list[float]]:
    rng, same, following, previous = random.Random(0), [], [], None
    for frame in motorbike_lane(frames):
        image, truth = cv2.imread(str(frame.path)), frame.box
        box = _found(detector, image, truth)
        if box is None:
            continue
        now = look(image, box)
        for k in range(3):  # the same vehicle a moment later: moved a little, recompressed, sometimes blurred
            later_image = _nudged(cv2.GaussianBlur(image, (0, 0), 1.5) if k == 0 else image, rng, 3, 70)
            later_box = _found(detector, later_image, truth)
            if later_box is not None:
                same.append(similarity(now, look(later_image, later_box)))
        if previous is not None:
            following.append(similarity(previous, now))
        previous = now
    return same, following


def gate_queue(detector: PersistentDetector, tracking: TrackingConfig, vehicles: int, hold: int) -> dict:
    rng, images, truths = random.Random(0), [], []
    for frame in motorbike_lane(vehicles, labelled=True):
        image = cv2.imread(str(frame.path))
        images += [_nudged(image, rng, 2, 80) for _ in range(hold)]
        truths += [frame.text] * hold
    tracker, book = CameraTracker(tracking), EventBook(window_s=60)
    events, shown_earlier = [], 0
    for i, image in enumerate(images):
        earlier = {truths[i - d * hold] for d in (1, 2, 3) if i >= d * hold} - {truths[i]}
        sightings = tracker.follow(image, detector.camera.locate_batch([image])[0], i / 10,
                                   lambda box, image=image: detector.camera.read(image, box))
        shown_earlier += any(alnum(s.shown.text) in earlier for s in sightings)
        for s in sightings:
            if s.news:
                event, announce = book.observe(TrackReport.of("gate", s.track))
                events += [(alnum(event.text), earlier)] if announce else []
    return {"vehicles": len(images) // hold, "events": len(events),
            "events with an earlier vehicle's text": sum(text in earlier for text, earlier in events),
            "frames showing an earlier vehicle's text": f"{shown_earlier} / {len(images)}",
            "vehicles whose text got an event": len({t for t, _ in events} & set(truths))}


def spread(values: list[float]) -> str:
    if not values:
        return "n=   0"
    v = np.array(values)
    cuts = " ".join(f"p{q}={np.percentile(v, q):.2f}" for q in (1, 5, 50, 95, 99))
    return f"n={len(v):4d}  min={v.min():.2f} {cuts} max={v.max():.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vehicles", type=int, default=25, help="synthetic vehicles")
    parser.add_argument("--gate", type=int, default=200, help="gate frames (0: none)")
    parser.add_argument("--queue", type=int, default=40, help="gate queue: vehicles (0: none)")
    parser.add_argument("--hold", type=int, default=20, help="gate queue: frames each vehicle is held")
    args = parser.parse_args()
    detector = PersistentDetector()
    rows = dict(zip(("synthetic same", "synthetic next"), synthetic(detector, args.vehicles)))
    gate_data = (GATE_DIR / "scenes.csv").exists()
    if args.gate and gate_data:
        rows.update(zip(("gate same", "gate next"), gate(detector, args.gate)))
    for name, values in rows.items():
        print(f"{name:15s} {spread(values)}")
    if args.queue and gate_data:
        shipped = from_mapping(TrackingConfig, "tracking", load_yaml(DEFAULT_CONFIG).get("tracking"))
        overlap_alone = replace(shipped, new_look=-1.0, same_look=-1.0, new_text_distance=99)
        for name, tracking in (("shipped tracking", shipped), ("overlap alone", overlap_alone)):
            print(f"gate queue, {name}: {gate_queue(detector, tracking, args.queue, args.hold)}")


if __name__ == "__main__":
    main()
