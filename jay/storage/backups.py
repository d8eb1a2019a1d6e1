"""Metadata snapshots: online backup, rotation and restore (JAY_SPEC §7.4, with its gaps fixed).

``create_backup`` copies the live database with SQLite's online backup API on its own
connection: the copy is one consistent snapshot (a WAL reader never blocks writers), so the
server keeps serving. Object files are not part of a backup: after a restore, startup recovery
reconciles records and files (records whose file is gone are quarantined, files no record knows
are moved to ``quarantine/``, counters are rebuilt).

All functions are synchronous; the service runs them on its blob pool.
"""

from __future__ import annotations

import calendar
import os
import re
import sqlite3
import time
from dataclasses import dataclass

from jay.storage.blobs import FILE_MODE, fsync_dir, make_dirs
from jay.storage.sqlite import BUSY_TIMEOUT_MS

BACKUP_NAME = re.compile(r"^jay-(\d{8}T\d{6}Z)(?:-(\d+))?\.db$")
# SQLite files that belong to a database besides the main file.
SIDE_FILES = ("-wal", "-shm", "-journal")


@dataclass(frozen=True, slots=True, kw_only=True)
class BackupFile:
    path: str
    name: str
    created_at: float  # from the name (UTC), not the mtime: copies keep their meaning


def backup_name(now: float) -> str:
    return time.strftime("jay-%Y%m%dT%H%M%SZ.db", time.gmtime(now))


def _fsync_path(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def create_backup(db_path: str, backups_dir: str, now: float) -> str:
    """Snapshot ``db_path`` into ``backups_dir/jay-YYYYMMDDTHHMMSSZ.db`` (0600, fsynced).

    Written to a ``.partial`` name first and renamed, so a crash never leaves a half backup under
    a backup's name.
    """
    make_dirs(backups_dir)
    name = backup_name(now)
    final = os.path.join(backups_dir, name)
    suffix = 1
    while os.path.exists(final):  # two backups within one second
        name = backup_name(now).replace(".db", f"-{suffix}.db")
        final = os.path.join(backups_dir, name)
        suffix += 1
    partial = final + ".partial"
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    os.close(fd)
    try:
        source = sqlite3.connect(db_path, timeout=BUSY_TIMEOUT_MS / 1000)
        try:
            target = sqlite3.connect(partial)
            try:
                source.backup(target)
            finally:
                target.close()
        finally:
            source.close()
        _fsync_path(partial)
        os.rename(partial, final)
        fsync_dir(backups_dir)
    except BaseException:
        try:
            os.unlink(partial)
        except OSError:
            pass
        raise
    return final


def list_backups(backups_dir: str) -> list[BackupFile]:
    """Backups in ``backups_dir``, oldest first."""
    found = []
    try:
        names = os.listdir(backups_dir)
    except FileNotFoundError:
        return []
    for name in names:
        match = BACKUP_NAME.match(name)
        path = os.path.join(backups_dir, name)
        if match is None or not os.path.isfile(path):
            continue
        stamp = time.strptime(match.group(1), "%Y%m%dT%H%M%SZ")
        created = float(calendar.timegm(stamp))
        found.append(BackupFile(path=path, name=name, created_at=created))
    found.sort(key=lambda b: (b.created_at, b.name))
    return found


def prune_backups(backups_dir: str, *, keep: int, max_age_seconds: float, now: float) -> list[str]:
    """Keep at most ``keep`` backups, and none older than ``max_age_seconds`` — except that the
    newest backup is never deleted, so pruning cannot leave zero snapshots. Returns the names
    removed."""
    backups = list_backups(backups_dir)
    if not backups:
        return []
    newest = backups[-1]
    keep = max(1, keep)
    survivors = {b.name for b in backups[-keep:]}
    removed = []
    for backup in backups:
        is_expired = now - backup.created_at > max_age_seconds
        if backup is newest:
            continue
        if backup.name in survivors and not is_expired:
            continue
        try:
            os.unlink(backup.path)
            removed.append(backup.name)
        except FileNotFoundError:
            continue
    # Leftovers of a crash during create_backup.
    for name in os.listdir(backups_dir):
        if name.endswith(".partial"):
            path = os.path.join(backups_dir, name)
            if os.path.getmtime(path) < now - 3600:
                os.unlink(path)
    if removed:
        fsync_dir(backups_dir)
    return removed


def check_backup(backup_path: str) -> None:
    """Raise ValueError unless ``backup_path`` is an intact jay metadata database."""
    try:
        conn = sqlite3.connect(f"file:{backup_path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise ValueError(f"cannot open backup: {exc}") from exc
    try:
        (result,) = conn.execute("PRAGMA integrity_check").fetchone()
        if result != "ok":
            raise ValueError(f"backup fails integrity_check: {result}")
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not {"buckets", "objects", "accounts", "tokens"} <= tables:
            raise ValueError("not a jay metadata database")
    except sqlite3.Error as exc:
        raise ValueError(f"cannot read backup: {exc}") from exc
    finally:
        conn.close()


def restore_backup(data_dir: str, backup_path: str, *, now: float | None = None) -> str | None:
    """Replace ``<data_dir>/meta/jay.db`` with a copy of ``backup_path``. The server must be
    stopped. The current database (with its WAL) is kept as ``jay.db.before-restore-<stamp>``;
    returns that path, or None when there was no database.

    Order: check the backup → copy it to ``jay.db.restoring`` and fsync → move the current
    database and its -wal/-shm aside (a stale WAL would otherwise be replayed onto the restored
    file) → rename the copy to ``jay.db`` → fsync ``meta/``. Start the server afterwards: its
    recovery reconciles records and object files.
    """
    check_backup(backup_path)
    meta_dir = os.path.join(os.path.abspath(data_dir), "meta")
    make_dirs(meta_dir)
    db_path = os.path.join(meta_dir, "jay.db")
    staging = db_path + ".restoring"
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        with open(backup_path, "rb") as source:
            while chunk := source.read(1 << 20):
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    previous: str | None = None
    if os.path.exists(db_path):
        previous = f"{db_path}.before-restore-{stamp}"
        os.rename(db_path, previous)
    for side in SIDE_FILES:
        if os.path.exists(db_path + side):
            os.rename(db_path + side, f"{db_path}.before-restore-{stamp}{side}")
    os.rename(staging, db_path)
    fsync_dir(meta_dir)
    return previous
