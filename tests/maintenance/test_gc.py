"""GC (JAY_SPEC §7.3): stale unowned temp files, empty shard directories, expired uploads."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest
import pytest_twisted

from jay.config.model import GCSettings
from jay.errors import NoSuchUpload
from jay.maintenance.gc import GarbageCollector
from jay.storage import blobs
from jay.storage.api import ObjectAttributes
from jay.storage.staging import EAGER_WRITE_BYTES
from tests.storage.conftest import files_under, put, read, stage, tmp_files, wait_until

HOUR = 3600


def age(path: str, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


@pytest_twisted.ensureDeferred
async def test_gc_removes_only_stale_unowned_temp_files(svc: Any, data_dir: str) -> None:
    tmp_dir = os.path.join(data_dir, "tmp")
    for name, seconds in (("jay-upload-old.writing", 2 * HOUR), ("jay-upload-new.writing", 60)):
        with open(os.path.join(tmp_dir, name), "wb") as f:
            f.write(b"x")
        age(os.path.join(tmp_dir, name), seconds)
    # A writer that is still open (here or in another process) holds a lock: even when its file
    # looks old it is never deleted.
    writer = svc.begin_write()
    # Enough bytes that the writer creates its temp file now, not only at finish().
    writer.write(b"i" * EAGER_WRITE_BYTES)
    body = b"staged, not yet placed" * 1024  # above DEFERRED_WRITE_BYTES: a file in tmp/
    staged = await stage(svc, body)
    await wait_until(lambda: len(tmp_files(data_dir)) == 4)
    owned = [p for p in tmp_files(data_dir) if p.startswith("jay-upload-") and len(p) > 40]
    assert len(owned) == 2
    for name in owned:
        age(os.path.join(tmp_dir, name), 2 * HOUR)

    result = await GarbageCollector(svc, GCSettings(temp_max_age_hours=1)).run_pass()
    assert result.temp_files == 1
    assert sorted(tmp_files(data_dir)) == sorted(owned + ["jay-upload-new.writing"])
    # The staged file survived and can still be committed.
    account = await svc.create_account("a")
    await svc.create_bucket("b-1", account.account_id)
    await svc.put_object("b-1", "k", staged, ObjectAttributes())
    assert await read(svc, "b-1", "k") == body
    await writer.abort()
    assert tmp_files(data_dir) == ["jay-upload-new.writing"]


@pytest_twisted.ensureDeferred
async def test_gc_removes_empty_shard_dirs_and_puts_still_work(
    svc: Any, bucket_info: Any, data_dir: str
) -> None:
    info = await put(svc, "bkt", "k", b"bytes")
    await svc.delete_object("bkt", "k")
    objects_dir = os.path.join(data_dir, "buckets", info.bucket_id, "objects")
    shard = os.path.join(objects_dir, info.object_id[0:2], info.object_id[2:4])
    assert os.path.isdir(shard)
    # The deleted object's file is unlinked after the delete is acknowledged; unlinking it
    # later would stamp the directory fresh again after we aged it below.
    await wait_until(lambda: os.listdir(shard) == [])
    for path in (shard, os.path.dirname(shard)):
        age(path, 2 * HOUR)
    result = await GarbageCollector(svc, GCSettings(temp_max_age_hours=1)).run_pass()
    assert result.empty_dirs == 2
    assert os.listdir(objects_dir) == []
    # A fresh empty directory is left alone; new objects recreate their shards.
    os.makedirs(os.path.join(objects_dir, "ff", "ee"))
    again = await GarbageCollector(svc, GCSettings(temp_max_age_hours=1)).run_pass()
    assert again.empty_dirs == 0
    await put(svc, "bkt", "k2", b"again")
    assert await read(svc, "bkt", "k2") == b"again"


def test_place_retries_when_gc_removed_the_shard_dir(tmp_path: Any, monkeypatch: Any) -> None:
    store = blobs.BlobStore(str(tmp_path))
    store.create_layout()
    temp = store.temp_path("upload")
    with open(temp, "wb") as f:
        f.write(b"data")
    ref = store.object_ref("b", "abcdef00-0000-0000-0000-000000000000")
    real_make_dirs = blobs.make_dirs
    calls = []

    def make_dirs_then_lose_it(path: str) -> None:
        real_make_dirs(path)
        calls.append(path)
        if len(calls) == 1:  # a concurrent GC pass removes the empty directory right here
            os.rmdir(path)

    monkeypatch.setattr(blobs, "make_dirs", make_dirs_then_lose_it)
    store.place(temp, ref)
    assert len(calls) == 2
    with open(store.resolve(ref), "rb") as f:
        assert f.read() == b"data"


@pytest_twisted.ensureDeferred
async def test_gc_expires_old_multipart_uploads_with_their_parts(
    svc: Any, bucket_info: Any, data_dir: str, monkeypatch: Any
) -> None:
    attrs = ObjectAttributes()
    old = await svc.create_multipart_upload("bkt", "old", attrs, "alice")
    await svc.upload_part("bkt", "old", old.upload_id, 1, await stage(svc, b"part one"))
    # Make the first upload 8 days old by creating the second one "later".
    real_now = svc._now
    monkeypatch.setattr(svc, "_now", lambda: real_now() + 8 * 24 * HOUR)
    fresh = await svc.create_multipart_upload("bkt", "fresh", attrs, "alice")
    await svc.upload_part("bkt", "fresh", fresh.upload_id, 1, await stage(svc, b"part"))

    result = await GarbageCollector(svc, GCSettings(multipart_max_age_hours=168)).run_pass()
    assert result.expired_uploads == 1
    with pytest.raises(NoSuchUpload):
        await svc.list_parts("bkt", "old", old.upload_id)
    assert not os.path.exists(os.path.join(data_dir, "multipart", old.upload_id))
    page = await svc.list_parts("bkt", "fresh", fresh.upload_id)
    assert [p.part_number for p in page.parts] == [1]
    assert files_under(os.path.join(data_dir, "multipart")) == [f"{fresh.upload_id}/part-00001"]
