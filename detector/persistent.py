"""PersistentDetector: each profile's detector and reader, loaded once per process.

Loading YOLO and EasyOCR takes seconds and hundreds of MB; done per frame it costs 5.5 s a
frame (the design this one replaced). Constructing PersistentDetector a second time
returns the instance already loaded. Each profile (config.yaml `profiles:`) is a `Pipeline`
with models of its own: `camera` for live frames, `photo` for single photos, `careful` for the
careful lane's reads. A model is not thread-safe: use each pipeline from one thread at a time.
"""
from __future__ import annotations

import threading
from time import perf_counter

import numpy as np

from detector import plate_detector, plate_reader
from detector.config import DetectorConfig, Profile, ReaderConfig, VisionConfig
from detector.plate_detector import PlateDetector
from detector.plate_reader import PlateReader
from detector.results import PlateBox, PlateRead, PlateText


class Pipeline:
    """One profile's models: plate boxes in images, and the text of a box."""

    def __init__(self, name: str, profile: Profile, detector: DetectorConfig, reader: ReaderConfig):
        section = f"profiles.{name}"
        self.name, self.profile = name, profile
        self._configs = (detector, reader)
        self.detector = PlateDetector(detector, profile, section)
        self.reader = PlateReader(
            reader, profile, gpu=self.detector.device.startswith("cuda"), section=section
        )

    def twin(self) -> Pipeline:
        """The same profile's models loaded again, for another thread to use at the same time."""
        return Pipeline(self.name, self.profile, *self._configs)

    def locate_batch(self, images: list[np.ndarray]) -> list[list[PlateBox]]:
        """Plate boxes in each image (one YOLO call for the whole batch)."""
        return self.detector.detect_batch(images)

    def refine(self, regions: list[np.ndarray], box: PlateBox) -> list[PlateBox | None]:
        """A coarser look's box found again in regions around it (one place, one shape) with this profile's
        detector (None: not found in that region)."""
        return self.detector.refine(regions, box)

    def read(self, image: np.ndarray, box: PlateBox) -> PlateText:
        """The text of one plate box of an image."""
        return self.reader.read_box(image, box.bbox)

    def detect_batch(self, images: list[np.ndarray]) -> list[list[PlateRead]]:
        return [[PlateRead.of(box, self.read(image, box)) for box in boxes]
                for image, boxes in zip(images, self.locate_batch(images))]

    def detect(self, image: np.ndarray) -> list[PlateRead]:
        """Every plate in one BGR image, located and read."""
        return self.detect_batch([image])[0]


class PersistentDetector:
    _instance: PersistentDetector | None = None
    _lock = threading.Lock()

    def __new__(cls, config: VisionConfig | None = None):
        config = config or VisionConfig()
        with cls._lock:
            if cls._instance is None:
                instance = super().__new__(cls)
                instance._load(config)
                cls._instance = instance
            elif cls._instance.config != config:
                raise ValueError(
                    "PersistentDetector is already loaded with another configuration in this process"
                )
            return cls._instance

    def _load(self, config: VisionConfig) -> None:
        import torch

        torch.set_num_threads(config.detector.torch_threads)
        self.config = config
        started = perf_counter()
        self.pipelines = {
            name: Pipeline(name, profile, config.detector, config.reader) for name, profile in config.profiles
        }
        self.camera, self.photo, self.careful = (
            self.pipelines[name] for name in ("camera", "photo", "careful")
        )
        self.load_seconds = perf_counter() - started

    @staticmethod
    def check_files(config: VisionConfig) -> None:
        """Fail fast (ModelLoadError naming the file and the setting) before a slow load in the background."""
        for name, profile in config.profiles:
            plate_detector.weights_path(profile, f"profiles.{name}")
            plate_reader.weights_path(config.reader, profile.network, f"profiles.{name}")

    @property
    def models(self) -> dict[str, dict[str, str]]:
        return {
            p.name: {
                "detector": str(p.detector.path),
                "imgsz": p.profile.imgsz,
                "reader": p.profile.network,
                "crops": p.profile.crops,
                "device": p.detector.device,
            }
            for p in self.pipelines.values()
        }
