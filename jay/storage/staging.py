"""StagingWriter: an IConsumer that streams a body into ``tmp/`` while hashing it.

Flow control (JAY_SPEC §6.2 step 3; aiohttp's StreamReader water marks): ``write`` only appends
to a queue. At most one job runs on the blob pool; it takes everything queued, writes it and
feeds MD5, SHA-256 and any flexible checksums in the thread (hashlib releases the GIL). For a
large batch MD5 runs on a helper thread while the job writes and computes SHA-256, so the two
digests (the most expensive part of a big PUT) proceed in parallel on two cores. Above
``HIGH_WATER_BYTES`` queued the producer is paused, below ``LOW_WATER_BYTES`` resumed, so a body
of any size holds at most a few MiB in memory. A body of ``DIRECT_MIN_BYTES`` or more (its
declared size, else its first batch) is written with O_DIRECT (``blobs.DirectAppender``);
otherwise, every ``WRITE_BEHIND_BYTES`` written, the job starts the kernel's writeback of them
(``blobs.start_writeback``), so a big body is mostly on disk by the time its fsync runs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IConsumer
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from jay.checksums import MultiHasher
from jay.errors import JayError, StorageIOError
from jay.storage.api import StagedBlob
from jay.storage.blobs import (
    DIRECT_MIN_BYTES,
    FileAppender,
    create_temp,
    fsync_file,
    hold_temp,
    release_temp,
    remove_temp,
    storage_error,
)
from jay.storage.encryption import StreamEncryptor

log = Logger()

# Why these numbers: 4 MiB keeps a fast disk busy between thread hops; 1 MiB resumes the
# socket early enough that the disk never idles.
HIGH_WATER_BYTES = 4 * 1024 * 1024
LOW_WATER_BYTES = 1024 * 1024
# Data is handed to the blob pool once this much is queued, or when the body ends: a small body
# is then written, hashed and fsynced in one job (one thread hop) instead of a write job
# followed by a seal job.
EAGER_WRITE_BYTES = 64 * 1024
# A body no larger than this that ended before any job ran is hashed on the reactor (a few
# microseconds) and handed on in memory: the consumer writes, fsyncs and renames it into place
# in one job (StagedBlob.pending), one thread hop instead of a staging job and a place job.
DEFERRED_WRITE_BYTES = 16 * 1024
# hashlib releases the GIL for an update of this many bytes or more (CPython's
# HASHLIB_GIL_MINSIZE); bodies hashed on the reactor are fed in smaller pieces.
GIL_KEEPING_BYTES = 2048
# Batches at least this big hash MD5 on a helper thread: below it, the hand-off costs more than
# the parallelism gains (hashlib releases the GIL only for buffers over 2 KiB anyway).
PARALLEL_HASH_BYTES = 512 * 1024
# Helper threads for MD5: one per concurrently running staging job is enough (the blob pool
# runs at most a handful); more would only contend for the same cores.
MD5_THREADS = 4

_md5_pool: ThreadPoolExecutor | None = None
_md5_pool_lock = threading.Lock()


def _md5_executor() -> ThreadPoolExecutor:
    global _md5_pool
    with _md5_pool_lock:
        if _md5_pool is None:
            _md5_pool = ThreadPoolExecutor(MD5_THREADS, thread_name_prefix="jay-md5")
        return _md5_pool


def _update_all(hasher: Any, chunks: list[bytes]) -> None:
    for chunk in chunks:
        hasher.update(chunk)


class _FileSink:
    """The thread-side state: the fd and the hashers. Touched only by one job at a time."""

    def __init__(
        self,
        path: str | Callable[[], str],
        algorithms: Sequence[str],
        size_hint: int | None = None,
    ) -> None:
        # A str, or a function that names the temp file when one is first needed: a small body
        # handed on in memory (``in_memory``) never gets a file, nor a name for one.
        self._path = path if isinstance(path, str) else None
        self._name_path = path if not isinstance(path, str) else None
        self._size_hint = size_hint  # the body's declared size, when known
        self.fd: int | None = None
        self._appender: FileAppender | None = None  # once the file exists
        self.md5 = hashlib.md5()
        self.sha256 = hashlib.sha256()
        self.extra = MultiHasher(algorithms)
        self.size = 0

    @property
    def path(self) -> str:
        path = self._path
        if path is None:
            assert self._name_path is not None
            path = self._path = self._name_path()
        return path

    def _open(self, batch_bytes: int) -> FileAppender:
        """Create the temp file; a large body (declared, else judged by its first batch)
        goes to it with O_DIRECT (blobs.FileAppender)."""
        self.fd = create_temp(self.path)
        hint = self._size_hint
        is_large = (hint if hint is not None else batch_bytes) >= DIRECT_MIN_BYTES
        self._appender = FileAppender(self.fd, is_large=is_large)
        return self._appender

    def _store(self, data: list[bytes]) -> None:
        """Append ``data`` (the body's bytes, or its ciphertext) to the file."""
        appender = self._appender or self._open(sum(len(d) for d in data))
        appender.write(data)

    def write_chunks(self, chunks: list[bytes]) -> None:
        md5_done = None
        if sum(len(c) for c in chunks) >= PARALLEL_HASH_BYTES:
            md5_done = _md5_executor().submit(_update_all, self.md5, chunks)
        try:
            self._store(chunks)
            for chunk in chunks:
                if md5_done is None:
                    self.md5.update(chunk)
                self.sha256.update(chunk)
                self.extra.update(chunk)
                self.size += len(chunk)
        except OSError as exc:
            raise storage_error(exc) from exc
        finally:
            if md5_done is not None:
                # Always joined before returning: the next job must not race this one's MD5.
                md5_done.result()

    def write_and_seal(self, chunks: list[bytes]) -> StagedBlob:
        if chunks:
            self.write_chunks(chunks)
        return self.seal()

    def seal(self) -> StagedBlob:
        try:
            appender = self._appender or self._open(0)
            appender.close()
            fd = self.fd
            assert fd is not None
            fsync_file(fd)
            self.fd = None
            # Keep the fd (and its flock) until the blob is placed or discarded: another
            # process's recovery or GC must not delete a staged file.
            hold_temp(self.path, fd)
        except OSError as exc:
            raise storage_error(exc) from exc
        return self._staged()

    def in_memory(self, chunks: tuple[bytes, ...]) -> StagedBlob:
        """Hash a small body here (the reactor thread) and leave writing it to whoever places
        it. Fed in pieces under ``GIL_KEEPING_BYTES``: hashlib drops the GIL for bigger
        updates, and under load the reactor then waits for the busy pool threads to hand it
        back (a 4 KiB MD5 + SHA-256 measured 13 µs alone, 90–135 µs with three busy threads;
        in 2047-byte pieces 13 µs either way)."""
        md5, sha256, extra = self.md5, self.sha256, self.extra
        for chunk in chunks:
            size = len(chunk)
            if size < GIL_KEEPING_BYTES:
                md5.update(chunk)
                sha256.update(chunk)
                extra.update(chunk)
            else:
                view = memoryview(chunk)
                for start in range(0, size, GIL_KEEPING_BYTES - 1):
                    piece = view[start : start + GIL_KEEPING_BYTES - 1]
                    md5.update(piece)
                    sha256.update(piece)
                    extra.update(piece)
            self.size += size
        return self._staged(pending=chunks)

    def hashed_in_memory(self, chunks: tuple[bytes, ...]) -> StagedBlob:
        """``in_memory`` for a blob-pool thread: whole chunks, so hashlib drops the GIL for
        each and the reactor runs meanwhile."""
        for chunk in chunks:
            self.md5.update(chunk)
            self.sha256.update(chunk)
            self.extra.update(chunk)
            self.size += len(chunk)
        return self._staged(pending=chunks)

    def _staged(self, pending: tuple[bytes, ...] | None = None) -> StagedBlob:
        return StagedBlob(
            # No file (and maybe no name yet) for a body handed on in memory.
            temp_path=self.path if pending is None else (self._path or ""),
            size=self.size,
            md5=self.md5.digest(),
            sha256=self.sha256.digest(),
            checksums=self.extra.values(),
            pending=pending,
        )

    def discard(self) -> None:
        if self.fd is not None:
            fd, self.fd = self.fd, None
            try:
                os.close(fd)
            except OSError:
                pass
        if self._path is None:
            return  # never named, so never created
        release_temp(self._path)
        remove_temp(self._path)


class _EncryptingSink(_FileSink):
    """A sink that encrypts on the way to disk (jay.storage.encryption): MD5, SHA-256 and the
    flexible checksums are of the body as sent, ``stored_sha256`` of the bytes written. The
    body handed on in memory is its ciphertext, so whoever places it writes that."""

    def __init__(
        self,
        path: str | Callable[[], str],
        algorithms: Sequence[str],
        encryptor: StreamEncryptor,
        size_hint: int | None = None,
    ) -> None:
        super().__init__(path, algorithms, size_hint)
        self._encryptor = encryptor
        self._stored_sha256 = hashlib.sha256()

    def _take(self, chunk: bytes) -> bytes:
        self.md5.update(chunk)
        self.sha256.update(chunk)
        self.extra.update(chunk)
        self.size += len(chunk)
        sealed = self._encryptor.feed(chunk)
        self._stored_sha256.update(sealed)
        return sealed

    def _tail(self) -> bytes:
        sealed = self._encryptor.finish()
        self._stored_sha256.update(sealed)
        return sealed

    def write_chunks(self, chunks: list[bytes]) -> None:
        try:
            self._store([self._take(chunk) for chunk in chunks])
        except OSError as exc:
            raise storage_error(exc) from exc

    def write_and_seal(self, chunks: list[bytes]) -> StagedBlob:
        try:
            self._store([*(self._take(chunk) for chunk in chunks), self._tail()])
        except OSError as exc:
            raise storage_error(exc) from exc
        return self.seal()

    def in_memory(self, chunks: tuple[bytes, ...]) -> StagedBlob:
        # At most DEFERRED_WRITE_BYTES: encrypting them here costs microseconds.
        sealed = [self._take(chunk) for chunk in chunks]
        sealed.append(self._tail())
        return self._staged(pending=(b"".join(sealed),))

    def hashed_in_memory(self, chunks: tuple[bytes, ...]) -> StagedBlob:
        return self.in_memory(chunks)

    def _staged(self, pending: tuple[bytes, ...] | None = None) -> StagedBlob:
        staged = super()._staged(pending)
        return dataclasses.replace(staged, stored_sha256=self._stored_sha256.digest())


@implementer(IConsumer)
class FileStagingWriter:
    def __init__(
        self,
        reactor: Any,
        run_in_blob_pool: Any,
        temp_path: str | Callable[[], str],
        checksum_algorithms: Sequence[str] = (),
        *,
        in_memory_bytes: int = DEFERRED_WRITE_BYTES,
        encryptor: StreamEncryptor | None = None,
        size_hint: int | None = None,
    ) -> None:
        """``in_memory_bytes``: a body no larger that ended before any job ran is handed on in
        memory (``StagedBlob.pending``, no temp file): hashed here up to
        ``DEFERRED_WRITE_BYTES``, above that in one blob-pool job (the storage service packs
        such bodies, jay.storage.packs). ``size_hint``: the body's declared size, when known
        (a large body is written with O_DIRECT from its first byte)."""
        self._reactor = reactor
        self._in_memory_bytes = min(max(in_memory_bytes, DEFERRED_WRITE_BYTES), EAGER_WRITE_BYTES)
        self._run = run_in_blob_pool  # (fn, *args) -> Deferred
        self._sink = (
            _FileSink(temp_path, checksum_algorithms, size_hint)
            if encryptor is None
            else _EncryptingSink(temp_path, checksum_algorithms, encryptor, size_hint)
        )
        self._queue: deque[bytes] = deque()
        self._queued_bytes = 0  # queued plus in the running job
        self._job: Deferred[None] | None = None
        self._producer: Any = None  # an IPushProducer (Any: no mypy-zope plugin)
        self._is_streaming = True
        self._is_paused = False
        self._accepted = 0
        self._failure: Failure | None = None
        self._finishing: Deferred[StagedBlob] | None = None
        self._is_closed = False  # finished or aborted: writes are refused
        self._is_aborted = False

    @property
    def bytes_written(self) -> int:
        return self._accepted

    @property
    def temp_path(self) -> str:
        return self._sink.path

    # --- IConsumer -----------------------------------------------------------------------

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        self._producer = producer  # an IPushProducer (or IPullProducer: streaming False)
        self._is_streaming = streaming
        self._is_paused = False

    def unregisterProducer(self) -> None:
        self._producer = None
        self._is_paused = False

    def write(self, data: bytes) -> None:
        if self._is_closed or self._failure is not None:
            return  # the failure (or the abort) is reported by finish()
        if not data:
            return
        self._queue.append(bytes(data))
        self._queued_bytes += len(data)
        self._accepted += len(data)
        if (
            self._queued_bytes > HIGH_WATER_BYTES
            and self._producer is not None
            and not self._is_paused
        ):
            self._is_paused = True
            self._producer.pauseProducing()
        queued = self._queued_bytes
        if (queued >= EAGER_WRITE_BYTES and queued > self._in_memory_bytes) or (
            not self._is_streaming
        ):
            self._maybe_start_job()

    # --- the job loop (reactor thread) ---------------------------------------------------

    def _maybe_start_job(self) -> None:
        if self._job is not None or self._failure is not None:
            return
        if self._queue and self._finishing is not None and not self._is_closed:
            # The body is complete: write what is left and seal in the same job.
            chunks = list(self._queue)
            self._queue.clear()
            self._queued_bytes = 0
            self._seal(chunks)
        elif self._queue:
            chunks = list(self._queue)
            self._queue.clear()
            size = sum(len(c) for c in chunks)
            self._job = self._run(self._sink.write_chunks, chunks)
            self._job.addCallbacks(
                self._job_done, self._job_failed, callbackArgs=(size,), errbackArgs=(size,)
            )
        elif self._finishing is not None and not self._is_closed:
            self._seal()

    def _job_done(self, _: None, size: int) -> None:
        self._job = None
        self._queued_bytes -= size
        self._maybe_resume()
        self._maybe_start_job()

    def _job_failed(self, failure: Failure, size: int) -> None:
        self._job = None
        self._queued_bytes = 0
        self._queue.clear()
        if not failure.check(JayError):
            log.failure("Staging write failed", failure)
            failure = Failure(StorageIOError())
        self._failure = failure
        # Keep the producer going so the caller sees the whole request and gets our error.
        self._maybe_resume()
        if self._finishing is not None:
            self._fail_finish()

    def _maybe_resume(self) -> None:
        if self._producer is None:
            return
        if self._is_paused and self._queued_bytes < LOW_WATER_BYTES:
            self._is_paused = False
            self._producer.resumeProducing()
        elif not self._is_streaming and self._queued_bytes < LOW_WATER_BYTES:
            self._producer.resumeProducing()

    def _seal(self, chunks: list[bytes] | None = None) -> None:
        self._finish_in_pool(self._sink.write_and_seal, chunks or [])

    def _finish_in_pool(self, job: Callable[[Any], StagedBlob], chunks: Any) -> None:
        """Run the job that ends the body (write and seal it, or hash it in memory) and
        answer ``finish()`` with its blob."""
        self._is_closed = True
        finishing = self._finishing
        assert finishing is not None

        def done(blob: StagedBlob) -> None:
            self._job = None
            if self._is_aborted:
                self._run(self._sink.discard)  # abort() already failed the caller
                return
            self._finishing = None
            finishing.callback(blob)

        def failed(failure: Failure) -> None:
            self._job = None
            if self._is_aborted:
                return
            self._failure = failure if failure.check(JayError) else Failure(StorageIOError())
            self._fail_finish()

        self._job = self._run(job, chunks)
        self._job.addCallbacks(done, failed)

    def _fail_finish(self) -> None:
        finishing, self._finishing = self._finishing, None
        self._is_closed = True
        failure = self._failure
        assert finishing is not None and failure is not None
        self._run(self._sink.discard).addBoth(lambda _: finishing.errback(failure))

    # --- public --------------------------------------------------------------------------

    def finish(self) -> Deferred[StagedBlob]:
        if self._finishing is not None or self._is_closed:
            raise RuntimeError("finish() called twice or after abort()")
        self._finishing = Deferred()
        result = self._finishing
        if self._failure is not None:
            self._fail_finish()
        elif (
            self._job is None
            and self._sink.fd is None
            and self._sink.size == 0
            and self._queued_bytes <= DEFERRED_WRITE_BYTES
        ):
            chunks = tuple(self._queue)
            self._queue.clear()
            self._queued_bytes = 0
            self._is_closed = True
            self._finishing = None
            result.callback(self._sink.in_memory(chunks))
        elif (
            self._job is None
            and self._sink.fd is None
            and self._sink.size == 0
            and self._queued_bytes <= self._in_memory_bytes
        ):
            self._hash_in_pool(tuple(self._queue))
        else:
            self._maybe_start_job()
        return result

    def _hash_in_pool(self, chunks: tuple[bytes, ...]) -> None:
        """Finish a body handed on in memory but hashed on a blob-pool thread."""
        self._queue.clear()
        self._queued_bytes = 0
        self._finish_in_pool(self._sink.hashed_in_memory, chunks)

    def abort(self) -> Deferred[None]:
        """Stop and delete the temp file; waits for a running job so the fd is not yanked."""
        self._is_aborted = True
        self._is_closed = True
        self._queue.clear()
        self._queued_bytes = 0
        if self._finishing is not None and not self._finishing.called:
            finishing, self._finishing = self._finishing, None
            finishing.errback(Failure(StorageIOError("Upload aborted")))
            finishing.addErrback(lambda _: None)
        job = self._job
        if job is None:
            return self._run(self._sink.discard)
        done: Deferred[None] = Deferred()
        job.addBoth(lambda _: self._run(self._sink.discard).chainDeferred(done))
        return done


def discard_staged(run_in_blob_pool: Any, staged: StagedBlob) -> Deferred[None]:
    if not staged.temp_path or staged.pending is not None:
        return succeed(None)  # nothing was written
    return run_in_blob_pool(remove_temp, staged.temp_path)
