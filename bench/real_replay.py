"""Real photos streamed as gate cameras through the real server: how well the live path reads them.

    python -m bench.real_replay                         # both sets, six cameras, photos held 1.5 s at 10 fps
    python -m bench.real_replay --set gate --limit 60   # a quicker look

Each evaluation photo is one vehicle at a gate: vn-real's evaluation split (training/real_data)
and vn-gate's (training/gate_data: 15% of plate texts, by hash). Its camera sends it for --hold
frames, each moved by up to a pixel and recompressed as a webcam's frames differ, then --gap
frames of an empty grey picture, then the next photo; --cameras cameras share the photos in
turn, each a client process streaming at --fps as binary attachments, all at once. Then, on
the same photos in-process with the server stopped: the photo path (what `python -m detector`
and POST /detect read) and the camera path frame by frame (the live detector and reader
without tracks).

Printed per set (a photo's text counts when the A-Z0-9 of a read equals the caption's):
- event: share of photos whose camera got a plate_event with its text while it stood there
  (or within a second after), or whose plate continued its camera's event for it (the same
  plate back within events.window_s is the same event, and no new plate_event is sent: vn-gate's
  split has the same vehicle in up to 15 frames) while its results showed the text; wrong
  events: events with a text no photo there had;
- shown late: share of results showing the photo's text on the last 5 frames of its hold;
- first right p50/p95: from the photo's first frame sent to the first result showing its text,
  over the photos that got one;
- p95: the live results' latency, send to receipt (the fast lane);
- photo path and camera path: shares read by those paths on the same photos; the issue's
  target is event >= 0.95 x photo path;
- photo streamed: the photo path's share on the first frame of each hold as it was streamed;
- with --runs N, each live run's event share (wrong events) and their mean: one run's share moves by
  about 0.01 with the host's load.
The JSON report also has each photo's outcome (`per_photo`: its events, the texts shown late in its
hold, and the offline paths' reads) to look at the misses. With --careful-log the server logs each careful
read (server.log_level DEBUG): each photo gets its tracks' careful reads, and the report counts the misses
that a careful read did read right (the lane's rules lost them) apart from those no careful read did (the
reader did).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path

import requests
import yaml

from bench.stream_bench import ROOT, describe, machine, percentile, start_server
from detector.plate_format import alnum
from realtime.config import load_config
from training.real_data import streamed_frame

LATE_FRAMES = 5  # the last frames of a hold that "shown late" looks at
AFTER_S = 1.0  # an event this long after its photo left still counts for it


@dataclass(frozen=True)
class Photo:
    path: Path
    text: str  # A-Z0-9


def evaluation_photos(name: str) -> list[Photo]:
    if name == "real":
        from training import real_data

        return [Photo(p.path, alnum(p.text)) for p in real_data.split(real_data.load())[1]]
    from training import gate_data

    return [Photo(g.path, g.text) for g in gate_data.evaluation_frames()]


def camera_frames(photos: list[Photo], hold: int, gap: int, seed: int) -> list[bytes]:
    """Each photo `hold` times (nudged, recompressed), then `gap` empty frames."""
    import cv2
    import numpy as np

    rng, frames = random.Random(seed), []
    for photo in photos:
        image = cv2.imread(str(photo.path))
        frames += [streamed_frame(image, rng) for _ in range(hold)]
        empty = cv2.imencode(".jpg", np.full_like(image, 110), [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes()
        frames += [empty] * gap
    return frames


def camera_id(index: int) -> str:
    """The camera id the replay's camera `index` streams as."""
    return f"gate{index}"


def run_camera(
    url: str, index: int, photos: list[Photo], hold: int, gap: int, fps: float, nice: int, out: mp.Queue
) -> None:
    import socketio

    os.nice(nice)  # the cameras' own CPU is not the server's on a real site: --client-nice gives it back

    frames = camera_frames(photos, hold, gap, seed=index)
    camera = camera_id(index)
    sent: list[float] = []
    results: list[tuple[int, float, list[str], list[int]]] = []  # frame_id, received, texts and tracks shown
    stages: list[dict] = []  # the server's timing_ms of each result
    events: list[tuple[float, str]] = []  # received, text
    sio = socketio.Client(reconnection=False)

    def on_result(r: dict) -> None:
        shown = r["detections"]
        results.append((r["frame_id"], time.perf_counter(), [alnum(d["text"]) for d in shown],
                        [d["track_id"] for d in shown]))
        stages.append(r["timing_ms"])

    sio.on("detection_result", on_result)
    sio.on("plate_event", lambda e: events.append((time.perf_counter(), alnum(e["text"]))))
    sio.connect(url, transports=["websocket"], wait_timeout=20)
    start = time.perf_counter()
    for i, jpeg in enumerate(frames):
        sent.append(time.perf_counter())
        sio.emit("video_frame", {"camera_id": camera, "frame": jpeg, "frame_id": i})
        time.sleep(max(0.0, start + (i + 1) / fps - time.perf_counter()))
    time.sleep(AFTER_S + 1.0)  # the last results and events
    sio.disconnect()
    out.put({"camera": index, "sent": sent, "results": results, "events": events, "stages": stages})


CAREFUL_READ = re.compile(
    r"careful read camera='(?P<camera>[^']*)' track=(?P<track>\d+) (?P<priority>\w+) fused=(?P<fused>\w+) "
    r"text='(?P<text>[^']*)' confidence=(?P<confidence>[\d.]+) valid=(?P<valid>\w+)")


def careful_reads(log_text: str) -> dict[tuple[str, int], list[dict]]:
    """The careful reads a server logged (realtime/careful.py at DEBUG), by (camera, track), in order."""
    reads: dict[tuple[str, int], list[dict]] = {}
    for m in CAREFUL_READ.finditer(log_text):
        reads.setdefault((m["camera"], int(m["track"])), []).append(
            {"priority": m["priority"], "fused": m["fused"] == "True", "text": alnum(m["text"]),
             "confidence": float(m["confidence"]), "valid": m["valid"] == "True"})
    return reads


def judge(
    photos: list[Photo], streams: list[dict], cameras: int, hold: int, gap: int, window_s: float,
    careful: dict[tuple[str, int], list[dict]] | None = None,
) -> dict:
    """The live figures of one set from what each camera sent and received (`window_s`: events.window_s);
    `careful`: the careful reads by (camera, track), when the server logged them."""
    period = hold + gap
    right_events = wrong_events = late_right = late_total = sent_total = answered = 0
    careful_misses = {"read_right": 0, "never_read_right": 0}
    first_right, latencies, stages = [], [], []
    per_photo: list[dict] = [{} for _ in photos]  # what each photo got, for looking at the misses
    for stream in streams:
        mine = photos[stream["camera"] :: cameras]
        sent = stream["sent"]
        starts = [sent[k * period] for k in range(len(mine))] + [sent[-1] + 1.0]
        by_photo: dict[int, list[tuple]] = {}  # photo index -> its frames' results (as in run_camera)
        for result in stream["results"]:
            by_photo.setdefault(result[0] // period, []).append(result)
        alive: dict[str, float] = {}  # plate -> when its event on this camera was last seen
        for k, photo in enumerate(mine):
            window = (starts[k], starts[k + 1] + AFTER_S)
            shown = by_photo.get(k, [])
            seen = [received for _, received, texts, _ in shown if photo.text in texts]
            announced = any(
                window[0] <= t <= window[1] and text == photo.text for t, text in stream["events"]
            )
            continued = bool(seen) and starts[k] - alive.get(photo.text, -math.inf) <= window_s
            if announced or continued:
                right_events += 1
                alive[photo.text] = starts[k + 1]
            late_texts = [texts for fid, _, texts, _ in shown if hold - LATE_FRAMES <= fid % period < hold]
            row = per_photo[stream["camera"] + k * cameras] = {
                "photo": str(photo.path),
                "text": photo.text,
                "right": announced or continued,
                "events": [text for t, text in stream["events"] if window[0] <= t <= window[1]],
                "shown_late": sorted({t for texts in late_texts for t in texts}),
            }
            if careful is not None:
                tracks = sorted({track for *_, shown_tracks in shown for track in shown_tracks})
                camera = camera_id(stream["camera"])
                row["careful"] = [r for t in tracks for r in careful.get((camera, t), [])]
                if not row["right"]:
                    read_right = any(r["text"] == photo.text for r in row["careful"])
                    careful_misses["read_right" if read_right else "never_read_right"] += 1
            if seen:
                first_right.append((min(seen) - starts[k]) * 1000)
            late_total += len(late_texts)
            late_right += sum(photo.text in texts for texts in late_texts)
        texts_there = {p.text for p in mine}
        wrong_events += sum(text not in texts_there for _, text in stream["events"])
        latencies += [(received - sent[fid]) * 1000 for fid, received, *_ in stream["results"]]
        sent_total, answered = sent_total + len(sent), answered + len(stream["results"])
        stages += stream["stages"]
    return {
        "photos": len(photos),
        "event": round(right_events / len(photos), 4),
        "wrong_events": wrong_events,
        "shown_late": round(late_right / late_total, 4) if late_total else None,
        "first_right_ms": {
            "p50": percentile(first_right, 50),
            "p95": percentile(first_right, 95),
            "photos": len(first_right),
        },
        "latency_ms": {"p50": percentile(latencies, 50), "p95": percentile(latencies, 95)},
        "answered": round(answered / sent_total, 3),
        "stages_ms": {k: round(sum(t[k] for t in stages) / len(stages), 1) for k in stages[0]}
        if stages
        else {},
        **({"careful_misses": careful_misses} if careful is not None else {}),
        "per_photo": per_photo,
    }


def stream_set(photos: list[Photo], args: argparse.Namespace, log_path: Path) -> dict:
    careful = {"enabled": not args.no_careful} | {
        k: getattr(args, k)
        for k in ("cpu_share", "wide_look_s", "gather_s", "fuse_frames", "agree_at")
        if getattr(args, k) is not None
    }
    tracking = {"unconfirmed_every": args.unconfirmed_every} if args.unconfirmed_every else {}
    server_section = {"log_level": "DEBUG"} if args.careful_log else {}
    if args.still_s is not None:
        tracking["still_s"] = args.still_s
    # whole profiles: start_server replaces a section's keys, not deeper
    shipped = yaml.safe_load((ROOT / "config.yaml").read_text())["profiles"]
    profiles = {}
    if args.careful_crops:
        profiles["careful"] = shipped["careful"] | {"crops": args.careful_crops}
    if args.camera_network:
        profiles["camera"] = shipped["camera"] | {"network": args.camera_network}
    server, url = start_server(
        {"careful": careful, "tracking": tracking, "profiles": profiles, "server": server_section}, log_path
    )
    try:
        ctx = mp.get_context("spawn")
        out = ctx.Queue()
        procs = [
            ctx.Process(
                target=run_camera,
                args=(
                    url,
                    i,
                    photos[i :: args.cameras],
                    args.hold,
                    args.gap,
                    args.fps,
                    args.client_nice,
                    out,
                ),
            )
            for i in range(args.cameras)
        ]
        for p in procs:
            p.start()
        seconds = len(photos) / args.cameras * (args.hold + args.gap) / args.fps
        streams = [out.get(timeout=seconds + 300) for _ in procs]
        for p in procs:
            p.join(30)
        careful = requests.get(f"{url}/health", timeout=10).json()["careful"]
    finally:
        server.terminate()
        server.wait(30)
    window_s = load_config(ROOT / "config.yaml", env={}).events.window_s
    reads = careful_reads(log_path.read_text()) if args.careful_log else None
    return judge(photos, streams, args.cameras, args.hold, args.gap, window_s, reads) | {"careful": careful}


def summary(runs: list[dict]) -> dict:
    """Each run's headline figures and their mean: one run's event share moves by about 0.01 with the host's
    load, so a target near the line is judged by the mean of several."""
    figures = [{"event": r["event"], "wrong_events": r["wrong_events"],
                "first_right_p95": r["first_right_ms"]["p95"], "latency_p95": r["latency_ms"]["p95"]}
               for r in runs]
    events = [f["event"] for f in figures]
    return {"runs": figures, "event_mean": round(sum(events) / len(events), 4),
            "event_range": [min(events), max(events)],
            "wrong_events_mean": round(sum(f["wrong_events"] for f in figures) / len(figures), 1)}


def offline_paths(photos: list[Photo], cameras: int, hold: int, gap: int) -> dict:
    """Shares read on the same photos by the photo path and, frame by frame, by the camera path, and
    each photo's texts by either; and by the photo path on the first frame its camera streamed (the
    webcam-like copy the live path saw: a photo read right on a knife edge may not survive it)."""
    import cv2
    import numpy as np

    from detector import PersistentDetector
    from detector.config import load_yaml, vision_config

    detector = PersistentDetector(vision_config(load_yaml(ROOT / "config.yaml")))
    streamed: dict[int, bytes] = {}  # photo index -> the first frame of its hold, as its camera sent it
    for i in range(cameras):
        frames = camera_frames(photos[i::cameras], hold, gap, seed=i)
        streamed |= {i + k * cameras: frames[k * (hold + gap)] for k in range(len(photos[i::cameras]))}
    reads = []  # per photo: (photo path texts, camera path texts, photo path texts on its streamed frame)
    for n, p in enumerate(photos):
        image = cv2.imread(str(p.path))
        frame = cv2.imdecode(np.frombuffer(streamed[n], np.uint8), cv2.IMREAD_COLOR)
        reads.append(
            tuple(
                [alnum(r.text) for r in lane.detect(picture)]
                for lane, picture in (
                    (detector.photo, image),
                    (detector.camera, image),
                    (detector.photo, frame),
                )
            )
        )

    def share(path: int) -> float:
        return round(sum(p.text in r[path] for p, r in zip(photos, reads)) / len(photos), 4)

    return {"photo_path": share(0), "camera_path": share(1), "photo_path_streamed": share(2), "reads": reads}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=["real", "gate", "both"], default="both")
    parser.add_argument("--cameras", type=int, default=6)
    parser.add_argument("--fps", type=float, default=10.0)
    parser.add_argument("--hold", type=int, default=15, help="frames each photo is held")
    parser.add_argument("--gap", type=int, default=3, help="empty frames between photos")
    parser.add_argument(
        "--limit", type=int, default=0, help="photos per set at most (0: all), spread over the set"
    )
    parser.add_argument(
        "--no-careful", action="store_true", help="the camera lane alone (careful.enabled: false)"
    )
    parser.add_argument(
        "--cpu-share", type=float, default=None, help="careful.cpu_share (default: as config.yaml)"
    )
    parser.add_argument(
        "--wide-look-s",
        type=float,
        default=None,
        help="careful.wide_look_s (default: as config.yaml; 0: none)",
    )
    parser.add_argument(
        "--gather-s", type=float, default=None, help="careful.gather_s (default: as config.yaml; 0: no wait)"
    )
    parser.add_argument(
        "--fuse-frames", type=int, default=None, help="careful.fuse_frames (default: as config.yaml; 1: none)"
    )
    parser.add_argument(
        "--agree-at", type=float, default=None,
        help="careful.agree_at (default: as config.yaml; careful.min_confidence: no unsure reads agree)",
    )
    parser.add_argument(
        "--unconfirmed-every", type=int, default=0, help="tracking.unconfirmed_every (0: as config.yaml)"
    )
    parser.add_argument(
        "--still-s",
        type=float,
        default=None,
        help="tracking.still_s (default: as config.yaml; 0: every frame looked at)",
    )
    parser.add_argument(
        "--careful-crops", type=int, default=0, help="profiles.careful.crops (0: as config.yaml)"
    )
    parser.add_argument(
        "--camera-network", default=None, help="profiles.camera.network (default: as config.yaml)"
    )
    parser.add_argument(
        "--client-nice",
        type=int,
        default=0,
        help="CPU niceness of the camera processes (they share this machine with the server)",
    )
    parser.add_argument(
        "--live-only", action="store_true", help="skip the photo and camera paths (slow, offline)"
    )
    parser.add_argument(
        "--careful-log", action="store_true",
        help="the server logs each careful read (log_level DEBUG); each photo gets its tracks' careful reads",
    )
    parser.add_argument(
        "--runs", type=int, default=1,
        help="live runs of each set (the report's figures are the first's; each run's and their mean beside)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "artifacts" / "bench")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"cameras": args.cameras, "fps": args.fps, "hold": args.hold, "gap": args.gap,
              "machine": machine()}
    for name in ["real", "gate"] if args.set == "both" else [args.set]:
        photos = evaluation_photos(name)
        if args.limit and len(photos) > args.limit:
            photos = photos[:: len(photos) // args.limit][: args.limit]
        runs = [stream_set(photos, args, args.out / f"server-replay-{name}.log") for _ in range(args.runs)]
        live = runs[0] | summary(runs)
        offline = (
            {"photo_path": None, "camera_path": None, "photo_path_streamed": None}
            if args.live_only
            else offline_paths(photos, args.cameras, args.hold, args.gap)
        )
        for row, texts in zip(live["per_photo"], offline.pop("reads", [])):
            row |= dict(zip(("photo_path", "camera_path", "photo_path_streamed"), texts))
        report[name] = live | offline
    path = args.out / f"real-replay-{args.set}.json"
    path.write_text(json.dumps(report, indent=1))
    print(
        f"{args.cameras} cameras x {args.fps:g} fps, each photo held {args.hold} frames, "
        f"{args.gap} empty between"
    )
    print(
        f"{'set':6}{'photos':>7}{'event':>7}{'wrong':>6}{'late':>7}{'1st p50':>9}{'1st p95':>9}{'p95 ms':>8}"
        f"{'photo path':>11}{'camera path':>12}{'event/photo':>12}{'photo streamed':>15}"
    )
    for name in (k for k in ("real", "gate") if k in report):
        r = report[name]
        ratio = round(r["event"] / r["photo_path"], 3) if r["photo_path"] else None
        paths = f"{r['photo_path']!s:>11}{r['camera_path']!s:>12}"
        print(
            f"{name:6}{r['photos']:>7}{r['event']:>7}{r['wrong_events']:>6}{r['shown_late']!s:>7}"
            f"{r['first_right_ms']['p50']!s:>9}{r['first_right_ms']['p95']!s:>9}{r['latency_ms']['p95']!s:>8}"
            f"{paths}{ratio!s:>12}{r['photo_path_streamed']!s:>15}"
        )
        print(
            f"       frames answered {r['answered']}; stages ms (mean): {r['stages_ms']}; "
            f"careful lane: {r['careful']}"
        )
        if len(r["runs"]) > 1:
            each = ", ".join(f"{f['event']} ({f['wrong_events']})" for f in r["runs"])
            ratio = round(r["event_mean"] / r["photo_path"], 3) if r["photo_path"] else None
            print(f"       {len(r['runs'])} runs, event (wrong): {each}; mean {r['event_mean']} "
                  f"({r['wrong_events_mean']}), event/photo {ratio}")
        if "careful_misses" in r:
            misses = r["careful_misses"]
            print(f"       missed photos: {misses['read_right']} with a careful read of the right text, "
                  f"{misses['never_read_right']} without")
    print(describe(report["machine"]))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
