"""MaintenanceService: the scrubber, GC and backup timers as one child of the service tree.

Wire it after storage (``service.py`` adds children in start order); ``MultiService`` stops it
before storage closes its pools. Timings (JAY_SPEC §7.1, §7.3, §7.4): first scrub 30 s after
start, then every ``scrub.interval_hours`` after the previous pass ended; GC first after 60 s,
then every ``gc.interval_minutes``; the first backup one interval after start, then every
``backup.interval_hours``; the lifecycle expiration pass (``jay.maintenance.lifecycle``) first
after ``min(120 s, interval)``, then every ``lifecycle_interval_seconds``. An interval of 0
disables that task.
"""

from __future__ import annotations

from twisted.application.service import MultiService
from twisted.internet.interfaces import IReactorTime

from jay.config.model import BackupSettings, GCSettings, ScrubSettings
from jay.maintenance.backup import BackupRunner
from jay.maintenance.gc import GarbageCollector
from jay.maintenance.lifecycle import LifecycleExpirer, LifecycleMetrics
from jay.maintenance.periodic import PeriodicTask
from jay.maintenance.scrubber import Scrubber, ScrubMetrics
from jay.storage.service import StorageService

SCRUB_FIRST_DELAY_SECONDS = 30.0
GC_FIRST_DELAY_SECONDS = 60.0
LIFECYCLE_FIRST_DELAY_SECONDS = 120.0


class MaintenanceService(MultiService):
    def __init__(
        self,
        storage: StorageService,
        *,
        scrub: ScrubSettings,
        gc: GCSettings,
        backup: BackupSettings,
        clock: IReactorTime,
        metrics: ScrubMetrics | None = None,
        lifecycle_interval_seconds: float = 0.0,
        lifecycle_metrics: LifecycleMetrics | None = None,
    ) -> None:
        super().__init__()
        self.scrubber = Scrubber(storage, scrub, clock=clock, metrics=metrics)
        self.gc = GarbageCollector(storage, gc)
        self.backups = BackupRunner(storage, backup)
        self.scrub_task = PeriodicTask(
            "scrub",
            self.scrubber.run_pass,
            clock=clock,
            first_delay_seconds=SCRUB_FIRST_DELAY_SECONDS,
            interval_seconds=scrub.interval_hours * 3600.0,
        )
        self.gc_task = PeriodicTask(
            "gc",
            self.gc.run_pass,
            clock=clock,
            first_delay_seconds=GC_FIRST_DELAY_SECONDS,
            interval_seconds=gc.interval_minutes * 60.0,
        )
        self.backup_task = PeriodicTask(
            "backup",
            self.backups.run_pass,
            clock=clock,
            first_delay_seconds=backup.interval_hours * 3600.0,
            interval_seconds=backup.interval_hours * 3600.0,
        )
        self.lifecycle = LifecycleExpirer(storage, clock=clock, metrics=lifecycle_metrics)
        self.lifecycle_task = PeriodicTask(
            "lifecycle",
            self.lifecycle.run_pass,
            clock=clock,
            first_delay_seconds=min(LIFECYCLE_FIRST_DELAY_SECONDS, lifecycle_interval_seconds),
            interval_seconds=lifecycle_interval_seconds,
        )
        for task in (self.scrub_task, self.gc_task, self.backup_task, self.lifecycle_task):
            task.setServiceParent(self)
