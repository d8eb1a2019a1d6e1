"""StoragePools.blob_then_write: a blob job whose thread queues the metadata write itself (no
return to the reactor in between), and StorageService's PUT built on it: a placement that
fails writes nothing, a commit that fails removes the placed file."""

from __future__ import annotations

import os
import sqlite3
import threading
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor

from jay.errors import PreconditionFailed, StorageIOError
from jay.storage import blobs
from jay.storage.api import ObjectAttributes, WriteCondition
from jay.storage.pools import BlobStepFailed

from .conftest import put, read, rows, stage, start_pools


class Boom(Exception):
    pass


class CountingReactor:
    """The reactor, counting the results threads hand back to it."""

    def __init__(self) -> None:
        self.handed_back: list[Any] = []

    def callFromThread(self, fn: Any, *args: Any) -> None:  # noqa: N802 - twisted's name
        self.handed_back.append(getattr(fn, "__name__", fn))
        reactor.callFromThread(fn, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(reactor, name)


@pytest_twisted.ensureDeferred
async def test_the_blob_thread_queues_the_write_without_the_reactor(tmp_path: Any) -> None:
    counting = CountingReactor()
    p, database = start_pools(tmp_path, counting)
    try:
        events: list[tuple[str, str]] = []

        def place(name: str) -> None:
            events.append(("blob", threading.current_thread().name))

        def commit(conn: sqlite3.Connection, name: str) -> str:
            events.append(("write", threading.current_thread().name))
            conn.execute("INSERT INTO t (k, v) VALUES (?, 1)", (name,))
            return name

        assert await p.blob_then_write(place, ("a",), commit, ("a",)) == "a"
        assert [e[0] for e in events] == ["blob", "write"]
        assert events[0][1].startswith("jay-blob-io")
        assert events[1][1].startswith("jay-meta-writer")
        # One hand-back (the writer's answer); the blob thread queued the write itself.
        assert counting.handed_back == ["_deliver"]
        counting.handed_back.clear()
        await p.blob(place, "b")
        await p.write(commit, "b")
        assert len(counting.handed_back) == 2  # what the same steps cost separately
        assert rows(database) == {"a": 1, "b": 1}
    finally:
        p.stop()


@pytest_twisted.ensureDeferred
async def test_a_failed_blob_step_writes_nothing(pools: Any) -> None:
    p, database = pools
    written: list[str] = []

    def place() -> None:
        raise Boom("disk")

    def commit(conn: sqlite3.Connection) -> None:
        written.append("commit")

    with pytest.raises(BlobStepFailed) as caught:
        await p.blob_then_write(place, (), commit, ())
    assert caught.value.failure.check(Boom)
    assert written == []
    assert rows(database) == {}


@pytest_twisted.ensureDeferred
async def test_a_failed_write_fails_as_itself(pools: Any) -> None:
    p, database = pools

    def commit(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t (k, v) VALUES ('x', 1)")
        raise Boom("constraint")

    with pytest.raises(Boom):
        await p.blob_then_write(lambda: None, (), commit, ())
    assert rows(database) == {}


def object_files(data_dir: str) -> list[str]:
    found = []
    for top, _, names in os.walk(os.path.join(data_dir, "buckets")):
        found.extend(os.path.join(top, n) for n in names)
    return sorted(found)


@pytest_twisted.ensureDeferred
async def test_a_put_whose_commit_fails_leaves_no_file(
    svc: Any, bucket: str, data_dir: str
) -> None:
    await put(svc, bucket, "k", b"old")
    before = object_files(data_dir)
    staged = await stage(svc, b"new")
    with pytest.raises(PreconditionFailed):
        await svc.put_object(
            bucket,
            "k",
            staged,
            ObjectAttributes(),
            condition=WriteCondition(if_none_match_star=True),
        )
    assert object_files(data_dir) == before
    assert await read(svc, bucket, "k") == b"old"


@pytest_twisted.ensureDeferred
async def test_a_put_whose_placement_fails_raises_the_storage_error(
    svc: Any, bucket: str, data_dir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await put(svc, bucket, "k", b"old")
    before = object_files(data_dir)

    def broken(*args: Any) -> Any:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(blobs, "os_fsync", broken)
    with pytest.raises(StorageIOError):
        await put(svc, bucket, "k", b"new")
    monkeypatch.undo()
    assert object_files(data_dir) == before
    assert await read(svc, bucket, "k") == b"old"


def test_a_write_queued_by_a_blob_job_during_stop_still_runs(tmp_path: Any) -> None:
    """stop() joins the blob threads before the writer: a placement still running when the
    service stops queues its commit, and the writer runs it before it stops."""
    p, database = start_pools(tmp_path)
    placing = threading.Event()
    release = threading.Event()

    def place() -> None:
        placing.set()
        assert release.wait(10)

    def commit(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t (k, v) VALUES ('late', 1)")

    p.blob_then_write(place, (), commit, ())
    assert placing.wait(10)
    # Released only once stop() is under way (it waits for the blob thread first).
    timer = threading.Timer(0.2, release.set)
    timer.start()
    p.stop()
    timer.join()
    assert rows(database) == {"late": 1}
