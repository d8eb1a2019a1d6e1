"""Token-bucket rate limits per key, and a per-IP limit on failed authentications.

``RateLimiter`` (JAY_SPEC §3.11): each key owns a bucket that starts full with ``burst`` tokens and
refills at ``rate`` tokens per second; a request takes one token or is refused. Keys are token ids
for authenticated requests and ``ip_key(client_ip)`` for anonymous ones. The HTTP and native
front ends each own an instance.

``AuthFailureLimiter`` (JAY_SPEC §8.2 item 14): failed authentications drain a per-IP bucket, and
an IP whose bucket is empty is refused *before* any bcrypt or secret work, so a password-guessing
flood costs a dict lookup, not a bcrypt round.

Both run on every request, so the hot path is one dict lookup and a few float operations on a
slotted object; a bucket is allocated only for a key not seen recently. A bucket that has
refilled to ``burst`` behaves exactly like a fresh one, so dropping it loses nothing: the sweep
(every 5 minutes, on the injected clock) drops those, and a table at its size cap first sweeps,
then drops its oldest entries so an attacker with many addresses cannot grow memory without
bound.
"""

from __future__ import annotations

import functools
import ipaddress
import math

from twisted.application.service import Service
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from jay.config.model import RateLimitSettings
from jay.errors import JayError, RequestTimeTooSkewed, ServiceUnavailable, SlowDown

log = Logger(namespace="jay.auth.ratelimit")

SWEEP_INTERVAL_SECONDS = 5 * 60.0  # JAY_SPEC §3.11
# 100k buckets are a few tens of MB at most; past that, the oldest entries go first.
MAX_KEYS = 100_000
# Dropping a batch at once keeps the cost of a full table amortised over many new keys.
EVICT_ON_OVERFLOW = 1_000
# A flood from many addresses overflows the table again and again: one warning a minute is enough.
OVERFLOW_WARNING_INTERVAL_SECONDS = 60.0

# Failed authentications: 10 in a burst per IP, then one every 6 seconds (10 a minute). A client
# with a wrong secret gets its error answers; a guesser gets ~14,400 tries a day per address.
AUTH_FAILURE_BURST = 10
AUTH_FAILURE_RATE = 10 / 60.0


def effective_burst(rate: float, burst: int) -> float:
    """``burst`` ≤ 0 means 2 × rate, at least 1 (JAY_SPEC §3.11)."""
    if burst > 0:
        return float(burst)
    return float(max(1, int(2 * rate)))


@functools.lru_cache(maxsize=4096)
def ip_key(client_ip: str) -> str:
    """The rate-limit key of an anonymous caller: ``ip:<address>``.

    IPv6 addresses are grouped by their /64, which is what one host or site usually holds; keying
    by the full address would give a single client 2**64 separate budgets. Cached (bounded):
    it runs for every request (``before_auth``).
    """
    try:
        ip = ipaddress.ip_address(client_ip)
    except ValueError:
        return "ip:" + client_ip
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return "ip:" + str(ip.ipv4_mapped)
        return "ip:" + str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))
    return "ip:" + str(ip)


class _Bucket:
    __slots__ = ("tokens", "stamp")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp


class _TokenBuckets:
    """The shared table: refill arithmetic, lossless sweep, size cap."""

    def __init__(self, rate: float, burst: float, clock: IReactorTime, max_keys: int) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}
        self._warned_at = -math.inf

    def __len__(self) -> int:
        return len(self._buckets)

    def level(self, bucket: _Bucket, now: float) -> float:
        elapsed = now - bucket.stamp
        if elapsed <= 0:  # a clock stepping backwards must not drain anyone
            return bucket.tokens
        tokens = bucket.tokens + elapsed * self.rate
        return tokens if tokens < self.burst else self.burst

    def take(self, key: str, *, force: bool) -> bool:
        """Take one token; ``force`` takes it even below one (never below zero)."""
        now = self._clock.seconds()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._max_keys:
                self._make_room(now)
            self._buckets[key] = _Bucket(self.burst - 1.0, now)
            return True
        tokens = self.level(bucket, now)
        if now > bucket.stamp:
            bucket.stamp = now
        if tokens >= 1.0:
            bucket.tokens = tokens - 1.0
            return True
        bucket.tokens = max(0.0, tokens - 1.0) if force else tokens
        return False

    def has_token(self, key: str) -> bool:
        bucket = self._buckets.get(key)
        if bucket is None:
            return True
        return self.level(bucket, self._clock.seconds()) >= 1.0

    def seconds_until_token(self, key: str) -> float:
        bucket = self._buckets.get(key)
        if bucket is None:
            return 0.0
        missing = 1.0 - self.level(bucket, self._clock.seconds())
        return missing / self.rate if missing > 0 else 0.0

    def sweep(self) -> int:
        """Drop buckets that have refilled to ``burst``: they are the same as no bucket."""
        now = self._clock.seconds()
        full = [k for k, b in self._buckets.items() if self.level(b, now) >= self.burst]
        for key in full:
            del self._buckets[key]
        return len(full)

    def _make_room(self, now: float) -> None:
        if self.sweep() and len(self._buckets) < self._max_keys:
            return
        # Dicts keep insertion order: the first entries are the longest-tracked keys.
        count = max(
            len(self._buckets) - self._max_keys + 1,
            min(EVICT_ON_OVERFLOW, self._max_keys // 100),
        )
        victims = []
        for key in self._buckets:
            victims.append(key)
            if len(victims) >= count:
                break
        for key in victims:
            del self._buckets[key]
        if now - self._warned_at >= OVERFLOW_WARNING_INTERVAL_SECONDS:
            self._warned_at = now
            log.warn(
                "Rate-limit table full ({size} keys): forgetting the oldest entries",
                size=self._max_keys,
            )


class _Swept(Service):
    """Runs ``sweep`` every few minutes on the injected clock while the service tree runs."""

    _table: _TokenBuckets | None

    def __init__(self, clock: IReactorTime, sweep_interval_seconds: float) -> None:
        self._sweep_clock = clock
        self._sweep_interval = sweep_interval_seconds
        self._sweeper: LoopingCall | None = None

    def sweep(self) -> int:
        return self._table.sweep() if self._table is not None else 0

    def startService(self) -> None:
        super().startService()  # type: ignore[no-untyped-call]
        if self._table is None:
            return
        self._sweeper = LoopingCall(self.sweep)
        self._sweeper.clock = self._sweep_clock
        self._sweeper.start(self._sweep_interval, now=False)

    def stopService(self) -> None:
        super().stopService()  # type: ignore[no-untyped-call]
        if self._sweeper is not None and self._sweeper.running:
            self._sweeper.stop()
        self._sweeper = None


class RateLimiter(_Swept):
    """Requests per key (JAY_SPEC §3.11). ``rate`` ≤ 0 disables it: ``allow`` is always True."""

    def __init__(
        self,
        settings: RateLimitSettings,
        clock: IReactorTime,
        *,
        max_keys: int = MAX_KEYS,
        sweep_interval_seconds: float = SWEEP_INTERVAL_SECONDS,
    ) -> None:
        super().__init__(clock, sweep_interval_seconds)
        self.is_enabled = settings.rate > 0
        self._rate = settings.rate
        self._table = (
            _TokenBuckets(
                settings.rate, effective_burst(settings.rate, settings.burst), clock, max_keys
            )
            if self.is_enabled
            else None
        )

    def __len__(self) -> int:
        return len(self._table) if self._table is not None else 0

    def allow(self, key: str) -> bool:
        """Take a token for ``key``; False means refuse the request (S3: SlowDown)."""
        if self._table is None:
            return True
        return self._table.take(key, force=False)

    def retry_after_seconds(self, key: str | None = None) -> int:
        """Seconds for a Retry-After header: ``max(1, ceil(1 / rate))`` (JAY_SPEC §3.11), or
        with ``key`` the time until that key has a token again (at least 1)."""
        if self._table is None:
            return 1
        if key is None:
            return max(1, math.ceil(1.0 / self._rate))
        return max(1, math.ceil(self._table.seconds_until_token(key)))


class AuthFailureLimiter(_Swept):
    """Failed authentications per client IP; ask ``blocked`` before verifying any credential.

    ``record`` after each failure. There is deliberately no reset on success: anyone holding one
    valid token could otherwise wipe its record between guesses at other tokens.
    """

    def __init__(
        self,
        clock: IReactorTime,
        *,
        burst: int = AUTH_FAILURE_BURST,
        rate_per_second: float = AUTH_FAILURE_RATE,
        max_keys: int = MAX_KEYS,
        sweep_interval_seconds: float = SWEEP_INTERVAL_SECONDS,
    ) -> None:
        super().__init__(clock, sweep_interval_seconds)
        if burst < 1 or rate_per_second <= 0:
            raise ValueError("AuthFailureLimiter needs burst >= 1 and rate_per_second > 0")
        self._table = _TokenBuckets(rate_per_second, float(burst), clock, max_keys)

    def __len__(self) -> int:
        assert self._table is not None
        return len(self._table)

    def blocked(self, client_ip: str) -> bool:
        assert self._table is not None
        return not self._table.has_token(ip_key(client_ip))

    def record(self, client_ip: str) -> None:
        assert self._table is not None
        self._table.take(ip_key(client_ip), force=True)

    def retry_after_seconds(self, client_ip: str) -> int:
        assert self._table is not None
        return max(1, math.ceil(self._table.seconds_until_token(ip_key(client_ip))))


# Failures that say nothing about guessing: a skewed client clock, a server not ready yet.
_NOT_GUESSES = (RequestTimeTooSkewed, ServiceUnavailable)


class RequestLimits:
    """The order a front end applies limits in, around its authentication step.

    1. ``before_auth(ip)``: an IP with too many failed authentications gets SlowDown before any
       bcrypt, decryption or signature work (JAY_SPEC §8.2 item 14).
    2. authenticate; on failure ``auth_failed(ip, exc)`` counts it and charges the anonymous
       budget ``ip:<ip>`` (JAY_SPEC §3.11), raising SlowDown if that is spent; then re-raise
       the original error.
    3. ``admit(token_id, ip)``: take one token from the caller's budget (token id, or
       ``ip:<ip>`` for anonymous callers) or raise SlowDown with the Retry-After seconds.
    """

    def __init__(self, requests: RateLimiter, failures: AuthFailureLimiter) -> None:
        self.requests = requests
        self.failures = failures

    def before_auth(self, client_ip: str) -> None:
        if self.failures.blocked(client_ip):
            raise SlowDown(
                "Too many failed authentications from your address",
                retry_after_seconds=self.failures.retry_after_seconds(client_ip),
            )

    def auth_failed(self, client_ip: str, exc: BaseException) -> None:
        if isinstance(exc, JayError) and not isinstance(exc, _NOT_GUESSES):
            self.failures.record(client_ip)
        if not self.requests.allow(ip_key(client_ip)):
            raise SlowDown(
                "Rate limit exceeded", retry_after_seconds=self.requests.retry_after_seconds()
            ) from None

    def admit(self, token_id: str, client_ip: str) -> None:
        # "t:" keeps a seed token whose id happens to start with "ip:" off an IP's budget.
        key = "t:" + token_id if token_id else ip_key(client_ip)
        if not self.requests.allow(key):
            raise SlowDown(
                "Rate limit exceeded", retry_after_seconds=self.requests.retry_after_seconds()
            )
