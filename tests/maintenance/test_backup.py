"""Backups (JAY_SPEC §7.4): online snapshot while serving, rotation, restore and start on it."""

from __future__ import annotations

import os
import sqlite3
import stat
from typing import Any

import pytest
import pytest_twisted

from jay.config.model import BackupSettings
from jay.maintenance import restore
from jay.maintenance.backup import BackupRunner
from jay.storage.api import BucketStats
from jay.storage.backups import backup_name, list_backups, prune_backups
from tests.storage.conftest import files_under, put, read, start_service, stop_service

DAY = 86400


@pytest_twisted.ensureDeferred
async def test_backup_is_a_consistent_0600_snapshot(svc: Any, bucket_info: Any) -> None:
    await put(svc, "bkt", "k", b"value")
    result = await BackupRunner(svc, BackupSettings(keep=3)).run_pass()
    assert os.path.basename(result.path).startswith("jay-") and result.path.endswith("Z.db")
    assert stat.S_IMODE(os.stat(result.path).st_mode) == 0o600
    conn = sqlite3.connect(result.path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT key FROM objects").fetchall() == [("k",)]
    finally:
        conn.close()
    # Still serving afterwards.
    await put(svc, "bkt", "k2", b"more")
    assert await read(svc, "bkt", "k2") == b"more"


def make_backup_file(directory: str, created_at: float) -> str:
    path = os.path.join(directory, backup_name(created_at))
    with open(path, "wb") as f:
        f.write(b"snapshot")
    return os.path.basename(path)


def test_rotation_keeps_newest_and_drops_old(tmp_path: Any) -> None:
    directory = str(tmp_path)
    now = 1_700_000_000.0
    names = [make_backup_file(directory, now - hours * 3600) for hours in range(30, -1, -1)]
    with open(os.path.join(directory, "notes.txt"), "w") as f:
        f.write("not a backup")
    removed = prune_backups(directory, keep=24, max_age_seconds=7 * DAY, now=now)
    assert sorted(removed) == sorted(names[:7])
    assert [b.name for b in list_backups(directory)] == names[7:]
    assert os.path.exists(os.path.join(directory, "notes.txt"))
    # Age limit: only the last day survives …
    prune_backups(directory, keep=24, max_age_seconds=DAY / 2, now=now)
    assert [b.name for b in list_backups(directory)] == names[-13:]
    # … and the newest backup survives whatever its age.
    prune_backups(directory, keep=24, max_age_seconds=1, now=now + 30 * DAY)
    assert [b.name for b in list_backups(directory)] == names[-1:]


@pytest_twisted.ensureDeferred
async def test_restore_from_backup_then_start(data_dir: str, capsys: Any) -> None:
    svc = await start_service(data_dir)
    try:
        account = await svc.create_account("a")
        await svc.create_bucket("b-1", account.account_id)
        await put(svc, "b-1", "before", b"in the backup")
        await put(svc, "b-1", "changed", b"old version")
        backup = await svc.create_backup()
        # After the backup: one new object, one overwrite, one delete.
        await put(svc, "b-1", "after", b"not in the backup")
        await put(svc, "b-1", "changed", b"new version")
        await svc.delete_object("b-1", "before")
    finally:
        await stop_service(svc)

    with pytest.raises(SystemExit):
        restore.main(["--data-dir", data_dir])  # a backup must be named
    assert restore.main(["--data-dir", data_dir, "--backup", backup]) == 0
    assert "restored" in capsys.readouterr().out
    meta = os.listdir(os.path.join(data_dir, "meta"))
    assert any(n.startswith("jay.db.before-restore-") for n in meta)

    svc = await start_service(data_dir)
    try:
        # The restored records come back; the ones whose files went since are quarantined
        # (never served with the wrong bytes); files the backup does not know are moved aside.
        assert [o.key for o in (await svc.list_objects("b-1")).objects] == []
        reasons = {q.info.key: q.reason for q in await svc.list_quarantined()}
        assert reasons == {
            "before": "file missing at startup",
            "changed": "file missing at startup",
        }
        assert await svc.bucket_stats("b-1") == BucketStats(object_count=0, total_size_bytes=0)
        assert files_under(os.path.join(data_dir, "buckets")) == []
        assert len(files_under(os.path.join(data_dir, "quarantine"))) == 2
        await put(svc, "b-1", "fresh", b"writes work")
        assert await read(svc, "b-1", "fresh") == b"writes work"
    finally:
        await stop_service(svc)


@pytest_twisted.ensureDeferred
async def test_restore_latest_keeps_untouched_objects(data_dir: str) -> None:
    svc = await start_service(data_dir)
    try:
        account = await svc.create_account("a")
        await svc.create_bucket("b-1", account.account_id)
        await put(svc, "b-1", "stable", b"unchanged since the backup")
        await svc.create_backup()
        await put(svc, "b-1", "later", b"written later")
    finally:
        await stop_service(svc)
    assert restore.main(["--data-dir", data_dir, "--latest"]) == 0
    svc = await start_service(data_dir)
    try:
        assert await read(svc, "b-1", "stable", verify=True) == b"unchanged since the backup"
        assert [o.key for o in (await svc.list_objects("b-1")).objects] == ["stable"]
        assert await svc.bucket_stats("b-1") == BucketStats(object_count=1, total_size_bytes=26)
    finally:
        await stop_service(svc)


def test_restore_refuses_a_damaged_backup(tmp_path: Any) -> None:
    bad = tmp_path / "jay-20250101T000000Z.db"
    bad.write_bytes(b"not a database" * 100)
    assert restore.main(["--data-dir", str(tmp_path / "data"), "--backup", str(bad)]) == 1
    assert not (tmp_path / "data" / "meta" / "jay.db").exists()
