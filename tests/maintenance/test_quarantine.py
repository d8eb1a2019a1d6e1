"""Bit rot end to end: a flipped byte is caught by read verification and by the scrubber, the
object is quarantined and listed, revalidation after repair restores it, purge deletes it."""

from __future__ import annotations

import os
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import task

from jay.config.model import ScrubSettings
from jay.errors import ChecksumMismatch, NoSuchBucket, NoSuchKey
from jay.maintenance.scrubber import Scrubber
from jay.storage.api import BucketStats
from tests.storage.conftest import (
    CollectingConsumer,
    files_under,
    object_file_path,
    put,
    read,
    wait_until,
)

from .conftest import CountingMetrics


def flip_byte(path: str, offset: int) -> bytes:
    with open(path, "r+b") as f:
        f.seek(offset)
        original = f.read(1)
        f.seek(offset)
        f.write(bytes([original[0] ^ 0x01]))
    return original


def restore_byte(path: str, offset: int, original: bytes) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(original)


def quarantine_files(data_dir: str) -> list[str]:
    return files_under(os.path.join(data_dir, "quarantine"))


async def assert_gone_from_reads(svc: Any, bucket: str, key: str) -> None:
    with pytest.raises(NoSuchKey):
        await svc.get_object_info(bucket, key)
    keys = [o.key for o in (await svc.list_objects(bucket)).objects]
    assert key not in keys


def unthrottled_scrubber(svc: Any, metrics: CountingMetrics | None = None) -> Scrubber:
    settings = ScrubSettings(interval_hours=6, sample_rate=1.0, bytes_per_sec=0, max_per_run=1000)
    return Scrubber(svc, settings, clock=task.Clock(), metrics=metrics)


@pytest_twisted.ensureDeferred
async def test_read_verification_quarantines_then_revalidate_and_purge(
    svc: Any, bucket_info: Any, data_dir: str, metrics: CountingMetrics
) -> None:
    body = os.urandom(100_000)
    info = await put(svc, "bkt", "rot", body)
    await put(svc, "bkt", "fine", b"healthy")
    path = object_file_path(data_dir, info)
    original = flip_byte(path, 5_000)

    opened = await svc.open_object("bkt", "rot")
    with pytest.raises(ChecksumMismatch):
        await opened.stream(CollectingConsumer(), verify=True)
    await assert_gone_from_reads(svc, "bkt", "rot")
    assert metrics.counters == {"checksum_failures": 1, "objects_quarantined": 1}
    assert await svc.bucket_stats("bkt") == BucketStats(object_count=1, total_size_bytes=7)

    listed = await svc.list_quarantined()
    assert [(q.info.key, q.reason) for q in listed] == [("rot", "checksum mismatch on read")]
    await wait_until(lambda: info.object_id in quarantine_files(data_dir))
    assert not os.path.exists(path)

    # Still corrupt: revalidation refuses and changes nothing.
    assert await svc.revalidate_quarantined(info.bucket_id, "rot") is False
    await assert_gone_from_reads(svc, "bkt", "rot")

    # Repair the quarantined copy: revalidation moves it back and the object reads again.
    quarantined_path = os.path.join(data_dir, "quarantine", info.object_id)
    restore_byte(quarantined_path, 5_000, original)
    assert await svc.revalidate_quarantined(info.bucket_id, "rot") is True
    assert await read(svc, "bkt", "rot", verify=True) == body
    assert os.path.exists(path) and quarantine_files(data_dir) == []
    assert await svc.list_quarantined() == []
    assert await svc.bucket_stats("bkt") == BucketStats(
        object_count=2, total_size_bytes=len(body) + 7
    )

    # Rot again, caught again, then purged: record and file are gone, counters unchanged.
    flip_byte(path, 1)
    with pytest.raises(ChecksumMismatch):
        await (await svc.open_object("bkt", "rot")).stream(CollectingConsumer(), verify=True)
    await wait_until(lambda: info.object_id in quarantine_files(data_dir))
    assert await svc.purge_quarantined(info.bucket_id, "rot") is True
    assert await svc.purge_quarantined(info.bucket_id, "rot") is False
    assert quarantine_files(data_dir) == []
    assert await svc.list_quarantined() == []
    assert await svc.bucket_stats("bkt") == BucketStats(object_count=1, total_size_bytes=7)
    # The key is free: the bucket empties and can be deleted once "fine" goes.
    assert await svc.delete_object("bkt", "fine") is True
    await svc.delete_bucket("bkt")
    with pytest.raises(NoSuchKey):
        await svc.revalidate_quarantined(info.bucket_id, "rot")


@pytest_twisted.ensureDeferred
async def test_scrubber_catches_bit_rot_missing_and_short_files(
    svc: Any, bucket_info: Any, data_dir: str, metrics: CountingMetrics
) -> None:
    bodies = {f"k{i:02d}": os.urandom(2_000 + i) for i in range(10)}
    infos = {k: await put(svc, "bkt", k, v) for k, v in bodies.items()}
    flip_byte(object_file_path(data_dir, infos["k03"]), 10)
    os.unlink(object_file_path(data_dir, infos["k05"]))
    with open(object_file_path(data_dir, infos["k07"]), "r+b") as f:
        f.truncate(100)

    result = await unthrottled_scrubber(svc, metrics).run_pass()
    assert (result.checked, result.healthy, result.quarantined, result.missing) == (10, 7, 2, 1)
    assert result.bytes_scanned == sum(len(v) for k, v in bodies.items() if k != "k05") - (
        len(bodies["k07"]) - 100
    )
    for key in ("k03", "k05", "k07"):
        await assert_gone_from_reads(svc, "bkt", key)
    reasons = {q.info.key: q.reason for q in await svc.list_quarantined()}
    assert reasons == {
        "k03": "checksum mismatch (scrub)",
        "k05": "file missing (scrub)",
        "k07": "size mismatch (scrub)",
    }
    assert metrics.counters == {"checksum_failures": 2, "objects_quarantined": 3}
    assert metrics.progress[-1] == (10, result.bytes_scanned, True)
    assert await read(svc, "bkt", "k04", verify=True) == bodies["k04"]

    # A second full pass finds nothing new (quarantined records are visited but skipped).
    again = await unthrottled_scrubber(svc).run_pass()
    assert (again.checked, again.healthy, again.skipped, again.quarantined) == (7, 7, 3, 0)

    # Purge everything quarantined: files in quarantine/ go too, counters stay exact.
    assert await svc.purge_all_quarantined() == 3
    assert quarantine_files(data_dir) == []
    expected = sum(len(v) for k, v in bodies.items() if k not in ("k03", "k05", "k07"))
    assert await svc.bucket_stats("bkt") == BucketStats(object_count=7, total_size_bytes=expected)


@pytest_twisted.ensureDeferred
async def test_scrub_never_quarantines_a_concurrent_overwrite(
    svc: Any, bucket_info: Any, data_dir: str
) -> None:
    info = await put(svc, "bkt", "k", b"old bytes")
    os.unlink(object_file_path(data_dir, info))  # old version's file is gone...
    await put(svc, "bkt", "k", b"new bytes")  # ...but the key has a new version meanwhile
    # Quarantining by object id only touches the version that was scrubbed.
    assert await svc.quarantine_version(info.bucket_id, "k", info.object_id, "x") is None
    assert await read(svc, "bkt", "k", verify=True) == b"new bytes"


@pytest_twisted.ensureDeferred
async def test_admin_protocol_methods_work_on_any_state(
    svc: Any, bucket_info: Any, data_dir: str, metrics: CountingMetrics
) -> None:
    """jay.admin.app's QuarantineStore: revalidate_object / purge_object / purge_quarantined()."""
    bucket_id = bucket_info.bucket_id
    await put(svc, "bkt", "healthy", b"good bytes")
    rotten = await put(svc, "bkt", "rotten", b"will rot")
    await put(svc, "bkt", "doomed", b"purged while active")
    assert await svc.revalidate_object(bucket_id, "healthy") is True
    flip_byte(object_file_path(data_dir, rotten), 0)
    assert await svc.revalidate_object(bucket_id, "rotten") is False
    await assert_gone_from_reads(svc, "bkt", "rotten")
    assert metrics.counters == {"checksum_failures": 1, "objects_quarantined": 1}

    await svc.purge_object(bucket_id, "doomed")
    assert await svc.bucket_stats("bkt") == BucketStats(object_count=1, total_size_bytes=10)
    with pytest.raises(NoSuchKey):
        await svc.purge_object(bucket_id, "doomed")
    with pytest.raises(NoSuchBucket):
        await svc.revalidate_object("no-such-bucket-id", "healthy")
    assert await svc.purge_quarantined() == 1
    assert quarantine_files(data_dir) == []
    assert [o.key for o in (await svc.list_objects("bkt")).objects] == ["healthy"]
    assert await read(svc, "bkt", "healthy", verify=True) == b"good bytes"
