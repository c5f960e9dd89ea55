"""Plate events: one per vehicle, sent when its track is confirmed (again if its text changes).

The worker reports a confirmed track each time it is read (TrackReport); the EventBook, on
the loop side, alone decides what is announced, turning reports into PlateEvents: a track
keeps its event; a new track with the same text on the same camera within `window_s` of the
last sighting continues that event (a car lingering at the gate, lost for a moment, is still
one event); later, the same plate makes a new one. A camera that came to this process from another
(its lease moved: realtime/leases.py) may have a vehicle there whose event the other process
announced: for the events of a camera's first `window_s` here, the EventBook asks the shared plate
log (`recall`) before it makes a new one.
"""
from __future__ import annotations

import base64
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace

from detector.tracking import Track


@dataclass(frozen=True)
class TrackReport:
    camera_id: str
    track_id: int
    text: str
    confidence: float
    first_seen: float
    last_seen: float
    reads: int
    crop: bytes | None  # JPEG of the track's most confident read

    @classmethod
    def of(cls, camera_id: str, track: Track) -> TrackReport:
        return cls(camera_id, track.id, track.text, track.confidence, track.first_seen, track.last_seen,
                   len(track.reads), track.crop)


@dataclass(frozen=True)
class PlateEvent(TrackReport):
    """A vehicle's event: the state of its latest track report under a lasting id."""

    id: str

    def to_dict(self) -> dict:
        data = {
            "id": self.id,
            "camera_id": self.camera_id,
            "track_id": self.track_id,
            "text": self.text,
            "confidence": round(self.confidence, 4),
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "reads": self.reads,
        }
        if self.crop:
            data["crop"] = "data:image/jpeg;base64," + base64.b64encode(self.crop).decode()
        return data


MAX_ARRIVALS = 1024  # cameras whose first report here is remembered (the least recent forgotten: asked again)


class EventBook:
    def __init__(self, window_s: float, recall: Callable[[str, str, float], PlateEvent | None] | None = None):
        """`recall(camera_id, text, since)`: the plate log's latest event of that plate there since then."""
        self.window_s = window_s
        self._recall = recall
        self._by_track: dict[tuple[str, int], PlateEvent] = {}
        self._by_text: dict[tuple[str, str], PlateEvent] = {}
        self._arrived: OrderedDict[str, float] = OrderedDict()  # camera -> its first report here

    def observe(self, report: TrackReport) -> tuple[PlateEvent, bool]:
        """The event this report belongs to, updated, and whether to announce it."""
        self._forget_before(report.last_seen - self.window_s)
        track_key, text_key = (report.camera_id, report.track_id), (report.camera_id, report.text)
        event = self._by_track.get(track_key)
        announce = event is None or event.text != report.text
        if event is None:
            event = self._by_text.get(text_key)
            if event is None and self._new_here(report):
                event = self._recall(report.camera_id, report.text, report.last_seen - self.window_s)
            announce = event is None
            if event is None:
                event = PlateEvent(**{**report.__dict__, "reads": 0, "crop": None}, id=uuid.uuid4().hex)
        same_track = event.track_id == report.track_id
        event = replace(
            event,
            track_id=report.track_id,
            text=report.text,
            last_seen=report.last_seen,
            confidence=report.confidence if announce else max(event.confidence, report.confidence),
            # a track reports its running count; a track that continues an event adds to it
            reads=max(event.reads, report.reads) if same_track else event.reads + report.reads,
            crop=report.crop or event.crop,
        )
        self._by_track[track_key] = event
        self._by_text[text_key] = event
        return event, announce

    def _new_here(self, report: TrackReport) -> bool:
        """Whether the report's camera came here within window_s (and there is a log to ask)."""
        if self._recall is None:
            return False
        arrived = self._arrived.setdefault(report.camera_id, report.last_seen)
        self._arrived.move_to_end(report.camera_id)
        if len(self._arrived) > MAX_ARRIVALS:
            self._arrived.popitem(last=False)
        return report.last_seen - arrived <= self.window_s

    def _forget_before(self, oldest: float) -> None:
        self._by_track = {k: e for k, e in self._by_track.items() if e.last_seen >= oldest}
        self._by_text = {k: e for k, e in self._by_text.items() if e.last_seen >= oldest}
