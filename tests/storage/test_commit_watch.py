"""CommitWatch: "did anyone commit?" from the mapped WAL-index header, without a SQLite call."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import pytest_twisted

from jay.storage.sqlite import (
    WAL_INDEX_HEADER_BYTES,
    WAL_INDEX_VERSION,
    CommitWatch,
    SQLiteDatabase,
    commit_token,
)

from .conftest import put, start_service, stop_service


def header(mx_frame: int, *, version: int = WAL_INDEX_VERSION, is_init: int = 1) -> bytes:
    copy = bytearray(WAL_INDEX_HEADER_BYTES)
    copy[0:4] = version.to_bytes(4, sys.byteorder)
    copy[12] = is_init
    copy[16:20] = mx_frame.to_bytes(4, sys.byteorder)
    return bytes(copy)


def test_token_is_the_header_when_both_copies_agree() -> None:
    assert commit_token(header(5) + header(5)) == header(5)
    assert commit_token(header(5) + header(5)) != commit_token(header(6) + header(6))


def test_torn_or_unknown_headers_give_no_token() -> None:
    assert commit_token(header(6) + header(5)) is None  # a writer between its two copies
    assert commit_token(header(5, version=3007001) * 2) is None
    assert commit_token(header(5, is_init=0) * 2) is None
    assert commit_token(header(5)) is None  # too short


@pytest.fixture
def watched(tmp_path: Any) -> Iterator[tuple[SQLiteDatabase, sqlite3.Connection, CommitWatch]]:
    """A WAL database with a table, our open connection, and a watch on its header."""
    db = SQLiteDatabase(str(tmp_path / "x.db"))
    ours = db.connect()
    ours.execute("CREATE TABLE t (a)")
    watch = CommitWatch.open(db.path)
    assert watch is not None
    try:
        yield db, ours, watch
    finally:
        watch.close()
        ours.close()


def test_commits_change_the_token_and_nothing_else_does(
    watched: tuple[SQLiteDatabase, sqlite3.Connection, CommitWatch],
) -> None:
    db, ours, watch = watched
    before = watch.token()
    ours.execute("SELECT count(*) FROM t").fetchone()
    assert watch.token() == before  # reads commit nothing
    other = db.connect()
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO t VALUES (1)")
    assert watch.token() == before  # not committed yet
    other.execute("ROLLBACK")
    assert watch.token() == before
    other.execute("INSERT INTO t VALUES (2)")
    after_insert = watch.token()
    assert after_insert not in (None, before)
    # A checkpoint that resets the WAL, then a commit that lands on the same frame number
    # as before: the salts differ, so the token does too.
    other.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    other.execute("INSERT INTO t VALUES (3)")
    assert watch.token() not in (None, before, after_insert)
    other.close()


def test_a_commit_by_another_process_changes_the_token(
    watched: tuple[SQLiteDatabase, sqlite3.Connection, CommitWatch],
) -> None:
    db, _, watch = watched
    before = watch.token()
    script = (
        "import sqlite3, sys; c = sqlite3.connect(sys.argv[1], isolation_level=None); "
        "c.execute('INSERT INTO t VALUES (1)')"
    )
    subprocess.run([sys.executable, "-c", script, db.path], check=True)
    assert watch.token() not in (None, before)


def test_no_wal_no_watch(tmp_path: Any) -> None:
    path = str(tmp_path / "rollback.db")
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.execute("CREATE TABLE t (a)")
    assert not os.path.exists(path + "-shm")
    assert CommitWatch.open(path) is None
    conn.close()


@pytest_twisted.ensureDeferred
async def test_storage_version_moves_with_every_commit(data_dir: str) -> None:
    svc = await start_service(data_dir)
    try:
        pools = svc._pools
        account = await svc.create_account("a")
        await svc.create_bucket("b-1", account.account_id)
        first = pools.data_version()
        assert first is not None and pools.data_version() == first
        assert pools._commit_watch is not None  # the header, not the PRAGMA, answered
        await put(svc, "b-1", "k", b"v")
        assert pools.data_version() not in (None, first)
    finally:
        await stop_service(svc)
    assert svc._pools._commit_watch is None  # unmapped when the connections closed
