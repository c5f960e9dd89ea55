"""The fast WebSocket unmasking gives exactly eventlet's own result."""
import os

from eventlet.websocket import RFC6455WebSocket

from realtime.eventlet_patch import apply_mask

ORIGINAL = RFC6455WebSocket.__dict__["_apply_mask"].__func__


def test_same_bytes_as_eventlet_for_every_offset_and_length():
    for length in (0, 1, 3, 4, 5, 17, 1000, 65537):
        data, mask = os.urandom(length + 3), os.urandom(4)
        for offset in range(5):
            assert apply_mask(data, mask, length, offset) == ORIGINAL(data, mask, length, offset)
        assert apply_mask(data[:length], mask) == ORIGINAL(data[:length], mask)
    assert apply_mask(bytearray(b"abcdef"), b"\x01\x02\x03\x04") == ORIGINAL(b"abcdef", b"\x01\x02\x03\x04")
