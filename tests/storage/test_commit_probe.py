"""The writer reads the cache generations right after its commit (``commit_probe``), so the
reactor needs no query of its own while the commit token stays where the writer left it.

Whatever the shortcut, the generations a request sees must be the database's: a change made
through another process (a second service on the same data directory) is seen at once.
"""

from __future__ import annotations

from typing import Any

import pytest_twisted

from jay.storage import metadata

from .conftest import put


def queries(svc: Any) -> list[int]:
    """Count the reactor's generation queries on ``svc`` from now on."""
    counted: list[int] = []
    pools = svc._pools
    run_inline = pools.run_inline

    def counting(fn: Any, *args: Any) -> Any:
        if fn is metadata.get_cache_generations:
            counted.append(1)
        return run_inline(fn, *args)

    pools.run_inline = counting
    return counted


@pytest_twisted.ensureDeferred
async def test_after_own_commit_the_generations_come_from_the_writer(svc: Any, bucket: str) -> None:
    svc._current_generations()  # maps the commit watch the writer reads
    await put(svc, bucket, "a", b"x")
    token, generations = svc._pools.probed
    assert token == svc._pools.data_version()
    assert generations == svc._pools.run_inline(metadata.get_cache_generations)
    counted = queries(svc)
    assert svc._current_generations() == generations
    assert counted == []  # no query: the probe stood for it
    await put(svc, bucket, "b", b"y")
    token, generations = svc._pools.probed
    assert token == svc._pools.data_version()
    assert generations.objects > 0
    assert svc._current_generations() == generations
    assert counted == []


@pytest_twisted.ensureDeferred
async def test_the_writer_publishes_the_probe_before_it_hands_the_results_over(
    svc: Any, bucket: str
) -> None:
    """Under load the writer commits the next batch before the reactor runs the callbacks of
    this one: a probe published with the results would be stale by then."""
    svc._current_generations()
    pools = svc._pools
    reactor = pools._reactor
    at_handover: list[Any] = []

    class Recording:
        def callFromThread(self, fn: Any, *args: Any) -> None:  # noqa: N802 - twisted's name
            at_handover.append(pools.probed)
            reactor.callFromThread(fn, *args)

        def __getattr__(self, name: str) -> Any:
            return getattr(reactor, name)

    pools._reactor = Recording()
    try:
        await put(svc, bucket, "a", b"x")
    finally:
        pools._reactor = reactor
    assert at_handover, "the writer handed no results over"
    token, generations = at_handover[-1]
    assert token == pools.data_version()
    assert generations == pools.run_inline(metadata.get_cache_generations)


@pytest_twisted.ensureDeferred
async def test_a_change_by_another_process_is_seen_at_once(
    svc: Any, bucket: str, other: Any
) -> None:
    svc._current_generations()
    await put(svc, bucket, "a", b"x")
    before = svc._current_generations()
    counted = queries(svc)
    await other.set_bucket_policy(bucket, None)  # bumps the buckets generation
    after = svc._current_generations()
    assert after is not None and before is not None
    assert after[1] > before[1]
    assert counted == [1]  # the token moved past the probe's: asked the database


@pytest_twisted.ensureDeferred
async def test_a_probe_overtaken_by_another_commit_is_not_published(
    svc: Any, bucket: str, other: Any
) -> None:
    svc._current_generations()
    stale = svc._pools.probed
    conn = other._pools._inline_connection()

    def commit_meanwhile(writer_conn: Any) -> Any:
        generations = metadata.get_cache_generations(writer_conn)
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "UPDATE generations SET value = value + 1 WHERE name = ?",
            (metadata.BUCKETS_GENERATION,),
        )
        conn.execute("COMMIT")
        return generations

    svc._pools.commit_probe = commit_meanwhile
    await put(svc, bucket, "a", b"x")
    assert svc._pools.probed == stale  # the overtaken probe was dropped
    generations = svc._current_generations()
    assert generations == svc._pools.run_inline(metadata.get_cache_generations)
