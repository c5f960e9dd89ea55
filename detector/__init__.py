"""Vietnamese licence-plate reading: a YOLO plate detector and an EasyOCR plate reader, no web code.

    from detector import PersistentDetector
    reads = PersistentDetector().photo.detect(cv2.imread("photo.jpg"))  # or .camera, for a live frame
"""
from detector.config import ConfigError, VisionConfig
from detector.errors import ModelLoadError
from detector.persistent import PersistentDetector
from detector.results import PlateBox, PlateRead, PlateText

__all__ = ["ConfigError", "ModelLoadError", "PersistentDetector", "PlateBox", "PlateRead", "PlateText", "VisionConfig"]
