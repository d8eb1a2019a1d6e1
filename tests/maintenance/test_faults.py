"""Disk full and I/O errors while writing (§8.2): a clean error, no partial object, no temp file
left, and reads keep working. A real full disk (a 2 MiB tmpfs, skipped when mounting is not
allowed) and the fault-injection seam in ``jay.storage.blobs``."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import pytest_twisted

from jay.errors import StorageFull, StorageIOError
from jay.storage import blobs
from jay.storage.api import BucketStats, CompletedPart, ObjectAttributes
from tests.storage.conftest import (
    files_under,
    put,
    read,
    stage,
    start_service,
    stop_service,
    tmp_files,
)


@pytest.fixture
def small_disk(tmp_path: Any) -> Iterator[str]:
    mount_point = str(tmp_path / "small")
    os.mkdir(mount_point)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mount_point],
        capture_output=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield os.path.join(mount_point, "data")
    finally:
        subprocess.run(["umount", "-l", mount_point], check=False)


def object_tree(data_dir: str) -> list[str]:
    return files_under(os.path.join(data_dir, "buckets"))


@pytest_twisted.ensureDeferred
async def test_real_disk_full(small_disk: str) -> None:
    svc = await start_service(small_disk)
    try:
        account = await svc.create_account("a")
        await svc.create_bucket("b-1", account.account_id)
        await put(svc, "b-1", "fits", b"x" * 300_000)
        before = object_tree(small_disk)
        with pytest.raises(StorageFull):
            await put(svc, "b-1", "too-big", [b"y" * 262_144] * 12)  # 3 MiB on a 2 MiB disk
        assert tmp_files(small_disk) == []
        assert object_tree(small_disk) == before
        assert [o.key for o in (await svc.list_objects("b-1")).objects] == ["fits"]
        assert await read(svc, "b-1", "fits", verify=True) == b"x" * 300_000
        assert await svc.bucket_stats("b-1") == BucketStats(
            object_count=1, total_size_bytes=300_000
        )
        # Space is back after the failure: the next write succeeds.
        await put(svc, "b-1", "small", b"ok")
        assert await read(svc, "b-1", "small") == b"ok"
    finally:
        await stop_service(svc)


@pytest.mark.parametrize(
    ("failing", "code", "expected"),
    [
        ("os_write", errno.ENOSPC, StorageFull),
        ("os_write", errno.EIO, StorageIOError),
        ("os_fsync", errno.EIO, StorageIOError),
        ("os_fsync", errno.EDQUOT, StorageFull),
    ],
)
# A small body is written by the job that places it (StagedBlob.pending), a larger one is
# staged in tmp/ first: both paths must clean up.
@pytest.mark.parametrize("new_body", [b"new content", b"new content" * 10_000])
@pytest_twisted.ensureDeferred
async def test_injected_write_faults(
    data_dir: str,
    monkeypatch: Any,
    failing: str,
    code: int,
    expected: type[Exception],
    new_body: bytes,
) -> None:
    svc = await start_service(data_dir)
    try:
        account = await svc.create_account("a")
        await svc.create_bucket("b-1", account.account_id)
        await put(svc, "b-1", "k", b"old content")
        up = await svc.create_multipart_upload("b-1", "mp", ObjectAttributes(), "a")
        await svc.upload_part("b-1", "mp", up.upload_id, 1, await stage(svc, b"part"))
        before = object_tree(data_dir)

        def broken(*args: Any) -> Any:
            raise OSError(code, os.strerror(code))

        monkeypatch.setattr(blobs, failing, broken)
        with pytest.raises(expected):
            await put(svc, "b-1", "k", new_body)
        with pytest.raises(expected):
            await svc.complete_multipart_upload(
                "b-1", "mp", up.upload_id, [CompletedPart(part_number=1)]
            )
        assert tmp_files(data_dir) == []
        assert object_tree(data_dir) == before
        # Reads keep working and the old content is intact.
        assert await read(svc, "b-1", "k", verify=True) == b"old content"
        monkeypatch.undo()
        # The upload is still complete-able once the disk recovers.
        info = await svc.complete_multipart_upload(
            "b-1", "mp", up.upload_id, [CompletedPart(part_number=1)]
        )
        assert info.size == 4
    finally:
        await stop_service(svc)
