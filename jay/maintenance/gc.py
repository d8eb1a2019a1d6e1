"""Garbage collection (JAY_SPEC §7.3 with its gaps fixed).

One pass: temp files older than ``temp_max_age_hours`` that no live writer holds (several
processes may share the data dir: every write refreshes a temp file's mtime and writers hold a
flock on it, so fresh or owned files are never touched), empty shard directories idle for as
long, pack files no record references any more and no process writes (idle for as long), and
multipart uploads initiated more than ``multipart_max_age_hours`` ago together with their parts.
"""

from __future__ import annotations

from dataclasses import dataclass

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from jay.config.model import GCSettings
from jay.storage.service import StorageService

log = Logger()

HOUR = 3600.0


@dataclass(frozen=True, slots=True, kw_only=True)
class GCResult:
    temp_files: int
    empty_dirs: int
    expired_uploads: int
    dead_packs: int = 0


class GarbageCollector:
    def __init__(self, storage: StorageService, settings: GCSettings) -> None:
        self._storage = storage
        self._settings = settings

    def run_pass(self) -> Deferred[GCResult]:
        return Deferred.fromCoroutine(self._run_pass())

    async def _run_pass(self) -> GCResult:
        await self._storage.when_ready()
        max_age = max(0.0, self._settings.temp_max_age_hours * HOUR)
        temps = await self._storage.collect_temp_files(max_age)
        dirs = await self._storage.collect_empty_dirs(max_age)
        dead_packs = await self._storage.collect_dead_packs(max_age)
        uploads = 0
        if self._settings.multipart_max_age_hours > 0:
            uploads = await self._storage.expire_multipart_uploads(
                self._settings.multipart_max_age_hours * HOUR
            )
        result = GCResult(
            temp_files=temps, empty_dirs=dirs, expired_uploads=uploads, dead_packs=dead_packs
        )
        log.info(
            "GC pass: {temps} stale temp files, {dirs} empty directories, {uploads} expired "
            "multipart uploads, {packs} unreferenced pack files removed",
            temps=temps,
            dirs=dirs,
            uploads=uploads,
            packs=dead_packs,
        )
        return result
