"""Vehicles one after another at one spot, through the real server: each is its own track and event."""
from __future__ import annotations

import random
import time

import cv2
import numpy as np
import pytest

from detector import PersistentDetector
from tests.conftest import iou, start_server, stop_server
from tests.test_events import EventClient, stream_in_order
from training.synth import Scene, encode_jpeg, gate_visits, render_scene

pytestmark = pytest.mark.slow  # a real server with the shipped models

FPS = 10
HOLD = 25  # frames each vehicle stands at the spot: 2.5 s
SETTLED = FPS  # a vehicle's frames after its first second


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("vehicles"))
    yield srv
    stop_server(srv)


def replay(server, camera_id: str, scenes: list[Scene]) -> tuple[list[dict], list[dict], list[bytes]]:
    """Stream the scenes in order at FPS; the results by frame_id order, the plate events, the JPEGs sent."""
    jpegs = [encode_jpeg(sc.image, 85) for sc in scenes]
    client = EventClient(server.url)
    try:
        stream_in_order(client, camera_id, jpegs, FPS)
        time.sleep(1.5)
    finally:
        client.close()
    return sorted(client.results, key=lambda r: r["frame_id"]), client.events, jpegs


def shows(result: dict, plate) -> bool:
    """The result shows this plate's own text on a box over it."""
    return any(
        d["text"] == plate.spec.text and iou(d["bbox"], plate.box) >= 0.5 for d in result["detections"]
    )


def check_each_vehicle(scenes: list[Scene], results: list[dict], events: list[dict], gap: int) -> None:
    stops = range(0, len(scenes), HOLD + gap)
    truths = [scenes[start].plates[0].spec.text for start in stops]
    assert [e["text"] for e in events] == truths, (truths, events)
    assert len({e["track_id"] for e in events}) == len(truths) and len({e["id"] for e in events}) == len(
        truths
    )
    by_frame = {r["frame_id"]: r for r in results}
    for start, truth in zip(stops, truths):
        settled = [by_frame[i] for i in range(start + SETTLED, start + HOLD) if i in by_frame]
        assert len(settled) >= 10, f"{truth}: {len(settled)} results"
        own = sum(shows(r, scenes[r["frame_id"]].plates[0]) for r in settled)
        assert own >= 0.9 * len(settled), (truth, [[d["text"] for d in r["detections"]] for r in settled])
        # a vehicle's boxes never carry another vehicle's text or track
        shown = {d["text"] for r in settled for d in r["detections"]}
        assert not shown & (set(truths) - {truth}), (truth, shown)


def test_five_vehicles_bumper_to_bumper_are_five_tracks_and_five_events(server):
    scenes = gate_visits(random.Random("five-vehicles"), list(range(5)), HOLD, gap=0, jitter=2.0)
    results, events, _ = replay(server, "gate-a", scenes)
    check_each_vehicle(scenes, results, events, gap=0)


def test_five_vehicles_two_seconds_apart_are_five_events(server):
    gap = 2 * FPS
    scenes = gate_visits(random.Random("five-vehicles-gap"), list(range(5)), HOLD, gap=gap, jitter=2.0)
    results, events, _ = replay(server, "gate-b", scenes)
    check_each_vehicle(scenes, results, events, gap=gap)


def test_a_vehicle_that_leaves_and_comes_back_within_the_window_is_one_event(server):
    # 3 s away: its track expires (tracking.expire_s), the event goes on (events.window_s)
    scenes = gate_visits(random.Random("comes-back"), [0, 0], HOLD, gap=3 * FPS, jitter=2.0)
    results, events, _ = replay(server, "gate-c", scenes)
    truth = scenes[0].plates[0].spec.text
    assert [e["text"] for e in events] == [truth]
    tracks = {d["track_id"] for r in results for d in r["detections"]}
    assert len(tracks) >= 2, tracks  # two visits, two tracks, still one vehicle's event


def test_unrelated_scenes_in_a_row_show_each_frames_own_read(server):
    rng = random.Random("unrelated-scenes")
    scenes = [render_scene(rng) for _ in range(60)]
    results, _, jpegs = replay(server, "gate-d", scenes)
    detector = PersistentDetector()
    live = alone = plates = 0
    for result in results:
        i = result["frame_id"]
        image = cv2.imdecode(np.frombuffer(jpegs[i], np.uint8), cv2.IMREAD_COLOR)
        read_alone = {"detections": [r.to_dict() for r in detector.camera.detect(image)]}
        for plate in scenes[i].plates:
            plates += 1
            live += shows(result, plate)
            alone += shows(read_alone, plate)
    assert len(results) >= 50 and plates >= 50
    assert live / plates >= alone / plates - 0.03, (live, alone, plates)
