"""Whole-file verification for the scrubber and quarantine revalidation (JAY_SPEC §7.1).

``FileHasher`` reads one chunk per call on the blob pool and hashes it there, so the caller (the
scrubber, on the reactor thread) can sleep between chunks to honour a byte rate without ever
blocking the reactor.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, succeed

# At most 1 MiB per read, as upstream's scrubber reads.
VERIFY_CHUNK_SIZE = 1024 * 1024


def _read_and_hash(fd: int, offset: int, size: int, hasher: Any) -> int:
    data = os.pread(fd, size, offset)
    hasher.update(data)
    return len(data)


class FileHasher:
    """An open file being hashed chunk by chunk. ``close()`` exactly once (idempotent).

    ``base`` and ``length``: the bytes start at ``base`` and end after ``length`` of them (a
    record in a pack file), else at the end of the file."""

    def __init__(
        self,
        fd: int,
        run_blob: Callable[..., Deferred[Any]],
        *,
        base: int = 0,
        length: int | None = None,
    ) -> None:
        self._fd = fd
        self._base = base
        self._length = length
        self._run_blob = run_blob
        self._hasher = hashlib.sha256()
        self.bytes_read = 0
        self.is_eof = False
        self._is_closed = False

    def read_chunk(self, size: int = VERIFY_CHUNK_SIZE) -> Deferred[int]:
        """Read and hash the next chunk; fires with its length (0 at end of file)."""

        def done(count: int) -> int:
            self.bytes_read += count
            if count == 0:
                self.is_eof = True
            return count

        if self._length is not None:
            size = max(0, min(size, self._length - self.bytes_read))
            if size == 0:
                return succeed(done(0))
        d = self._run_blob(
            _read_and_hash, self._fd, self._base + self.bytes_read, size, self._hasher
        )
        d.addCallback(done)
        return d

    def hexdigest(self) -> str:
        return self._hasher.hexdigest()

    def close(self) -> None:
        if self._is_closed:
            return
        self._is_closed = True
        try:
            os.close(self._fd)
        except OSError:
            pass


def hash_file(path: str) -> tuple[int, str] | None:
    """(size, sha256 hex) of a whole file, or None if it cannot be read."""
    sha = hashlib.sha256()
    size = 0
    try:
        with open(path, "rb") as f:
            while chunk := f.read(VERIFY_CHUNK_SIZE):
                sha.update(chunk)
                size += len(chunk)
    except OSError:
        return None
    return size, sha.hexdigest()
