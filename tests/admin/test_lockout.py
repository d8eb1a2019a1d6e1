"""The admin lock-out table (JAY_SPEC §3.12) with an injected clock."""

from __future__ import annotations

from twisted.internet import task

from jay.admin.lockout import AdminLockout


def make(**kwargs: object) -> tuple[task.Clock, AdminLockout]:
    clock = task.Clock()
    clock.advance(1000)
    return clock, AdminLockout(clock, **kwargs)  # type: ignore[arg-type]


def test_locks_at_five_per_ip_only() -> None:
    clock, lockout = make()
    for _ in range(4):
        lockout.record_failure("10.0.0.1")
    assert not lockout.is_locked("10.0.0.1")
    lockout.record_failure("10.0.0.1")
    assert lockout.is_locked("10.0.0.1")
    assert not lockout.is_locked("10.0.0.2")


def test_window_runs_from_the_last_failure() -> None:
    clock, lockout = make()
    for _ in range(5):
        lockout.record_failure("ip")
        clock.advance(100)
    assert lockout.is_locked("ip")  # last failure 100 s ago
    clock.advance(799)
    assert lockout.is_locked("ip")
    clock.advance(1)
    assert not lockout.is_locked("ip")
    assert lockout.failures("ip") == 0  # reset, not merely unlocked
    lockout.record_failure("ip")
    assert lockout.failures("ip") == 1


def test_success_clears() -> None:
    _, lockout = make()
    for _ in range(3):
        lockout.record_failure("ip")
    lockout.record_success("ip")
    assert lockout.failures("ip") == 0
    assert len(lockout) == 0


def test_sweep_runs_every_five_minutes_on_the_injected_clock() -> None:
    clock, lockout = make()
    lockout.startService()
    try:
        lockout.record_failure("old")
        clock.advance(600)
        lockout.record_failure("new")
        assert len(lockout) == 2
        clock.advance(300)  # t=900 since "old": the sweep at 900 drops it
        assert lockout.failures("old") == 0 and lockout.failures("new") == 1
        assert len(lockout) == 1
        clock.advance(600)  # new is 900 s old at the sweep at 1500
        assert len(lockout) == 0
    finally:
        lockout.stopService()
    assert clock.getDelayedCalls() == []


def test_overflow_evicts_the_oldest() -> None:
    clock, lockout = make(max_tracked_ips=10, evict_on_overflow=3)
    for i in range(10):
        lockout.record_failure(f"ip{i}")
        clock.advance(1)
    lockout.record_failure("ip-new")
    assert len(lockout) == 8
    assert [lockout.failures(f"ip{i}") for i in range(4)] == [0, 0, 0, 1]
    assert lockout.failures("ip-new") == 1
