"""Quantize the ONNX plate detector to INT8 with ONNX Runtime's static quantization, offline.

    python -m training.quantize_detector    # models/plate_yolov8n.onnx -> models/plate_yolov8n_int8.onnx

Only the convolutions are quantized (weights per output channel, activations per tensor, as
QDQ pairs that ONNX Runtime fuses into integer convolutions); the head's box decoding stays in
float. The activation ranges are calibrated on images as the server sees them: synthetic camera
scenes letterboxed to profiles.camera.imgsz and real training photos (never the evaluation split)
letterboxed to profiles.photo.imgsz. On this 2-core CPU the INT8 model takes about a fifth less
CPU per frame than the float one (BENCHMARKS.md); models/MODEL_CARD.md has its accuracy.
"""
from __future__ import annotations

import argparse
import os
import random
import tempfile
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "false")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from detector.config import DEFAULT_CONFIG, load_yaml, vision_config  # noqa: E402
from training.real_data import REAL_DIR, load, split  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CALIBRATION_SEED = "calibration-int8"  # neither a training nor the evaluation seed


def network_input(image: np.ndarray, imgsz: int) -> np.ndarray:
    """A BGR image as Ultralytics' predictor feeds the exported model: letterboxed to imgsz
    (the short side padded to a multiple of 32), RGB, 0-1, NCHW."""
    from ultralytics.data.augment import LetterBox

    boxed = LetterBox((imgsz, imgsz), auto=True, stride=32)(image=image)
    return np.ascontiguousarray(boxed[..., ::-1].transpose(2, 0, 1)[None], dtype=np.float32) / 255


def calibration_inputs(scenes: int, photos: int, real_dir: Path) -> list[np.ndarray]:
    """Camera scenes at the camera size and real training photos at the photo size."""
    from training.synth import render_scene

    profiles = vision_config(load_yaml(DEFAULT_CONFIG)).profiles
    inputs = [
        network_input(render_scene(random.Random(f"{CALIBRATION_SEED}:{i}")).image, profiles.camera.imgsz)
        for i in range(scenes)
    ]
    if photos and not (real_dir / "labels.csv").exists():
        print(f"no real photos at {real_dir}: calibrating on synthetic scenes only")
    elif photos:
        train, _ = split(load(real_dir))
        for photo in random.Random(CALIBRATION_SEED).sample(train, min(photos, len(train))):
            image = cv2.imread(str(photo.path), cv2.IMREAD_COLOR)
            if image is not None:
                inputs.append(network_input(image, profiles.photo.imgsz))
    return inputs


def quantize(source: Path, out: Path, inputs: list[np.ndarray]) -> None:
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._inputs = iter(inputs)

        def get_next(self):
            x = next(self._inputs, None)
            return None if x is None else {name: x}

    name = onnx.load(str(source)).graph.input[0].name
    with tempfile.TemporaryDirectory() as tmp:
        # fold and fuse first (Conv+BN and friends) so the ranges are those of the graph that runs;
        # the dynamic input shape defeats symbolic shape inference, which is not needed here
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared),
            str(out),
            Reader(),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=["Conv"],
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--onnx", type=Path, default=ROOT / "models" / "plate_yolov8n.onnx", help="the float model"
    )
    ap.add_argument("--out", type=Path, default=ROOT / "models" / "plate_yolov8n_int8.onnx")
    ap.add_argument("--scenes", type=int, default=200, help="synthetic camera scenes to calibrate on")
    ap.add_argument("--photos", type=int, default=200, help="real training photos to calibrate on")
    ap.add_argument("--real-dir", type=Path, default=REAL_DIR)
    args = ap.parse_args(argv)
    inputs = calibration_inputs(args.scenes, args.photos, args.real_dir)
    print(f"calibrating on {len(inputs)} images")
    quantize(args.onnx, args.out, inputs)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
