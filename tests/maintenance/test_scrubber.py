"""Scrubber schedule, throttle and resume on a task.Clock (disk and database work is real)."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest_twisted
from twisted.internet import task
from twisted.internet.defer import Deferred

from jay.config.model import BackupSettings, GCSettings, ScrubSettings
from jay.maintenance.scrubber import Scrubber
from jay.maintenance.service import MaintenanceService
from tests.storage.conftest import put, start_service, stop_service, turns, wait_until


async def drive(clock: task.Clock, d: Deferred[Any], step: float, limit: int = 100) -> int:
    """Advance ``clock`` by ``step`` whenever the work waits on it; returns the advances."""
    advances = 0
    deadline = time.monotonic() + 20
    while not d.called:
        assert time.monotonic() < deadline, "work did not finish"
        if clock.getDelayedCalls():
            clock.advance(step)
            advances += 1
            assert advances <= limit
        await turns(1)
    return advances


@pytest_twisted.ensureDeferred
async def test_throttle_sleeps_on_the_clock_and_stop_resumes_after_last_record(
    svc: Any, bucket_info: Any
) -> None:
    await put(svc, "bkt", "a", os.urandom(50_000))
    await put(svc, "bkt", "b", os.urandom(500_000))
    await put(svc, "bkt", "c", os.urandom(10))
    settings = ScrubSettings(sample_rate=1.0, bytes_per_sec=100_000, max_per_run=100)
    clock = task.Clock()
    scrubber = Scrubber(svc, settings, clock=clock)
    assert scrubber.chunk_size == 100_000

    running = scrubber.run_pass()
    # "a" fits the burst; the first chunk of "b" overdraws the bucket: the pass sleeps.
    await wait_until(lambda: bool(clock.getDelayedCalls()))
    assert scrubber.limiter.seconds_slept == 0.5
    assert not running.called
    assert await svc.get_scrub_cursor(bucket_info.bucket_id) == "a"
    # Stopping (cancelling) the pass mid-object keeps the cursor after the last whole record.
    cancelled: list[Any] = []
    running.addErrback(cancelled.append)
    running.cancel()
    await turns(3)
    assert len(cancelled) == 1
    assert await svc.get_scrub_cursor(bucket_info.bucket_id) == "a"

    clock2 = task.Clock()
    scrubber2 = Scrubber(svc, settings, clock=clock2)
    resumed = scrubber2.run_pass()
    # The slice resumes at "b" and wraps to "a" last: 550 010 bytes at 100 000 B/s with a
    # 100 000-byte burst cannot finish before 4.5 s of clock time have passed.
    advances = await drive(clock2, resumed, 0.25)
    result = resumed.result
    assert result.checked == 3 and result.healthy == 3
    assert result.bytes_scanned == 550_010
    assert clock2.seconds() >= (550_010 - 100_000) / 100_000
    assert clock2.seconds() <= 4.5 + 1.0  # and it does not sleep much longer than needed
    assert advances == round(clock2.seconds() / 0.25)


@pytest_twisted.ensureDeferred
async def test_sample_rate_rotates_through_the_key_space_and_survives_restart(
    data_dir: str,
) -> None:
    svc = await start_service(data_dir)
    account = await svc.create_account("a")
    bucket = await svc.create_bucket("bkt", account.account_id)
    for i in range(10):
        await put(svc, "bkt", f"k{i}", f"body {i}".encode())
    settings = ScrubSettings(sample_rate=0.3, bytes_per_sec=0, max_per_run=100)
    cursors = []
    wrapped = []
    try:
        for pass_number in range(4):
            if pass_number == 2:  # a restart between passes: the cursor is in the database
                await stop_service(svc)
                svc = await start_service(data_dir)
            result = await Scrubber(svc, settings, clock=task.Clock()).run_pass()
            assert result.checked == 3  # ceil(10 × 0.3)
            cursors.append(await svc.get_scrub_cursor(bucket.bucket_id))
            wrapped.append(result.buckets_wrapped)
    finally:
        await stop_service(svc)
    # ceil(1 / 0.3) = 4 passes cover k0..k9; the 4th wraps around to the start.
    assert cursors == ["k2", "k5", "k8", "k1"]
    assert wrapped == [0, 0, 0, 1]


@pytest_twisted.ensureDeferred
async def test_max_per_run_caps_the_slice(svc: Any, bucket_info: Any) -> None:
    for i in range(6):
        await put(svc, "bkt", f"k{i}", b"x")
    settings = ScrubSettings(sample_rate=1.0, bytes_per_sec=0, max_per_run=4)
    first = await Scrubber(svc, settings, clock=task.Clock()).run_pass()
    second = await Scrubber(svc, settings, clock=task.Clock()).run_pass()
    assert (first.checked, first.buckets_wrapped) == (4, 0)
    assert (second.checked, second.buckets_wrapped) == (4, 1)  # k4, k5, then k0, k1
    assert await svc.get_scrub_cursor(bucket_info.bucket_id) == "k1"


@pytest_twisted.ensureDeferred
async def test_maintenance_schedule(svc: Any, bucket_info: Any, data_dir: str) -> None:
    await put(svc, "bkt", "k", b"data")
    clock = task.Clock()
    maintenance = MaintenanceService(
        svc,
        scrub=ScrubSettings(interval_hours=6, sample_rate=1.0, bytes_per_sec=0),
        gc=GCSettings(interval_minutes=15),
        backup=BackupSettings(interval_hours=1, keep=2),
        clock=clock,
    )
    maintenance.startService()
    try:
        clock.advance(29)
        await turns(3)
        assert maintenance.scrub_task.passes_completed == 0
        clock.advance(1)  # first scrub 30 s after start
        await wait_until(lambda: maintenance.scrub_task.passes_completed == 1)
        assert maintenance.scrub_task.last_result.checked == 1
        clock.advance(30)  # first GC 60 s after start
        await wait_until(lambda: maintenance.gc_task.passes_completed == 1)
        # Walk to just before the second scrub (6 h after the first one ended, at t=30 s) in
        # GC-sized steps, letting each pass finish before the next step.
        while clock.seconds() + 900 < 30 + 6 * 3600:
            clock.advance(900)
            await wait_until(
                lambda: (
                    not (
                        maintenance.gc_task.is_pass_running
                        or maintenance.backup_task.is_pass_running
                    )
                )
            )
        clock.advance(30 + 6 * 3600 - 1 - clock.seconds())
        await turns(3)
        assert maintenance.scrub_task.passes_completed == 1
        clock.advance(1)
        await wait_until(lambda: maintenance.scrub_task.passes_completed == 2)
        # GC ran every 15 minutes, a backup every hour (each timer restarts after its pass).
        assert maintenance.gc_task.passes_completed == 24
        assert maintenance.backup_task.passes_completed == 5
        assert os.listdir(os.path.join(data_dir, "backups"))
    finally:
        await maintenance.stopService()
    assert not clock.getDelayedCalls()
