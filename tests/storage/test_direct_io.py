"""Large bodies go to disk with O_DIRECT (``blobs.DirectAppender``): whole aligned blocks from a
reused aligned buffer, the last partial block written after O_DIRECT is switched off, and the
ordinary page-cache path wherever the platform or filesystem refuses. What is on disk is always
exactly the body; these tests read it back through the page cache and compare."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
from collections.abc import Iterator
from typing import Any

import pytest
import pytest_twisted

from jay.storage import blobs, staging
from jay.storage.api import StagedBlob

from .conftest import GeneratingProducer

MiB = 1024 * 1024
O_DIRECT = getattr(os, "O_DIRECT", 0)


@pytest.fixture
def direct_dir(tmp_path: Any) -> str:
    """tmp_path where its filesystem takes O_DIRECT (tmpfs on older kernels does not)."""
    if not O_DIRECT:
        pytest.skip("no O_DIRECT on this platform")
    probe = str(tmp_path / "probe")
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | O_DIRECT, 0o600)
    except OSError as exc:
        if exc.errno == errno.EINVAL:
            pytest.skip("this filesystem refuses O_DIRECT")
        raise
    os.close(fd)
    os.remove(probe)
    return str(tmp_path)


def is_direct(fd: int) -> bool:
    return bool(fcntl.fcntl(fd, fcntl.F_GETFL) & O_DIRECT)


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[blobs.DirectAppender | None]]:
    """Every DirectAppender.open result, in order."""
    results: list[blobs.DirectAppender | None] = []
    real = blobs.DirectAppender.open.__func__  # type: ignore[attr-defined]

    def recording(cls: type[blobs.DirectAppender], fd: int) -> blobs.DirectAppender | None:
        appender = real(cls, fd)
        results.append(appender)
        return appender  # type: ignore[no-any-return]

    monkeypatch.setattr(blobs.DirectAppender, "open", classmethod(recording))
    yield results


CHUNKINGS = {
    "one byte": [1],
    "just under a block": [4095],
    "a block and a byte": [4097],
    "a buffer and three bytes": [MiB + 3],
    "odd pieces across buffers": [7, 4089, 65_536, 1_000_003, 3, MiB, 12_345],
    "many small pieces": [517] * 5000,
    "whole blocks": [4096] * 300,
}


@pytest.mark.parametrize("sizes", list(CHUNKINGS.values()), ids=list(CHUNKINGS))
def test_the_file_holds_exactly_the_chunks(direct_dir: str, sizes: list[int]) -> None:
    path = os.path.join(direct_dir, "f")
    chunks = [os.urandom(size) for size in sizes]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        appender = blobs.DirectAppender.open(fd)
        assert appender is not None and appender.is_direct and is_direct(fd)
        # Several calls, as staging jobs make them: the unaligned rest carries over.
        for start in range(0, len(chunks), 3):
            appender.write(chunks[start : start + 3])
        appender.close()
        assert not is_direct(fd)  # the last partial block went through the page cache
        os.fsync(fd)
    finally:
        os.close(fd)
    with open(path, "rb") as f:
        assert f.read() == b"".join(chunks)


def test_without_o_direct_there_is_no_appender(
    direct_dir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(blobs, "_O_DIRECT", 0)
    fd = os.open(os.path.join(direct_dir, "f"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        assert blobs.DirectAppender.open(fd) is None
        assert not is_direct(fd)
    finally:
        os.close(fd)


def test_a_refused_first_direct_write_falls_back_to_the_page_cache(
    direct_dir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A filesystem may take the flag and refuse the write (EINVAL, nothing written): the body
    is then written the ordinary way, whole."""
    real_write = blobs.os_write
    refused: list[int] = []

    def picky_write(fd: int, data: Any) -> int:
        if is_direct(fd):
            refused.append(len(data))
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_write(fd, data)

    monkeypatch.setattr(blobs, "os_write", picky_write)
    path = os.path.join(direct_dir, "f")
    body = [os.urandom(3 * MiB + 5), os.urandom(100)]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        appender = blobs.DirectAppender.open(fd)
        assert appender is not None
        appender.write(body[:1])
        assert not appender.is_direct and not is_direct(fd)
        appender.write(body[1:])
        appender.close()
    finally:
        os.close(fd)
    assert refused == [MiB]
    with open(path, "rb") as f:
        assert f.read() == b"".join(body)


def test_a_later_write_error_is_reported(direct_dir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """After a direct write succeeded, an error is the disk's, not the mode's: it propagates."""
    real_write = blobs.os_write
    calls = 0

    def failing_second(fd: int, data: Any) -> int:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(blobs, "os_write", failing_second)
    fd = os.open(os.path.join(direct_dir, "f"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        appender = blobs.DirectAppender.open(fd)
        assert appender is not None
        with pytest.raises(OSError) as raised:
            appender.write([os.urandom(3 * MiB)])
        assert raised.value.errno == errno.ENOSPC
    finally:
        os.close(fd)


def test_buffers_are_reused() -> None:
    first = blobs._take_direct_buffer()
    blobs._give_direct_buffer(first)
    again = blobs._take_direct_buffer()
    try:
        assert again is first
    finally:
        blobs._give_direct_buffer(again)


async def _stage(
    path: str, body: bytes, piece: int, size_hint: int | None, **kwargs: Any
) -> StagedBlob:
    from twisted.internet import reactor
    from twisted.internet.threads import deferToThread

    writer = staging.FileStagingWriter(reactor, deferToThread, path, size_hint=size_hint, **kwargs)
    view = memoryview(body)
    producer = GeneratingProducer(
        writer,
        len(body),
        lambda index, size: bytes(view[index * piece : index * piece + size]),
        piece,
    )
    await producer.start()
    return await writer.finish()


async def _check_and_release(blob: StagedBlob, body: bytes) -> None:
    """The staged file holds exactly ``body``; then let it go."""
    from twisted.internet.threads import deferToThread

    assert blob.size == len(body)
    with open(blob.temp_path, "rb") as f:
        assert f.read() == body
    await deferToThread(staging.release_temp, blob.temp_path)


@pytest_twisted.ensureDeferred
async def test_a_declared_large_body_is_written_directly(
    direct_dir: str, opened: list[Any]
) -> None:

    body = os.urandom(5 * MiB + 1234)
    # 64 KiB pieces: the first staging job sees little, the declared size decides.
    blob = await _stage(os.path.join(direct_dir, "up"), body, 65_536, len(body))
    assert [a is not None for a in opened] == [True]
    assert blob.md5 == hashlib.md5(body).digest()
    assert blob.sha256 == hashlib.sha256(body).digest()
    await _check_and_release(blob, body)


@pytest_twisted.ensureDeferred
async def test_an_undeclared_body_is_judged_by_its_first_batch(
    direct_dir: str, opened: list[Any]
) -> None:

    body = os.urandom(3 * MiB)
    blob = await _stage(os.path.join(direct_dir, "big"), body, MiB, None)
    small = os.urandom(300 * 1024)
    blob_small = await _stage(os.path.join(direct_dir, "small"), small, 65_536, None)
    assert [a is not None for a in opened] == [True]  # the small one never tried
    await _check_and_release(blob, body)
    await _check_and_release(blob_small, small)


@pytest_twisted.ensureDeferred
async def test_a_small_declared_body_stays_in_the_page_cache(
    direct_dir: str, opened: list[Any]
) -> None:

    body = os.urandom(blobs.DIRECT_MIN_BYTES - 1)
    blob = await _stage(os.path.join(direct_dir, "up"), body, len(body), len(body))
    assert opened == []
    await _check_and_release(blob, body)


def test_assembled_parts_are_written_directly(direct_dir: str, opened: list[Any]) -> None:
    store = blobs.BlobStore(os.path.join(direct_dir, "data"))
    store.create_layout()
    parts = [os.urandom(5 * MiB + 1), os.urandom(5 * MiB - 1), os.urandom(77)]
    refs = []
    for number, data in enumerate(parts, start=1):
        ref = store.part_ref("upload-1", number)
        store.write_and_place(store.temp_path("part"), [data], ref)
        refs.append(ref)
    opened.clear()
    temp, size, sha256, _ = store.assemble(refs, ())
    whole = b"".join(parts)
    assert [a is not None for a in opened] == [True]
    assert size == len(whole) and sha256 == hashlib.sha256(whole).digest()
    with open(temp, "rb") as f:
        assert f.read() == whole
    blobs.release_temp(temp)
