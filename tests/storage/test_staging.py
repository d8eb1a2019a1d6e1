"""StagingWriter and temp files: never visible to reads or lists, always cleaned up
(JAY_SPEC §6.2 steps 2-4, 'Any error before step 6 removes the temp/new file')."""

from __future__ import annotations

import os
from typing import Any

import pytest
import pytest_twisted
from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer

from jay.errors import NoSuchBucket, NoSuchKey
from jay.storage.api import ObjectAttributes

from .conftest import (
    GeneratingProducer,
    md5_hex,
    object_files,
    put,
    read,
    sha256_hex,
    stage,
    tmp_files,
    wait_until,
)


@implementer(IPushProducer)
class RecordingProducer:
    def __init__(self) -> None:
        self.events: list[str] = []

    @property
    def paused(self) -> bool:
        return bool(self.events) and self.events[-1] == "pause"

    def pauseProducing(self) -> None:
        self.events.append("pause")

    def resumeProducing(self) -> None:
        self.events.append("resume")

    def stopProducing(self) -> None:
        self.events.append("stop")


@pytest_twisted.ensureDeferred
async def test_open_writer_is_invisible(svc: Any, bucket: str, data_dir: str) -> None:
    await put(svc, bucket, "k", b"committed")
    writer = svc.begin_write()
    writer.write(b"x" * 100_000)
    writer.write(b"y" * 100_000)
    assert writer.bytes_written == 200_000
    # The in-flight body is neither the object nor listed.
    assert await read(svc, bucket, "k") == b"committed"
    assert [o.key for o in (await svc.list_objects(bucket)).objects] == ["k"]
    staged = await writer.finish()
    assert staged.size == 200_000
    assert staged.md5_hex == md5_hex(b"x" * 100_000 + b"y" * 100_000)
    # A finished but uncommitted blob is durable in tmp/ and still invisible.
    tmp_dir = os.path.realpath(os.path.join(data_dir, "tmp"))
    assert os.path.realpath(staged.temp_path).startswith(tmp_dir + os.sep)
    assert os.path.isfile(staged.temp_path)
    assert os.path.getsize(staged.temp_path) == 200_000
    assert os.stat(staged.temp_path).st_mode & 0o777 == 0o600
    assert await read(svc, bucket, "k") == b"committed"
    assert [o.key for o in (await svc.list_objects(bucket)).objects] == ["k"]
    with pytest.raises(NoSuchKey):
        await svc.get_object_info(bucket, "staged")
    await svc.put_object(bucket, "staged", staged, ObjectAttributes())
    assert not os.path.exists(staged.temp_path)
    assert tmp_files(data_dir) == []
    assert await read(svc, bucket, "staged") == b"x" * 100_000 + b"y" * 100_000


@pytest_twisted.ensureDeferred
async def test_abort_removes_temp_file(svc: Any, data_dir: str) -> None:
    writer = svc.begin_write()
    writer.write(os.urandom(3 * 1024 * 1024))
    await writer.abort()
    assert tmp_files(data_dir) == []
    await writer.abort()  # safe twice
    assert tmp_files(data_dir) == []


@pytest_twisted.ensureDeferred
async def test_abort_of_unwritten_writer(svc: Any, data_dir: str) -> None:
    writer = svc.begin_write()
    await writer.abort()
    assert tmp_files(data_dir) == []


@pytest_twisted.ensureDeferred
async def test_failed_put_leaves_no_temp_file(svc: Any, bucket: str, data_dir: str) -> None:
    staged = await stage(svc, b"orphan to be")
    with pytest.raises(NoSuchBucket):
        await svc.put_object("no-such-bucket", "k", staged, ObjectAttributes())
    assert tmp_files(data_dir) == []
    assert object_files(data_dir) == []
    assert not os.path.exists(staged.temp_path)


@pytest_twisted.ensureDeferred
async def test_many_writers_leave_nothing_behind(svc: Any, bucket: str, data_dir: str) -> None:
    writers = [svc.begin_write() for _ in range(10)]
    for i, w in enumerate(writers):
        w.write(b"%d" % i * 10_000)
    for w in writers[:5]:
        await w.abort()
    staged = [await w.finish() for w in writers[5:]]
    for i, blob in enumerate(staged[:3]):
        await svc.put_object(bucket, f"k{i}", blob, ObjectAttributes())
    for blob in staged[3:]:
        await svc.discard(blob)
    assert tmp_files(data_dir) == []
    assert len(object_files(data_dir)) == 3


@pytest_twisted.ensureDeferred
async def test_writer_pauses_producer_above_high_water(svc: Any, data_dir: str) -> None:
    """Writes never block; a burst far above any sane high-water mark pauses the producer,
    and draining resumes it (JAY_SPEC §6.2 step 3)."""
    writer = svc.begin_write()
    producer = RecordingProducer()
    writer.registerProducer(producer, True)
    chunk = os.urandom(1024 * 1024)
    for _ in range(64):
        writer.write(chunk)
    assert producer.paused, producer.events
    await wait_until(lambda: "resume" in producer.events, timeout=30)
    writer.unregisterProducer()
    staged = await writer.finish()
    assert staged.size == 64 * len(chunk)
    assert staged.sha256_hex == sha256_hex(chunk * 64)
    await svc.discard(staged)
    assert tmp_files(data_dir) == []


@pytest_twisted.ensureDeferred
async def test_writer_with_well_behaved_producer(svc: Any, bucket: str) -> None:
    writer = svc.begin_write()
    total = 48 * 1024 * 1024 + 7

    def make_chunk(index: int, size: int) -> bytes:
        return bytes([index % 251]) * size

    producer = GeneratingProducer(writer, total, make_chunk, 1024 * 1024)
    await producer.start()
    staged = await writer.finish()
    assert staged.size == total
    info = await svc.put_object(bucket, "streamed", staged, ObjectAttributes())
    assert info.size == total
    expected = b"".join(make_chunk(i, min(1 << 20, total - (i << 20))) for i in range(49))
    assert info.sha256_hex == sha256_hex(expected)
    assert info.etag == md5_hex(expected)


@pytest_twisted.ensureDeferred
async def test_small_body_is_hashed_in_memory_and_written_by_its_consumer(tmp_path: Any) -> None:
    """A body up to DEFERRED_WRITE_BYTES is hashed when it ends and handed on in memory: no job
    at all until the consumer writes and places it (StagedBlob.pending)."""
    import hashlib

    from twisted.internet import reactor
    from twisted.internet.threads import deferToThread

    from jay.storage import staging

    jobs: list[str] = []

    def run(fn: Any, *args: Any) -> Any:
        jobs.append(fn.__name__)
        return deferToThread(fn, *args)

    writer = staging.FileStagingWriter(reactor, run, str(tmp_path / "upload.tmp"), ["CRC32"])
    writer.write(b"x" * 1000)
    writer.write(b"y" * 1000)
    blob = await writer.finish()
    assert jobs == []
    assert blob.pending == (b"x" * 1000, b"y" * 1000)
    assert blob.size == 2000
    assert blob.md5 == hashlib.md5(b"x" * 1000 + b"y" * 1000).digest()
    assert blob.sha256 == hashlib.sha256(b"x" * 1000 + b"y" * 1000).digest()
    assert set(blob.checksums) == {"CRC32"}
    assert not os.path.exists(blob.temp_path)


@pytest.mark.parametrize("sizes", [(0,), (2047,), (2048,), (4096, 1), (5000, 2047, 16000)])
def test_in_memory_hashing_in_pieces_matches_whole_digests(tmp_path: Any, sizes: Any) -> None:
    """Bodies hashed on the reactor are fed in pieces below hashlib's GIL-release size; the
    digests and checksums must equal those of the whole body in one update."""
    import hashlib

    from jay.checksums import MultiHasher
    from jay.storage.staging import _FileSink

    algorithms = ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"]
    chunks = tuple(os.urandom(n) for n in sizes)
    whole = b"".join(chunks)
    blob = _FileSink(str(tmp_path / "upload.tmp"), algorithms).in_memory(chunks)
    reference = MultiHasher(algorithms)
    reference.update(whole)
    assert blob.size == len(whole)
    assert blob.md5 == hashlib.md5(whole).digest()
    assert blob.sha256 == hashlib.sha256(whole).digest()
    assert blob.checksums == reference.values()
    assert blob.pending == chunks


@pytest_twisted.ensureDeferred
async def test_medium_body_is_written_and_sealed_in_one_job(tmp_path: Any) -> None:
    """Between DEFERRED_WRITE_BYTES and EAGER_WRITE_BYTES the body waits for finish(), then
    write + fsync share one job."""
    import hashlib

    from twisted.internet import reactor
    from twisted.internet.threads import deferToThread

    from jay.storage import staging

    jobs: list[str] = []

    def run(fn: Any, *args: Any) -> Any:
        jobs.append(fn.__name__)
        return deferToThread(fn, *args)

    writer = staging.FileStagingWriter(reactor, run, str(tmp_path / "upload.tmp"))
    writer.write(b"x" * 10_000)
    writer.write(b"y" * 10_000)
    assert jobs == []  # nothing handed to the pool before the body ends
    blob = await writer.finish()
    assert jobs == ["write_and_seal"]
    assert blob.pending is None
    assert blob.size == 20_000
    assert blob.md5 == hashlib.md5(b"x" * 10_000 + b"y" * 10_000).digest()
    with open(blob.temp_path, "rb") as f:
        assert f.read() == b"x" * 10_000 + b"y" * 10_000
    await run(staging.release_temp, blob.temp_path)
    os.remove(blob.temp_path)


@pytest.mark.parametrize("size", [20_000, 65_536])
@pytest_twisted.ensureDeferred
async def test_a_body_up_to_in_memory_bytes_is_hashed_in_one_job_and_never_written(
    tmp_path: Any, size: int
) -> None:
    """With ``in_memory_bytes`` (the storage service passes its pack limit) a body above
    DEFERRED_WRITE_BYTES that ends within it is hashed on the pool, whole chunks, and handed
    on in memory: no temp file is ever named or written; one byte more goes to disk."""
    import hashlib

    from twisted.internet import reactor
    from twisted.internet.threads import deferToThread

    from jay.checksums import MultiHasher
    from jay.storage import staging

    jobs: list[str] = []
    named: list[str] = []

    def run(fn: Any, *args: Any) -> Any:
        jobs.append(fn.__name__)
        return deferToThread(fn, *args)

    def name() -> str:
        named.append(str(tmp_path / f"upload-{len(named)}.tmp"))
        return named[-1]

    body = os.urandom(size)
    writer = staging.FileStagingWriter(
        reactor, run, name, ["CRC32C"], in_memory_bytes=staging.EAGER_WRITE_BYTES
    )
    writer.write(body[:1000])
    writer.write(body[1000:])
    assert jobs == []  # not even the eager write at EAGER_WRITE_BYTES
    blob = await writer.finish()
    assert jobs == ["hashed_in_memory"] and named == []
    assert blob.pending == (body[:1000], body[1000:]) and blob.temp_path == ""
    assert (blob.size, blob.md5, blob.sha256) == (
        size,
        hashlib.md5(body).digest(),
        hashlib.sha256(body).digest(),
    )
    reference = MultiHasher(["CRC32C"])
    reference.update(body)
    assert blob.checksums == reference.values()

    over = staging.FileStagingWriter(reactor, run, name, in_memory_bytes=staging.EAGER_WRITE_BYTES)
    over.write(b"o" * (staging.EAGER_WRITE_BYTES + 1))
    assert jobs[-1] == "write_chunks"
    blob = await over.finish()
    assert blob.pending is None and named == [blob.temp_path]
    await staging.discard_staged(run, blob)


@pytest_twisted.ensureDeferred
async def test_large_body_is_written_as_it_arrives(tmp_path: Any) -> None:
    from twisted.internet import reactor
    from twisted.internet.threads import deferToThread

    from jay.storage import staging

    jobs: list[str] = []

    def run(fn: Any, *args: Any) -> Any:
        jobs.append(fn.__name__)
        return deferToThread(fn, *args)

    writer = staging.FileStagingWriter(reactor, run, str(tmp_path / "upload.tmp"))
    writer.write(b"z" * staging.EAGER_WRITE_BYTES)
    assert jobs == ["write_chunks"]
    blob = await writer.finish()
    assert jobs[-1] == "write_and_seal" and blob.size == staging.EAGER_WRITE_BYTES
    await run(staging.release_temp, blob.temp_path)
    os.remove(blob.temp_path)


@pytest_twisted.ensureDeferred
async def test_a_temp_file_is_named_only_when_one_is_written(tmp_path: Any) -> None:
    """With a naming function for its temp file, a small body handed on in memory never asks
    for a name (StagedBlob.temp_path is empty); a body that goes to disk asks once."""
    from twisted.internet import reactor
    from twisted.internet.threads import deferToThread

    from jay.storage import staging

    named: list[str] = []

    def name() -> str:
        named.append(str(tmp_path / f"upload-{len(named)}.tmp"))
        return named[-1]

    def run(fn: Any, *args: Any) -> Any:
        return deferToThread(fn, *args)

    small = staging.FileStagingWriter(reactor, run, name)
    small.write(b"x" * 1000)
    blob = await small.finish()
    assert blob.pending == (b"x" * 1000,) and blob.temp_path == "" and named == []
    await staging.discard_staged(run, blob)
    assert named == []

    medium = staging.FileStagingWriter(reactor, run, name)
    medium.write(b"y" * 20_000)
    blob = await medium.finish()
    assert named == [blob.temp_path]
    with open(blob.temp_path, "rb") as f:
        assert f.read() == b"y" * 20_000
    await staging.discard_staged(run, blob)
    assert not os.path.exists(blob.temp_path)
