"""Hourly metadata backups with rotation (JAY_SPEC §7.4).

A pass snapshots the live database with SQLite's online backup API (the server keeps serving)
into ``backups/jay-YYYYMMDDTHHMMSSZ.db`` (0600, fsynced), then prunes: at most ``keep`` backups,
none older than ``max_age_days``, the newest never deleted. Restore: see
``jay.maintenance.restore``.
"""

from __future__ import annotations

from dataclasses import dataclass

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from jay.config.model import BackupSettings
from jay.storage.service import StorageService

log = Logger()

DAY = 86400.0


@dataclass(frozen=True, slots=True, kw_only=True)
class BackupResult:
    path: str
    pruned: tuple[str, ...]


class BackupRunner:
    def __init__(self, storage: StorageService, settings: BackupSettings) -> None:
        self._storage = storage
        self._settings = settings

    def run_pass(self) -> Deferred[BackupResult]:
        return Deferred.fromCoroutine(self._run_pass())

    async def _run_pass(self) -> BackupResult:
        await self._storage.when_ready()
        path = await self._storage.create_backup()
        pruned = await self._storage.prune_backups(
            self._settings.keep, self._settings.max_age_days * DAY
        )
        log.info("Backup written to {path}; pruned {count}", path=path, count=len(pruned))
        return BackupResult(path=path, pruned=tuple(pruned))
