"""The training and evaluation scripts stay runnable: tiny runs, real code paths, offline."""
from dataclasses import replace
import subprocess
import sys

import numpy as np

from detector.config import DetectorConfig, Profiles, ReaderConfig
from detector.plate_detector import PlateDetector
from detector.plate_reader import PlateReader
from tests.conftest import ROOT


def run(*args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def test_detector_fine_tune_one_epoch_on_a_few_scenes(tmp_path):
    out = tmp_path / "tiny.pt"
    run("training.train_detector", "--scenes", "6", "--epochs", "1", "--imgsz", "96", "--batch", "3",
        "--base", str(ROOT / "models" / "plate_yolov8n.pt"), "--work", str(tmp_path / "work"), "--out", str(out))
    detector = PlateDetector(DetectorConfig(), replace(Profiles().camera, weights=out, imgsz=96))
    assert len(detector.detect_batch([np.zeros((96, 96, 3), np.uint8)])) == 1  # it loads and runs
    assert (tmp_path / "work" / "data" / "train" / "labels").is_dir()


def test_reader_training_writes_an_easyocr_loadable_network(tmp_path):
    out = tmp_path / "vn_plate.pth"
    proc = run("training.train_reader", "--samples", "40", "--epochs", "1", "--out", str(out))
    assert "val row accuracy" in proc.stdout
    reader = PlateReader(ReaderConfig(model_dir=tmp_path), Profiles().camera)  # loaded by EasyOCR's own code from tmp_path
    assert reader.read(np.full((40, 160, 3), 255, np.uint8)).rows == 1


def test_evaluation_prints_its_figures():
    proc = run("training.evaluate", "--scenes", "6", "--readers", "vn_plate", "english_g2")
    assert "precision" in proc.stdout and "vn_plate" in proc.stdout and "english_g2" in proc.stdout


def test_synthetic_rows_are_the_same_whatever_the_worker_count():
    from training.train_reader import row_samples

    one, two = row_samples("workers-test", 12, 32), row_samples("workers-test", 12, 32, workers=2)
    assert [text for _, text in one] == [text for _, text in two] and len(one) >= 12
    assert all(np.array_equal(a, b) for (a, _), (b, _) in zip(one, two))
