"""The scrubber: re-hash stored objects and quarantine the ones whose bytes changed (JAY_SPEC §7.1).

Each pass visits, in every bucket, the next slice of the key space after that bucket's cursor
(persisted in the database, so a restart resumes where the last pass stopped). A slice is
``ceil(records × sample_rate)`` records, capped at ``max_per_run``: with an uncapped slice every
object is verified at least once every ``ceil(1 / sample_rate)`` passes (the README's "10 % every
6 h" made true; upstream ignores ``sample_rate``). With the cap the bound is
``ceil(records / max_per_run)`` passes.

Reads are throttled to ``bytes_per_sec`` by sleeping on the injected clock between 1 MiB chunks;
hashing happens in the blob pool. A mismatch, a wrong size or a missing file quarantines the
object (reason recorded, file moved to ``quarantine/``, ``checksum_failures`` and
``objects_quarantined`` counted by storage). A read error is counted and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import deferLater
from twisted.logger import Logger

from jay.config.model import ScrubSettings
from jay.errors import JayError
from jay.storage.api import STATE_ACTIVE
from jay.storage.metadata import ScrubEntry
from jay.storage.service import (
    REASON_SCRUB_MISMATCH,
    REASON_SCRUB_MISSING,
    REASON_SCRUB_SIZE,
    StorageService,
)
from jay.storage.verifying import VERIFY_CHUNK_SIZE

log = Logger()

# Smallest read while throttled: tiny rates would otherwise mean a thread hop per few bytes.
MIN_CHUNK_SIZE = 64 * 1024


class ScrubMetrics(Protocol):
    def scrub_progress(
        self, *, objects_scanned: int, bytes_scanned: int, pass_complete: bool = False
    ) -> None: ...


class ByteRateLimiter:
    """A token bucket over the injected clock: ``consume(n)`` sleeps (clock.callLater) as long
    as the bytes already read are ahead of ``rate``. ``burst_bytes`` may be read at once."""

    def __init__(self, clock: IReactorTime, rate_bytes_per_sec: float, burst_bytes: int) -> None:
        self._clock = clock
        self._rate = float(rate_bytes_per_sec)
        self._burst = float(max(1, burst_bytes))
        self._tokens = self._burst
        self._last = clock.seconds()
        self.seconds_slept = 0.0

    @property
    def is_unlimited(self) -> bool:
        return self._rate <= 0

    async def consume(self, count: int) -> None:
        if self.is_unlimited:
            return
        now = self._clock.seconds()
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
        self._last = now
        self._tokens -= count
        if self._tokens < 0:
            delay = -self._tokens / self._rate
            self.seconds_slept += delay
            await deferLater(self._clock, delay, lambda: None)


@dataclass(frozen=True, slots=True, kw_only=True)
class ScrubResult:
    checked: int = 0  # active records verified (healthy + quarantined + missing + errors)
    healthy: int = 0
    quarantined: int = 0  # bytes or size did not match
    missing: int = 0
    errors: int = 0
    skipped: int = 0  # records visited that were not active
    bytes_scanned: int = 0
    buckets: int = 0
    buckets_wrapped: int = 0  # buckets whose key space was completed in this pass
    quarantined_keys: tuple[tuple[str, str], ...] = field(default=())


class Scrubber:
    def __init__(
        self,
        storage: StorageService,
        settings: ScrubSettings,
        *,
        clock: IReactorTime,
        metrics: ScrubMetrics | None = None,
    ) -> None:
        self._storage = storage
        self._settings = settings
        self._clock = clock
        self._metrics = metrics
        rate = settings.bytes_per_sec
        self.chunk_size = (
            VERIFY_CHUNK_SIZE if rate <= 0 else min(VERIFY_CHUNK_SIZE, max(MIN_CHUNK_SIZE, rate))
        )
        self.limiter = ByteRateLimiter(clock, rate, max(self.chunk_size, rate))
        self.progress = ScrubResult()

    def run_pass(self) -> Deferred[ScrubResult]:
        return Deferred.fromCoroutine(self._run_pass())

    async def _run_pass(self) -> ScrubResult:
        await self._storage.when_ready()
        self.progress = ScrubResult()
        for bucket_id in await self._storage.all_bucket_ids():
            try:
                await self._scrub_bucket(bucket_id)
            except JayError:
                log.failure("Scrub of bucket {bucket_id} failed", bucket_id=bucket_id)
                self.progress = replace(self.progress, errors=self.progress.errors + 1)
        result = self.progress
        log.info(
            "Scrub pass: {checked} checked, {healthy} healthy, {quarantined} quarantined, "
            "{missing} missing, {errors} errors, {bytes} bytes, {wrapped}/{buckets} buckets "
            "completed a full cycle",
            checked=result.checked,
            healthy=result.healthy,
            quarantined=result.quarantined,
            missing=result.missing,
            errors=result.errors,
            bytes=result.bytes_scanned,
            wrapped=result.buckets_wrapped,
            buckets=result.buckets,
        )
        self._report(pass_complete=True)
        return result

    def _report(self, *, pass_complete: bool = False) -> None:
        if self._metrics is None:
            return
        try:
            self._metrics.scrub_progress(
                objects_scanned=self.progress.checked,
                bytes_scanned=self.progress.bytes_scanned,
                pass_complete=pass_complete,
            )
        except Exception:
            log.failure("Scrub metrics hook failed")

    async def _scrub_bucket(self, bucket_id: str) -> None:
        entries, wrapped = await self._storage.scrub_slice(
            bucket_id, self._settings.sample_rate, self._settings.max_per_run
        )
        self.progress = replace(
            self.progress,
            buckets=self.progress.buckets + 1,
            buckets_wrapped=self.progress.buckets_wrapped + wrapped,
        )
        for entry in entries:
            if entry.state == STATE_ACTIVE:
                await self._verify(entry)
            else:
                self.progress = replace(self.progress, skipped=self.progress.skipped + 1)
            # Persist after every record: a stop (or crash) resumes right after it.
            if entry.version_seq:
                await self._storage.set_version_scrub_cursor(bucket_id, entry.version_seq)
            else:
                await self._storage.set_scrub_cursor(bucket_id, entry.key)
            self._report()

    async def _verify(self, entry: ScrubEntry) -> None:
        p = self.progress
        try:
            hasher = await self._storage.open_for_verify(entry)
        except JayError:
            log.failure("Scrub could not open {key}", key=entry.key)
            self.progress = replace(p, checked=p.checked + 1, errors=p.errors + 1)
            return
        if hasher is None:
            info = await self._storage.quarantine_version(
                entry.bucket_id, entry.key, entry.object_id, REASON_SCRUB_MISSING
            )
            self.progress = replace(
                p,
                checked=p.checked + 1,
                missing=p.missing + (info is not None),
                quarantined_keys=p.quarantined_keys + ((entry.bucket_id, entry.key),)
                if info is not None
                else p.quarantined_keys,
            )
            return
        scanned = 0
        try:
            while True:
                count = await hasher.read_chunk(self.chunk_size)
                scanned += count
                if count == 0 or hasher.bytes_read > entry.size:
                    break
                await self.limiter.consume(count)
        except (OSError, JayError):
            log.failure("Scrub read of {key} failed", key=entry.key)
            self.progress = replace(
                p,
                checked=p.checked + 1,
                errors=p.errors + 1,
                bytes_scanned=p.bytes_scanned + scanned,
            )
            return
        finally:
            hasher.close()
        reason = None
        if hasher.bytes_read != entry.size:
            reason = REASON_SCRUB_SIZE
        elif hasher.hexdigest() != entry.sha256_hex:
            reason = REASON_SCRUB_MISMATCH
        quarantined: Any = None
        if reason is not None:
            log.critical(
                "Scrub found {bucket_id}/{key} corrupt ({reason})",
                bucket_id=entry.bucket_id,
                key=entry.key,
                reason=reason,
            )
            quarantined = await self._storage.quarantine_version(
                entry.bucket_id, entry.key, entry.object_id, reason, checksum_failure=True
            )
        p = self.progress
        self.progress = replace(
            p,
            checked=p.checked + 1,
            healthy=p.healthy + (reason is None),
            quarantined=p.quarantined + (quarantined is not None),
            bytes_scanned=p.bytes_scanned + scanned,
            quarantined_keys=p.quarantined_keys + ((entry.bucket_id, entry.key),)
            if quarantined is not None
            else p.quarantined_keys,
        )
