"""Startup recovery beyond the storage suite (JAY_SPEC §7.5, §8.2 item 24): owned temp files
survive, wrong sizes and bad refs are quarantined, parts reconciled, counters rebuilt."""

from __future__ import annotations

import fcntl
import os
import sqlite3

import pytest
import pytest_twisted

from jay.errors import InvalidPart
from jay.storage.api import BucketStats, CompletedPart, ObjectAttributes
from tests.storage.conftest import (
    files_under,
    object_file_path,
    put,
    read,
    stage,
    start_service,
    stop_service,
    tmp_files,
)


def db(data_dir: str) -> sqlite3.Connection:
    return sqlite3.connect(os.path.join(data_dir, "meta", "jay.db"), isolation_level=None)


@pytest_twisted.ensureDeferred
async def test_recovery_spares_temp_files_another_process_holds(data_dir: str) -> None:
    svc = await start_service(data_dir)
    await stop_service(svc)
    tmp_dir = os.path.join(data_dir, "tmp")
    owned = os.path.join(tmp_dir, "jay-upload-live.writing")
    fd = os.open(owned, os.O_WRONLY | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)  # as a live writer in another process does
    with open(os.path.join(tmp_dir, "jay-upload-dead.writing"), "wb") as f:
        f.write(b"crashed writer")
    os.mkdir(os.path.join(tmp_dir, "jay-dir.writing"))  # not a regular file: left alone
    try:
        svc = await start_service(data_dir)
        await stop_service(svc)
        assert tmp_files(data_dir) == ["jay-upload-live.writing"]
    finally:
        os.close(fd)


@pytest_twisted.ensureDeferred
async def test_recovery_quarantines_wrong_sizes_and_bad_refs_and_rebuilds_counters(
    data_dir: str,
) -> None:
    svc = await start_service(data_dir)
    try:
        account = await svc.create_account("a")
        await svc.create_bucket("b-1", account.account_id)
        short = await put(svc, "b-1", "short", b"0123456789")
        await put(svc, "b-1", "evil", b"ref will be tampered with")
        await put(svc, "b-1", "ok", b"fine")
    finally:
        await stop_service(svc)
    with open(object_file_path(data_dir, short), "r+b") as f:
        f.truncate(4)
    conn = db(data_dir)
    conn.execute("UPDATE objects SET location_ref = '../../etc/passwd' WHERE key = 'evil'")
    conn.execute("UPDATE buckets SET object_count = 99, total_bytes = 12345")
    conn.close()

    svc = await start_service(data_dir)
    try:
        assert [o.key for o in (await svc.list_objects("b-1")).objects] == ["ok"]
        reasons = {q.info.key: q.reason for q in await svc.list_quarantined()}
        assert reasons == {"short": "size mismatch at startup", "evil": "file missing at startup"}
        assert await svc.bucket_stats("b-1") == BucketStats(object_count=1, total_size_bytes=4)
        assert await read(svc, "b-1", "ok") == b"fine"
        # The untouched file of the tampered record is an orphan now, moved aside.
        assert len(files_under(os.path.join(data_dir, "quarantine"))) == 2
    finally:
        await stop_service(svc)


@pytest_twisted.ensureDeferred
async def test_recovery_reconciles_parts_with_their_records(data_dir: str) -> None:
    svc = await start_service(data_dir)
    try:
        account = await svc.create_account("a")
        await svc.create_bucket("b-1", account.account_id)
        up = await svc.create_multipart_upload("b-1", "mp", ObjectAttributes(), account.account_id)
        for number, body in ((1, b"one "), (2, b"two "), (3, b"three")):
            await svc.upload_part("b-1", "mp", up.upload_id, number, await stage(svc, body))
    finally:
        await stop_service(svc)
    upload_dir = os.path.join(data_dir, "multipart", up.upload_id)
    os.unlink(os.path.join(upload_dir, "part-00002"))  # record without a file
    with open(os.path.join(upload_dir, "part-00009"), "wb") as f:  # file without a record
        f.write(b"crash between rename and record")

    svc = await start_service(data_dir)
    try:
        page = await svc.list_parts("b-1", "mp", up.upload_id)
        assert [p.part_number for p in page.parts] == [1, 3]
        assert sorted(os.listdir(upload_dir)) == ["part-00001", "part-00003"]
        with pytest.raises(InvalidPart):
            await svc.complete_multipart_upload(
                "b-1", "mp", up.upload_id, [CompletedPart(part_number=n) for n in (1, 2, 3)]
            )
        await svc.upload_part("b-1", "mp", up.upload_id, 2, await stage(svc, b"two "))
        await svc.complete_multipart_upload(
            "b-1", "mp", up.upload_id, [CompletedPart(part_number=n) for n in (1, 2, 3)]
        )
        assert await read(svc, "b-1", "mp", verify=True) == b"one two three"
    finally:
        await stop_service(svc)
