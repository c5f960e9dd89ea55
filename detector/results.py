"""Immutable results of the vision side."""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class PlateBox:
    """A plate found by the detector, in pixels of the image it was found in."""

    x1: int
    y1: int
    x2: int
    y2: int
    confidence: float

    @property
    def bbox(self) -> tuple[int, int, int, int]:
        return (self.x1, self.y1, self.x2, self.y2)


@dataclass(frozen=True)
class PlateText:
    """What the reader made of one plate crop."""

    text: str  # canonical printed form, e.g. "51F-123.45" or "59-X1 123.45"
    raw_text: str  # the reader's rows as read, joined by a space
    confidence: float  # the weakest row's confidence
    valid: bool  # fits a real Vietnamese format
    rows: int  # 1 or 2
    passes: int = 1  # recogniser calls behind this read (a single photo's plate: one per crop and row cut)


@dataclass(frozen=True)
class PlateRead:
    """One plate in an image: where it is and what it says."""

    bbox: tuple[int, int, int, int]
    det_confidence: float
    text: str
    raw_text: str
    ocr_confidence: float
    confidence: float  # det_confidence x ocr_confidence
    valid: bool
    rows: int
    track_id: int | None = None  # set when the read went through a camera's tracker
    confirmed: bool = False  # the track's voted text is settled

    @classmethod
    def of(
        cls, box: PlateBox, read: PlateText, track_id: int | None = None, confirmed: bool = False
    ) -> PlateRead:
        return cls(box.bbox, round(box.confidence, 4), read.text, read.raw_text, round(read.confidence, 4),
                   round(box.confidence * read.confidence, 4), read.valid, read.rows, track_id, confirmed)

    def to_dict(self) -> dict:
        data = {**asdict(self), "bbox": list(self.bbox)}
        if self.track_id is None:  # a single image: no track to speak of
            del data["track_id"], data["confirmed"]
        return data
