"""Training on captioned photos: boxes proposed and trusted through the caption, then used.

The real photos (../shared/data/vn-real) are never needed here: a stand-in folder of the
same shape (images/ + labels.csv, caption of one plate per photo, another plate beside it)
is rendered from the synthetic scenes, whose true boxes the proposals are checked against.
"""
import json
import random
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from detector.boxes import iou
from detector.config import DEFAULT_CONFIG, Profiles, load_yaml, vision_config
from detector.plate_detector import weights_path
from detector.plate_format import alnum
from tests.conftest import ROOT
from training.datasets import write_real_yolo_set
from training.evaluate import EvalPhoto, evaluate_photos, named_reader, streamed_copies
from training.real_data import (
    EVAL_BOXES,
    EVAL_BOXES_BY_EYE,
    ReferenceBox,
    caption_rows,
    eval_boxes,
    streamed_copy,
)
from training.synth import render_scene

PHOTOS = 14  # one group: 2 go to the evaluation split, and photo_011 is the held-out validation one


def run(*args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def captioned(tmp_path_factory):
    """(folder, true box of each photo's captioned plate, boxes.json of the proposals)."""
    root = tmp_path_factory.mktemp("captioned")
    (root / "images").mkdir()
    truth, rows = {}, ["file,text,group"]
    for i in range(PHOTOS):
        scene = next(sc for k in range(50)  # a second plate does not always find room
                     if len((sc := render_scene(random.Random(f"captioned:{i}:{k}"), n_plates=2,
                                                layouts=["one_row", None])).plates) == 2)
        name = f"photo_{i:03d}.jpg"
        cv2.imwrite(str(root / "images" / name), scene.image)
        truth[name] = (scene.plates[0].box, scene.plates[1].box)
        rows.append(f'{name},{scene.plates[0].spec.text},"car, white"')
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    boxes = root / "work" / "boxes.json"
    run("training.real_boxes", "--real-dir", str(root), "--work", str(root / "work"), "--imgsz", "320",
        "--detectors", str(ROOT / "models" / "plate_yolov8n.pt"))
    return root, truth, boxes


def test_caption_rows_cut_where_the_plate_breaks():
    assert caption_rows("60-AA 499.10", 2) == ("60AA", "49910")
    assert caption_rows("51D-297.63", 2) == ("51D", "29763")  # a two-row yellow plate, one-string caption
    assert caption_rows("KP-38-92", 2) == ("KP", "3892")
    assert caption_rows("51F-123.45", 1) == ("51F12345",)
    assert caption_rows("60-MĐ1 011.61", 2) == ("60MD1", "01161")
    assert caption_rows("60-AA 499.10", 1) is None  # a two-row caption read as one row: no label
    assert caption_rows("51F-123.45", 3) is None


def test_a_streamed_copy_is_the_picture_moved_by_under_a_pixel_and_the_same_for_the_same_seed():
    image = render_scene(random.Random(3), 320, 240).image
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    for picture in (image, grey):
        copy = streamed_copy(picture, random.Random("a"))
        assert copy.shape == picture.shape and copy.dtype == np.uint8
        difference = np.abs(copy.astype(int) - picture.astype(int))
        assert 0 < difference.mean() < 12  # blurred and recompressed, not moved off the picture
        assert np.array_equal(copy, streamed_copy(picture, random.Random("a")))
        assert not np.array_equal(copy, streamed_copy(picture, random.Random("b")))


@pytest.mark.slow
def test_evaluate_reads_the_streamed_figure_from_streamed_copies_not_the_file(tmp_path):
    """A small plate the photo reader reads right in the file but not in some streamed copy of it: the
    report's box exact is 1 and its streamed figure is what the copies read (under 1)."""
    config = vision_config(load_yaml(DEFAULT_CONFIG))
    reader = named_reader(config, "vn_plate_g2", config.profiles.photo)
    for i in range(60):
        scene = render_scene(random.Random(f"streamed:{i}"), n_plates=1, layouts=["one_row"])
        small = cv2.resize(scene.image, None, fx=0.3, fy=0.3, interpolation=cv2.INTER_AREA)
        path = tmp_path / f"photo_{i}.png"  # lossless: evaluate reads these pixels
        cv2.imwrite(str(path), small)
        text = alnum(scene.plates[0].spec.text)
        photo = EvalPhoto(path, text, ("all",), tuple(round(v * 0.3) for v in scene.plates[0].box))
        copies = [alnum(reader.read_box(copy, photo.reference).text) == text
                  for copy in streamed_copies(photo, small)]
        if alnum(reader.read_box(small, photo.reference).text) == text and not all(copies):
            break
    else:
        raise AssertionError("no small plate read right in its file and wrong in a streamed copy")
    report = evaluate_photos(DEFAULT_CONFIG, ["vn_plate_g2"], [photo], {"name": "one", "root": str(tmp_path)})
    figures = report["readers"]["vn_plate_g2"]["all"]
    assert figures["box_exact"] == 1.0
    assert figures["streamed"] == sum(copies) / len(copies) < 1.0


def test_real_report_splits_photos_by_how_wide_their_characters_are():
    from training.evaluate import _report_order
    from training.real_data import RealPhoto, char_width_bucket

    one_row = RealPhoto(Path("a.jpg"), "51F-123.45", "car, white")  # 8 characters in one row
    two_row = RealPhoto(Path("b.jpg"), "60-AA 499.10", "motorbike")  # 9 characters, at most 5 a row
    assert char_width_bucket(one_row.rows, (10, 0, 41, 9)) == "chars 0-4 px wide"  # 31 / 8
    assert char_width_bucket(one_row.rows, (10, 0, 42, 9)) == "chars 4-6 px wide"  # 32 / 8
    assert char_width_bucket(one_row.rows, (0, 0, 80, 20)) == "chars 8+ px wide"
    assert char_width_bucket(two_row.rows, (0, 0, 32, 30)) == "chars 6-8 px wide"  # 32 / 5, not 32 / 9
    old_plate = RealPhoto(Path("c.jpg"), "60 737-HR", "motorbike")  # rows "60" / "737HR": 5, not half of 7
    assert char_width_bucket(old_plate.rows, (0, 0, 18, 20)) == "chars 0-4 px wide"  # 18 / 5
    keys = [
        "all",
        "chars 8+ px wide",
        "chars 4-6 px wide",
        "two_row",
        "chars 0-4 px wide",
        "chars 6-8 px wide",
    ]
    assert sorted(keys, key=_report_order) == ["two_row", "chars 0-4 px wide", "chars 4-6 px wide",
                                               "chars 6-8 px wide", "chars 8+ px wide", "all"]


def test_reference_boxes_merge_the_caption_matched_and_the_by_eye_ones(tmp_path):
    matched, by_eye = tmp_path / "matched.json", tmp_path / "by_eye.json"
    matched.write_text(json.dumps({"trust": 0.6, "boxes": {"a.jpg": [1, 2, 3, 4]}}))
    by_eye.write_text(json.dumps({"what": "by eye", "boxes": {"a.jpg": [9, 9, 9, 9], "b.jpg": [5, 6, 7, 8]}}))
    # the first file wins, and each box remembers its file for the report's split by source
    assert eval_boxes(matched, by_eye) == {"a.jpg": ReferenceBox((1, 2, 3, 4), "matched"),
                                           "b.jpg": ReferenceBox((5, 6, 7, 8), "by_eye")}
    assert eval_boxes(tmp_path / "missing.json", by_eye)["a.jpg"].box == (9, 9, 9, 9)
    # the shipped files: no photo in both, and together they cover all 384 evaluation photos
    shipped = [set(json.loads(f.read_text())["boxes"]) for f in (EVAL_BOXES, EVAL_BOXES_BY_EYE)]
    assert not shipped[0] & shipped[1] and len(eval_boxes()) == 384


@pytest.mark.slow
def test_proposals_keep_the_captioned_plate_not_the_other(captioned):
    root, truth, boxes = captioned
    proposals = json.loads(boxes.read_text())["proposals"]
    # never the eval split
    assert {p["file"] for p in proposals} == set(truth) - {"photo_006.jpg", "photo_009.jpg"}
    trusted = [p for p in proposals if p["box"] and p["score"] >= 0.6]
    assert len(trusted) >= 9, [(p["caption"], p["read"]) for p in proposals]
    for p in trusted:
        captioned_box, other_box = truth[p["file"]]
        assert iou(tuple(p["box"]), captioned_box) >= 0.5 > iou(tuple(p["box"]), other_box)
    assert (boxes.parent / "kept.png").stat().st_size > 0 and (boxes.parent / "rejected.png").is_file()


@pytest.mark.slow
def test_detection_set_labels_the_captioned_plate_and_paints_over_the_rest(captioned, tmp_path):
    root, truth, boxes = captioned
    proposals = {p["file"]: p for p in json.loads(boxes.read_text())["proposals"]}
    n_train, n_val = write_real_yolo_set(tmp_path / "train", tmp_path / "val", boxes, root)
    trusted = sorted(f for f, p in proposals.items() if p["box"] and p["score"] >= 0.6)
    assert n_train + n_val == len(trusted) and n_val == ("photo_011.jpg" in trusted)
    name = next(f for f in trusted if f != "photo_011.jpg" and proposals[f]["others"])
    image = cv2.imread(str(tmp_path / "train" / "images" / f"real_{name[:-4]}.jpg"))
    h, w = image.shape[:2]
    cls, cx, cy, bw, bh = map(
        float, (tmp_path / "train" / "labels" / f"real_{name[:-4]}.txt").read_text().split()
    )
    x1, y1, x2, y2 = proposals[name]["box"]
    assert cls == 0 and abs(cx * w - (x1 + x2) / 2) < 1 and abs(bw * w - (x2 - x1)) < 1
    ox1, oy1, ox2, oy2 = truth[name][1]
    assert image[oy1 + 3:oy2 - 3, ox1 + 3:ox2 - 3].reshape(-1, 3).std(0).max() < 6  # a flat patch now
    assert image[y1:y2, x1:x2].std() > 20  # the labelled one is untouched


@pytest.mark.slow
def test_reader_and_detector_train_on_the_trusted_boxes(captioned, tmp_path):
    root, _, boxes = captioned
    proc = run("training.train_reader", "--samples", "20", "--epochs", "1", "--real", str(boxes),
               "--real-dir", str(root), "--real-variants", "2", "--out", str(tmp_path / "vn_plate.pth"))
    assert "real val row accuracy" in proc.stdout
    assert int(proc.stdout.split("real: ")[1].split()[0]) > 0  # real rows were trained on
    run("training.train_detector", "--scenes", "4", "--epochs", "1", "--imgsz", "96", "--batch", "4",
        "--base", str(ROOT / "models" / "plate_yolov8n.pt"), "--work", str(tmp_path / "work"),
        "--out", str(tmp_path / "tiny.pt"), "--real", str(boxes), "--real-dir", str(root))
    labels = list((tmp_path / "work" / "data" / "real_train" / "labels").iterdir())
    assert labels and all(f.read_text().startswith("0 ") for f in labels)
    assert np.isfinite(float(labels[0].read_text().split()[1]))


@pytest.mark.slow
def test_reference_boxes_of_the_eval_split_judge_the_detector_apart_from_the_reader(captioned, tmp_path):
    root, truth, _ = captioned
    reference = tmp_path / "eval_boxes.json"
    run("training.real_boxes", "--real-dir", str(root), "--work", str(root / "work"), "--imgsz", "320",
        "--detectors", str(ROOT / "models" / "plate_yolov8n.pt"), "--split", "eval", "--out", str(reference))
    boxes = json.loads(reference.read_text())["boxes"]
    assert boxes and set(boxes) <= {"photo_006.jpg", "photo_009.jpg"}  # the eval split only
    assert "caption" not in reference.read_text()  # names and boxes: nothing of the set's text
    for name, box in boxes.items():
        assert iou(tuple(box), truth[name][0]) >= 0.5 > iou(tuple(box), truth[name][1])
    assert not (reference.parent / "eval_kept.png").exists()  # photos stay in the work folder
    report_path = tmp_path / "report.json"
    run("training.evaluate", "--real", "--real-dir", str(root), "--eval-boxes", str(reference),
        "--json", str(report_path))
    report = json.loads(report_path.read_text())
    assert report["set"] == {"name": "vn-real", "photos": 2, "root": str(root), "reference_boxes": len(boxes)}
    assert report["detector"]["recall"]["all"] == {"photos": len(boxes), "recall": 1.0}
    # one source
    assert report["detector"]["recall"]["box from eval_boxes"] == report["detector"]["recall"]["all"]
    assert report["detector"]["weights"] == str(weights_path(Profiles().photo))  # the photos' detector
    reader = next(iter(report["readers"].values()))["all"]
    assert reader["photos"] == 2 and reader["box_exact"] is not None
    assert 0 <= reader["streamed"] <= 1  # the same boxes in streamed copies of the photos
    # a reference box where no plate is: the detector's recall must count it as missed
    moved = dict(boxes, **{next(iter(boxes)): [0, 0, 24, 10]})
    reference.write_text(json.dumps({"trust": 0.6, "boxes": moved}))
    run("training.evaluate", "--real", "--real-dir", str(root), "--eval-boxes", str(reference),
        "--json", str(report_path))
    recall = json.loads(report_path.read_text())["detector"]["recall"]["all"]
    assert recall == {"photos": len(boxes), "recall": round((len(boxes) - 1) / len(boxes), 4)}
