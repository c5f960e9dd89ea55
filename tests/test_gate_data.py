"""vn-gate (parking-gate CCTV) in training and evaluation: its split by plate text, its crops' rows,
the reader trained on its crops and `evaluate --gate`.

The real set (../shared/data/vn-gate) is never needed here: a stand-in folder of the same shape
(scenes/ + scenes.csv with one plate box a frame, crops/ + crops.csv with the text) is rendered
from the synthetic scenes, whose true boxes and texts it carries.
"""
import csv
import json
import random

import cv2
import pytest

from detector.plate_format import alnum
from tests.conftest import ROOT
from tests.test_real_training import run
from training.gate_data import (
    PLATE_TEXT,
    crop_rows,
    evaluation_frames,
    in_evaluation,
    load_crops,
    load_frames,
    split,
)
from training.synth import render_scene

FRAMES = 16  # a few fall in the evaluation split: chosen by text hash, as the real set's are


def test_crop_rows_cut_the_sets_two_row_texts_where_the_plate_breaks():
    assert crop_rows("59X124340", 2) == ("59X1", "24340")  # 59-X1 243.40
    assert crop_rows("54T15417", 2) == ("54T1", "5417")  # an old four-digit number
    assert crop_rows("60AA49910", 2) == ("60AA", "49910")  # two series letters, no series digit
    assert crop_rows("59MD123456", 2) == ("59MD1", "23456")
    assert crop_rows("51G12345", 1) == ("51G12345",)
    assert crop_rows("5G12345", 1) is None  # a character missing: the README's filter drops it
    assert crop_rows("23MB102406", 2) is None  # 23-MD1 024.06 with its Đ labelled B: no real plate
    assert crop_rows("51G12345", 3) is None


@pytest.fixture(scope="module")
def gate_folder(tmp_path_factory):
    """(folder, {frame name: (box, text)}) of a stand-in vn-gate, half of it in each lane."""
    root = tmp_path_factory.mktemp("vn-gate")
    (root / "scenes").mkdir()
    (root / "crops").mkdir()
    truth, scenes, crops = {}, [], []
    for i in range(FRAMES):
        lane, layout = ("xemay", "motorbike") if i % 2 else ("CarLongPlate", "one_row")
        scene = next(sc for k in range(50) if len((sc := render_scene(
            random.Random(f"gate:{i}:{k}"), n_plates=1, layouts=[layout])).plates) == 1
            and PLATE_TEXT.fullmatch(alnum(sc.plates[0].spec.text)))
        plate = scene.plates[0]
        name, text, rows = f"{lane}{i}.jpg", alnum(plate.spec.text), len(plate.spec.rows)
        cv2.imwrite(str(root / "scenes" / name), scene.image)
        x1, y1, x2, y2 = plate.box
        cv2.imwrite(str(root / "crops" / f"1{name}"), scene.image[y1:y2, x1:x2])
        truth[name] = (plate.box, text)
        scenes.append({"file": name, "x1": x1, "y1": y1, "x2": x2, "y2": y2, "text": text, "rows": rows})
        crops.append({"file": f"1{name}", "text": text, "rows": rows})
    for file, rows in (("scenes.csv", scenes), ("crops.csv", crops)):
        with open(root / file, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    assert any(in_evaluation(t) for _, t in truth.values()), "no frame in the evaluation split"
    return root, truth


def test_evaluation_texts_never_reach_training(gate_folder):
    root, truth = gate_folder
    train, evaluation = split(load_frames(root))
    assert {g.path.name for g in train} | {g.path.name for g in evaluation} == set(truth)
    assert not {g.text for g in train} & {g.text for g in evaluation}
    crops = load_crops(root)
    assert crops and not any(in_evaluation("".join(c.rows)) for c in crops)
    assert len(crops) == len(train)
    assert {len(c.rows) for c in crops} == {1, 2}  # both lanes' plates, cut into their rows


@pytest.mark.slow
def test_reader_trains_on_the_gate_crops(gate_folder, tmp_path):
    root, _ = gate_folder
    proc = run("training.train_reader", "--samples", "20", "--epochs", "1", "--gate", "2",
               "--gate-dir", str(root), "--out", str(tmp_path / "vn_plate.pth"))
    trained = int(proc.stdout.split("gate: ")[1].split()[0])
    assert trained > len(load_crops(root))  # two cuts of each crop, most with two rows
    assert (tmp_path / "vn_plate.pth").stat().st_size > 0


@pytest.mark.slow
def test_evaluate_gate_reports_the_evaluation_frames_by_lane_rows_and_size(gate_folder, tmp_path):
    root, truth = gate_folder
    report_path = tmp_path / "gate.json"
    run("training.evaluate", "--gate", "--gate-dir", str(root), "--json", str(report_path))
    report = json.loads(report_path.read_text())
    evaluation = {name for name, (_, text) in truth.items() if in_evaluation(text)}
    assert report["set"] == {"name": "vn-gate", "root": str(root), "photos": len(evaluation),
                             "reference_boxes": len(evaluation)}
    reader = next(iter(report["readers"].values()))
    lanes = {"motorbike lane": sum(n.startswith("xemay") for n in evaluation),
             "car lane": sum(n.startswith("Car") for n in evaluation)}
    assert {k: reader[k]["photos"] for k in lanes if k in reader} == {k: n for k, n in lanes.items() if n}
    assert reader["all"]["photos"] == len(evaluation) and reader["all"]["box_exact"] is not None
    sizes = [k for k in reader if k.startswith("chars ")]
    assert any(k.endswith(", one_row") or k.endswith(", two_row") for k in sizes)
    # synthetic plates this large are found: the detector is judged on the frames' own boxes
    assert report["detector"]["recall"]["all"]["recall"] >= 0.5


def test_captions_put_right_by_eye_change_only_their_frames(gate_folder, tmp_path):
    root, truth = gate_folder
    evaluation = split(load_frames(root))[1]
    fixed, dropped = evaluation[0], evaluation[-1]
    by_eye = tmp_path / "by_eye.json"
    by_eye.write_text(json.dumps({"what": "test", "corrected": {fixed.path.name: "51F12345"},
                                  "trained_on": {dropped.path.name: "30A99999"}}))
    scored = {g.path.name: g.text for g in evaluation_frames(root, by_eye)}
    assert scored[fixed.path.name] == "51F12345" and dropped.path.name not in scored
    assert {n: t for n, t in scored.items() if n != fixed.path.name} == {
        g.path.name: g.text for g in evaluation if g not in (fixed, dropped)}


@pytest.mark.slow
def test_detector_trains_on_the_gate_frames_of_the_training_side_only(gate_folder, tmp_path):
    root, truth = gate_folder
    work = tmp_path / "work"
    proc = run("training.train_detector", "--scenes", "4", "--epochs", "1", "--imgsz", "96", "--batch", "4",
               "--base", str(ROOT / "models" / "plate_yolov8n.pt"), "--work", str(work),
               "--out", str(tmp_path / "tiny.pt"), "--gate", "--gate-dir", str(root))
    assert "gate frames:" in proc.stdout
    taught = {f.stem.removeprefix("gate_") + ".jpg": f.read_text().split()
              for side in ("gate_train", "gate_val") for f in (work / "data" / side / "labels").glob("*.txt")}
    assert set(taught) == {g.path.name for g in split(load_frames(root))[0]}  # never an evaluation text
    for name, label in taught.items():
        (x1, y1, x2, y2), _ = truth[name]
        height, width = cv2.imread(str(root / "scenes" / name)).shape[:2]
        assert label[0] == "0" and float(label[1]) == pytest.approx((x1 + x2) / 2 / width, abs=1e-5)
        assert float(label[4]) == pytest.approx((y2 - y1) / height, abs=1e-5)
