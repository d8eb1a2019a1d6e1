"""Random ids for hot paths without a system call per id.

``uuid.uuid4()`` reads 16 bytes with ``os.urandom``: a ``getrandom`` system call during which
the calling thread gives the GIL away, and the reactor thread — which creates the object id and
the temp file name of every PUT — then waits for it to come back while the thread pools are
busy (py-spy: 12 % of the reactor's samples of a small-PUT load sat in ``uuid4``). Here the
bytes come from the same kernel source, 4 KiB at a time. A forked child drops the buffer it
inherited (``os.register_at_fork``), so parent and child never hand out the same bytes.
"""

from __future__ import annotations

import os
import threading

_REFILL_BYTES = 4096


class _RandomBytes:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buffer = b""
        self._offset = 0

    def take(self, count: int) -> bytes:
        with self._lock:
            if self._offset + count > len(self._buffer):
                self._buffer = os.urandom(max(_REFILL_BYTES, count))
                self._offset = 0
            start = self._offset
            self._offset = start + count
            return self._buffer[start : start + count]

    def forget(self) -> None:
        """Drop what is buffered (in a forked child: those bytes are the parent's too)."""
        self._lock = threading.Lock()  # a lock held at fork time stays held in the child
        self._buffer = b""
        self._offset = 0


_random = _RandomBytes()
os.register_at_fork(after_in_child=_random.forget)


def format_uuid4(raw: bytes) -> str:
    """16 bytes as a version 4 UUID string: ``str(uuid.UUID(bytes=raw, version=4))`` without
    building a UUID object (its constructor was 3 % of a small PUT's reactor samples)."""
    b = bytearray(raw)
    b[6] = (b[6] & 0x0F) | 0x40  # version 4
    b[8] = (b[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def uuid4() -> str:
    """A random (version 4) UUID string, like ``str(uuid.uuid4())``."""
    return format_uuid4(_random.take(16))


def random_hex(count: int) -> str:
    """``count`` random bytes as lower-case hex."""
    return _random.take(count).hex()
