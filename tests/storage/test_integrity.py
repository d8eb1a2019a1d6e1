"""Read-path verification and quarantine (JAY_SPEC §7.2, §6.5), short files, and restart
recovery (§7.5): temp files removed, missing files quarantined, orphans moved aside."""

from __future__ import annotations

import os
import shutil
import uuid
from typing import Any

import pytest
import pytest_twisted

from jay.errors import BucketNotEmpty, ChecksumMismatch, JayError, NoSuchKey
from jay.storage.api import BucketStats, CompletedPart, ObjectAttributes, TokenRecord

from .conftest import (
    CollectingConsumer,
    files_under,
    object_file_path,
    put,
    read,
    stage,
    start_service,
    stop_service,
    tmp_files,
    wait_until,
)


def flip_byte(path: str, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0xFF]))


async def assert_quarantined(svc: Any, bucket: str, key: str) -> None:
    with pytest.raises(NoSuchKey):
        await svc.get_object_info(bucket, key)
    with pytest.raises(NoSuchKey):
        await svc.open_object(bucket, key)
    assert key not in [o.key for o in (await svc.list_objects(bucket)).objects]


# --- verify on read -----------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_verify_passes_on_healthy_object(svc: Any, bucket: str) -> None:
    body = os.urandom(3 * 1024 * 1024 + 5)
    await put(svc, bucket, "ok", body)
    assert await read(svc, bucket, "ok", verify=True) == body
    assert (await svc.get_object_info(bucket, "ok")).size == len(body)


@pytest.mark.parametrize("size", [10, 3 * 1024 * 1024 + 5])
@pytest_twisted.ensureDeferred
async def test_verify_detects_corruption_and_quarantines(
    svc: Any, bucket: str, data_dir: str, size: int
) -> None:
    body = os.urandom(size)
    info = await put(svc, bucket, "rotten", body)
    await put(svc, bucket, "healthy", b"fine")
    flip_byte(object_file_path(data_dir, info), size - 1)  # in the last chunk
    opened = await svc.open_object(bucket, "rotten")
    consumer = CollectingConsumer()
    with pytest.raises(ChecksumMismatch):
        await opened.stream(consumer, verify=True)
    # The failure comes before the last chunk is handed over, so a caller can abort.
    assert consumer.byte_count < size
    await assert_quarantined(svc, bucket, "rotten")
    assert [o.key for o in (await svc.list_objects(bucket)).objects] == ["healthy"]
    # Counters cover active objects only (§6.5: quarantine adjusts them).
    assert await svc.bucket_stats(bucket) == BucketStats(object_count=1, total_size_bytes=4)
    # The bad file left the object tree for quarantine/<object id> (JAY_SPEC §7.1 step 3).
    await wait_until(lambda: not os.path.exists(object_file_path(data_dir, info)))
    quarantined = files_under(os.path.join(data_dir, "quarantine"))
    assert any(info.object_id in name for name in quarantined), quarantined
    # Deleting a quarantined key finds nothing and leaves the record (§6.2), which still keeps
    # the bucket non-empty (§6.4).
    assert await svc.delete_object(bucket, "rotten") is False
    await svc.delete_object(bucket, "healthy")
    with pytest.raises(BucketNotEmpty):
        await svc.delete_bucket(bucket)
    # Writing the key again gives a healthy object.
    await put(svc, bucket, "rotten", b"fresh")
    assert await read(svc, bucket, "rotten", verify=True) == b"fresh"


@pytest_twisted.ensureDeferred
async def test_short_file_fails(svc: Any, bucket: str, data_dir: str) -> None:
    body = os.urandom(2 * 1024 * 1024)
    info = await put(svc, bucket, "short", body)
    path = object_file_path(data_dir, info)
    with open(path, "r+b") as f:
        f.truncate(len(body) // 2)
    for verify in (False, True):
        try:
            opened = await svc.open_object(bucket, "short")
        except NoSuchKey:
            assert verify, "a short file must not vanish before it was read"
            break
        consumer = CollectingConsumer()
        with pytest.raises(JayError):
            await opened.stream(consumer, verify=verify)
        assert consumer.byte_count < len(body)


@pytest_twisted.ensureDeferred
async def test_range_read_past_short_file_fails(svc: Any, bucket: str, data_dir: str) -> None:
    body = os.urandom(100_000)
    info = await put(svc, bucket, "short", body)
    with open(object_file_path(data_dir, info), "r+b") as f:
        f.truncate(50_000)
    opened = await svc.open_object(bucket, "short")
    consumer = CollectingConsumer()
    with pytest.raises(JayError):
        await opened.stream(consumer, 40_000, 20_000)
    assert consumer.byte_count < 20_000


# --- restart and recovery -----------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_restart_keeps_everything(data_dir: str) -> None:
    svc = await start_service(data_dir)
    try:
        alice = await svc.create_account("alice")
        token = TokenRecord(
            token_id="tok-1",
            account_id=alice.account_id,
            name="t",
            secret_hash="h",
            secret_key="enc:v1:x",
            allowed_actions=("*",),
            created_at=1.0,
        )
        await svc.create_token(token)
        await svc.create_bucket("keep", alice.account_id)
        await svc.set_bucket_policy("keep", '{"Statement":[]}')
        attrs = ObjectAttributes(content_type="text/plain", metadata={"m": "v"})
        one = await put(svc, "keep", "dir/one", b"one", attrs)
        await put(svc, "keep", "two", b"two-two")
        up = await svc.create_multipart_upload("keep", "mp", ObjectAttributes(), alice.account_id)
        await svc.upload_part("keep", "mp", up.upload_id, 1, await stage(svc, b"hello "))
    finally:
        await stop_service(svc)

    svc = await start_service(data_dir)
    try:
        assert (await svc.get_account(alice.account_id)).name == "alice"
        assert await svc.get_token("tok-1") == token
        assert (await svc.get_bucket("keep")).policy_json == '{"Statement":[]}'
        assert await svc.get_object_info("keep", "dir/one") == one
        assert await read(svc, "keep", "dir/one", verify=True) == b"one"
        assert await read(svc, "keep", "two") == b"two-two"
        assert [o.key for o in (await svc.list_objects("keep")).objects] == ["dir/one", "two"]
        assert await svc.bucket_stats("keep") == BucketStats(object_count=2, total_size_bytes=10)
        await svc.upload_part("keep", "mp", up.upload_id, 2, await stage(svc, b"world"))
        info = await svc.complete_multipart_upload(
            "keep", "mp", up.upload_id, [CompletedPart(part_number=1), CompletedPart(part_number=2)]
        )
        assert info.etag == "e09e4fd6265b36115fe3db32df945d84-2"
        assert await read(svc, "keep", "mp") == b"hello world"
    finally:
        await stop_service(svc)


@pytest_twisted.ensureDeferred
async def test_restart_removes_temp_files(data_dir: str) -> None:
    svc = await start_service(data_dir)
    try:
        account = await svc.create_account("a")
        await svc.create_bucket("b-1", account.account_id)
        await put(svc, "b-1", "k", b"kept")
        staged = await stage(svc, b"finished but never committed" * 1024)  # on disk
        assert os.path.exists(staged.temp_path)
    finally:
        await stop_service(svc)
    tmp_dir = os.path.join(data_dir, "tmp")
    for name in ("jay-upload-deadbeef.writing", "jay-part-1.writing", "stray-file"):
        with open(os.path.join(tmp_dir, name), "wb") as f:
            f.write(b"left over by a crash")

    svc = await start_service(data_dir)
    try:
        assert tmp_files(data_dir) == []
        assert await read(svc, "b-1", "k") == b"kept"
    finally:
        await stop_service(svc)


@pytest_twisted.ensureDeferred
async def test_restart_quarantines_missing_files_and_moves_orphans(data_dir: str) -> None:
    svc = await start_service(data_dir)
    try:
        account = await svc.create_account("a")
        await svc.create_bucket("b-1", account.account_id)
        lost = await put(svc, "b-1", "lost", b"file will vanish")
        kept = await put(svc, "b-1", "kept", b"file stays")
    finally:
        await stop_service(svc)

    os.unlink(object_file_path(data_dir, lost))
    # An orphan: a file in the object tree that no record points at (e.g. a crash between
    # rename and commit).
    orphan_id = str(uuid.uuid4())
    orphan_dir = os.path.join(
        data_dir, "buckets", kept.bucket_id, "objects", orphan_id[0:2], orphan_id[2:4]
    )
    os.makedirs(orphan_dir, exist_ok=True)
    shutil.copyfile(object_file_path(data_dir, kept), os.path.join(orphan_dir, orphan_id))

    svc = await start_service(data_dir)
    try:
        await assert_quarantined(svc, "b-1", "lost")
        assert await read(svc, "b-1", "kept") == b"file stays"
        assert [o.key for o in (await svc.list_objects("b-1")).objects] == ["kept"]
        assert await svc.bucket_stats("b-1") == BucketStats(
            object_count=1, total_size_bytes=len(b"file stays")
        )
        # The orphan left the object tree for quarantine/ (§7.5 d).
        assert not os.path.exists(os.path.join(orphan_dir, orphan_id))
        quarantined = files_under(os.path.join(data_dir, "quarantine"))
        assert any(orphan_id in name for name in quarantined), quarantined
        assert files_under(os.path.join(data_dir, "buckets")) == [
            os.path.relpath(
                object_file_path(data_dir, kept), os.path.join(data_dir, "buckets")
            ).replace(os.sep, "/")
        ]
        # The quarantined record keeps the bucket non-empty; rewriting the key heals it.
        await svc.delete_object("b-1", "kept")
        with pytest.raises(BucketNotEmpty):
            await svc.delete_bucket("b-1")
        await put(svc, "b-1", "lost", b"rewritten")
        assert await read(svc, "b-1", "lost") == b"rewritten"
    finally:
        await stop_service(svc)
