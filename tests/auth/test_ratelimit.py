"""Token buckets per key and the failed-authentication limiter, on task.Clock (JAY_SPEC §3.11)."""

from __future__ import annotations

import pytest
from twisted.internet.task import Clock

from jay.auth.ratelimit import (
    SWEEP_INTERVAL_SECONDS,
    AuthFailureLimiter,
    RateLimiter,
    RequestLimits,
    effective_burst,
    ip_key,
)
from jay.config.model import RateLimitSettings
from jay.errors import (
    InvalidAccessKeyId,
    RequestTimeTooSkewed,
    SignatureDoesNotMatch,
    SlowDown,
)


def limiter(rate: float, burst: int, clock: Clock, **kw: object) -> RateLimiter:
    return RateLimiter(RateLimitSettings(rate=rate, burst=burst), clock, **kw)  # type: ignore[arg-type]


def take_all(rl: RateLimiter, key: str, limit: int = 1000) -> int:
    n = 0
    while n < limit and rl.allow(key):
        n += 1
    return n


def test_bucket_starts_full_with_burst_then_refuses() -> None:
    clock = Clock()
    rl = limiter(2.0, 5, clock)
    assert take_all(rl, "t1") == 5
    assert not rl.allow("t1")


def test_keys_have_independent_budgets() -> None:
    clock = Clock()
    rl = limiter(1.0, 3, clock)
    assert take_all(rl, "t1") == 3
    assert take_all(rl, "t2") == 3
    assert len(rl) == 2


def test_refill_is_continuous_at_rate_and_capped_at_burst() -> None:
    clock = Clock()
    rl = limiter(2.0, 4, clock)
    take_all(rl, "k")
    clock.advance(0.4)  # 0.8 tokens
    assert not rl.allow("k")
    clock.advance(0.1)  # 0.8 + 0.2 = 1.0
    assert rl.allow("k")
    assert not rl.allow("k")
    clock.advance(1000)
    assert take_all(rl, "k") == 4


def test_refused_requests_do_not_consume_what_they_did_not_get() -> None:
    clock = Clock()
    rl = limiter(1.0, 1, clock)
    assert rl.allow("k")
    for _ in range(10):
        clock.advance(0.05)
        assert not rl.allow("k")
    clock.advance(0.5)  # 0.5 + 0.5 = one token, despite the refusals
    assert rl.allow("k")


def test_disabled_when_rate_is_not_positive() -> None:
    clock = Clock()
    for rate in (0.0, -1.0):
        rl = limiter(rate, 10, clock)
        assert not rl.is_enabled
        assert all(rl.allow("k") for _ in range(10_000))
        assert len(rl) == 0
        assert rl.retry_after_seconds() == 1


@pytest.mark.parametrize(
    ("rate", "burst", "expected"),
    [(100.0, 200, 200.0), (10.0, 0, 20.0), (0.2, 0, 1.0), (3.0, -5, 6.0), (0.5, 1, 1.0)],
)
def test_effective_burst(rate: float, burst: int, expected: float) -> None:
    assert effective_burst(rate, burst) == expected


def test_burst_zero_defaults_to_twice_the_rate() -> None:
    clock = Clock()
    rl = limiter(10.0, 0, clock)
    assert take_all(rl, "k") == 20


@pytest.mark.parametrize(("rate", "seconds"), [(100.0, 1), (1.0, 1), (0.5, 2), (0.3, 4)])
def test_retry_after_is_at_least_one_second_and_one_token_long(rate: float, seconds: int) -> None:
    assert limiter(rate, 1, Clock()).retry_after_seconds() == seconds


def test_retry_after_for_a_key_is_the_time_to_its_next_token() -> None:
    clock = Clock()
    rl = limiter(0.1, 1, clock)
    assert rl.retry_after_seconds("k") == 1  # unknown key: nothing to wait for, still ≥ 1
    rl.allow("k")
    assert rl.retry_after_seconds("k") == 10
    clock.advance(7.5)
    assert rl.retry_after_seconds("k") == 3


def test_clock_stepping_back_does_not_drain_or_refill() -> None:
    clock = Clock()
    clock.advance(100)
    rl = limiter(1.0, 2, clock)
    assert rl.allow("k")
    clock.rightNow = 50.0
    assert rl.allow("k")
    assert not rl.allow("k")


def test_sweep_forgets_only_buckets_that_have_refilled() -> None:
    clock = Clock()
    rl = limiter(1.0, 10, clock)
    rl.allow("idle")
    clock.advance(0.5)
    take_all(rl, "busy")
    clock.advance(1.0)  # "idle" is full again (9 + 1.5 ≥ 10); "busy" has 1 of 10
    assert rl.sweep() == 1
    assert len(rl) == 1
    # Forgetting "idle" lost nothing: it gets its full burst, as it would have anyway.
    assert take_all(rl, "idle") == 10
    assert take_all(rl, "busy") == 1


def test_sweep_runs_on_the_injected_clock_while_the_service_runs() -> None:
    clock = Clock()
    rl = limiter(1.0, 5, clock)
    rl.startService()
    for i in range(50):
        rl.allow(f"k{i}")
    clock.advance(SWEEP_INTERVAL_SECONDS - 1)
    assert len(rl) == 50
    clock.advance(1)
    assert len(rl) == 0
    rl.stopService()
    assert clock.getDelayedCalls() == []


def test_table_size_is_bounded_and_the_oldest_keys_go_first() -> None:
    clock = Clock()
    rl = limiter(0.001, 1, clock, max_keys=500)
    for i in range(2000):
        assert rl.allow(f"ip:{i}")  # every new key gets its burst
    assert len(rl) <= 500
    assert not rl.allow("ip:1999")  # recent keys are still tracked and drained
    assert rl.allow("ip:0")  # the oldest was forgotten


def test_overflow_sweeps_before_evicting() -> None:
    clock = Clock()
    rl = limiter(1.0, 1, clock, max_keys=3)
    rl.allow("a")
    clock.advance(2)  # "a" is full again
    rl.allow("b")
    rl.allow("c")
    rl.allow("d")  # makes room by forgetting "a" alone
    assert not rl.allow("b") and not rl.allow("c") and not rl.allow("d")


@pytest.mark.parametrize(
    ("ip", "key"),
    [
        ("10.0.0.1", "ip:10.0.0.1"),
        ("::ffff:10.0.0.1", "ip:10.0.0.1"),
        ("2001:db8:1:2:3:4:5:6", "ip:2001:db8:1:2::/64"),
        ("2001:db8:1:2::9", "ip:2001:db8:1:2::/64"),
        ("", "ip:"),
    ],
)
def test_ip_key_groups_ipv6_by_64(ip: str, key: str) -> None:
    assert ip_key(ip) == key


# --- failed authentications -------------------------------------------------------------------


def test_failures_block_an_ip_after_the_burst_and_only_that_ip() -> None:
    clock = Clock()
    failures = AuthFailureLimiter(clock, burst=3, rate_per_second=0.1)
    for _ in range(3):
        assert not failures.blocked("10.0.0.1")
        failures.record("10.0.0.1")
    assert failures.blocked("10.0.0.1")
    assert failures.blocked("::ffff:10.0.0.1")
    assert not failures.blocked("10.0.0.2")


def test_blocked_is_a_read_only_question() -> None:
    clock = Clock()
    failures = AuthFailureLimiter(clock, burst=2, rate_per_second=1.0)
    for _ in range(100):
        assert not failures.blocked("10.0.0.1")
    assert len(failures) == 0


def test_failures_while_blocked_keep_it_blocked_and_refill_unblocks() -> None:
    clock = Clock()
    failures = AuthFailureLimiter(clock, burst=2, rate_per_second=0.1)
    failures.record("1.2.3.4")
    failures.record("1.2.3.4")
    assert failures.blocked("1.2.3.4")
    assert failures.retry_after_seconds("1.2.3.4") == 10
    clock.advance(5)
    failures.record("1.2.3.4")  # a guess during the block: the level stays at zero
    assert failures.blocked("1.2.3.4")
    clock.advance(9.9)
    assert failures.blocked("1.2.3.4")
    clock.advance(0.1)
    assert not failures.blocked("1.2.3.4")


def test_ipv6_guessers_share_their_64() -> None:
    clock = Clock()
    failures = AuthFailureLimiter(clock, burst=2, rate_per_second=0.01)
    failures.record("2001:db8::1")
    failures.record("2001:db8::2")
    assert failures.blocked("2001:db8::ffff")
    assert not failures.blocked("2001:db8:0:1::1")


def test_failure_table_is_swept_on_the_clock() -> None:
    clock = Clock()
    failures = AuthFailureLimiter(clock, burst=2, rate_per_second=1.0, sweep_interval_seconds=60)
    failures.startService()
    failures.record("1.2.3.4")
    clock.advance(60)
    assert len(failures) == 0
    failures.stopService()
    assert clock.getDelayedCalls() == []


def test_failure_limiter_rejects_nonsense_settings() -> None:
    with pytest.raises(ValueError):
        AuthFailureLimiter(Clock(), burst=0)
    with pytest.raises(ValueError):
        AuthFailureLimiter(Clock(), rate_per_second=0)


# --- RequestLimits: the order around authentication ------------------------------------------


def limits(clock: Clock, rate: float = 1.0, burst: int = 100) -> RequestLimits:
    return RequestLimits(
        limiter(rate, burst, clock), AuthFailureLimiter(clock, burst=3, rate_per_second=0.5)
    )


def test_guessing_is_cut_off_before_authentication() -> None:
    clock = Clock()
    gate = limits(clock)
    for _ in range(3):
        gate.before_auth("10.0.0.1")
        gate.auth_failed("10.0.0.1", SignatureDoesNotMatch())
    with pytest.raises(SlowDown) as info:
        gate.before_auth("10.0.0.1")
    assert info.value.retry_after_seconds == 2
    gate.before_auth("10.0.0.2")  # another address is unaffected
    clock.advance(2)
    gate.before_auth("10.0.0.1")


def test_skewed_clocks_are_not_counted_as_guesses() -> None:
    clock = Clock()
    gate = limits(clock)
    for _ in range(10):
        gate.auth_failed("10.0.0.1", RequestTimeTooSkewed())
        gate.auth_failed("10.0.0.1", ValueError("not a JayError: our bug, not a guess"))
    gate.before_auth("10.0.0.1")


def test_failed_authentications_spend_the_ip_budget() -> None:
    clock = Clock()
    gate = limits(clock, rate=1.0, burst=2)
    gate.auth_failed("10.0.0.1", InvalidAccessKeyId())
    gate.auth_failed("10.0.0.1", InvalidAccessKeyId())
    with pytest.raises(SlowDown):
        gate.auth_failed("10.0.0.1", InvalidAccessKeyId())
    with pytest.raises(SlowDown):
        gate.admit("", "10.0.0.1")  # anonymous requests share that budget
    gate.admit("t1", "10.0.0.1")  # a token has its own


def test_admit_keys_tokens_and_anonymous_callers_apart() -> None:
    clock = Clock()
    gate = limits(clock, rate=0.5, burst=1)
    gate.admit("ip:10.0.0.1", "10.0.0.1")
    gate.admit("", "10.0.0.1")
    with pytest.raises(SlowDown) as info:
        gate.admit("", "10.0.0.1")
    assert info.value.retry_after_seconds == 2
    with pytest.raises(SlowDown):
        gate.admit("ip:10.0.0.1", "10.0.0.2")
