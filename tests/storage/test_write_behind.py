"""Write-behind: a big body written through the page cache has its writeback started while
it is still arriving (``blobs.start_writeback``, sync_file_range(2)), so its final fsync has
little left to do. Advice only: the bytes and the fsync are unchanged, and a platform without
it still works. (Where the filesystem takes O_DIRECT a large body bypasses the page cache
instead, tests/storage/test_direct_io.py; here O_DIRECT is switched off.)"""

from __future__ import annotations

import hashlib
import os
import sys
from typing import Any

import pytest
import pytest_twisted

from jay.storage import blobs, staging

from .conftest import GeneratingProducer


class RecordingSyncFileRange:
    """Stands in for libc's sync_file_range: records each call, then makes the real one (when
    the platform has it) so the bytes take the real path."""

    def __init__(self, real: Any) -> None:
        self.calls: list[tuple[int, int, int, int]] = []
        self._real = real

    def __call__(self, fd: int, offset: int, length: int, flags: int) -> int:
        self.calls.append((fd, offset, length, flags))
        return self._real(fd, offset, length, flags) if self._real is not None else 0


@pytest.fixture(autouse=True)
def without_direct_io(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(blobs, "_O_DIRECT", 0)


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> RecordingSyncFileRange:
    recording = RecordingSyncFileRange(blobs.os_sync_file_range)
    monkeypatch.setattr(blobs, "os_sync_file_range", recording)
    return recording


def assert_covers_in_order(calls: list[tuple[int, int, int, int]], upto: int) -> None:
    """The ranges follow each other from 0, each at least WRITE_BEHIND_BYTES, with the
    'start writing, do not wait' flag only."""
    expected = 0
    for _fd, offset, length, flags in calls:
        assert offset == expected
        assert length >= blobs.WRITE_BEHIND_BYTES
        assert flags == 2  # SYNC_FILE_RANGE_WRITE
        expected += length
    assert (
        expected <= upto and upto - expected < blobs.WRITE_BEHIND_BYTES + staging.HIGH_WATER_BYTES
    )


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sync_file_range is Linux's")
def test_start_writeback_on_a_real_file(tmp_path: Any) -> None:
    path = str(tmp_path / "f")
    data = os.urandom(3 * 1024 * 1024)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        blobs.write_all(fd, data)
        assert blobs.os_sync_file_range is not None
        assert blobs.start_writeback(fd, 0, len(data)) is True
        assert blobs.start_writeback(fd, 0, 0) is False  # nothing to write back
        blobs.fsync_file(fd)
    finally:
        os.close(fd)
    with open(path, "rb") as f:
        assert f.read() == data
    # A descriptor that cannot be written back (a pipe) fails the call: False, no exception.
    read_end, write_end = os.pipe()
    try:
        assert blobs.start_writeback(write_end, 0, 4096) is False
    finally:
        os.close(read_end)
        os.close(write_end)


def test_without_sync_file_range_nothing_is_started(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(blobs, "os_sync_file_range", None)
    assert blobs.start_writeback(0, 0, 1 << 20) is False


@pytest_twisted.ensureDeferred
async def test_a_big_body_is_written_back_as_it_arrives(
    tmp_path: Any, recorder: RecordingSyncFileRange
) -> None:
    from twisted.internet import reactor
    from twisted.internet.threads import deferToThread

    writer = staging.FileStagingWriter(reactor, deferToThread, str(tmp_path / "upload.tmp"))
    piece = os.urandom(1024 * 1024)
    total = 13 * len(piece)  # 13 MiB in 1 MiB writes, one per reactor turn, as a body arrives
    await GeneratingProducer(writer, total, lambda _index, _size: piece, len(piece)).start()
    blob = await writer.finish()
    assert blob.size == total
    assert blob.md5 == hashlib.md5(piece * 13).digest()
    with open(blob.temp_path, "rb") as f:
        assert f.read() == piece * 13
    assert len(recorder.calls) >= 2
    assert_covers_in_order(recorder.calls, total)
    await deferToThread(staging.release_temp, blob.temp_path)
    os.remove(blob.temp_path)


@pytest_twisted.ensureDeferred
async def test_a_small_body_starts_no_writeback(
    tmp_path: Any, recorder: RecordingSyncFileRange
) -> None:
    from twisted.internet import reactor
    from twisted.internet.threads import deferToThread

    writer = staging.FileStagingWriter(reactor, deferToThread, str(tmp_path / "upload.tmp"))
    writer.write(b"m" * (blobs.WRITE_BEHIND_BYTES - 1))
    blob = await writer.finish()
    assert blob.size == blobs.WRITE_BEHIND_BYTES - 1
    assert recorder.calls == []  # the fsync alone writes it
    await deferToThread(staging.release_temp, blob.temp_path)
    os.remove(blob.temp_path)


@pytest_twisted.ensureDeferred
async def test_a_failing_writeback_changes_nothing(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sync_file_range failing (returning -1) is not an error of the upload."""
    from twisted.internet import reactor
    from twisted.internet.threads import deferToThread

    calls: list[int] = []

    def failing(fd: int, offset: int, length: int, flags: int) -> int:
        calls.append(length)
        return -1

    monkeypatch.setattr(blobs, "os_sync_file_range", failing)
    writer = staging.FileStagingWriter(reactor, deferToThread, str(tmp_path / "upload.tmp"))
    body = os.urandom(9 * 1024 * 1024)
    for start in range(0, len(body), 1024 * 1024):
        writer.write(body[start : start + 1024 * 1024])
    blob = await writer.finish()
    assert calls and blob.sha256 == hashlib.sha256(body).digest()
    with open(blob.temp_path, "rb") as f:
        assert f.read() == body
    await deferToThread(staging.release_temp, blob.temp_path)
    os.remove(blob.temp_path)


def test_assembling_parts_writes_back_as_it_goes(
    tmp_path: Any, recorder: RecordingSyncFileRange
) -> None:
    store = blobs.BlobStore(str(tmp_path / "data"))
    store.create_layout()
    parts = [os.urandom(3 * 1024 * 1024 + 17) for _ in range(4)]
    refs = []
    for number, data in enumerate(parts, start=1):
        ref = store.part_ref("upload-1", number)
        store.write_and_place(store.temp_path("part"), [data], ref)
        refs.append(ref)
    recorder.calls.clear()
    temp, size, sha256, _ = store.assemble(refs, ())
    whole = b"".join(parts)
    assert size == len(whole) and sha256 == hashlib.sha256(whole).digest()
    with open(temp, "rb") as f:
        assert f.read() == whole
    blobs.release_temp(temp)
    os.remove(temp)
    assert len(recorder.calls) == len(whole) // blobs.WRITE_BEHIND_BYTES
    assert_covers_in_order(recorder.calls, len(whole))
