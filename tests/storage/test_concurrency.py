"""Concurrent writers and readers on one key: never a torn object; conditional writes are CAS.

JAY_SPEC §6.2 (temp -> fsync -> rename -> commit) and WriteCondition in jay.storage.api.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import pytest
import pytest_twisted
from twisted.internet.defer import Deferred, DeferredList, gatherResults

from jay.errors import NoSuchKey, PreconditionFailed
from jay.storage.api import ObjectAttributes, WriteCondition

from .conftest import (
    CollectingConsumer,
    md5_hex,
    object_files,
    put,
    read,
    sha256_hex,
    stage,
    start_service,
    stop_service,
    tmp_files,
    turns,
)

WRITERS = 8
CHUNKS = 16
CHUNK_SIZE = 16 * 1024


def body_for(writer: int, round_no: int) -> bytes:
    """A distinct body per writer and round whose every chunk names its writer."""
    seed = hashlib.sha256(b"%d/%d" % (writer, round_no)).digest()
    return b"".join(
        (seed + b"%02d:%02d|" % (writer, c)) * (CHUNK_SIZE // 40) for c in range(CHUNKS)
    )


async def staged_interleaved(svc: Any, bodies: list[bytes]) -> list[Any]:
    """Stream several bodies at once, one chunk of each in turn, yielding to the reactor."""
    writers = [svc.begin_write() for _ in bodies]
    size = len(bodies[0]) // CHUNKS
    for c in range(CHUNKS):
        for writer, body in zip(writers, bodies, strict=True):
            writer.write(body[c * size : (c + 1) * size])
        await turns(1)
    return list(await gatherResults([w.finish() for w in writers]))


async def read_verified(svc: Any, bucket: str, key: str) -> bytes:
    opened = await svc.open_object(bucket, key)
    consumer = CollectingConsumer()
    await opened.stream(consumer)
    data = bytes(consumer.data)
    # The bytes belong to the record they were opened with.
    assert len(data) == opened.info.size
    assert sha256_hex(data) == opened.info.sha256_hex
    assert md5_hex(data) == opened.info.etag
    return data


@pytest_twisted.ensureDeferred
async def test_concurrent_writers_never_tear(svc: Any, bucket: str, data_dir: str) -> None:
    key = "contended"
    seen_bodies: set[bytes] = set()
    initial = b"initial"
    await put(svc, bucket, key, initial)
    allowed = {initial}
    for round_no in range(3):
        bodies = [body_for(w, round_no) for w in range(WRITERS)]
        assert len(set(bodies)) == WRITERS
        allowed |= set(bodies)
        staged = await staged_interleaved(svc, bodies)
        for blob, body in zip(staged, bodies, strict=True):
            assert blob.sha256_hex == sha256_hex(body)
            assert blob.size == len(body)
        puts = [
            svc.put_object(bucket, key, blob, ObjectAttributes(metadata={"w": str(i)}))
            for i, blob in enumerate(staged)
        ]
        # Readers race the writers; every read is one whole version.
        reads = [read_verified(svc, bucket, key) for _ in range(WRITERS)]
        results = await gatherResults(
            puts + [Deferred.fromCoroutine(r) for r in reads], consumeErrors=True
        )
        infos, read_bodies = results[:WRITERS], results[WRITERS:]
        for data in read_bodies:
            assert data in allowed
            seen_bodies.add(data)
        for info, body in zip(infos, bodies, strict=True):
            assert info.etag == md5_hex(body)
            assert info.sha256_hex == sha256_hex(body)
        final = await read_verified(svc, bucket, key)
        assert final in bodies
        head = await svc.get_object_info(bucket, key)
        winner = bodies.index(final)
        assert head.attributes.metadata == {"w": str(winner)}
        assert head.size == len(final)
        assert head.etag == md5_hex(final)
        assert head.sha256_hex == sha256_hex(final)
        # Exactly one object file remains: the losers' and the old files were removed.
        assert len(object_files(data_dir)) == 1
        assert tmp_files(data_dir) == []
        stats = await svc.bucket_stats(bucket)
        assert (stats.object_count, stats.total_size_bytes) == (1, len(final))
    assert seen_bodies  # the readers did read something


@pytest_twisted.ensureDeferred
async def test_if_none_match_star_sequential(svc: Any, bucket: str, data_dir: str) -> None:
    only_new = WriteCondition(if_none_match_star=True)
    await put(svc, bucket, "k", b"first", condition=only_new)
    with pytest.raises(PreconditionFailed):
        await put(svc, bucket, "k", b"second", condition=only_new)
    assert await read(svc, bucket, "k") == b"first"
    assert tmp_files(data_dir) == []
    assert len(object_files(data_dir)) == 1
    await svc.delete_object(bucket, "k")
    await put(svc, bucket, "k", b"third", condition=only_new)
    assert await read(svc, bucket, "k") == b"third"


@pytest_twisted.ensureDeferred
async def test_if_none_match_star_concurrent_single_winner(
    svc: Any, bucket: str, data_dir: str
) -> None:
    for round_no in range(3):
        key = f"once-{round_no}"
        bodies = [b"candidate %d of round %d" % (i, round_no) for i in range(10)]
        staged = [await stage(svc, body) for body in bodies]
        results = await DeferredList(
            [
                svc.put_object(
                    bucket,
                    key,
                    blob,
                    ObjectAttributes(),
                    condition=WriteCondition(if_none_match_star=True),
                )
                for blob in staged
            ],
            consumeErrors=True,
        )
        winners = [i for i, (ok, _) in enumerate(results) if ok]
        assert len(winners) == 1, results
        for ok, value in results:
            if not ok:
                assert value.check(PreconditionFailed), value
        assert await read(svc, bucket, key) == bodies[winners[0]]
    assert tmp_files(data_dir) == []
    assert len(object_files(data_dir)) == 3


@pytest_twisted.ensureDeferred
async def test_if_match_compare_and_swap(svc: Any, bucket: str, data_dir: str) -> None:
    with pytest.raises(NoSuchKey):
        await put(svc, bucket, "k", b"v0", condition=WriteCondition(if_match=md5_hex(b"v0")))
    assert tmp_files(data_dir) == []
    v1 = await put(svc, bucket, "k", b"v1")
    v2 = await put(svc, bucket, "k", b"v2", condition=WriteCondition(if_match=v1.etag))
    assert v2.etag == md5_hex(b"v2")
    with pytest.raises(PreconditionFailed):
        await put(svc, bucket, "k", b"v3", condition=WriteCondition(if_match=v1.etag))
    assert await read(svc, bucket, "k") == b"v2"
    with pytest.raises(PreconditionFailed):
        await put(
            svc, bucket, "k", b"v3", condition=WriteCondition(if_match=md5_hex(b"something else"))
        )
    assert tmp_files(data_dir) == []
    assert len(object_files(data_dir)) == 1


@pytest_twisted.ensureDeferred
async def test_if_match_concurrent_single_winner(svc: Any, bucket: str, data_dir: str) -> None:
    current = await put(svc, bucket, "counter", b"0")
    for step in range(1, 4):
        bodies = [b"%d from writer %d" % (step, i) for i in range(8)]
        staged = [await stage(svc, body) for body in bodies]
        results = await DeferredList(
            [
                svc.put_object(
                    bucket,
                    "counter",
                    blob,
                    ObjectAttributes(),
                    condition=WriteCondition(if_match=current.etag),
                )
                for blob in staged
            ],
            consumeErrors=True,
        )
        winners = [value for ok, value in results if ok]
        assert len(winners) == 1, results
        for ok, value in results:
            if not ok:
                assert value.check(PreconditionFailed), value
        current = winners[0]
        assert (
            await read(svc, bucket, "counter")
            == bodies[[md5_hex(b) for b in bodies].index(current.etag)]
        )
    assert tmp_files(data_dir) == []
    assert len(object_files(data_dir)) == 1


@pytest_twisted.ensureDeferred
async def test_concurrent_puts_to_distinct_keys(svc: Any, bucket: str) -> None:
    bodies = {f"key-{i:02d}": os.urandom(1000 + i) for i in range(40)}
    staged = {k: await stage(svc, v) for k, v in bodies.items()}
    await gatherResults(
        [svc.put_object(bucket, k, s, ObjectAttributes()) for k, s in staged.items()]
    )
    page = await svc.list_objects(bucket)
    assert [o.key for o in page.objects] == sorted(bodies)
    for o in page.objects:
        assert o.etag == md5_hex(bodies[o.key])
        assert o.size == len(bodies[o.key])
    stats = await svc.bucket_stats(bucket)
    assert stats.object_count == 40
    assert stats.total_size_bytes == sum(len(v) for v in bodies.values())


@pytest_twisted.ensureDeferred
async def test_two_services_on_one_directory_share_the_lock(
    svc: Any, bucket: str, data_dir: str
) -> None:
    """Several processes may share a data directory: the database transaction is the lock, so
    conditional writes from two services are still decided once (STYLE.md, Threads)."""
    other = await start_service(data_dir)
    try:
        await put(svc, bucket, "from-one", b"1")
        assert await read(other, bucket, "from-one") == b"1"
        for round_no in range(3):
            key = f"race-{round_no}"
            staged = []
            for i in range(6):
                service = svc if i % 2 == 0 else other
                staged.append((service, await stage(service, b"writer %d" % i)))
            results = await DeferredList(
                [
                    service.put_object(
                        bucket,
                        key,
                        blob,
                        ObjectAttributes(),
                        condition=WriteCondition(if_none_match_star=True),
                    )
                    for service, blob in staged
                ],
                consumeErrors=True,
            )
            winners = [value for ok, value in results if ok]
            assert len(winners) == 1, results
            for ok, value in results:
                if not ok:
                    assert value.check(PreconditionFailed), value
            assert await read(svc, bucket, key) == await read(other, bucket, key)
        stats = await other.bucket_stats(bucket)
        assert stats.object_count == 4
    finally:
        await stop_service(other)
    assert tmp_files(data_dir) == []
    assert len(object_files(data_dir)) == 4
