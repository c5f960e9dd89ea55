"""Make eventlet's WebSocket unmasking fast.

eventlet unmasks every client frame one byte at a time in Python: a 60 KB camera frame
costs the event loop ~15 ms, and six cameras at 10 fps saturate it (GET /health then
waits seconds). XOR-ing the frame as one big integer does the same work in C.
"""
from __future__ import annotations


def apply_mask(data: bytes, mask: bytes, length: int | None = None, offset: int = 0) -> bytes:
    """Byte i of the result is data[i] ^ mask[(offset + i) % 4], as RFC 6455 says."""
    length = len(data) if length is None else length
    if length == 0:
        return b""
    shift = offset % 4
    key = (bytes(mask[shift:4]) + bytes(mask[:shift])) * (length // 4 + 1)
    unmasked = int.from_bytes(bytes(data[:length]), "little") ^ int.from_bytes(key[:length], "little")
    return unmasked.to_bytes(length, "little")


def speed_up_websocket_unmasking() -> None:
    from eventlet import websocket

    websocket.RFC6455WebSocket._apply_mask = staticmethod(apply_mask)
