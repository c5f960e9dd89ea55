"""The vision side with the real shipped models, loaded through Ultralytics and EasyOCR."""
from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from detector import ModelLoadError, PersistentDetector, VisionConfig
from detector.config import DetectorConfig, Profiles, ReaderConfig
from detector.crops import level_angle, plate_crops, straighten
from detector.plate_detector import PlateDetector
from detector.plate_reader import PlateReader, most_convincing
from detector.results import PlateBox, PlateText
from detector.rows import other_split, split_rows
from realtime.careful import region_around
from tests.conftest import ROOT, clear_shot, iou
from training.evaluate import char_accuracy
from training.synth import random_plate, render_plate

pytestmark = pytest.mark.slow  # the shipped models


@pytest.fixture(scope="module")
def detector():
    return PersistentDetector(VisionConfig())


CAMERA, PHOTO = Profiles().camera, Profiles().photo


def test_second_construction_returns_the_loaded_models(detector):
    again = PersistentDetector(VisionConfig())
    assert (
        again is detector and again.camera is detector.camera and again.photo.reader is detector.photo.reader
    )
    with pytest.raises(ValueError):
        PersistentDetector(VisionConfig(profiles=Profiles(camera=replace(CAMERA, imgsz=640))))


def test_each_profile_has_models_of_its_own(detector):
    """The careful lane reads in a thread of its own: it shares no model with the camera lane or photos."""
    pipelines = [detector.camera, detector.photo, detector.careful]
    assert (
        len({id(p.detector.model) for p in pipelines}) == len({id(p.reader.reader) for p in pipelines}) == 3
    )
    assert [p.profile for p in pipelines] == [CAMERA, PHOTO, Profiles().careful]


@pytest.mark.parametrize("layout", ["one_row", "two_row_car", "motorbike"])
def test_reads_rendered_plates_of_every_layout(detector, layout):
    right = 0
    for i in range(12):
        shot = clear_shot(f"test-detector-{layout}-{i}", layout)
        reads = detector.camera.detect(shot.scene.image)
        hit = [r for r in reads if iou(r.bbox, shot.box) >= 0.5]
        assert hit, f"plate {shot.text} not found"
        right += hit[0].text == shot.text and hit[0].valid
        assert hit[0].rows == (1 if layout == "one_row" else 2)
    assert right >= 11, f"{right}/12 {layout} plates read exactly"


def test_batch_equals_single_and_blank_image_has_no_plates(detector):
    shots = [clear_shot(f"test-batch-{i}") for i in range(3)]
    batch = detector.camera.detect_batch([s.scene.image for s in shots])
    assert [[r.text for r in reads] for reads in batch] == [
        [r.text for r in detector.camera.detect(s.scene.image)] for s in shots
    ]
    assert detector.camera.detect(np.full((480, 640, 3), 128, np.uint8)) == []


def test_single_photos_are_read_by_the_photo_network_camera_frames_by_the_fast_one(detector):
    assert (detector.camera.reader.profile.network, detector.photo.reader.profile.network) == (
        "vn_plate64",
        "vn_plate_g2",
    )
    shot = clear_shot("test-photo-reader")
    (box,) = [b for b in detector.camera.locate_batch([shot.scene.image])[0] if iou(b.bbox, shot.box) >= 0.5]
    x1, y1, x2, y2 = box.bbox
    crop = shot.scene.image[y1:y2, x1:x2]
    # a photo's plate is read from profiles.photo.crops crops, the most convincing read of them wins
    photo = replace(PHOTO, stop_at=None)
    every_crop = PlateReader(ReaderConfig(), photo)
    photo_reads = [every_crop.read(c, both_splits=True) for c in plate_crops(shot.scene.image, box.bbox, 4)]
    assert every_crop.read_box(shot.scene.image, box.bbox) == most_convincing(photo_reads)
    assert detector.camera.read(shot.scene.image, box) == detector.camera.reader.read(straighten(crop))
    # the recogniser passes are counted: at least one a crop for the photo, one for the camera frame
    assert len(photo_reads) == 4 and every_crop.read_box(shot.scene.image, box.bbox).passes >= len(
        photo_reads
    )
    assert detector.camera.read(shot.scene.image, box).passes == 1
    assert detector.photo.detect(shot.scene.image)[0].text == shot.text


def test_a_sure_read_ends_a_boxs_reading(detector):
    """profiles.photo.stop_at: a valid read that confident leaves the other crops unread."""
    # most clear plates read sure from their first crop (33 of 40 for vn_plate_g2 round 6), not every
    # one: the first of a few that does is the plate this is about
    for attempt in range(8):
        shot = clear_shot(f"test-stop-at:{attempt}")
        found = detector.photo.locate_batch([shot.scene.image])[0]
        (box,) = [b for b in found if iou(b.bbox, shot.box) >= 0.5]
        first = detector.photo.reader.read(plate_crops(shot.scene.image, box.bbox, 4)[0], both_splits=True)
        if first.valid and first.confidence >= PHOTO.stop_at:
            break
    else:
        raise AssertionError("no clear plate in 8 read sure from its first crop")
    assert detector.photo.read(shot.scene.image, box) == first
    never = PlateReader(ReaderConfig(), replace(PHOTO, stop_at=None))
    assert never.read_box(shot.scene.image, box.bbox).passes >= 4


def test_an_unsure_row_is_read_once_not_again_with_its_contrast_stretched(detector):
    """EasyOCR's get_text reads a row under 0.1 sure a second time, contrast stretched: a fifth of the careful
    reads' recogniser passes, none of which changed a read; the readers skip it."""
    for pipeline in (detector.camera, detector.careful):
        calls = []
        hook = pipeline.reader.reader.recognizer.register_forward_hook(lambda *_, seen=calls: seen.append(1))
        try:
            # no text, no edges: both readers read it under 0.1 sure
            blur = cv2.GaussianBlur(np.random.default_rng(0).integers(0, 256, (40, 160), np.uint8), (0, 0), 2)
            text = pipeline.reader.read_rows(blur, [(0, 40)])
        finally:
            hook.remove()
        assert text.confidence < 0.1 and len(calls) == 1, (pipeline.name, text.confidence, len(calls))


def test_missing_photo_reader_weights_are_named_before_loading():
    with pytest.raises(ModelLoadError, match=r"no_such_net.pth. Set profiles.careful.network"):
        PersistentDetector.check_files(
            VisionConfig(profiles=Profiles(careful=replace(PHOTO, network="no_such_net")))
        )


def test_onnx_detector_runs_on_the_configured_threads_without_spinning():
    detector = PlateDetector(DetectorConfig(onnx_threads=1), CAMERA)
    options = detector.model.predictor.model.backend.session.get_session_options()
    assert options.intra_op_num_threads == 1
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    shot = clear_shot("test-onnx-threads")
    assert any(iou(b.bbox, shot.box) >= 0.5 for b in detector.detect_batch([shot.scene.image])[0])


def test_single_photos_and_camera_frames_are_found_each_at_their_profiles_size(detector):
    """One detector file at two sizes: 480 for single photos, 256 for camera frames (models of their own)."""
    names = (detector.camera.detector.path.name, detector.photo.detector.path.name)
    assert names == ("plate_yolov8n_photos_int8.onnx", "plate_yolov8n_photos_int8.onnx")
    assert (detector.camera.detector.imgsz, detector.photo.detector.imgsz) == (256, 480)
    image = clear_shot("test-photo-detector").scene.image
    assert detector.photo.locate_batch([image]) == PlateDetector(DetectorConfig(), PHOTO).detect_batch(
        [image]
    )
    assert detector.camera.locate_batch([image]) == PlateDetector(DetectorConfig(), CAMERA).detect_batch(
        [image]
    )


def test_refine_finds_a_badly_cut_box_again_in_the_region_around_it(detector):
    shot = clear_shot("test-refine")
    x1, y1, x2, y2 = shot.box
    w, h = x2 - x1, y2 - y1
    cut_short = PlateBox(x1 + w // 3, y1 + h // 4, x2, y2 + h // 3, 0.4)  # a coarse look's box, a third off
    region, moved = region_around(shot.scene.image, cut_short)
    truth = (x1 - (cut_short.x1 - moved.x1), y1 - (cut_short.y1 - moved.y1))
    truth = (*truth, truth[0] + w, truth[1] + h)  # the plate in the region's pixels
    (refined,) = detector.careful.refine([region], moved)
    assert iou(moved.bbox, truth) < 0.5 and iou(refined.bbox, truth) >= 0.7
    # nothing there: None (the careful lane reads the box as it was given)
    blank = np.full_like(region, 128)
    assert detector.careful.refine([blank, region], moved) == [None, refined]


def test_missing_photo_detector_weights_are_named(tmp_path):
    gone = replace(PHOTO, weights=tmp_path / "gone.onnx")
    with pytest.raises(ModelLoadError, match=r"gone.onnx\. Set profiles.photo.weights"):
        PersistentDetector.check_files(VisionConfig(profiles=Profiles(photo=gone)))
    with pytest.raises(ModelLoadError, match="gone.onnx"):
        PlateDetector(DetectorConfig(), gone)


def test_missing_detector_weights_fail_at_load_naming_the_file(tmp_path):
    with pytest.raises(ModelLoadError, match="nothing.pt"):
        PlateDetector(DetectorConfig(), replace(CAMERA, weights=tmp_path / "nothing.pt"))


def test_corrupt_detector_weights_fail_at_load_naming_the_file(tmp_path):
    for name in ("corrupt.pt", "corrupt.onnx"):
        bad = tmp_path / name
        bad.write_bytes(b"\x80\x02not a model" * 100)
        with pytest.raises(ModelLoadError, match=name):
            PlateDetector(DetectorConfig(), replace(CAMERA, weights=bad))


def test_missing_and_corrupt_reader_weights_fail_at_load(tmp_path):
    with pytest.raises(ModelLoadError, match="vn_plate64.pth"):
        PlateReader(ReaderConfig(model_dir=tmp_path), CAMERA)
    (tmp_path / "vn_plate64.pth").write_bytes(b"garbage" * 50)
    with pytest.raises(ModelLoadError, match="vn_plate64.pth"):
        PlateReader(ReaderConfig(model_dir=tmp_path), CAMERA)


def test_easyocr_english_g2_stays_selectable():
    """EasyOCR's own English reader, as is: a general reader, so most characters, not the exact plate."""
    reader = PlateReader(ReaderConfig(), replace(CAMERA, network="english_g2"))
    shots = [clear_shot(seed, "one_row") for seed in ("test-g2", "a", "b", "c")]
    reads = [reader.read(s.scene.image[s.box[1]:s.box[3], s.box[0]:s.box[2]]) for s in shots]
    accuracy = sum(char_accuracy(r.raw_text, s.text) for r, s in zip(reads, shots)) / len(shots)
    assert all(r.rows == 1 for r in reads) and accuracy >= 0.45, [(r.raw_text, s.text)
                                                                  for r, s in zip(reads, shots)]


def test_shipped_vn_plate_g2_reads_plates_beside_another_reader():
    """Both shipped readers in one process: EasyOCR keeps a custom network's input height in
    a module global that the later Reader overwrites; each must still read at its own height."""
    g2 = PlateReader(ReaderConfig(), PHOTO)
    small = PlateReader(ReaderConfig(), CAMERA)  # built last: the global is 32 px now
    right = {"g2": 0, "small": 0}
    for i, layout in enumerate(["one_row", "motorbike", "two_row_car"] * 3):
        shot = clear_shot(f"test-two-readers-{i}", layout)
        x1, y1, x2, y2 = shot.box
        crop = shot.scene.image[y1:y2, x1:x2]
        right["g2"] += g2.read(crop).text == shot.text
        right["small"] += small.read(crop).text == shot.text
    assert right["g2"] >= 8 and right["small"] >= 8, right


def test_the_recogniser_reads_as_it_did_in_its_channels_last_layout(detector):
    """The readers' convolutions run channels-last (sooner on a CPU); a plate reads the same either way."""
    recogniser = detector.photo.reader.reader.recognizer
    convs = [m for m in recogniser.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs)
    crops = []
    for i, layout in enumerate(["one_row", "motorbike", "two_row_car"]):
        shot = clear_shot(f"test-channels-last-{i}", layout)
        x1, y1, x2, y2 = shot.box
        crops.append(shot.scene.image[y1:y2, x1:x2])
    fast = [detector.photo.reader.read(c, both_splits=True) for c in crops]
    recogniser.to(memory_format=torch.contiguous_format)
    try:
        plain = [detector.photo.reader.read(c, both_splits=True) for c in crops]
    finally:
        recogniser.to(memory_format=torch.channels_last)
    assert [r.text for r in fast] == [r.text for r in plain]
    assert [r.confidence for r in fast] == pytest.approx([r.confidence for r in plain], abs=1e-4)


def _cli(args: list[str], prefix: list[str] = ()) -> subprocess.CompletedProcess:
    return subprocess.run(list(prefix) + [sys.executable, "-m", "detector", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def test_cli_prints_one_json_line_per_image_and_annotates(tmp_path):
    shots = [clear_shot(f"test-cli-{i}") for i in range(2)]
    folder = tmp_path / "in"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.jpg"), shots[0].scene.image)
    single = tmp_path / "b.png"
    cv2.imwrite(str(single), shots[1].scene.image)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    out = tmp_path / "annotated"
    proc = _cli(
        [str(folder), str(single), str(broken), str(tmp_path / "missing.jpg"), "--annotate", str(out)]
    )
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(lines) == 4, proc.stderr
    by_image = {Path(line["image"]).name: line for line in lines}
    for name, shot in (("a.jpg", shots[0]), ("b.png", shots[1])):
        detections = by_image[name]["detections"]
        assert shot.text in [d["text"] for d in detections]
        assert set(detections[0]) == {
            "bbox",
            "det_confidence",
            "text",
            "raw_text",
            "ocr_confidence",
            "confidence",
            "valid",
            "rows",
        }
    assert "error" in by_image["broken.jpg"] and "error" in by_image["missing.jpg"]
    assert proc.returncode == 1  # some files failed, none crashed the run
    drawn = cv2.imread(str(out / "a.jpg"))
    x1, y1, x2, y2 = shots[0].box
    edge = drawn[max(0, y1 - 3):y2 + 3, max(0, x1 - 3):x2 + 3].reshape(-1, 3).astype(int)
    # green box around the plate
    assert ((edge[:, 1] > 150) & (edge[:, 0] < 80) & (edge[:, 2] < 80)).sum() > 20


def test_cli_runs_with_networking_switched_off(tmp_path):
    if (
        not shutil.which("unshare")
        or subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode != 0
    ):
        pytest.skip("unshare -n is not permitted here")
    shot = clear_shot("test-offline")
    image = tmp_path / "offline.jpg"
    cv2.imwrite(str(image), shot.scene.image)
    proc = _cli([str(image)], prefix=["unshare", "-n"])
    assert proc.returncode == 0, proc.stderr
    assert shot.text in [d["text"] for d in json.loads(proc.stdout)["detections"]]


def test_an_onnx_export_is_a_drop_in_detector(tmp_path, detector):
    from ultralytics import YOLO

    # export writes beside it
    weights = Path(shutil.copy(ROOT / "models" / "plate_yolov8n.pt", tmp_path / "plates.pt"))
    onnx_path = Path(YOLO(str(weights)).export(format="onnx", imgsz=320, dynamic=True))
    onnx_detector = PlateDetector(DetectorConfig(), replace(CAMERA, weights=onnx_path))
    shot = clear_shot("test-onnx")
    (box,) = [b for b in onnx_detector.detect_batch([shot.scene.image])[0] if iou(b.bbox, shot.box) >= 0.5]
    (same,) = [b for b in detector.camera.locate_batch([shot.scene.image])[0] if iou(b.bbox, shot.box) >= 0.5]
    assert iou(box.bbox, same.bbox) > 0.9


def test_int8_quantization_finds_the_plates_the_float_model_finds(tmp_path):
    import onnx

    from training import quantize_detector

    out = tmp_path / "int8.onnx"
    quantize_detector.main(["--scenes", "8", "--photos", "0", "--out", str(out)])
    ops = {node.op_type for node in onnx.load(str(out)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops  # the convolutions run in 8 bits
    exact = PlateDetector(DetectorConfig(), replace(CAMERA, weights=ROOT / "models" / "plate_yolov8n.onnx"))
    quantized = PlateDetector(DetectorConfig(), replace(CAMERA, weights=out))
    for seed in ("test-int8-a", "test-int8-b", "test-int8-c"):
        shot = clear_shot(seed)
        (box,) = [b for b in quantized.detect_batch([shot.scene.image])[0] if iou(b.bbox, shot.box) >= 0.5]
        (same,) = [b for b in exact.detect_batch([shot.scene.image])[0] if iou(b.bbox, shot.box) >= 0.5]
        assert iou(box.bbox, same.bbox) > 0.9


def test_a_plate_is_cut_as_found_enlarged_tighter_and_wider_within_the_image():
    image = np.zeros((100, 200, 3), np.uint8)
    shapes = [c.shape[:2] for c in plate_crops(image, (50, 40, 150, 65), 4)]
    assert shapes == [(25, 100), (50, 200), (25 - 2, 100 - 6), (25 + 4, 100 + 12)]
    assert [c.shape[:2] for c in plate_crops(image, (50, 40, 150, 65))] == [(25, 100)]
    assert plate_crops(image, (0, 0, 200, 30), 4)[3].shape[:2] == (32, 200)  # wider, but not past the edges
    # off the image: empty, no error
    assert all(c.size == 0 for c in plate_crops(image, (300, 300, 320, 310), 4))


def tilted_plate(seed: str, layout: str, tilt: float) -> tuple[np.ndarray, str]:
    """A rendered plate on grey turned `tilt` degrees counter-clockwise, cut as a detector would box it:
    round the turned plate, 6 px to spare."""
    rng = random.Random(seed)
    spec = random_plate(rng, layout)
    plate = render_plate(spec, rng, 60)
    h, w = plate.shape[:2]
    side = int(np.hypot(h, w)) + 20
    x0, y0 = (side - w) // 2, (side - h) // 2
    canvas = np.full((side, side, 3), 90, np.uint8)
    canvas[y0:y0 + h, x0:x0 + w] = plate
    turn = cv2.getRotationMatrix2D((side / 2, side / 2), tilt, 1)
    corners = np.array([[x0, y0, 1], [x0 + w, y0, 1], [x0, y0 + h, 1], [x0 + w, y0 + h, 1]]) @ turn.T
    (left, top), (right, bottom) = np.rint(corners.min(axis=0)), np.rint(corners.max(axis=0))
    turned = cv2.warpAffine(canvas, turn, (side, side), borderMode=cv2.BORDER_REPLICATE)
    return turned[int(top) - 6:int(bottom) + 6, int(left) - 6:int(right) + 6], spec.text


@pytest.mark.parametrize("layout", ["one_row", "two_row_car", "motorbike"])
def test_a_plate_seen_at_an_angle_is_turned_level_and_a_level_one_is_left_alone(layout):
    for tilt in (-28, -20, -12, -7, 5, 10, 16, 25):
        crop, _ = tilted_plate(f"test-level-{layout}-{tilt}", layout, tilt)
        assert abs(level_angle(crop) + tilt) <= 1.5, f"{layout} turned {tilt} degrees"
        levelled = straighten(crop)
        assert abs(level_angle(levelled)) <= 1.5
        # cut to the plate (60 px high, boxed with 12 to spare, a little margin): the box round a tilted
        # plate is taller than it
        assert 60 <= levelled.shape[0] <= (60 + 12) * 1.2 and levelled.shape[1] <= crop.shape[1]
    level, _ = tilted_plate(f"test-level-{layout}", layout, 0)
    assert level_angle(level) == 0.0 and straighten(level) is level
    assert straighten(np.zeros((3, 40, 3), np.uint8)).shape == (3, 40, 3)  # too small to judge: as it is


def test_crops_are_levelled_unless_the_reader_is_told_not_to(detector):
    crop, _ = tilted_plate("test-level-read", "one_row", 9)
    image = np.full((200, 400, 3), 90, np.uint8)
    image[50:50 + crop.shape[0], 60:60 + crop.shape[1]] = crop
    box = (60, 50, 60 + crop.shape[1], 50 + crop.shape[0])
    (levelled,) = plate_crops(image, box)
    (as_cut,) = plate_crops(image, box, level=False)
    assert np.array_equal(as_cut, crop) and np.array_equal(levelled, straighten(crop))
    assert not np.array_equal(levelled, crop)  # turned
    assert detector.camera.reader.read_box(image, box) == detector.camera.reader.read(levelled)
    unlevelled = PlateReader(ReaderConfig(level=False), CAMERA)
    assert unlevelled.read_box(image, box) == unlevelled.read(crop)


def test_a_photo_crop_shaped_between_one_row_and_two_is_read_both_ways(detector):
    reader = detector.photo.reader
    read_right = 0
    for seed in range(8):
        crop, text = tilted_plate(f"test-both-splits-{seed}", "one_row", 0)
        grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
        # a one-row plate as narrow as a two-row one (a short red plate, a box padded at top and bottom)
        squeezed = cv2.resize(grey, (round(grey.shape[0] * 1.8), grey.shape[0]))
        chosen = split_rows(squeezed)
        splits = [chosen, other_split(squeezed, chosen)]
        assert [len(s) for s in splits] == [2, 1]
        one_way, other_way = (reader.read_rows(squeezed, rows) for rows in splits)
        assert reader.read(squeezed) == one_way and one_way.text != text  # cut in two, misread
        # a first read that fits a plate format stands; one that fits none is read the other way too
        both = reader.read(squeezed, both_splits=True)
        assert both == (one_way if one_way.valid else most_convincing([one_way, other_way]))
        read_right += both.text == text
    assert read_right >= 2  # read as the one row it is (seeds 1 and 6 as this was written)


def test_the_most_convincing_read_fits_a_plate_format_then_is_most_confident():
    unsure, sure = PlateText("51F-123.45", "", 0.41, True, 1), PlateText("51F-123.46", "", 0.62, True, 1)
    invalid = PlateText("5IF-1234567", "", 0.97, False, 1)
    # the winner carries the recogniser passes of every read
    assert most_convincing([invalid, unsure]) == replace(unsure, passes=2)
    assert most_convincing([unsure, invalid, sure]) == replace(sure, passes=3)


def test_sure_reads_that_agree_on_a_text_no_format_knows_beat_an_unsure_valid_one():
    unsure, sure = PlateText("51F-123.45", "", 0.41, True, 1), PlateText("51F-123.46", "", 0.62, True, 1)
    agreed = [PlateText("51XY12345", "", c, False, 1) for c in (0.93, 0.97)]
    assert most_convincing([unsure, *agreed]) == replace(agreed[1], passes=3)
    assert most_convincing([sure, *agreed]) == replace(sure, passes=3)  # a valid read sure enough still wins
    # one sure read alone, or two that disagree, or two that are not sure enough do not
    disagree = [agreed[0], replace(agreed[1], text="51XY12346")]
    assert most_convincing([unsure, agreed[1]]) == replace(unsure, passes=2)
    assert most_convincing([unsure, *disagree]) == replace(unsure, passes=3)
    not_sure = [replace(t, confidence=0.8) for t in agreed]
    assert most_convincing([unsure, *not_sure]) == replace(unsure, passes=3)
