"""Large staged bodies hash MD5 on a helper thread in parallel with the write and SHA-256."""

from __future__ import annotations

import hashlib
import os
import threading
from typing import Any

import pytest
import pytest_twisted

from jay.errors import StorageFull
from jay.storage import blobs, staging

from .conftest import stage

MIB = 1024 * 1024


@pytest.fixture
def md5_threads(monkeypatch: Any) -> list[str]:
    names: list[str] = []
    real = staging._update_all

    def recording(hasher: Any, chunks: list[bytes]) -> None:
        names.append(threading.current_thread().name)
        real(hasher, chunks)

    monkeypatch.setattr(staging, "_update_all", recording)
    return names


@pytest_twisted.ensureDeferred
async def test_large_body_digests_are_right_and_md5_ran_on_a_helper(
    svc: Any, md5_threads: list[str]
) -> None:
    chunks = [os.urandom(MIB) for _ in range(5)] + [b"tail"]
    body = b"".join(chunks)
    staged = await stage(svc, chunks, ["CRC32"])
    assert staged.size == len(body)
    assert staged.md5 == hashlib.md5(body).digest()
    assert staged.sha256 == hashlib.sha256(body).digest()
    with open(staged.temp_path, "rb") as f:
        assert f.read() == body
    assert md5_threads and all(n.startswith("jay-md5") for n in md5_threads)
    await svc.discard(staged)


@pytest_twisted.ensureDeferred
async def test_small_bodies_hash_in_the_job(svc: Any, md5_threads: list[str]) -> None:
    staged = await stage(svc, [b"a" * 1000, b"b" * 1000])
    assert staged.md5 == hashlib.md5(b"a" * 1000 + b"b" * 1000).digest()
    assert md5_threads == []
    await svc.discard(staged)


@pytest_twisted.ensureDeferred
async def test_write_failure_with_parallel_hash_still_fails_cleanly(
    svc: Any, monkeypatch: Any, md5_threads: list[str]
) -> None:
    import errno

    def full(fd: int, data: Any) -> int:
        raise OSError(errno.ENOSPC, "full")

    monkeypatch.setattr(blobs, "os_write", full)
    writer = svc.begin_write()
    writer.write(os.urandom(2 * MIB))
    with pytest.raises(StorageFull):
        await writer.finish()
    assert md5_threads  # the helper ran and was joined before the job failed
