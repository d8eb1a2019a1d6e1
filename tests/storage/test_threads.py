"""WorkerThreads: results and failures come back on the reactor thread; stop finishes the queue."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import gatherResults

from jay.storage.threads import WorkerThreads


@pytest_twisted.ensureDeferred
async def test_results_and_failures_arrive_on_the_reactor_thread() -> None:
    pool = WorkerThreads(reactor, 3, "t")
    pool.start()
    try:
        main = threading.current_thread()
        seen: list[str] = []

        def job(n: int) -> int:
            seen.append(threading.current_thread().name)
            return n * 2

        results = await gatherResults([pool.defer(job, n) for n in range(50)])
        assert results == [n * 2 for n in range(50)]
        assert set(seen) <= {"t-0", "t-1", "t-2"}

        def boom() -> None:
            raise ValueError("nope")

        d = pool.defer(boom)
        fired_on: list[threading.Thread] = []
        d.addErrback(lambda f: fired_on.append(threading.current_thread()) or f)
        with pytest.raises(ValueError, match="nope"):
            await d
        assert fired_on == [main]
    finally:
        pool.stop()


def test_work_queued_before_start_runs_and_stop_drains_the_queue() -> None:
    pool = WorkerThreads(reactor, 2, "t")
    done: list[int] = []
    running = threading.Semaphore(0)
    gate = threading.Event()

    def held(n: int) -> None:
        running.release()
        assert gate.wait(10)
        done.append(n)

    for n in range(10):
        pool.call(held, n)
    assert done == []  # not started
    pool.start()
    for _ in range(2):  # both threads busy: eight jobs still queued
        assert running.acquire(timeout=10)
    gate.set()
    pool.stop()
    assert sorted(done) == list(range(10))
    assert not any(t.name.startswith("t-") for t in threading.enumerate())


def test_a_failing_background_call_is_logged() -> None:
    from twisted.logger import globalLogPublisher

    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)
    pool = WorkerThreads(reactor, 1, "t")
    pool.start()
    try:
        pool.call(lambda: 1 / 0)
    finally:
        pool.stop()
        globalLogPublisher.removeObserver(events.append)
    failures = [e for e in events if "log_failure" in e]
    assert failures and failures[0]["log_failure"].check(ZeroDivisionError)
