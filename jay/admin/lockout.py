"""Per-IP lock-out after failed admin authentications (JAY_SPEC §3.12).

Five wrong or missing admin tokens from one IP lock that IP out for 15 minutes after its last
failure, even with the right token; requests during the lock-out are refused without counting.
A success clears the IP. A sweep every 5 minutes forgets stale entries, and the table is capped so
a scan from many addresses cannot grow memory without bound.
"""

from __future__ import annotations

from dataclasses import dataclass

from twisted.application.service import Service
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

log = Logger(namespace="jay.admin")

MAX_FAILURES = 5
LOCKOUT_SECONDS = 15 * 60.0
SWEEP_INTERVAL_SECONDS = 5 * 60.0
# Bounds memory under a scan from many addresses; on overflow the oldest entries go.
MAX_TRACKED_IPS = 10_000
EVICT_ON_OVERFLOW = 100


@dataclass(slots=True)
class _Failures:
    count: int
    last_failure_at: float


class AdminLockout(Service):
    """Failure counts by client IP; a Service only to run the sweep while the tree runs."""

    def __init__(
        self,
        clock: IReactorTime,
        *,
        max_failures: int = MAX_FAILURES,
        lockout_seconds: float = LOCKOUT_SECONDS,
        sweep_interval_seconds: float = SWEEP_INTERVAL_SECONDS,
        max_tracked_ips: int = MAX_TRACKED_IPS,
        evict_on_overflow: int = EVICT_ON_OVERFLOW,
    ) -> None:
        self._clock = clock
        self._max_failures = max_failures
        self._lockout_seconds = lockout_seconds
        self._sweep_interval = sweep_interval_seconds
        self._max_tracked = max_tracked_ips
        self._evict = evict_on_overflow
        self._entries: dict[str, _Failures] = {}
        self._sweeper: LoopingCall | None = None

    def __len__(self) -> int:
        return len(self._entries)

    def failures(self, ip: str) -> int:
        entry = self._entries.get(ip)
        return entry.count if entry is not None else 0

    def _expired(self, entry: _Failures) -> bool:
        return self._clock.seconds() - entry.last_failure_at >= self._lockout_seconds

    def is_locked(self, ip: str) -> bool:
        """True while ``ip`` has failed ``max_failures`` times within the window; resets an entry
        whose last failure is older than the window."""
        entry = self._entries.get(ip)
        if entry is None:
            return False
        if self._expired(entry):
            del self._entries[ip]
            return False
        return entry.count >= self._max_failures

    def record_failure(self, ip: str) -> None:
        entry = self._entries.get(ip)
        now = self._clock.seconds()
        if entry is None:
            if len(self._entries) >= self._max_tracked:
                self._evict_oldest()
            self._entries[ip] = _Failures(1, now)
            return
        entry.count += 1
        entry.last_failure_at = now
        if entry.count == self._max_failures:
            log.warn(
                "Admin API: {ip} locked out after {count} failed authentications",
                ip=ip,
                count=entry.count,
            )

    def record_success(self, ip: str) -> None:
        self._entries.pop(ip, None)

    def _evict_oldest(self) -> None:
        oldest = sorted(self._entries.items(), key=lambda item: item[1].last_failure_at)
        for ip, _ in oldest[: self._evict]:
            del self._entries[ip]

    def sweep(self) -> int:
        """Drop entries whose last failure is older than the window; returns how many."""
        stale = [ip for ip, entry in self._entries.items() if self._expired(entry)]
        for ip in stale:
            del self._entries[ip]
        return len(stale)

    def startService(self) -> None:
        super().startService()
        self._sweeper = LoopingCall(self.sweep)
        self._sweeper.clock = self._clock
        self._sweeper.start(self._sweep_interval, now=False)

    def stopService(self) -> None:
        super().stopService()
        if self._sweeper is not None and self._sweeper.running:
            self._sweeper.stop()
        self._sweeper = None
