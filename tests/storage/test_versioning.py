"""S3 versioning in the storage service: versions kept, delete markers, deleting versions,
listing them, counters, and the safety of noncurrent versions' bytes against every path that
decides a file is unreferenced (write disposal, delete, orphan sweep at startup, dead-pack GC,
empty-dir GC, hole punching), across a restart.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor

from jay.errors import (
    BucketNotEmpty,
    InvalidRequest,
    MethodNotAllowed,
    NoSuchKey,
    NoSuchVersion,
)
from jay.storage import metadata, packs
from jay.storage.api import BUCKET_CONFIG_VERSIONING, NULL_VERSION

from .conftest import CollectingConsumer, put, read, start_service, stop_service, wait_until

PACK_MAX = 64 * 1024


async def read_version(svc: Any, bucket: str, key: str, version_id: str) -> bytes:
    opened = await svc.open_object_version(bucket, key, version_id)
    consumer = CollectingConsumer()
    await opened.stream(consumer, 0, None, verify=True)
    return bytes(consumer.data)


async def versioned_bucket(svc: Any, status: str = "Enabled") -> str:
    account = await svc.create_account("v")
    await svc.create_bucket("vbk", account.account_id)
    await svc.set_bucket_config("vbk", BUCKET_CONFIG_VERSIONING, status)
    return "vbk"


def listing(page: Any) -> list[tuple[str, str, bool, bool]]:
    return [(v.key, v.version_id, v.is_latest, v.is_delete_marker) for v in page.versions]


@pytest.mark.parametrize("pack_max", [0, PACK_MAX])
@pytest_twisted.ensureDeferred
async def test_versions_markers_and_deleting_versions(data_dir: str, pack_max: int) -> None:
    svc = await start_service(data_dir, pack_max_object_bytes=pack_max)
    try:
        account = await svc.create_account("v")
        await svc.create_bucket("vbk", account.account_id)
        plain = await put(svc, "vbk", "k", b"before versioning")
        assert plain.version_id == NULL_VERSION
        await svc.set_bucket_config("vbk", BUCKET_CONFIG_VERSIONING, "Enabled")
        one = await put(svc, "vbk", "k", b"one")
        two = await put(svc, "vbk", "k", b"two")
        assert one.version_id == one.object_id and two.version_id == two.object_id
        assert await read(svc, "vbk", "k") == b"two"
        assert await read_version(svc, "vbk", "k", one.version_id) == b"one"
        assert await read_version(svc, "vbk", "k", NULL_VERSION) == b"before versioning"
        stats = await svc.bucket_stats("vbk")
        assert (stats.object_count, stats.total_size_bytes) == (1, 3)

        outcome = await svc.delete_version("vbk", "k")
        assert outcome.deleted and outcome.is_delete_marker
        marker = outcome.version_id
        with pytest.raises(NoSuchKey) as missing:
            await svc.get_object_info("vbk", "k")
        assert missing.value.details == {"is_delete_marker": True, "version_id": marker}
        with pytest.raises(MethodNotAllowed):
            await svc.get_object_version("vbk", "k", marker)
        assert (await svc.list_objects("vbk")).objects == ()
        assert (await svc.bucket_stats("vbk")).object_count == 0
        page = await svc.list_object_versions("vbk")
        assert listing(page) == [
            ("k", marker, True, True),
            ("k", two.version_id, False, False),
            ("k", one.version_id, False, False),
            ("k", NULL_VERSION, False, False),
        ]

        # Deleting the marker by id makes the newest remaining version current again.
        removed = await svc.delete_version("vbk", "k", version_id=marker)
        assert removed.is_delete_marker and removed.version_id == marker
        assert await read(svc, "vbk", "k") == b"two"
        assert (await svc.bucket_stats("vbk")).object_count == 1
        # Deleting the current version by id: the previous one takes its place.
        await svc.delete_version("vbk", "k", version_id=two.version_id)
        assert await read(svc, "vbk", "k") == b"one"
        # A noncurrent one: the current stays.
        await svc.delete_version("vbk", "k", version_id=NULL_VERSION)
        assert await read(svc, "vbk", "k") == b"one"
        with pytest.raises(NoSuchVersion):
            await svc.get_object_version("vbk", "k", NULL_VERSION)
        gone = await svc.delete_version("vbk", "k", version_id=two.version_id)
        assert not gone.deleted
        with pytest.raises(BucketNotEmpty):
            await svc.delete_bucket("vbk")
        await svc.delete_version("vbk", "k", version_id=one.version_id)
        assert (await svc.list_object_versions("vbk")).versions == ()
        stats = await svc.bucket_stats("vbk")
        assert (stats.object_count, stats.total_size_bytes) == (0, 0)
        await svc.delete_bucket("vbk")
    finally:
        await stop_service(svc)


@pytest_twisted.ensureDeferred
async def test_suspended_writes_replace_only_the_null_version(svc: Any) -> None:
    bucket = await versioned_bucket(svc)
    kept = await put(svc, bucket, "k", b"kept")
    await svc.set_bucket_config(bucket, BUCKET_CONFIG_VERSIONING, "Suspended")
    first_null = await put(svc, bucket, "k", b"null 1")
    assert first_null.version_id == NULL_VERSION
    second_null = await put(svc, bucket, "k", b"null 2")
    page = await svc.list_object_versions(bucket)
    assert listing(page) == [
        ("k", NULL_VERSION, True, False),
        ("k", kept.version_id, False, False),
    ]
    # The replaced null version's file is gone; the kept version's is still there.
    path = svc._blobs.resolve(first_null.location_ref)
    await wait_until(lambda: not os.path.exists(path))
    assert await read_version(svc, bucket, "k", kept.version_id) == b"kept"
    # A delete while suspended: a "null" marker replaces the null version.
    outcome = await svc.delete_version(bucket, "k")
    assert (outcome.version_id, outcome.is_delete_marker) == (NULL_VERSION, True)
    page = await svc.list_object_versions(bucket)
    assert listing(page) == [
        ("k", NULL_VERSION, True, True),
        ("k", kept.version_id, False, False),
    ]
    assert second_null.location_ref
    # Enabled again: the null marker becomes noncurrent like any version.
    await svc.set_bucket_config(bucket, BUCKET_CONFIG_VERSIONING, "Enabled")
    newest = await put(svc, bucket, "k", b"newest")
    page = await svc.list_object_versions(bucket)
    assert [v[1] for v in listing(page)] == [newest.version_id, NULL_VERSION, kept.version_id]


@pytest_twisted.ensureDeferred
async def test_versioning_is_never_removed(svc: Any) -> None:
    bucket = await versioned_bucket(svc, "Suspended")
    with pytest.raises(InvalidRequest):
        await svc.set_bucket_config(bucket, BUCKET_CONFIG_VERSIONING, None)
    assert (await svc.get_bucket(bucket)).config(BUCKET_CONFIG_VERSIONING) == "Suspended"


@pytest_twisted.ensureDeferred
async def test_acls_and_tags_stay_with_their_version(svc: Any) -> None:
    bucket = await versioned_bucket(svc)
    old = await put(svc, bucket, "k", b"oldbkt", acl_json='{"grants": "oldbkt"}')
    await svc.set_object_tags(bucket, "k", {"v": "oldbkt"})
    new = await put(svc, bucket, "k", b"new")
    assert await svc.get_object_acl(bucket, "k", old.version_id) == '{"grants": "oldbkt"}'
    assert await svc.get_object_acl(bucket, "k") is None
    info = await svc.get_object_version(bucket, "k", old.version_id)
    assert dict(info.attributes.tags) == {"v": "oldbkt"}
    await svc.set_object_tags(bucket, "k", {"v": "changed"}, old.version_id)
    assert dict((await svc.get_object_version(bucket, "k", old.version_id)).attributes.tags) == {
        "v": "changed"
    }
    assert dict((await svc.get_object_info(bucket, "k")).attributes.tags) == {}
    # Deleting the current version promotes the old one with its ACL.
    await svc.delete_version(bucket, "k", version_id=new.version_id)
    assert await svc.get_object_acl(bucket, "k") == '{"grants": "oldbkt"}'
    await svc.delete_version(bucket, "k", version_id=old.version_id)
    acls = await svc._pools.read(lambda c: c.execute("SELECT COUNT(*) FROM object_acls").fetchone())
    assert acls[0] == 0


@pytest_twisted.ensureDeferred
async def test_listing_versions_pages_with_markers_and_prefixes(svc: Any) -> None:
    bucket = await versioned_bucket(svc)
    made: dict[str, list[str]] = {}
    for key in ("a", "b/1", "b/2", "c"):
        for n in range(3):
            made.setdefault(key, []).insert(0, (await put(svc, bucket, key, b"%d" % n)).version_id)
    every = [(k, v) for k in ("a", "b/1", "b/2", "c") for v in made[k]]
    for size in (1, 2, 4, 5, 100):
        seen: list[tuple[str, str]] = []
        key_marker = version_marker = ""
        while True:
            page = await svc.list_object_versions(
                bucket, key_marker=key_marker, version_id_marker=version_marker, max_keys=size
            )
            seen.extend((v.key, v.version_id) for v in page.versions)
            assert len(page.versions) <= size
            if not page.is_truncated:
                break
            key_marker, version_marker = page.next_key_marker, page.next_version_id_marker
        assert seen == every, size
    page = await svc.list_object_versions(bucket, delimiter="/")
    assert page.common_prefixes == ("b/",)
    assert [v.key for v in page.versions] == ["a"] * 3 + ["c"] * 3
    page = await svc.list_object_versions(bucket, delimiter="/", max_keys=4)
    assert page.is_truncated and (page.next_key_marker, page.next_version_id_marker) == ("b/", "")
    rest = await svc.list_object_versions(bucket, delimiter="/", key_marker="b/")
    assert [v.key for v in rest.versions] == ["c"] * 3 and rest.common_prefixes == ()
    page = await svc.list_object_versions(bucket, prefix="b/")
    assert [(v.key, v.is_latest) for v in page.versions][:2] == [("b/1", True), ("b/1", False)]
    assert len(page.versions) == 6


@pytest_twisted.ensureDeferred
async def test_noncurrent_bytes_survive_gc_orphan_sweep_and_restart(data_dir: str) -> None:
    """Every path that decides a file is unreferenced, run over a bucket whose noncurrent
    versions live in files of their own and in packs (some packs holding nothing current)."""
    svc = await start_service(data_dir, pack_max_object_bytes=PACK_MAX)
    svc._blobs.punch_delay = 0
    svc._pools.packer.rollover_bytes = 1  # every group starts a pack of its own
    bucket = await versioned_bucket(svc)
    big = b"B" * (PACK_MAX + 1)
    small_old = await put(svc, bucket, "small", b"small old")
    await put(svc, bucket, "small", b"small new")
    big_old = await put(svc, bucket, "big", big)
    await put(svc, bucket, "big", b"big new" * 20_000)
    gone = await put(svc, bucket, "gone", b"gone")
    await svc.delete_version(bucket, "gone")  # a marker: its pack only holds a noncurrent one
    assert packs.is_pack_ref(small_old.location_ref) and not packs.is_pack_ref(big_old.location_ref)
    await put(svc, bucket, "rollover", b"r")  # leaves the older packs for good
    assert await svc.collect_dead_packs(-1) == 0
    assert await svc.collect_temp_files(-1) == 0
    await svc.collect_empty_dirs(-1)
    await stop_service(svc)

    # A restart runs the orphan sweep and the missing-file checks.
    svc = await start_service(data_dir, pack_max_object_bytes=PACK_MAX)
    try:
        assert await svc.list_quarantined() == []
        assert await svc.collect_dead_packs(-1) == 0
        assert await read_version(svc, bucket, "small", small_old.version_id) == b"small old"
        assert await read_version(svc, bucket, "big", big_old.version_id) == big
        assert await read_version(svc, bucket, "gone", gone.version_id) == b"gone"
        assert os.listdir(os.path.join(data_dir, "quarantine")) == []
        # Deleting the versions for good frees their bytes: the packs then go.
        for key, info in (("small", small_old), ("gone", gone)):
            await svc.delete_version(bucket, key, version_id=info.version_id)
        assert await svc.collect_dead_packs(-1) == 2
        await svc.delete_version(bucket, "big", version_id=big_old.version_id)
        path = svc._blobs.resolve(big_old.location_ref)
        await wait_until(lambda: not os.path.exists(path))
    finally:
        await stop_service(svc)


@pytest_twisted.ensureDeferred
async def test_a_database_of_the_first_schema_opens_and_keeps_working(data_dir: str) -> None:
    """A data directory written before versioning existed: objects have no version_id column
    and the ACL triggers drop a row whenever its current version goes."""
    svc = await start_service(data_dir)
    account = await svc.create_account("oldbkt")
    await svc.create_bucket("oldbkt", account.account_id)
    before = await put(svc, "oldbkt", "k", b"written by the old schema", acl_json='{"a": 1}')
    await stop_service(svc)
    db = sqlite3.connect(os.path.join(data_dir, "meta", "jay.db"))
    with db:
        triggers = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='trigger'")]
        for name in triggers:
            if name.startswith(("object_acls_on", "object_part_checksums_on", "packs_on_version")):
                db.execute(f"DROP TRIGGER {name}")
        db.execute("DROP TABLE object_versions")
        db.execute("ALTER TABLE objects DROP COLUMN version_id")
        db.execute(
            "CREATE TRIGGER object_acls_on_object_delete AFTER DELETE ON objects "
            "BEGIN DELETE FROM object_acls WHERE object_id = OLD.object_id; END"
        )
    db.close()

    svc = await start_service(data_dir)
    try:
        assert await read(svc, "oldbkt", "k") == b"written by the old schema"
        info = await svc.get_object_info("oldbkt", "k")
        assert info.version_id == NULL_VERSION and info.object_id == before.object_id
        await svc.set_bucket_config("oldbkt", BUCKET_CONFIG_VERSIONING, "Enabled")
        await put(svc, "oldbkt", "k", b"new")
        assert await svc.get_object_acl("oldbkt", "k", NULL_VERSION) == '{"a": 1}'
        assert await read_version(svc, "oldbkt", "k", NULL_VERSION) == b"written by the old schema"
        triggers = await svc._pools.read(
            lambda c: {
                r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='trigger'")
            }
        )
        assert "object_acls_on_object_delete" not in triggers
        assert "object_acls_on_version_delete" in triggers
    finally:
        await stop_service(svc)


def test_migrate_adds_the_version_column_once() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE objects (bucket_id TEXT, key TEXT)")
    conn.execute("INSERT INTO objects VALUES ('b', 'k')")
    metadata.migrate(conn)
    metadata.migrate(conn)
    assert conn.execute("SELECT version_id FROM objects").fetchall() == [("null",)]


def model_page(
    model: dict[str, list[tuple[str, bool]]],
    prefix: str,
    delimiter: str,
) -> list[tuple[str, str]]:
    """What a whole ListObjectVersions answers: (key, version id) entries and ("P", prefix)
    common prefixes, in order, from the model (each key's versions newest first)."""
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for key in sorted(k for k in model if k.startswith(prefix) and model[k]):
        if delimiter:
            at = key.find(delimiter, len(prefix))
            if at >= 0:
                rolled = key[: at + len(delimiter)]
                if rolled not in seen:
                    seen.add(rolled)
                    out.append(("P", rolled))
                continue
        out.extend((key, version) for version, _ in model[key])
    return out


@pytest_twisted.ensureDeferred
async def test_listing_versions_matches_a_model_at_every_page_size(svc: Any) -> None:
    """Random puts, deletes (markers) and deletes by version id; then every listing, walked
    page by page with the markers each page returns, equals the model's."""
    import random

    rng = random.Random(7)
    bucket = await versioned_bucket(svc)
    keys = ["a", "a/b", "a/c/d", "b", "b/x", "c", "é/1", "é/2"]
    model: dict[str, list[tuple[str, bool]]] = {k: [] for k in keys}
    for _ in range(120):
        key = rng.choice(keys)
        roll = rng.random()
        if roll < 0.55:
            info = await put(svc, bucket, key, b"x")
            model[key].insert(0, (info.version_id, False))
        elif roll < 0.75:
            outcome = await svc.delete_version(bucket, key)
            model[key].insert(0, (outcome.version_id, True))
        elif model[key]:
            version, _ = rng.choice(model[key])
            await svc.delete_version(bucket, key, version_id=version)
            model[key].remove(next(v for v in model[key] if v[0] == version))
    for prefix, delimiter in (("", ""), ("", "/"), ("a", "/"), ("a/", ""), ("é", "/")):
        expected = model_page(model, prefix, delimiter)
        for size in (1, 2, 3, 7, 1000):
            versions: list[tuple[str, str]] = []
            prefixes: list[tuple[str, str]] = []
            key_marker = version_marker = ""
            for _ in range(1000):
                page = await svc.list_object_versions(
                    bucket,
                    prefix=prefix,
                    delimiter=delimiter,
                    key_marker=key_marker,
                    version_id_marker=version_marker,
                    max_keys=size,
                )
                assert len(page.versions) + len(page.common_prefixes) <= size
                versions.extend((v.key, v.version_id) for v in page.versions)
                prefixes.extend(("P", p) for p in page.common_prefixes)
                if not page.is_truncated:
                    break
                key_marker, version_marker = page.next_key_marker, page.next_version_id_marker
            assert versions == [e for e in expected if e[0] != "P"], (prefix, delimiter, size)
            assert prefixes == [e for e in expected if e[0] == "P"], (prefix, delimiter, size)
        latest = {
            v.key: v.version_id
            for v in (await svc.list_object_versions(bucket, prefix=prefix)).versions
            if v.is_latest
        }
        assert latest == {k: vs[0][0] for k, vs in model.items() if vs and k.startswith(prefix)}


@pytest_twisted.ensureDeferred
async def test_scrub_checks_noncurrent_versions_and_quarantines_a_bad_one(svc: Any) -> None:
    from jay.config.model import ScrubSettings
    from jay.maintenance.scrubber import Scrubber

    bucket = await versioned_bucket(svc)
    good = await put(svc, bucket, "k", b"good old bytes")
    bad = await put(svc, bucket, "k", b"soon corrupted")
    current = await put(svc, bucket, "k", b"current bytes")
    with open(svc._blobs.resolve(bad.location_ref), "r+b") as f:
        f.write(b"S")
    scrubber = Scrubber(
        svc, ScrubSettings(sample_rate=1.0, max_per_run=100, bytes_per_sec=0), clock=reactor
    )
    result = await scrubber.run_pass()
    assert (result.checked, result.quarantined, result.healthy) == (3, 1, 2)
    with pytest.raises(NoSuchVersion):
        await svc.get_object_version(bucket, "k", bad.version_id)
    assert await read_version(svc, bucket, "k", good.version_id) == b"good old bytes"
    assert await read(svc, bucket, "k") == b"current bytes"
    listed = [v.version_id for v in (await svc.list_object_versions(bucket)).versions]
    assert listed == [current.version_id, good.version_id]
    assert not os.path.exists(svc._blobs.resolve(bad.location_ref))
    assert svc._blobs.quarantined_copies(bad.object_id)
    # The noncurrent cursor moved on; the next pass checks the healthy ones again.
    again = await scrubber.run_pass()
    assert (again.checked, again.quarantined) == (2, 0)
    # Deleted for good, the quarantined version leaves its copy in quarantine/ for the
    # operator, as a replaced quarantined object does.
    assert (await svc.delete_version(bucket, "k", version_id=bad.version_id)).deleted
    assert svc._blobs.quarantined_copies(bad.object_id)


@pytest_twisted.ensureDeferred
async def test_startup_quarantines_a_noncurrent_version_whose_file_is_gone(data_dir: str) -> None:
    svc = await start_service(data_dir)
    bucket = await versioned_bucket(svc)
    lost = await put(svc, bucket, "k", b"lost")
    kept = await put(svc, bucket, "k", b"kept")
    await put(svc, bucket, "k", b"current")
    await stop_service(svc)
    os.unlink(os.path.join(data_dir, lost.location_ref))
    svc = await start_service(data_dir)
    try:
        with pytest.raises(NoSuchVersion):
            await svc.get_object_version(bucket, "k", lost.version_id)
        assert await read_version(svc, bucket, "k", kept.version_id) == b"kept"
        listed = [v.version_id for v in (await svc.list_object_versions(bucket)).versions]
        assert lost.version_id not in listed and kept.version_id in listed
    finally:
        await stop_service(svc)
