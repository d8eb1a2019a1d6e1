"""Random ids for hot paths without a system call per id.

``uuid.uuid4()`` reads 16 bytes with ``os.urandom``: a ``getrandom`` system call during which
the calling thread gives the GIL away, and the reactor thread — which creates the object id and
the temp file name of every PUT — then waits for it to come back while the thread pools are
busy (py-spy: 12 % of the reactor's samples of a small-PUT load sat in ``uuid4``). Here the
bytes come from the same kernel source, 4 KiB at a time. A forked child refills its buffer
before its first id, so parent and child never hand out the same bytes.
"""

from __future__ import annotations

import os
import threading
import uuid

_REFILL_BYTES = 4096


class _RandomBytes:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buffer = b""
        self._offset = 0
        self._pid = 0

    def take(self, count: int) -> bytes:
        with self._lock:
            pid = os.getpid()
            if pid != self._pid or self._offset + count > len(self._buffer):
                self._buffer = os.urandom(max(_REFILL_BYTES, count))
                self._offset = 0
                self._pid = pid
            start = self._offset
            self._offset = start + count
            return self._buffer[start : start + count]


_random = _RandomBytes()


def uuid4() -> str:
    """A random (version 4) UUID string, like ``str(uuid.uuid4())``."""
    return str(uuid.UUID(bytes=_random.take(16), version=4))


def random_hex(count: int) -> str:
    """``count`` random bytes as lower-case hex."""
    return _random.take(count).hex()
