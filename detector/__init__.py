"""Vietnamese licence-plate reading: a YOLO plate detector and an EasyOCR plate reader, no web code.

    from detector import PersistentDetector
    reads = PersistentDetector().photo.detect(cv2.imread("photo.jpg"))  # or .camera, for a live frame

PersistentDetector is imported on first use: importing this package (or detector.config) must
not load torch, so that the server can set its thread counts and eventlet's monkey patching first.
"""
from detector.config import ConfigError, VisionConfig
from detector.errors import ModelLoadError
from detector.results import PlateBox, PlateRead, PlateText

__all__ = [
    "ConfigError",
    "ModelLoadError",
    "PersistentDetector",
    "PlateBox",
    "PlateRead",
    "PlateText",
    "VisionConfig",
]


def __getattr__(name: str):
    if name == "PersistentDetector":
        from detector.persistent import PersistentDetector

        return PersistentDetector
    raise AttributeError(f"module 'detector' has no attribute {name!r}")
