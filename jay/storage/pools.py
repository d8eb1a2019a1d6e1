"""The dedicated thread pools: one metadata writer, N metadata readers, N blob I/O threads.

Nothing here runs on the reactor's default pool (DNS uses that one). Each reader thread keeps
its own connection (WAL lets readers run during a write); the writer has exactly one, since
SQLite has one writer anyway.

Group commit. With ``synchronous=FULL`` every COMMIT costs an fsync of the WAL, and the single
writer thread runs them one after another, so under concurrent writes callers queue behind each
other's fsyncs. ``write`` therefore only appends to a queue; the writer thread takes everything
queued (up to ``MAX_WRITE_BATCH``) and runs it in ONE ``BEGIN IMMEDIATE … COMMIT``, each
function inside its own SAVEPOINT: a function that raises is rolled back to its savepoint and
fails alone, the others commit. Every caller is answered only after that COMMIT returned, so an
acknowledged write is as durable as before. If the batch as a whole cannot commit (or SQLite
aborted the transaction under a function, e.g. SQLITE_FULL), it is rolled back and every
function is run again in a transaction of its own, which is exactly the old behaviour.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from typing import Any, TypeVar

from twisted.internet.defer import Deferred, fail, succeed
from twisted.python.failure import Failure

from jay.storage.blobs import storage_error
from jay.storage.packs import PackWriter, locate, punch
from jay.storage.sqlite import (
    CommitWatch,
    Connection,
    SQLiteDatabase,
    data_version,
    is_busy_error,
    read_transaction,
    write_transaction,
)
from jay.storage.threads import WorkerThreads

R = TypeVar("R")

# Writes per group commit. Each is a few indexed statements (well under a millisecond), so a
# full batch adds little latency to its first caller while sharing one fsync among all of them.
MAX_WRITE_BATCH = 64

_SAVEPOINT = "jay_write"

# How long a read on the reactor thread may wait for a lock before it is handed to a reader
# thread instead. WAL readers do not wait for writers; only rare events (WAL recovery, another
# process's exclusive lock) make them wait at all.
INLINE_BUSY_TIMEOUT_MS = 20

# Reads of the WAL-index header before a torn one (a writer between its two copies, a window
# of nanoseconds) is reported as "cannot say".
COMMIT_WATCH_ATTEMPTS = 3


class BlobStepFailed(Exception):
    """``blob_then_write``: the blob step raised (``failure``); nothing was written."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.getErrorMessage())
        self.failure = failure


# (function, args, the caller's Deferred, a body to pack first or None)
_QueuedWrite = tuple[Callable[..., Any], tuple[Any, ...], "Deferred[Any]", Sequence[bytes] | None]
# (succeeded, result or Failure)
_Outcome = tuple[bool, Any]


class StoragePools:
    def __init__(self, reactor: Any, *, reader_threads: int, blob_threads: int) -> None:
        self._reactor = reactor
        self.writer = WorkerThreads(reactor, 1, "jay-meta-writer")
        self.readers = WorkerThreads(reactor, reader_threads, "jay-meta-reader")
        self.blobs = WorkerThreads(reactor, blob_threads, "jay-blob-io")
        self._database: SQLiteDatabase | None = None
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[Connection] = []
        # The reactor thread's own connection for ``read_now``.
        self._inline: Connection | None = None
        self._commit_watch: CommitWatch | None = None
        self._commit_watch_tried = False
        self._write_lock = threading.Lock()
        self._write_queue: deque[_QueuedWrite] = deque()
        self._is_draining = False
        # Transactions committed and writes run by the writer (for tests and diagnostics).
        self.commits = 0
        self.writes = 0
        # ``commit_probe(conn)`` runs on the writer thread after each batch's commit; its
        # result lands in ``probed`` as (commit token, result) when no other commit came in
        # between, so the database state behind that token is the one the probe read. The
        # reactor can then trust the result for as long as the token stays the same, without
        # a query of its own (jay.storage.service: the cache generations). Set by the writer
        # thread, read by the reactor: a plain reference, replaced whole.
        self.commit_probe: Callable[[Connection], Any] | None = None
        self.probed: tuple[Hashable, Any] | None = None
        # This process's pack writer (``write_packed``), used by the writer thread only.
        self.packer: PackWriter | None = None

    def start(self) -> None:
        for pool in (self.writer, self.readers, self.blobs):
            pool.start()

    def stop(self) -> None:
        """Join the threads (idle by now) and close every connection."""
        # Blob threads first: a blob job may still queue a write (``blob_then_write``), which
        # the writer then runs before it stops.
        for pool in (self.blobs, self.readers, self.writer):
            pool.stop()
        if self.packer is not None:
            self.packer.close()
        with self._lock:
            connections, self._connections = self._connections, []
        self._inline = None
        # Unmapped before the connections close: the -shm file is ours only while they live.
        watch, self._commit_watch = self._commit_watch, None
        self._commit_watch_tried = False
        if watch is not None:
            watch.close()
        for conn in connections:
            conn.close()
        if self._database is not None:
            self._database.close()

    def open_database(self, database: SQLiteDatabase) -> None:
        self._database = database

    def _connection(self) -> Connection:
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            assert self._database is not None, "database not open"
            conn = self._database.connect()
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    # --- running work --------------------------------------------------------------------

    def _in_read(self, fn: Callable[..., R], *args: Any) -> R:
        return read_transaction(self._connection(), fn, *args)

    def _with_read_connection(self, fn: Callable[..., R], *args: Any) -> R:
        return fn(self._connection(), *args)

    def write(self, fn: Callable[..., R], *args: Any) -> Deferred[R]:
        """``fn(conn, *args)`` on the writer thread inside a BEGIN IMMEDIATE transaction,
        possibly shared with other queued writes (each in its own SAVEPOINT). Fires after the
        COMMIT, with ``fn``'s result or its exception."""
        d: Deferred[R] = Deferred()
        self._queue_write(fn, args, d)
        return d

    def write_packed(self, body: Sequence[bytes], fn: Callable[..., R], *args: Any) -> Deferred[R]:
        """``write(fn, ref, *args)`` where ``ref`` locates ``body`` in this process's pack file:
        the writer thread appends the bodies of every packed write of a group to the pack,
        makes them durable with one ``fdatasync``, then runs the group's transaction. Fires
        after the COMMIT. A write that fails (its function raised, or the append did) leaves
        no reference to its bytes; their blocks are punched out of the pack."""
        if self.packer is None:
            raise RuntimeError("no pack writer")
        d: Deferred[R] = Deferred()
        self._queue_write(fn, args, d, body)
        return d

    def _queue_write(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        d: Deferred[Any],
        body: Sequence[bytes] | None = None,
    ) -> None:
        """Any thread: queue one write for the writer (see ``write``)."""
        with self._write_lock:
            self._write_queue.append((fn, args, d, body))
            start = not self._is_draining
            self._is_draining = True
        if start:
            self.writer.call(self._drain_writes)

    def blob_then_write(
        self,
        blob_fn: Callable[..., Any],
        blob_args: tuple[Any, ...],
        write_fn: Callable[..., R],
        write_args: tuple[Any, ...],
    ) -> Deferred[R]:
        """``blob_fn(*blob_args)`` on a blob thread, then ``write(write_fn, *write_args)``
        queued by that thread itself: the reactor is not woken in between (one thread hop
        back, a Deferred and a coroutine step less per PUT, and the write joins the writer's
        queue as soon as the file is in place). Fires with the write's result after its
        commit, or its exception; if ``blob_fn`` raised, nothing was written and the Deferred
        fails with ``BlobStepFailed`` holding that failure."""
        d: Deferred[R] = Deferred()
        self.blobs.call(self._blob_then_queue, blob_fn, blob_args, write_fn, write_args, d)
        return d

    def _blob_then_queue(
        self,
        blob_fn: Callable[..., Any],
        blob_args: tuple[Any, ...],
        write_fn: Callable[..., Any],
        write_args: tuple[Any, ...],
        d: Deferred[Any],
    ) -> None:
        try:
            blob_fn(*blob_args)
        except BaseException:
            self._reactor.callFromThread(d.errback, Failure(BlobStepFailed(Failure())))
            return
        self._queue_write(write_fn, write_args, d)

    # --- group commit (writer thread) ----------------------------------------------------

    def _drain_writes(self) -> None:
        while True:
            with self._write_lock:
                if not self._write_queue:
                    self._is_draining = False
                    return
                count = min(len(self._write_queue), MAX_WRITE_BATCH)
                batch = [self._write_queue.popleft() for _ in range(count)]
            runnable = self._pack_bodies(batch)
            try:
                assert self._database is not None, "database not open"
                with self._database.process_write_lock():
                    outcomes = self._run_batch(runnable)
            except BaseException:  # e.g. no connection could be opened
                failure = Failure()
                outcomes = [(False, failure)] * len(batch)
            self._punch_failed(runnable, outcomes)
            probed = self._probe_after_commit()
            if probed is not None:
                # Published from here, not with the batch's results: under load the writer
                # commits the next batch before the reactor gets to these results, and a probe
                # delivered with them would already be stale (the reactor then queried the
                # generations itself after nearly every commit). One reference assignment,
                # atomic; the pair is consistent however late the reactor reads it.
                self.probed = probed
            self._reactor.callFromThread(_deliver, batch, outcomes)

    def _pack_bodies(self, batch: list[_QueuedWrite]) -> list[_QueuedWrite]:
        """Append the packed writes' bodies (one fdatasync) and pass each its ref; when the
        append fails, those writes fail with its error (and write nothing)."""
        bodies = [body for _, _, _, body in batch if body is not None]
        if not bodies:
            return batch
        try:
            assert self.packer is not None
            refs = iter(self.packer.append(bodies))
        except BaseException as exc:
            # ENOSPC / EDQUOT become StorageFull, other OS errors StorageIOError.
            failure = Failure(storage_error(exc)) if isinstance(exc, OSError) else Failure()
            return [
                (item if item[3] is None else (_raise_failure, (failure,), item[2], item[3]))
                for item in batch
            ]
        return [
            (fn, args, d, None) if body is None else (fn, (next(refs), *args), d, body)
            for fn, args, d, body in batch
        ]

    def _punch_failed(self, batch: list[_QueuedWrite], outcomes: list[_Outcome]) -> None:
        packer = self.packer
        for (fn, args, _, body), (ok, _) in zip(batch, outcomes, strict=True):
            if ok or body is None or fn is _raise_failure or packer is None:
                continue
            try:
                packed = locate(packer.directory, args[0])
                if packed is not None:
                    punch(*packed)
            except Exception:
                pass

    def _probe_after_commit(self) -> tuple[Hashable, Any] | None:
        """Run ``commit_probe`` between two reads of the commit token (writer thread); the
        result with the token when both reads agree, else None."""
        probe = self.commit_probe
        watch = self._commit_watch  # mapped by the reactor's first data_version()
        if probe is None or watch is None:
            return None
        try:
            before = watch.token()
            if before is None:
                return None
            result = probe(self._connection())
            if watch.token() != before:
                return None  # another commit landed meanwhile: the pairing is unknown
        except Exception:
            return None
        return before, result

    def _run_batch(self, batch: list[_QueuedWrite]) -> list[_Outcome]:
        conn = self._connection()
        if len(batch) == 1:
            return self._one_by_one(conn, batch)
        try:
            conn.execute("BEGIN IMMEDIATE")
        except BaseException:
            return self._one_by_one(conn, batch)
        outcomes: list[_Outcome] = []
        try:
            for fn, args, _, _ in batch:
                conn.execute(f"SAVEPOINT {_SAVEPOINT}")
                try:
                    result = fn(conn, *args)
                except BaseException:
                    failure = Failure()
                    if not conn.in_transaction:
                        raise  # SQLite rolled the whole transaction back: start over below
                    conn.execute(f"ROLLBACK TO {_SAVEPOINT}")
                    conn.execute(f"RELEASE {_SAVEPOINT}")
                    outcomes.append((False, failure))
                else:
                    conn.execute(f"RELEASE {_SAVEPOINT}")
                    outcomes.append((True, result))
            conn.execute("COMMIT")
        except BaseException:
            # Nothing of this batch is durable: undo what is left and give every function a
            # transaction of its own (the ones that failed above will most likely fail again,
            # with their own error).
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except BaseException:
                    pass
            return self._one_by_one(conn, batch)
        self.commits += 1
        self.writes += len(batch)
        return outcomes

    def _one_by_one(self, conn: Connection, batch: list[_QueuedWrite]) -> list[_Outcome]:
        outcomes: list[_Outcome] = []
        for fn, args, _, _ in batch:
            try:
                outcomes.append((True, write_transaction(conn, fn, *args)))
            except BaseException:
                outcomes.append((False, Failure()))
                continue
            self.commits += 1
            self.writes += 1
        return outcomes

    def read(self, fn: Callable[..., R], *args: Any) -> Deferred[R]:
        """``fn(conn, *args)`` on one snapshot on a reader thread."""
        return self.readers.defer(self._in_read, fn, *args)

    def read_raw(self, fn: Callable[..., R], *args: Any) -> Deferred[R]:
        """``fn(conn, *args)`` on a reader thread; ``fn`` manages its own transactions."""
        return self.readers.defer(self._with_read_connection, fn, *args)

    def _inline_connection(self) -> Connection:
        conn = self._inline
        if conn is None:
            assert self._database is not None, "database not open"
            conn = self._inline = self._database.connect(busy_timeout_ms=INLINE_BUSY_TIMEOUT_MS)
            with self._lock:
                self._connections.append(conn)
        return conn

    def run_inline(self, fn: Callable[..., R], *args: Any) -> R:
        """``fn(conn, *args)`` on the calling (reactor) thread with its own connection; raises
        whatever ``fn`` raises, busy errors included (see ``read_now``)."""
        return fn(self._inline_connection(), *args)

    def read_now(self, fn: Callable[..., R], *args: Any) -> Deferred[R]:
        """``fn(conn, *args)`` right here, on the calling (reactor) thread, with a connection of
        its own; ``fn`` manages its own transactions (use it for one-statement lookups).

        A point lookup in a cached database takes tens of microseconds; handing it to a reader
        thread costs more than that (queue, wake-up, and the GIL handed back and forth with the
        reactor), so the hot read paths (GET/HEAD lookups, bucket records) run here. When the
        database is locked the read is retried on a reader thread, which may wait as long as
        it must; the reactor never waits more than ``INLINE_BUSY_TIMEOUT_MS``."""
        try:
            result = self.run_inline(fn, *args)
        except BaseException as exc:
            if is_busy_error(exc):
                return self.read_raw(fn, *args)
            return fail()
        return succeed(result)

    def data_version(self) -> Hashable | None:
        """An opaque value that differs between two calls when any connection (this
        process's writer, another worker) committed in between; None when the database cannot
        say right now. Read from the mapped WAL-index header (``CommitWatch``: no system call,
        the GIL is kept), else SQLite's ``PRAGMA data_version`` on the reactor's connection."""
        watch = self._commit_watch
        if watch is not None:
            for _ in range(COMMIT_WATCH_ATTEMPTS):
                token = watch.token()
                if token is not None:
                    return token
            return None  # a commit is landing this very moment: treat as unknown
        try:
            conn = self._inline_connection()
            if self._commit_watch is None and not self._commit_watch_tried:
                self._commit_watch_tried = True
                assert self._database is not None
                self._commit_watch = CommitWatch.open(self._database.path)
                if self._commit_watch is not None:
                    return self.data_version()
            return data_version(conn)
        except Exception:
            return None

    def read_snapshot_now(self, fn: Callable[..., R], *args: Any) -> Deferred[R]:
        """``read_now`` for work of several statements: ``fn`` runs on one snapshot."""
        return self.read_now(read_transaction, fn, *args)

    def blob(self, fn: Callable[..., R], *args: Any) -> Deferred[R]:
        return self.blobs.defer(fn, *args)


def _raise_failure(conn: Connection, failure: Failure) -> None:
    failure.raiseException()


def _deliver(batch: list[_QueuedWrite], outcomes: list[_Outcome]) -> None:
    """Answer the callers of one batch (reactor thread), in queue order."""
    for (_, _, d, _), (ok, value) in zip(batch, outcomes, strict=True):
        if ok:
            d.callback(value)
        else:
            d.errback(value)
