"""Pack files: small new objects appended to one shared file, one fdatasync per group.

A small PUT used to cost a file of its own: create, write, fsync, fsync of its directory,
each on a blob thread, before its record could commit. Measured with 2 workers and 16 clients
putting 4 KiB objects, that file work was about a third of the server's CPU per PUT (1.22–1.34
ms, against 0.82–0.93 for a build that skipped it). Now a new object whose body is at most
``pack_max_object_bytes`` (and in memory already) is written by the metadata writer thread
itself, right before the group commit
that records it: every body of the group goes into this process's current pack file, each at a
4 KiB-aligned offset, then ONE ``fdatasync`` makes all of them durable, then the records commit
(one fsync of the WAL). A caller is answered after both, exactly as before: an acknowledged
write is durable, and a crash before the commit leaves only unreferenced bytes in a pack.

Layout. ``packs/<name>.pack``; a record's location ref is ``packs/<name>:<offset>:<length>``.
Each process writes only its own pack (created with ``O_EXCL``, a unique name, an exclusive
``flock`` held while it is current) and only ever appends to it; after ``ROLLOVER_BYTES`` it
starts a new one and never writes the old one again. Bytes once written are never moved: a
record's ref stays valid for as long as the record lives (as with one file per object, a
metadata backup restored later finds every object that was not deleted since).

Space. Deleting or overwriting a packed object punches a hole over its blocks
(``fallocate(FALLOC_FL_PUNCH_HOLE)``: the file keeps its size, the blocks go back to the file
system), so deleted small objects free their space as files did. The ``packs`` table counts the
records referencing each pack (kept by triggers, so no writer can forget); garbage collection
removes a pack that no record references and no process writes any more. Where holes cannot be
punched (a file system without support) space comes back when the whole pack is dead.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import hashlib
import os
import re
import time
from collections.abc import Iterable, Sequence

from twisted.logger import Logger

from jay import ids
from jay.errors import StorageIOError
from jay.storage.libc import is_flocked, libc_function

log = Logger()

PACKS_DIR = "packs"
REF_PREFIX = PACKS_DIR + "/"
PACK_SUFFIX = ".pack"
# Records start at multiples of the file system's usual block size, so punching one record's
# blocks never touches a neighbour's.
ALIGN = 4096
# A pack is closed for writing once it holds this much; the next group starts a new one.
ROLLOVER_BYTES = 64 * 1024 * 1024
# Upper bound of a packed object's size (StorageService ``pack_max_object_bytes``, which
# defaults to it): a body up to this size that has ended before any staging job ran stays in
# memory (staging's ``in_memory_bytes``: no temp file), and a packed object is never larger than
# what is read whole at lookup time (service.INLINE_READ_BYTES), so it is served from memory
# and never streamed from the pack's descriptor.
MAX_OBJECT_BYTES = 64 * 1024
DEFAULT_MAX_OBJECT_BYTES = MAX_OBJECT_BYTES

_NAME = re.compile(r"[0-9a-f]{1,16}-[0-9a-f]{16}\.pack\Z")

# Fault-injection seams (tests make them raise ENOSPC or EIO).
os_pwritev = os.pwritev
os_fdatasync = os.fdatasync


def make_ref(name: str, offset: int, length: int) -> str:
    return f"{REF_PREFIX}{name}:{offset}:{length}"


def parse_ref(ref: str) -> tuple[str, int, int] | None:
    """(pack name, offset, length) of a pack ref; None for any other ref. A ref that claims
    to be a pack ref but is malformed raises (it must never become a path)."""
    if not ref.startswith(REF_PREFIX):
        return None
    name, _, span = ref[len(REF_PREFIX) :].partition(":")
    offset_text, _, length_text = span.partition(":")
    if (
        not _NAME.match(name)
        or not offset_text.isdigit()
        or not length_text.isdigit()
        or not offset_text.isascii()
        or not length_text.isascii()
    ):
        raise StorageIOError("Invalid location reference")
    return name, int(offset_text), int(length_text)


def locate(directory: str, ref: str) -> tuple[str, int, int] | None:
    """(path of the pack under ``directory``, offset, length) of a pack ref; None for any
    other ref; raises for a malformed pack ref (see ``parse_ref``)."""
    parsed = parse_ref(ref)
    if parsed is None:
        return None
    name, offset, length = parsed
    return os.path.join(directory, name), offset, length


def is_pack_ref(ref: str) -> bool:
    return ref.startswith(REF_PREFIX)


def pack_name_of(ref: str) -> str | None:
    parsed = parse_ref(ref)
    return None if parsed is None else parsed[0]


def _aligned(offset: int) -> int:
    return -(-offset // ALIGN) * ALIGN


# --- hole punching --------------------------------------------------------------------------

_FALLOC_FL_KEEP_SIZE = 0x01
_FALLOC_FL_PUNCH_HOLE = 0x02


# Seam: None where the platform has no fallocate(2) (space then returns with the whole pack).
os_fallocate = libc_function(
    "fallocate", (ctypes.c_int, ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong)
)


def punch(path: str, offset: int, length: int) -> bool:
    """Give a record's blocks back to the file system (best effort; the file keeps its size
    and reads of the range return zeros). False when nothing was punched."""
    return punch_ranges(path, [(offset, length)]) > 0


def merged_ranges(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Records' (offset, length) as the fewest block-aligned (offset, length) covering them:
    records start on ALIGN boundaries, so one whose aligned end meets the next one's start
    joins it."""
    merged: list[list[int]] = []
    for offset, length in sorted(r for r in ranges if r[1] > 0):
        end = offset + _aligned(length)
        if merged and offset <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([offset, end])
    return [(start, end - start) for start, end in merged]


def punch_ranges(path: str, ranges: Iterable[tuple[int, int]]) -> int:
    """``punch`` for several records of one pack: one open, one ``fallocate`` per run of
    neighbouring records. How many runs were punched (0: none, or no fallocate here)."""
    fallocate = os_fallocate
    runs = merged_ranges(ranges)
    if fallocate is None or not runs:
        return 0
    try:
        fd = os.open(path, os.O_WRONLY)
    except OSError:
        return 0
    punched = 0
    try:
        for offset, length in runs:
            if fallocate(fd, _FALLOC_FL_PUNCH_HOLE | _FALLOC_FL_KEEP_SIZE, offset, length) == 0:
                punched += 1
    finally:
        os.close(fd)
    return punched


# --- writing (the metadata writer thread of one process) ------------------------------------


class PackWriter:
    """Appends groups of bodies to this process's current pack file. One thread only."""

    def __init__(self, directory: str, *, rollover_bytes: int = ROLLOVER_BYTES) -> None:
        self.directory = directory
        self.rollover_bytes = rollover_bytes
        self._fd: int | None = None
        self._name = ""
        self._end = 0
        # Groups written and fdatasyncs run (diagnostics and tests).
        self.groups = 0

    @property
    def current(self) -> str | None:
        """The name of the pack being written, if any."""
        return self._name if self._fd is not None else None

    def append(self, bodies: Sequence[Sequence[bytes]]) -> list[str]:
        """Write every body at the next aligned offsets and make them durable with one
        ``fdatasync``; the refs, in order. On an error nothing written by this call is
        referenced by anyone, and the next call starts a new pack (after a failed fsync the
        state of the written pages is unknown)."""
        if self._fd is None or self._end >= self.rollover_bytes:
            self._start_new()
        fd = self._fd
        assert fd is not None
        refs = []
        offset = self._end
        try:
            for chunks in bodies:
                start = _aligned(offset)
                length = _write_at(fd, chunks, start)
                refs.append(make_ref(self._name, start, length))
                offset = start + length
            os_fdatasync(fd)
        except BaseException:
            self.close()
            raise
        self._end = offset
        self.groups += 1
        return refs

    def _start_new(self) -> None:
        self.close()
        os.makedirs(self.directory, mode=0o755, exist_ok=True)
        name = f"{time.time_ns() // 1_000_000:x}-{ids.random_hex(8)}{PACK_SUFFIX}"
        path = os.path.join(self.directory, name)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            # Held for as long as this pack is current: garbage collection never touches a
            # pack some process may still append to.
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            dir_fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)  # the pack's name is durable before any ref names it
            finally:
                os.close(dir_fd)
        except BaseException:
            os.close(fd)
            try:
                os.unlink(path)
            except OSError:
                pass
            raise
        self._fd, self._name, self._end = fd, name, 0

    def close(self) -> None:
        """Stop writing the current pack (its lock goes with the descriptor)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass


def _write_at(fd: int, chunks: Sequence[bytes], offset: int) -> int:
    pending = [memoryview(c) for c in chunks if c]
    total = sum(len(c) for c in pending)
    written = 0
    while pending:
        count = os_pwritev(fd, pending, offset + written)
        if count <= 0:
            raise OSError("short write to a pack file")
        written += count
        while pending and count >= len(pending[0]):
            count -= len(pending[0])
            pending.pop(0)
        if count:
            pending[0] = pending[0][count:]
    assert written == total
    return total


# --- reading and space ----------------------------------------------------------------------


def read_range(path: str, offset: int, length: int) -> bytes:
    """The bytes of one record (short if the pack is); raises OSError."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.pread(fd, length, offset)
    finally:
        os.close(fd)


def hash_range(path: str, offset: int, length: int) -> tuple[int, str] | None:
    """(size, sha256 hex) of a record's bytes as stored, None when the pack cannot be read."""
    try:
        data = read_range(path, offset, length)
    except OSError:
        return None
    return len(data), hashlib.sha256(data).hexdigest()


def starts_with_data(fd: int, offset: int) -> bool:
    """False when the block at ``offset`` is a hole: a record whose blocks were punched (its
    object was deleted). Records are written, never left as holes; where the file system
    cannot tell (no SEEK_DATA), True. A file system that stores written zeros as holes would
    report an all-zero record as punched: its check then quarantines it, and revalidation,
    which hashes the bytes, restores it."""
    try:
        return os.lseek(fd, offset, os.SEEK_DATA) == offset
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            return False  # no data at or after offset
        return True


def is_in_use(path: str) -> bool:
    """True when some process holds the pack's lock (it is still being written)."""
    return is_flocked(path)


def pack_files(directory: str) -> list[str]:
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if _NAME.match(n))
