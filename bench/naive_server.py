"""The benchmark's naive reference: the server with every frame queued and fully read, in arrival order.

Built from the server's own parts: frame slots that keep every frame (none replaced, none
dropped), and through config (bench/stream_bench.py writes it) a batch of one, every plate of
every frame read (tracking.reread_every: 1) and no careful lane. Same flags as server.py:
python -m bench.naive_server --port P --config FILE
"""
from __future__ import annotations

import sys
from collections import deque

import server
from realtime.slots import Frame, FrameSlots

NAIVE_CONFIG = {"server": {"max_batch": 1}, "tracking": {"reread_every": 1}, "careful": {"enabled": False}}


class QueuedSlots(FrameSlots):
    """A plain FIFO queue per camera."""

    def _make_room(self, waiting: deque[Frame]) -> Frame | None:
        return None


if __name__ == "__main__":
    sys.exit(server.main(slots=QueuedSlots))
