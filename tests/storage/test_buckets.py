"""Buckets: names (JAY_SPEC §6.4), ownership conflicts, deletion, stats counters, policies."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest
import pytest_twisted

from jay.errors import (
    BucketAlreadyExists,
    BucketAlreadyOwnedByYou,
    BucketNotEmpty,
    InvalidBucketName,
    NoSuchBucket,
    TooManyBuckets,
)
from jay.storage.api import BucketStats, ObjectAttributes

from .conftest import put, stage

VALID_NAMES = [
    "abc",
    "a1b",
    "123",
    "my-bucket",
    "my.bucket",
    "a.b-c.d",
    "a-b.c-d",
    "x" * 63,
    "a" + "-b" * 30 + "c",
    "1bucket9",
    "192.168.1.1a",  # not an IP address
]

INVALID_NAMES = [
    "",
    "a",
    "ab",  # too short
    "x" * 64,  # too long
    "ABC",
    "myBucket",
    "-abc",
    "abc-",
    ".abc",
    "abc.",
    "a..b",  # consecutive dots
    "a--b",  # jay (like Jay) forbids "--", stricter than S3
    "ab--",
    "a_b",
    "_stats",
    "a b",
    "abc/",
    "a/b",
    "bücket",
    "192.168.1.1",  # IP address
    "10.0.0.255",
    "abc\x00",
    " abc",
]


@pytest.mark.parametrize("name", VALID_NAMES)
@pytest_twisted.ensureDeferred
async def test_valid_bucket_names(svc: Any, account: Any, name: str) -> None:
    info = await svc.create_bucket(name, account.account_id)
    assert info.name == name
    assert info.owner_account_id == account.account_id
    assert (await svc.get_bucket(name)).bucket_id == info.bucket_id


@pytest.mark.parametrize("name", INVALID_NAMES)
@pytest_twisted.ensureDeferred
async def test_invalid_bucket_names(svc: Any, account: Any, name: str, data_dir: str) -> None:
    with pytest.raises(InvalidBucketName):
        await svc.create_bucket(name, account.account_id)
    assert await svc.list_buckets() == []
    # Nothing was created on disk for the rejected name.
    assert os.listdir(os.path.join(data_dir, "buckets")) == []


@pytest_twisted.ensureDeferred
async def test_create_bucket_record_and_directory(svc: Any, account: Any, data_dir: str) -> None:
    before = time.time()
    info = await svc.create_bucket("photos", account.account_id)
    assert info.visibility == "private"
    assert info.policy_json is None
    assert info.bucket_id
    assert before - 5 <= info.created_at <= time.time() + 5
    # JAY_SPEC §6.1: buckets/<bucket_id>/objects is created with the bucket.
    assert os.path.isdir(os.path.join(data_dir, "buckets", info.bucket_id, "objects"))
    assert await svc.get_bucket("photos") == info
    assert await svc.get_bucket_by_id(info.bucket_id) == info


@pytest_twisted.ensureDeferred
async def test_already_owned_by_you_vs_already_exists(svc: Any) -> None:
    alice = await svc.create_account("alice")
    bob = await svc.create_account("bob")
    original = await svc.create_bucket("shared-name", alice.account_id)
    with pytest.raises(BucketAlreadyOwnedByYou):
        await svc.create_bucket("shared-name", alice.account_id)
    with pytest.raises(BucketAlreadyExists):
        await svc.create_bucket("shared-name", bob.account_id)
    # Neither failure changed the bucket.
    assert await svc.get_bucket("shared-name") == original
    assert [b.name for b in await svc.list_buckets(bob.account_id)] == []


@pytest_twisted.ensureDeferred
async def test_no_such_bucket_everywhere(svc: Any, account: Any, data_dir: str) -> None:
    with pytest.raises(NoSuchBucket):
        await svc.get_bucket("missing")
    with pytest.raises(NoSuchBucket):
        await svc.get_bucket_by_id("00000000-0000-4000-8000-000000000000")
    with pytest.raises(NoSuchBucket):
        await svc.delete_bucket("missing")
    with pytest.raises(NoSuchBucket):
        await svc.bucket_stats("missing")
    with pytest.raises(NoSuchBucket):
        await svc.set_bucket_policy("missing", "{}")
    with pytest.raises(NoSuchBucket):
        await svc.list_objects("missing")
    with pytest.raises(NoSuchBucket):
        await svc.get_object_info("missing", "k")
    with pytest.raises(NoSuchBucket):
        await svc.open_object("missing", "k")
    with pytest.raises(NoSuchBucket):
        await svc.delete_object("missing", "k")
    with pytest.raises(NoSuchBucket):
        await svc.create_multipart_upload("missing", "k", ObjectAttributes(), account.account_id)
    staged = await stage(svc, b"body")
    with pytest.raises(NoSuchBucket):
        await svc.put_object("missing", "k", staged, ObjectAttributes())


@pytest_twisted.ensureDeferred
async def test_list_buckets_sorted_and_by_owner(svc: Any) -> None:
    alice = await svc.create_account("alice")
    bob = await svc.create_account("bob")
    for name in ("zeta", "alpha", "mid-1"):
        await svc.create_bucket(name, alice.account_id)
    await svc.create_bucket("bobs", bob.account_id)
    assert [b.name for b in await svc.list_buckets()] == ["alpha", "bobs", "mid-1", "zeta"]
    assert [b.name for b in await svc.list_buckets(alice.account_id)] == [
        "alpha",
        "mid-1",
        "zeta",
    ]
    assert [b.name for b in await svc.list_buckets(bob.account_id)] == ["bobs"]


@pytest_twisted.ensureDeferred
async def test_delete_bucket(svc: Any, account: Any, data_dir: str) -> None:
    info = await svc.create_bucket("gone", account.account_id)
    await put(svc, "gone", "k", b"data")
    with pytest.raises(BucketNotEmpty):
        await svc.delete_bucket("gone")
    assert (await svc.get_bucket("gone")) == info
    assert await svc.delete_object("gone", "k") is True
    await svc.delete_bucket("gone")
    with pytest.raises(NoSuchBucket):
        await svc.get_bucket("gone")
    with pytest.raises(NoSuchBucket):
        await svc.get_bucket_by_id(info.bucket_id)
    assert await svc.list_buckets() == []
    # The bucket's directory tree is removed (JAY_SPEC §6.1).
    assert not os.path.exists(os.path.join(data_dir, "buckets", info.bucket_id))
    # The name can be taken again, by anyone, and starts empty.
    other = await svc.create_account("other")
    again = await svc.create_bucket("gone", other.account_id)
    assert again.bucket_id != info.bucket_id
    assert await svc.bucket_stats("gone") == BucketStats(object_count=0, total_size_bytes=0)
    assert (await svc.list_objects("gone")).objects == ()


@pytest_twisted.ensureDeferred
async def test_delete_bucket_aborts_multipart_uploads(
    svc: Any, account: Any, data_dir: str
) -> None:
    await svc.create_bucket("mpu", account.account_id)
    upload = await svc.create_multipart_upload("mpu", "big", ObjectAttributes(), account.account_id)
    await svc.upload_part("mpu", "big", upload.upload_id, 1, await stage(svc, b"part one"))
    await svc.delete_bucket("mpu")
    assert not os.path.exists(os.path.join(data_dir, "multipart", upload.upload_id))
    # A new bucket of the same name does not inherit the upload.
    await svc.create_bucket("mpu", account.account_id)
    page = await svc.list_multipart_uploads("mpu")
    assert page.uploads == ()


@pytest_twisted.ensureDeferred
async def test_stats_counters(svc: Any, bucket: str) -> None:
    assert await svc.bucket_stats(bucket) == BucketStats(object_count=0, total_size_bytes=0)
    await put(svc, bucket, "a", b"12345")
    assert await svc.bucket_stats(bucket) == BucketStats(object_count=1, total_size_bytes=5)
    await put(svc, bucket, "b", b"123")
    assert await svc.bucket_stats(bucket) == BucketStats(object_count=2, total_size_bytes=8)
    # Overwrite: count unchanged, size replaced.
    await put(svc, bucket, "a", b"1234567890")
    assert await svc.bucket_stats(bucket) == BucketStats(object_count=2, total_size_bytes=13)
    await put(svc, bucket, "a", b"")
    assert await svc.bucket_stats(bucket) == BucketStats(object_count=2, total_size_bytes=3)
    assert await svc.delete_object(bucket, "b") is True
    assert await svc.bucket_stats(bucket) == BucketStats(object_count=1, total_size_bytes=0)
    # Deleting a missing key changes nothing.
    assert await svc.delete_object(bucket, "b") is False
    assert await svc.bucket_stats(bucket) == BucketStats(object_count=1, total_size_bytes=0)
    assert await svc.delete_object(bucket, "a") is True
    assert await svc.bucket_stats(bucket) == BucketStats(object_count=0, total_size_bytes=0)


@pytest_twisted.ensureDeferred
async def test_stats_are_per_bucket(svc: Any, account: Any) -> None:
    await svc.create_bucket("one", account.account_id)
    await svc.create_bucket("two", account.account_id)
    await put(svc, "one", "k", b"xx")
    await put(svc, "two", "k", b"yyyy")
    await put(svc, "two", "k2", b"z")
    assert await svc.bucket_stats("one") == BucketStats(object_count=1, total_size_bytes=2)
    assert await svc.bucket_stats("two") == BucketStats(object_count=2, total_size_bytes=5)


@pytest_twisted.ensureDeferred
async def test_bucket_policy(svc: Any, bucket: str) -> None:
    policy = '{"Version":"2012-10-17","Statement":[]}'
    updated = await svc.set_bucket_policy(bucket, policy)
    assert updated.policy_json == policy
    assert (await svc.get_bucket(bucket)).policy_json == policy
    cleared = await svc.set_bucket_policy(bucket, None)
    assert cleared.policy_json is None
    assert (await svc.get_bucket(bucket)).policy_json is None


@pytest_twisted.ensureDeferred
async def test_bucket_configs_are_stored_cached_and_removed(
    svc: Any, bucket: str, data_dir: str
) -> None:
    """Configurations ride on the bucket record: set, replaced, seen at once by another
    service on the same database (a second worker, whose cached record goes stale), removed
    one by one, and gone with the bucket."""
    from .conftest import start_service, stop_service

    other = await start_service(data_dir)
    try:
        assert (await other.get_bucket(bucket)).configs == ()  # cached there now
        updated = await svc.set_bucket_config(bucket, "tagging", '{"a":"1"}')
        assert updated.config("tagging") == '{"a":"1"}'
        assert updated.config("cors") is None
        await svc.set_bucket_config(bucket, "cors", "[1]")
        await svc.set_bucket_config(bucket, "tagging", '{"b":"2"}')
        seen = await other.get_bucket(bucket)
        assert seen.configs == (("cors", "[1]"), ("tagging", '{"b":"2"}'))
        listed = [b for b in await svc.list_buckets() if b.name == bucket]
        assert listed[0].configs == seen.configs
        assert (await svc.set_bucket_config(bucket, "cors", None)).configs == (
            ("tagging", '{"b":"2"}'),
        )
        assert (await other.get_bucket(bucket)).config("cors") is None
        with pytest.raises(ValueError):
            svc.set_bucket_config(bucket, "website", "{}")
        with pytest.raises(NoSuchBucket):
            await svc.set_bucket_config("no-such-bucket", "cors", "[]")
        await svc.delete_bucket(bucket)
        await svc.create_bucket(bucket, (await svc.list_accounts())[0].account_id)
        assert (await svc.get_bucket(bucket)).configs == ()
    finally:
        await stop_service(other)


@pytest_twisted.ensureDeferred
async def test_bucket_changes_by_another_process_are_seen_at_once(
    svc: Any, bucket: str, data_dir: str
) -> None:
    """Two services on one database stand for two workers: a policy set through one is what the
    other's (cached) lookup returns on its very next read, with no waiting."""
    from .conftest import start_service, stop_service

    other = await start_service(data_dir)
    try:
        assert (await other.get_bucket(bucket)).policy_json is None  # now cached there
        assert (await other.get_bucket(bucket)).policy_json is None  # a cache hit
        policy = '{"Version":"2012-10-17","Statement":[]}'
        await svc.set_bucket_policy(bucket, policy)
        assert (await other.get_bucket(bucket)).policy_json == policy
        await svc.delete_bucket(bucket)
        with pytest.raises(NoSuchBucket):
            await other.get_bucket(bucket)
    finally:
        await stop_service(other)


@pytest_twisted.ensureDeferred
async def test_object_writes_elsewhere_keep_bucket_records_cached(
    svc: Any, account: Any, bucket: str, data_dir: str
) -> None:
    """Object writes by another worker move the commit token but not the buckets generation:
    the other worker re-reads one generations row, never the bucket record; a bucket
    re-created under the same name (insert trigger) is seen at once."""
    from jay.storage import metadata

    from .conftest import start_service, stop_service

    other = await start_service(data_dir)
    calls: list[str] = []
    run_inline = other._pools.run_inline

    def counting(fn: Any, *args: Any) -> Any:
        calls.append(fn.__name__)
        return run_inline(fn, *args)

    other._pools.run_inline = counting
    try:
        first = await other.get_bucket(bucket)
        await put(svc, bucket, "k1", b"one")
        await put(svc, bucket, "k2", b"two")
        calls.clear()
        assert await other.get_bucket(bucket) == first
        assert await other.get_bucket(bucket) == first
        assert calls == [metadata.get_cache_generations.__name__]
        await svc.delete_object(bucket, "k1")
        await svc.delete_object(bucket, "k2")
        await svc.delete_bucket(bucket)
        again = await svc.create_bucket(bucket, account.account_id)
        calls.clear()
        assert (await other.get_bucket(bucket)).bucket_id == again.bucket_id != first.bucket_id
        assert metadata.get_bucket.__name__ in calls
    finally:
        await stop_service(other)


@pytest_twisted.ensureDeferred
async def test_too_many_buckets(svc: Any) -> None:
    alice = await svc.create_account("alice")
    bob = await svc.create_account("bob")
    for i in range(1000):
        await svc.create_bucket(f"b{i:04d}", alice.account_id)
    with pytest.raises(TooManyBuckets):
        await svc.create_bucket("one-too-many", alice.account_id)
    # The limit is per account, and freeing a slot makes room again.
    await svc.create_bucket("bobs-bucket", bob.account_id)
    await svc.delete_bucket("b0000")
    await svc.create_bucket("one-more", alice.account_id)
    assert len(await svc.list_buckets(alice.account_id)) == 1000
