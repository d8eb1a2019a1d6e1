"""Fixtures and helpers for the storage service tests.

The suite is written against the contract in ``jay.storage.api`` (and JAY_SPEC §6, §2.8, §2.9,
§7.5), not against the implementation. ``jay.storage.service`` is imported lazily so that a
missing or broken implementation fails the tests, not the collection of this package.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterable
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor, task
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IConsumer, IPushProducer
from zope.interface import implementer

from jay.storage.api import (
    Account,
    BucketInfo,
    ObjectAttributes,
    ObjectInfo,
    StagedBlob,
    WriteCondition,
)


def pytest_configure(config: Any) -> None:
    config.addinivalue_line(
        "markers", "bigdata: moves a GiB through the storage service (runs in the normal suite)"
    )


EMPTY_MD5 = "d41d8cd98f00b204e9800998ecf8427e"


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- service lifecycle ------------------------------------------------------------------------


async def start_service(data_dir: str, *, pack_max_object_bytes: int = 0) -> Any:
    """Start a ``StorageService`` on ``data_dir`` and wait until recovery has finished.

    One file per object unless ``pack_max_object_bytes`` says otherwise: the tests using this
    check that layout (corrupting, truncating and removing object files); pack files have their
    own tests (tests/storage/test_packs.py), and servers started from a configuration (the
    integration tests) use packs as the default configuration does."""
    from jay.storage.service import StorageService

    svc = StorageService(
        str(data_dir), reactor=reactor, pack_max_object_bytes=pack_max_object_bytes
    )
    svc.startService()
    await svc.when_ready()
    return svc


async def stop_service(svc: Any) -> None:
    result = svc.stopService()
    if isinstance(result, Deferred):
        await result


@pytest.fixture
def data_dir(tmp_path: Any) -> str:
    return str(tmp_path / "data")


@pytest_twisted.async_yield_fixture
async def svc(data_dir: str) -> Any:
    service = await start_service(data_dir)
    try:
        yield service
    finally:
        await stop_service(service)


@pytest_twisted.async_yield_fixture
async def other(svc: Any, data_dir: str) -> Any:
    """A second service on the same data directory, started after ``svc``: another worker."""
    service = await start_service(data_dir)
    try:
        yield service
    finally:
        await stop_service(service)


def start_pools(tmp_path: Any, on_reactor: Any = reactor) -> tuple[Any, Any]:
    """Bare ``StoragePools`` (one reader, one blob thread) over a database with one table,
    ``t (k TEXT PRIMARY KEY, v INTEGER)``, started: (pools, database). The caller stops it."""
    from jay.storage.pools import StoragePools
    from jay.storage.sqlite import SQLiteDatabase

    database = SQLiteDatabase(str(tmp_path / "jay.db"))
    p = StoragePools(on_reactor, reader_threads=1, blob_threads=1)
    p.start()
    p.open_database(database)
    conn = database.connect()
    conn.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)")
    conn.close()
    return p, database


@pytest.fixture
def pools(tmp_path: Any) -> Any:
    """``start_pools`` as a fixture: (pools, database), stopped afterwards."""
    p, database = start_pools(tmp_path)
    yield p, database
    p.stop()


def rows(database: Any) -> dict[str, int]:
    """The ``pools`` fixture's table, read through a connection of its own."""
    conn = database.connect()
    try:
        return dict(conn.execute("SELECT k, v FROM t"))
    finally:
        conn.close()


@pytest_twisted.async_fixture
async def account(svc: Any) -> Account:
    return await svc.create_account("alice")


@pytest_twisted.async_fixture
async def bucket(svc: Any, account: Account) -> str:
    info: BucketInfo = await svc.create_bucket("bkt", account.account_id)
    return info.name


def chunks_of(data: bytes, size: int = 1 << 20) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


# --- writing ----------------------------------------------------------------------------------


async def stage(
    svc: Any, data: bytes | Iterable[bytes], algorithms: Iterable[str] = ()
) -> StagedBlob:
    """Stream ``data`` (one bytes or several chunks) through a StagingWriter and finish it."""
    writer = svc.begin_write(tuple(algorithms))
    chunks = [data] if isinstance(data, bytes) else list(data)
    for chunk in chunks:
        writer.write(chunk)
    return await writer.finish()


async def put(
    svc: Any,
    bucket: str,
    key: str,
    data: bytes | Iterable[bytes] = b"",
    attributes: ObjectAttributes | None = None,
    *,
    condition: WriteCondition | None = None,
    **kwargs: Any,
) -> ObjectInfo:
    staged = await stage(svc, data)
    return await svc.put_object(
        bucket, key, staged, attributes or ObjectAttributes(), condition=condition, **kwargs
    )


@implementer(IPushProducer)
class GeneratingProducer:
    """Feeds ``total`` bytes into a consumer in chunks made on the fly, one chunk per reactor
    turn, and stops while paused: the well-behaved upstream of a StagingWriter."""

    def __init__(
        self, consumer: Any, total: int, make_chunk: Callable[[int, int], bytes], chunk_size: int
    ) -> None:
        self.consumer = consumer
        self.total = total
        self.make_chunk = make_chunk
        self.chunk_size = chunk_size
        self.sent = 0
        self.index = 0
        self.paused = False
        self.pause_count = 0
        self.resume_count = 0
        self.stopped = False
        self.done: Deferred[None] = Deferred()
        self._scheduled: Any = None

    def start(self) -> Deferred[None]:
        self.consumer.registerProducer(self, True)
        self._schedule()
        return self.done

    def _schedule(self) -> None:
        if self._scheduled is None and not self.paused and not self.stopped:
            self._scheduled = reactor.callLater(0, self._pump)

    def _pump(self) -> None:
        self._scheduled = None
        if self.paused or self.stopped:
            return
        if self.sent >= self.total:
            self.stopped = True
            self.consumer.unregisterProducer()
            self.done.callback(None)
            return
        size = min(self.chunk_size, self.total - self.sent)
        chunk = self.make_chunk(self.index, size)
        self.index += 1
        self.sent += len(chunk)
        self.consumer.write(chunk)
        self._schedule()

    def pauseProducing(self) -> None:
        self.pause_count += 1
        self.paused = True

    def resumeProducing(self) -> None:
        self.resume_count += 1
        self.paused = False
        self._schedule()

    def stopProducing(self) -> None:
        self.stopped = True


# --- reading ----------------------------------------------------------------------------------


@implementer(IConsumer)
class CollectingConsumer:
    """Collects what a push producer writes; optionally pauses it after every write.

    ``pause_each_write`` makes the consumer call ``pauseProducing`` on every chunk and resume
    on a later reactor turn, counting chunks that still arrive while it is paused.
    """

    def __init__(self, *, pause_each_write: bool = False, keep: bool = True) -> None:
        self.producer: IPushProducer | None = None
        self.streaming: bool | None = None
        self.data = bytearray()
        self.keep = keep
        self.sha256 = hashlib.sha256()
        self.byte_count = 0
        self.write_count = 0
        self.writes_while_paused = 0
        self.max_writes_while_paused = 0
        self.paused = False
        self.pause_each_write = pause_each_write
        self.unregistered = False

    def registerProducer(self, producer: IPushProducer, streaming: bool) -> None:
        self.producer = producer
        self.streaming = streaming

    def unregisterProducer(self) -> None:
        self.unregistered = True
        self.producer = None

    def write(self, data: bytes) -> None:
        self.write_count += 1
        self.byte_count += len(data)
        self.sha256.update(data)
        if self.keep:
            self.data += data
        if self.paused:
            self.writes_while_paused += 1
            self.max_writes_while_paused = max(
                self.max_writes_while_paused, self.writes_while_paused
            )
        if self.pause_each_write and self.producer is not None and not self.paused:
            self.paused = True
            self.writes_while_paused = 0
            self.producer.pauseProducing()
            reactor.callLater(0.005, self._resume)

    def _resume(self) -> None:
        self.paused = False
        if self.producer is not None:
            self.producer.resumeProducing()


async def read(
    svc: Any,
    bucket: str,
    key: str,
    start: int = 0,
    length: int | None = None,
    *,
    verify: bool = False,
) -> bytes:
    opened = await svc.open_object(bucket, key)
    consumer = CollectingConsumer()
    written = await opened.stream(consumer, start, length, verify=verify)
    assert written == len(consumer.data)
    return bytes(consumer.data)


# --- files on disk ----------------------------------------------------------------------------


def files_under(root: str) -> list[str]:
    """Every regular file below ``root``, as paths relative to it ('/' separated), sorted."""
    found = []
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            full = os.path.join(dirpath, name)
            if os.path.isfile(full):
                found.append(os.path.relpath(full, root).replace(os.sep, "/"))
    return sorted(found)


def tmp_files(data_dir: str) -> list[str]:
    return files_under(os.path.join(data_dir, "tmp"))


def object_file_path(data_dir: str, info: ObjectInfo) -> str:
    """The object's file per JAY_SPEC §6.1: buckets/<bucket_id>/objects/<o0o1>/<o2o3>/<id>."""
    oid = info.object_id
    return os.path.join(data_dir, "buckets", info.bucket_id, "objects", oid[0:2], oid[2:4], oid)


def object_files(data_dir: str) -> list[str]:
    return files_under(os.path.join(data_dir, "buckets"))


def open_fd_targets() -> list[str]:
    """Paths this process has open (Linux /proc)."""
    targets = []
    fd_dir = "/proc/self/fd"
    for fd in os.listdir(fd_dir):
        try:
            targets.append(os.readlink(os.path.join(fd_dir, fd)))
        except OSError:
            continue
    return targets


# --- time -------------------------------------------------------------------------------------


async def turns(n: int = 1) -> None:
    """Let the reactor run ``n`` iterations (timers at 0 s)."""
    for _ in range(n):
        await task.deferLater(reactor, 0, lambda: None)


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``predicate`` on the reactor until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached within {timeout} s")
        await task.deferLater(reactor, 0.01, lambda: None)


# --- a fresh interpreter ----------------------------------------------------------------------


def run_fresh_python(script: str, *args: str) -> list[str]:
    """Run ``script`` in a new interpreter whose environment sets no malloc tuning (malloc's
    settings are per process); its standard output, split into words."""
    import subprocess
    import sys

    from jay.storage.libc import ALLOCATOR_ENVIRONMENT

    env = {k: v for k, v in os.environ.items() if k not in ALLOCATOR_ENVIRONMENT}
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.split()
