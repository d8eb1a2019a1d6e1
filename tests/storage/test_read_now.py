"""Reads on the reactor thread (StoragePools.read_now) and their fallback to a reader thread."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor

from jay.storage.pools import StoragePools
from jay.storage.sqlite import SQLiteDatabase


@pytest.fixture
def pools(tmp_path: Any) -> Any:
    database = SQLiteDatabase(str(tmp_path / "jay.db"))
    setup = database.connect()
    setup.execute("CREATE TABLE t (x INTEGER)")
    setup.execute("INSERT INTO t VALUES (7)")
    setup.close()
    p = StoragePools(reactor, reader_threads=1, blob_threads=1)
    p.open_database(database)
    p.start()
    yield p, database
    p.stop()


def _read(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT x FROM t").fetchone()[0])


def test_read_now_answers_synchronously(pools: Any) -> None:
    p, _ = pools
    d = p.read_now(_read)
    assert d.called and d.result == 7


@pytest_twisted.ensureDeferred
async def test_a_locked_database_hands_the_read_to_a_reader_thread(
    pools: Any, monkeypatch: Any
) -> None:
    p, _ = pools
    threads: list[str] = []

    def locked_inline(fn: Any, *args: Any) -> Any:
        threads.append("reactor")
        raise sqlite3.OperationalError("database is locked")

    def read_in_thread(conn: sqlite3.Connection) -> int:
        threads.append("reader")
        return _read(conn)

    monkeypatch.setattr(p, "run_inline", locked_inline)
    d = p.read_now(read_in_thread)
    assert await d == 7
    assert threads == ["reactor", "reader"]


def test_other_errors_fail_the_deferred(pools: Any) -> None:
    p, _ = pools

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("SELECT * FROM missing")

    d = p.read_now(broken)
    assert d.called
    failures: list[Any] = []
    d.addErrback(failures.append)
    assert failures and failures[0].check(sqlite3.OperationalError)
