"""SQLite specifics: connection setup (WAL, busy_timeout, synchronous=FULL) and transactions.

Everything here is what a PostgreSQL store would do differently; the SQL in ``metadata`` stays
portable (DB-API connections, ``?`` placeholders to be translated for another driver).
"""

from __future__ import annotations

import fcntl
import mmap
import os
import sqlite3
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

R = TypeVar("R")

# How long a writer waits for another process's transaction before failing: several jay
# processes may share one database and the transaction is the lock.
BUSY_TIMEOUT_MS = 30_000

Connection = sqlite3.Connection


class SQLiteDatabase:
    """Opens connections to ``<data_dir>/meta/jay.db`` configured for durable WAL use."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock_fd: int | None = None

    @contextmanager
    def process_write_lock(self) -> Iterator[None]:
        """Hold ``<db>.writelock`` (flock, exclusive) around a write transaction.

        Several jay processes (workers) write to one database. Left to SQLite, a writer that
        finds the lock taken sleeps and retries (1, 2, 5, 10 … 100 ms: its busy handler), so
        under concurrent writes most of the time is spent sleeping after the lock was already
        free. A blocking flock wakes the next writer the moment the previous one committed.
        Only jay processes on this host take it; anything else still meets busy_timeout.
        """
        if self._lock_fd is None:
            self._lock_fd = os.open(self.path + ".writelock", os.O_RDWR | os.O_CREAT, 0o600)
        fd = self._lock_fd
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._lock_fd is not None:
            fd, self._lock_fd = self._lock_fd, None
            os.close(fd)

    def connect(self, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> sqlite3.Connection:
        if not os.path.exists(self.path):
            # Create the file 0600 before SQLite does (it would honour the umask).
            fd = os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600)
            os.close(fd)
        conn = sqlite3.connect(
            self.path,
            timeout=busy_timeout_ms / 1000,
            isolation_level=None,  # we issue BEGIN/COMMIT ourselves
            check_same_thread=False,  # closed from the stopping thread; used by one at a time
        )
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        conn.execute("PRAGMA journal_mode = WAL")
        # FULL: an acknowledged write is on disk even after a power loss.
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = OFF")
        return conn

    def create_schema(self, conn: sqlite3.Connection, statements: Iterable[str]) -> None:
        def create(c: sqlite3.Connection) -> None:
            for statement in statements:
                c.execute(statement)

        write_transaction(conn, create)


def write_transaction(conn: sqlite3.Connection, fn: Callable[..., R], *args: Any) -> R:
    """Run ``fn(conn, *args)`` in one ``BEGIN IMMEDIATE`` transaction (the cross-process lock)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(conn, *args)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result


def read_transaction(conn: sqlite3.Connection, fn: Callable[..., R], *args: Any) -> R:
    """Run ``fn(conn, *args)`` on one consistent snapshot (WAL readers never block writers)."""
    conn.execute("BEGIN")
    try:
        return fn(conn, *args)
    finally:
        conn.execute("COMMIT")


def is_integrity_error(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.IntegrityError)


def is_busy_error(exc: BaseException) -> bool:
    """SQLITE_BUSY / SQLITE_LOCKED: another connection holds a lock this one waited for."""
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+: the extended result code
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(exc) or "busy" in str(exc)


# --- commit watch: the WAL-index header in ``<db>-shm`` --------------------------------------
#
# ``PRAGMA data_version`` answers "did anyone commit since I last asked", but it is a SQLite call:
# it releases the GIL, and a reactor thread that gives the GIL away while thread pools are busy
# waits to get it back (py-spy: a third of the reactor's samples of a small-PUT load sat in
# that PRAGMA). The same fact is in the WAL-index header, which every connection maps from
# ``<db>-shm``: writers bump ``mxFrame`` (or, on a WAL reset, the salts) in it at every commit,
# before the COMMIT returns. Its layout is part of SQLite's documented file format
# (https://www.sqlite.org/walformat.html, "The WAL-Index Header"): two 48-byte copies at offsets
# 0 and 48, written second-copy-first; ``iVersion`` (first u32, native order) is 3007000.
# Reading 96 bytes from a mapping is a memory copy: no system call, no GIL release.

WAL_INDEX_HEADER_BYTES = 48
WAL_INDEX_VERSION = 3007000
_WAL_INDEX_VERSION_BYTES = WAL_INDEX_VERSION.to_bytes(4, sys.byteorder)


def commit_token(header: bytes) -> bytes | None:
    """The first header copy when both copies agree and the format is the one we know; None
    when a writer is between the two copies (a commit is landing right now) or the format is
    unknown. Equal tokens mean no commit in between; the token is opaque otherwise."""
    first = header[:48]  # WAL_INDEX_HEADER_BYTES, spelled out: this runs several times a request
    if first != header[48:96] or len(first) != 48:
        return None
    if not first.startswith(_WAL_INDEX_VERSION_BYTES) or first[12] != 1:
        return None  # not initialised, or a format this code does not know
    return first


class CommitWatch:
    """Tells whether any connection (any process) committed, from the mapped WAL-index header.

    Only valid while a connection of this process keeps the database open in WAL mode (the
    ``-shm`` file then stays in place); ``open`` returns None when there is no such file, and
    callers fall back to ``PRAGMA data_version``.
    """

    def __init__(self, mapping: mmap.mmap) -> None:
        self._map = mapping

    @classmethod
    def open(cls, db_path: str) -> CommitWatch | None:
        try:
            fd = os.open(db_path + "-shm", os.O_RDONLY)
        except OSError:
            return None
        try:
            if os.fstat(fd).st_size < 2 * WAL_INDEX_HEADER_BYTES:
                return None
            mapping = mmap.mmap(fd, 2 * WAL_INDEX_HEADER_BYTES, prot=mmap.PROT_READ)
        except (OSError, ValueError):
            return None
        finally:
            os.close(fd)
        watch = cls(mapping)
        if watch.token() is None:
            watch.close()
            return None
        return watch

    def token(self) -> bytes | None:
        return commit_token(self._map[: 2 * WAL_INDEX_HEADER_BYTES])

    def close(self) -> None:
        self._map.close()


def data_version(conn: sqlite3.Connection) -> int:
    """Changes whenever another connection committed since this one last asked (WAL header)."""
    return int(conn.execute("PRAGMA data_version").fetchone()[0])
