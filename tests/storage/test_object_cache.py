"""GET/HEAD object records are cached until they change: a hit costs no SQLite lookup, any
change to an object record — in this service or another one on the same data directory (another
worker) — is seen by the very next read, and commits that change other records (other keys, the
maintenance lease, a bucket policy) leave the cache in place. The object change log says which
keys changed; a reader that fell behind its pruning starts over."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted

from jay.errors import NoSuchKey
from jay.storage import metadata

from .conftest import put, read


class CountingLookups:
    def __init__(self, monkeypatch: Any) -> None:
        self.calls = 0
        original = metadata.get_active_object

        def counting(*args: Any) -> Any:
            self.calls += 1
            return original(*args)

        monkeypatch.setattr(metadata, "get_active_object", counting)


@pytest_twisted.ensureDeferred
async def test_repeated_reads_hit_the_cache(svc: Any, bucket: str, monkeypatch: Any) -> None:
    await put(svc, bucket, "k", b"value")
    lookups = CountingLookups(monkeypatch)
    first = await svc.get_object_info(bucket, "k")
    assert lookups.calls == 1
    for _ in range(3):
        assert await svc.get_object_info(bucket, "k") == first
        assert await read(svc, bucket, "k") == b"value"
    assert lookups.calls == 1


@pytest_twisted.ensureDeferred
async def test_writes_here_and_in_another_service_are_seen_at_once(
    svc: Any, bucket: str, other: Any
) -> None:
    await put(svc, bucket, "k", b"old")
    assert await read(svc, bucket, "k") == b"old"
    old_etag = (await svc.get_object_info(bucket, "k")).etag  # cached now
    await put(other, bucket, "k", b"new")
    assert await read(svc, bucket, "k") == b"new"
    info = await svc.get_object_info(bucket, "k")
    assert info.etag != old_etag and info.size == 3
    await other.delete_object(bucket, "k")
    with pytest.raises(NoSuchKey):
        await svc.get_object_info(bucket, "k")
    with pytest.raises(NoSuchKey):
        await read(svc, bucket, "k")
    await put(svc, bucket, "k", b"again")
    assert await read(other, bucket, "k") == b"again"


@pytest_twisted.ensureDeferred
async def test_commits_that_change_no_object_keep_the_cache(
    svc: Any, bucket: str, other: Any, monkeypatch: Any
) -> None:
    await put(svc, bucket, "k", b"value")
    lookups = CountingLookups(monkeypatch)
    first = await svc.get_object_info(bucket, "k")
    assert lookups.calls == 1
    token = svc._pools.data_version()
    # What a second worker commits while nobody writes objects: its lease renewals.
    assert await other.acquire_lease("maintenance", "other-worker", 30.0)
    assert await other.acquire_lease("maintenance", "other-worker", 30.0)
    await other.set_bucket_policy(bucket, None)
    assert svc._pools.data_version() != token  # the database did move on
    assert await svc.get_object_info(bucket, "k") == first
    assert await read(svc, bucket, "k") == b"value"
    assert lookups.calls == 1


@pytest_twisted.ensureDeferred
async def test_any_change_to_an_object_row_is_seen_at_once(
    svc: Any, bucket: str, other: Any
) -> None:
    """Changes are recorded by triggers (the objects generation, the change log), not by the
    code paths that write: even an UPDATE no service method makes is seen by the next read."""
    await put(svc, bucket, "k", b"value")
    await put(svc, bucket, "j", b"other")
    assert (await svc.get_object_info(bucket, "k")).etag != "changed"
    await svc.get_object_info(bucket, "j")  # both cached now
    conn = other._pools._inline_connection()
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("UPDATE objects SET etag = 'changed' WHERE key = ?", ("k",))
    conn.execute("COMMIT")
    assert (await svc.get_object_info(bucket, "k")).etag == "changed"
    bucket_id = (await other.get_bucket(bucket)).bucket_id
    assert await other.quarantine_object(bucket_id, "j", "test") is not None
    with pytest.raises(NoSuchKey):
        await svc.get_object_info(bucket, "j")


@pytest_twisted.ensureDeferred
async def test_writes_to_other_keys_keep_the_cached_record(
    svc: Any, bucket: str, other: Any, monkeypatch: Any
) -> None:
    await put(svc, bucket, "k", b"value")
    lookups = CountingLookups(monkeypatch)
    first = await svc.get_object_info(bucket, "k")
    for n in range(5):
        await put(other, bucket, f"other-{n}", b"x")  # another worker's writes
        await put(svc, bucket, f"mine-{n}", b"y")  # and this one's
        assert await svc.get_object_info(bucket, "k") == first
    await other.delete_object(bucket, "other-0")
    assert await read(svc, bucket, "k") == b"value"
    assert lookups.calls == 1
    await put(other, bucket, "k", b"changed")  # the key itself: seen at once
    assert await read(svc, bucket, "k") == b"changed"
    assert lookups.calls == 2


@pytest_twisted.ensureDeferred
async def test_a_reader_behind_the_pruned_log_starts_its_cache_over(
    svc: Any, bucket: str, other: Any, monkeypatch: Any
) -> None:
    await put(svc, bucket, "k", b"kept")
    await put(svc, bucket, "m", b"changed later")
    lookups = CountingLookups(monkeypatch)
    await svc.get_object_info(bucket, "k")
    await svc.get_object_info(bucket, "m")
    assert lookups.calls == 2
    await put(other, bucket, "j", b"1")
    await put(other, bucket, "j", b"2")
    conn = other._pools._inline_connection()
    conn.execute("BEGIN IMMEDIATE")
    # What the pruning trigger does once the log is long: the rows svc has not read yet go.
    conn.execute("DELETE FROM object_changes")
    conn.execute("UPDATE objects SET etag = 'changed' WHERE key = 'm'")
    conn.execute("COMMIT")
    assert (await svc.get_object_info(bucket, "m")).etag == "changed"
    assert lookups.calls == 3
    # k did not change, but what changed in the gap is unknown: looked up again.
    assert await read(svc, bucket, "k") == b"kept"
    assert lookups.calls == 4
    await svc.get_object_info(bucket, "k")
    assert lookups.calls == 4  # and cached again


def test_the_change_log_is_pruned_as_it_grows() -> None:
    import sqlite3

    conn = sqlite3.connect(":memory:")
    for statement in metadata.SCHEMA:
        conn.execute(statement)
    conn.execute(
        "INSERT INTO buckets (bucket_id, name, owner_account_id, created_at, visibility) "
        "VALUES ('b1', 'bucket', 'a', 0, 'private')"
    )
    total = metadata.OBJECT_CHANGES_KEPT + 3 * metadata.OBJECT_CHANGES_PRUNE_EVERY + 5
    conn.executemany(
        "INSERT INTO objects (bucket_id, key, object_id, state, size, etag, sha256, "
        "content_type, attrs_json, checksums_json, checksum_type, part_sizes_json, "
        "location_ref, created_at, updated_at) "
        "VALUES ('b1', ?, ?, 'active', 0, '', '', '', '{}', '{}', '', '[]', '', 0, 0)",
        ((f"k{n}", f"id{n}") for n in range(total)),
    )
    assert metadata.last_object_change(conn) == total
    (count,) = conn.execute("SELECT COUNT(*) FROM object_changes").fetchone()
    kept = metadata.OBJECT_CHANGES_KEPT
    assert kept <= count < kept + metadata.OBJECT_CHANGES_PRUNE_EVERY
    newest = metadata.object_changes_after(conn, total - 2, 10)
    assert newest == [(total - 1, "bucket", f"k{total - 2}"), (total, "bucket", f"k{total - 1}")]
