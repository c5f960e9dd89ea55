"""The log of python-socketio and python-engineio, which a peer can fill: throttled, one line a record.

Both libraries log a full traceback for every malformed packet (2,000 broken packets wrote 3.6 MB
in 3 s). Their records go to the `plates.protocol` logger instead, at WARNING and above: each
message at most once per NOTICE_S, its traceback cut to the exception's type and (escaped)
message, with the count of those held back since.
"""
from __future__ import annotations

import logging
from time import monotonic

from realtime.runtime import NOTICE_S

MAX_DETAIL = 200  # characters of an exception's message kept (it may quote what the peer sent)


class Throttle(logging.Filter):
    def __init__(self, seconds: float = NOTICE_S):
        super().__init__()
        self.seconds = seconds
        self._last: dict[str, float] = {}  # message template -> when last let through
        self._held: dict[str, int] = {}  # ... -> records held back since

    def filter(self, record: logging.LogRecord) -> bool:
        key, now = str(record.msg), monotonic()
        if now - self._last.get(key, -1e9) < self.seconds:
            self._held[key] = self._held.get(key, 0) + 1
            return False
        self._last[key] = now
        line = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            line += f": {type(exc).__name__}: {str(exc)[:MAX_DETAIL]!r}"
        if held := self._held.pop(key, 0):
            line += f" ({held} more like it in the last {self.seconds:g} s)"
        record.msg, record.args, record.exc_info, record.exc_text = line, (), None, None
        return True


def protocol_logger() -> logging.Logger:
    """The logger to hand to Flask-SocketIO as `logger` and `engineio_logger` (set up once a process)."""
    logger = logging.getLogger("plates.protocol")
    if not any(isinstance(f, Throttle) for f in logger.filters):
        logger.setLevel(logging.WARNING)  # their INFO is a line per emit
        logger.addFilter(Throttle())
    return logger
