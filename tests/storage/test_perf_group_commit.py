"""Group commit on the metadata writer (jay.storage.pools): writes queued while the writer is
busy share one BEGIN IMMEDIATE … COMMIT, each in its own SAVEPOINT, and every caller is
answered only after that COMMIT."""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

import pytest
import pytest_twisted
from twisted.internet.defer import Deferred, DeferredList

from jay.storage.pools import StoragePools

from .conftest import rows


class Boom(Exception):
    pass


def insert(conn: sqlite3.Connection, key: str, value: int) -> str:
    conn.execute("INSERT INTO t (k, v) VALUES (?, ?)", (key, value))
    return key


def insert_then_fail(conn: sqlite3.Connection, key: str) -> None:
    conn.execute("INSERT INTO t (k, v) VALUES (?, 0)", (key,))
    raise Boom(key)


def block_writer(pools: StoragePools) -> tuple[threading.Event, Deferred[Any]]:
    """Occupy the writer thread until the returned event is set."""
    release = threading.Event()

    def wait(conn: sqlite3.Connection) -> None:
        assert release.wait(10)

    return release, pools.write(wait)


@pytest_twisted.ensureDeferred
async def test_queued_writes_share_one_commit(pools: Any) -> None:
    p, database = pools
    release, first = block_writer(p)
    pending = [p.write(insert, f"k{i}", i) for i in range(20)]
    commits_before = p.commits
    release.set()
    await first
    results = await DeferredList(pending, fireOnOneErrback=True, consumeErrors=True)
    assert [r for _, r in results] == [f"k{i}" for i in range(20)]
    # The 20 writes queued behind the blocked one went out in a single transaction.
    assert p.commits - commits_before <= 2
    assert rows(database) == {f"k{i}": i for i in range(20)}


@pytest_twisted.ensureDeferred
async def test_a_failing_write_fails_alone(pools: Any) -> None:
    p, database = pools
    release, first = block_writer(p)
    good1 = p.write(insert, "a", 1)
    bad = p.write(insert_then_fail, "b")
    duplicate = p.write(insert, "a", 2)  # primary key violation: an SQLite error
    good2 = p.write(insert, "c", 3)
    release.set()
    await first
    assert await good1 == "a"
    assert await good2 == "c"
    with pytest.raises(Boom):
        await bad
    with pytest.raises(sqlite3.IntegrityError):
        await duplicate
    # The failed functions' statements were rolled back to their savepoints.
    assert rows(database) == {"a": 1, "c": 3}


@pytest_twisted.ensureDeferred
async def test_callers_are_answered_after_the_commit(pools: Any) -> None:
    p, database = pools
    seen: list[dict[str, int]] = []
    release, first = block_writer(p)
    pending = [p.write(insert, f"k{i}", i) for i in range(5)]
    for d in pending:
        # Another connection already sees every write of the batch when a caller hears back.
        d.addCallback(lambda _: seen.append(rows(database)))
    release.set()
    await first
    await DeferredList(pending, fireOnOneErrback=True)
    assert seen == [{f"k{i}": i for i in range(5)}] * 5


@pytest_twisted.ensureDeferred
async def test_a_batch_that_cannot_commit_runs_one_by_one(pools: Any) -> None:
    p, database = pools

    def end_transaction(conn: sqlite3.Connection) -> None:
        # Ends the shared transaction under the batch (as SQLite does on SQLITE_FULL).
        conn.execute("ROLLBACK")
        raise Boom("rolled back")

    release, first = block_writer(p)
    before = p.write(insert, "x", 1)
    breaker = p.write(end_transaction)
    after = p.write(insert, "y", 2)
    release.set()
    await first
    assert await before == "x"
    assert await after == "y"
    with pytest.raises((Boom, sqlite3.OperationalError)):
        await breaker
    assert rows(database) == {"x": 1, "y": 2}


@pytest_twisted.ensureDeferred
async def test_writes_keep_their_order(pools: Any) -> None:
    p, database = pools

    def bump(conn: sqlite3.Connection, value: int) -> int:
        conn.execute(
            "INSERT INTO t (k, v) VALUES ('n', ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v",
            (value,),
        )
        return int(conn.execute("SELECT v FROM t WHERE k = 'n'").fetchone()[0])

    release, first = block_writer(p)
    pending = [p.write(bump, i) for i in range(100)]  # more than one batch
    release.set()
    await first
    results = await DeferredList(pending, fireOnOneErrback=True)
    assert [r for _, r in results] == list(range(100))
    assert rows(database) == {"n": 99}
