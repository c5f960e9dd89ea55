"""Trouble that repeats (a database away, Redis down, a receiver failing) is logged once in a while, not once
per attempt."""
from __future__ import annotations

from collections.abc import Hashable
from time import monotonic


class Throttle:
    def __init__(self, seconds: float):
        self.seconds = seconds
        self._last: dict[Hashable, float] = {}  # kind of trouble -> when it was last let through

    def due(self, kind: Hashable = None) -> bool:
        """True at most once per `seconds` for each kind."""
        now = monotonic()
        if now - self._last.get(kind, -1e9) < self.seconds:
            return False
        self._last[kind] = now
        return True
