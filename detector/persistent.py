"""PersistentDetector: the detector and the reader, loaded once per process.

Loading YOLO and EasyOCR takes seconds and hundreds of MB; doing it per frame is what
made the old design take 5.5 s a frame. Constructing PersistentDetector a second time
returns the instance already loaded. The models are not thread-safe: call it from one
thread (the server's inference worker).
"""
from __future__ import annotations

import threading
from time import perf_counter

import numpy as np

from detector.config import VisionConfig
from detector import plate_detector, plate_reader
from detector.plate_detector import PlateDetector, pick_device
from detector.plate_reader import PlateReader
from detector.results import PlateBox, PlateRead, PlateText


class PersistentDetector:
    _instance: "PersistentDetector | None" = None
    _lock = threading.Lock()

    def __new__(cls, config: VisionConfig | None = None):
        config = config or VisionConfig()
        with cls._lock:
            if cls._instance is None:
                instance = super().__new__(cls)
                instance._load(config)
                cls._instance = instance
            elif cls._instance.config != config:
                raise ValueError("PersistentDetector is already loaded with another configuration in this process")
            return cls._instance

    def _load(self, config: VisionConfig) -> None:
        import torch

        torch.set_num_threads(config.detector.torch_threads)
        self.config = config
        started = perf_counter()
        self.detector = PlateDetector(config.detector)
        gpu = pick_device(config.detector.device).startswith("cuda")
        self.reader = PlateReader(config.reader, gpu=gpu)
        photos = config.reader.for_photos()
        self.photo_reader = self.reader if photos.network == config.reader.network else PlateReader(photos, gpu=gpu)
        self.load_seconds = perf_counter() - started

    @staticmethod
    def check_files(config: VisionConfig) -> None:
        """Fail fast (ModelLoadError naming the file) before a slow load in the background."""
        plate_detector.weights_path(config.detector)
        plate_detector.weights_path(config.detector, photos=True)
        plate_reader.weights_path(config.reader)
        plate_reader.weights_path(config.reader.for_photos())

    @property
    def models(self) -> dict[str, str]:
        return {"detector": str(self.detector.path), "photo_detector": str(self.detector.photo_path),
                "reader": self.config.reader.network,
                "photo_reader": self.photo_reader.config.network, "device": self.detector.device}

    def locate_batch(self, images: list[np.ndarray], photos: bool = False) -> list[list[PlateBox]]:
        """Plate boxes in each image (one YOLO call for the whole batch); `photos`: single photos."""
        return self.detector.detect_batch(images, photos)

    def read(self, image: np.ndarray, box: PlateBox, photo: bool = False) -> PlateText:
        """The text of one plate box of an image (a camera frame, or a single photo)."""
        return (self.photo_reader if photo else self.reader).read_box(image, box.bbox, photo)

    def detect_batch(self, images: list[np.ndarray], photos: bool = False) -> list[list[PlateRead]]:
        return [[PlateRead.of(box, self.read(image, box, photos)) for box in boxes]
                for image, boxes in zip(images, self.locate_batch(images, photos))]

    def detect(self, image: np.ndarray, photo: bool = False) -> list[PlateRead]:
        """Every plate in one BGR image (a camera frame, or a single photo), located and read."""
        return self.detect_batch([image], photo)[0]
