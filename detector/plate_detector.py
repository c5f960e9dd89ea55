"""YOLO plate detector (Ultralytics), .pt or .onnx, loaded once and checked at start-up."""
from __future__ import annotations

import os

os.environ.setdefault("YOLO_OFFLINE", "1")  # never reach for the hub
os.environ.setdefault("YOLO_AUTOINSTALL", "false")  # never pip-install at run time

import logging  # noqa: E402
import math  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from detector.boxes import iou  # noqa: E402
from detector.config import DetectorConfig, Profile, resolve  # noqa: E402
from detector.errors import ModelLoadError  # noqa: E402
from detector.results import PlateBox  # noqa: E402

MIN_REFINE_SIZE = 64  # the smallest input a refining look is given (a multiple of 32)


def pick_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda:0" if torch.cuda.is_available() else "cpu"


def weights_path(profile: Profile, section: str = "profiles.camera") -> Path:
    """A profile's detector weights, checked to exist (else ModelLoadError naming file and setting)."""
    path = resolve(profile.weights)
    if not path.is_file():
        raise ModelLoadError(
            f"plate detector weights not found: {path}. Set {section}.weights in config.yaml to a YOLO "
            ".pt/.onnx file, or rebuild the default with: python -m training.train_detector")
    return path


class PlateDetector:
    """Finds plate boxes in BGR images, several images per call, with one profile's weights at its size."""

    def __init__(self, config: DetectorConfig, profile: Profile, section: str = "profiles.camera"):
        import ultralytics  # noqa: F401  (importing it sets its logger's level: quieten it after)

        # Ultralytics logs loading chatter to stdout, where the CLI prints its JSON lines
        logging.getLogger("ultralytics").setLevel(logging.WARNING)
        self.config = config
        self.imgsz = profile.imgsz
        self.path = weights_path(profile, section)
        self.device = pick_device(config.device)
        self.model = self._load(self.path, profile.imgsz)
    def _load(self, path: Path, imgsz: int):
        from ultralytics import YOLO

        try:
            model = YOLO(str(path), task="detect")
            # load fully now, not on the first frame
            model.predict([np.zeros((64, 64, 3), np.uint8)], imgsz=imgsz, device=self.device, verbose=False)
        except Exception as exc:  # a truncated or foreign file fails in many ways
            raise ModelLoadError(
                f"plate detector weights could not be loaded: {path} ({type(exc).__name__}: {exc}). "
                "Replace the file with a YOLO detection model (.pt or .onnx).") from exc
        if path.suffix == ".onnx" and self.device == "cpu" and self.config.onnx_threads:
            self._reopen_onnx_session(model, path, self.config.onnx_threads)
        return model

    @staticmethod
    def _reopen_onnx_session(model, path: Path, threads: int) -> None:
        """Ultralytics opens ONNX Runtime with a spinning thread per core, which burns the core the
        event loop and the reader need: reopen the session with `threads` threads that sleep when idle."""
        import onnxruntime

        backend = getattr(model.predictor.model, "backend", None)
        if not isinstance(getattr(backend, "session", None), onnxruntime.InferenceSession):
            logging.getLogger(__name__).warning(
                "detector.onnx_threads not applied: unknown Ultralytics ONNX backend"
            )
            return
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        backend.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def detect_batch(self, images: list[np.ndarray]) -> list[list[PlateBox]]:
        """Plate boxes in each image."""
        return self._predict(images, self.imgsz)

    def refine(self, regions: list[np.ndarray], box: PlateBox) -> list[PlateBox | None]:
        """A box that a coarser look found (camera frames at 256 px), found again in each region (crops
        around it, one shape: frames of one place) at the regions' own scale, up to the profile's size: the
        most confident plate overlapping it, None where none does. On vn-real's photos the
        careful read of the refined box is right for 0.63 of the vehicles the camera lane sees, against 0.57
        for its own box (a detection costs ~6 ms; five regions in one call ~30 ms against 44 one by one)."""
        size = min(self.imgsz, max(MIN_REFINE_SIZE, math.ceil(max(regions[0].shape[:2]) / 32) * 32))
        return [max((b for b in found if iou(b.bbox, box.bbox) > 0), key=lambda b: b.confidence, default=None)
                for found in self._predict(regions, size)]

    def _predict(self, images: list[np.ndarray], imgsz: int) -> list[list[PlateBox]]:
        if not images:
            return []
        results = self.model.predict(
            images,
            imgsz=imgsz,
            conf=self.config.confidence,
            iou=self.config.iou,
            max_det=self.config.max_plates,
            device=self.device,
            verbose=False,
        )
        out = []
        for result in results:
            boxes = result.boxes
            xyxy = boxes.xyxy.cpu().numpy().round().astype(int).tolist()
            conf = boxes.conf.cpu().numpy().tolist()
            out.append(
                [PlateBox(*b, confidence=float(c)) for b, c in zip(xyxy, conf) if b[2] > b[0] and b[3] > b[1]]
            )
        return out
