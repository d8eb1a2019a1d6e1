"""DecryptingOpenObject: stream the plaintext of an encrypted object (jay.storage.encryption).

A push producer like ``reading.BlobProducer``: one blob-pool job in flight, each reading and
decrypting up to ``BATCH_BYTES`` of segments, writes on the reactor thread, pause/resume
honoured. Only the segments a range touches are read. Never by ``sendfile`` (the bytes on
disk are not the body) and never from a prefetched copy (that one is cut at the plaintext
size). The fd is closed once, never while a job reads it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionLost
from twisted.internet.interfaces import IConsumer, IPushProducer
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from jay.errors import JayError, StorageIOError
from jay.storage.api import ObjectInfo
from jay.storage.encryption import (
    SegmentCorrupt,
    SegmentRead,
    SegmentReader,
    parse_record,
    plan_segments,
)
from jay.storage.reading import FileOpenObject, StreamEnd

log = Logger()

# Plaintext decrypted per blob-pool job: 16 segments; a job's memory is about twice this.
BATCH_BYTES = 1024 * 1024


def _read_batch(reader: SegmentReader, reads: list[SegmentRead]) -> bytes:
    try:
        return b"".join([reader.read(r) for r in reads])
    except OSError as exc:
        raise StorageIOError() from exc


class DecryptingOpenObject:
    """An encrypted object's open file, read as its plaintext (the OpenObject interface)."""

    def __init__(self, opened: FileOpenObject, data_key: bytes) -> None:
        self.info: ObjectInfo = opened.info
        self.prefetched: bytes | None = None
        self._opened = opened
        self._data_key = data_key
        assert opened.info.attributes.encryption is not None
        self._record = parse_record(opened.info.attributes.encryption)
        self._producer: _DecryptingProducer | None = None
        self._is_closed = False

    def stream(
        self,
        consumer: IConsumer,
        start: int = 0,
        length: int | None = None,
        *,
        verify: bool = False,
        on_progress: Callable[[], None] | None = None,
    ) -> Deferred[int]:
        """Plaintext bytes [start, start + length) to ``consumer``. ``verify`` is implied:
        every segment is authenticated as it is decrypted."""
        if self._producer is not None or self._is_closed:
            raise RuntimeError("stream() may be called once, before close()")
        size = self.info.size
        start = max(0, min(start, size))
        count = size - start if length is None else max(0, min(length, size - start))
        plan = plan_segments(size, self.info.part_sizes, self._record.part_numbers, start, count)
        reader = SegmentReader(self._opened.fd, self._data_key)
        self._producer = _DecryptingProducer(self, reader, plan, consumer)
        return self._producer.start()

    def run_blob(self, fn: Callable[..., Any], *args: Any) -> Deferred[Any]:
        return self._opened.run_blob(fn, *args)

    def close_file(self) -> None:
        self._opened.close()

    def close(self) -> None:
        """Close the file, or have the producer close it once its running job returns."""
        self._is_closed = True
        producer = self._producer
        if producer is not None and producer.is_reading:
            producer.close_when_idle = True
            return
        self._opened.close()


@implementer(IPushProducer)
class _DecryptingProducer(StreamEnd):
    def __init__(
        self,
        owner: DecryptingOpenObject,
        reader: SegmentReader,
        plan: Iterator[SegmentRead],
        consumer: IConsumer,
    ) -> None:
        self._owner = owner
        self._reader = reader
        self._plan = plan
        self._next: SegmentRead | None = next(plan, None)
        self._consumer: Any = consumer
        self._written = 0
        self._is_paused = False
        self.is_reading = False
        self._is_done = False
        self.close_when_idle = False
        self.done: Deferred[int] = Deferred(lambda _: self._stop())

    def start(self) -> Deferred[int]:
        self._consumer.registerProducer(self, True)
        self._schedule()
        return self.done

    def pauseProducing(self) -> None:
        self._is_paused = True

    def resumeProducing(self) -> None:
        self._is_paused = False
        self._schedule()

    def stopProducing(self) -> None:
        self._finish(Failure(ConnectionLost("Consumer stopped the transfer")))

    def _schedule(self) -> None:
        if self._is_done or self._is_paused or self.is_reading:
            return
        batch: list[SegmentRead] = []
        planned = 0
        while self._next is not None and planned < BATCH_BYTES:
            batch.append(self._next)
            planned += self._next.take
            self._next = next(self._plan, None)
        if not batch:
            self._complete()
            return
        self.is_reading = True
        d = self._owner.run_blob(_read_batch, self._reader, batch)
        d.addCallbacks(self._got, self._failed)

    def _got(self, data: bytes) -> None:
        self.is_reading = False
        if self._is_done:
            self._release()
            return
        self._written += len(data)
        self._consumer.write(data)
        self._schedule()

    def _failed(self, failure: Failure) -> None:
        self.is_reading = False
        if self._is_done:
            self._release()
            return
        if failure.check(SegmentCorrupt):
            info = self._owner.info
            log.critical(
                "Encrypted object {bucket}/{key} ({object_id}) failed authentication: {why}",
                bucket=info.bucket,
                key=info.key,
                object_id=info.object_id,
                why=failure.getErrorMessage(),
            )
            failure = Failure(StorageIOError("Object data failed authentication"))
        elif not failure.check(JayError, ConnectionLost):
            log.failure("Encrypted object read failed", failure)
            failure = Failure(StorageIOError())
        self._finish(failure)

    def _release(self) -> None:
        # As BlobProducer: the stream closes the file when it ends (FileOpenObject.close is
        # idempotent, so the owner's close afterwards does nothing).
        self.close_when_idle = False
        self._owner.close_file()

    def _read_in_flight(self) -> bool:
        return self.is_reading
