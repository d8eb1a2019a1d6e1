"""The lifecycle expiration job against a real StorageService in tmp_path, on a clock moved by
days: which objects and uploads go, which stay, and an object overwritten after the scan stays."""

from __future__ import annotations

import calendar
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor, task
from twisted.internet.defer import Deferred

from jay.config.model import BackupSettings, GCSettings, ScrubSettings
from jay.errors import NoSuchKey, NoSuchUpload
from jay.maintenance.lifecycle import LifecycleExpirer
from jay.maintenance.service import MaintenanceService
from jay.storage.api import BUCKET_CONFIG_LIFECYCLE, ObjectAttributes
from jay.storage.lifecycle import LifecycleRule, RuleFilter, encode_rules
from tests.maintenance.conftest import CountingMetrics
from tests.storage.conftest import put, start_service, stop_service, wait_until

DAY = 86400.0


def utc(year: int, month: int, day: int, hour: int = 0) -> float:
    return float(calendar.timegm((year, month, day, hour, 0, 0)))


class ShiftedReactor:
    """The real reactor (threads, timers) with a clock that reads ``offset`` seconds ahead: the
    storage stamps records with it, so objects can be made "days ago"."""

    def __init__(self, now: float) -> None:
        self.offset = now - reactor.seconds()

    def seconds(self) -> float:
        return float(reactor.seconds()) + self.offset

    def advance_days(self, days: float) -> None:
        self.offset += days * DAY

    def __getattr__(self, name: str) -> Any:
        return getattr(reactor, name)


def enabled(rule_id: str, rule_filter: RuleFilter, **kw: Any) -> LifecycleRule:
    return LifecycleRule(rule_id=rule_id, status="Enabled", filter=rule_filter, **kw)


RULES = (
    enabled("logs-1d", RuleFilter(form="prefix", prefix="logs/"), expiration_days=1),
    # Everything above 100 bytes, due since a date in the past.
    enabled(
        "big-by-date",
        RuleFilter(form="size-gt", size_greater_than=100),
        expiration_date=int(utc(2024, 2, 1)),
    ),
    LifecycleRule(
        rule_id="off",
        status="Disabled",
        filter=RuleFilter(form="prefix", prefix="keep/"),
        expiration_days=1,
    ),
    enabled("tagged", RuleFilter(form="tag", tags=(("env", "tmp"),)), expiration_days=1),
    enabled("uploads", RuleFilter(form="prefix", prefix="mp/"), abort_days_after_initiation=1),
)


async def keys(svc: Any, bucket: str) -> list[str]:
    page = await svc.list_objects(bucket)
    return [o.key for o in page.objects]


async def upload_keys(svc: Any, bucket: str) -> list[str]:
    page = await svc.list_multipart_uploads(bucket)
    return [u.key for u in page.uploads]


class OverwritingStorage:
    """The storage service, except that the first delete of ``key`` is preceded by a new write
    of it: the object the job examined is replaced between its scan and its delete."""

    def __init__(self, svc: Any, key: str) -> None:
        self._svc = svc
        self._key = key
        self.overwrites = 0

    async def _delete(self, bucket: str, key: str, condition: Any = None) -> bool:
        if key == self._key and not self.overwrites:
            self.overwrites += 1
            await put(self._svc, bucket, key, b"new version")
        return bool(await self._svc.delete_object(bucket, key, condition))

    def delete_object(self, bucket: str, key: str, condition: Any = None) -> Any:
        return Deferred.fromCoroutine(self._delete(bucket, key, condition))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._svc, name)


@pytest_twisted.ensureDeferred
async def test_expiration_pass_deletes_due_objects_and_aborts_old_uploads(tmp_path: Any) -> None:
    clock = ShiftedReactor(utc(2024, 3, 1, 12))
    from jay.storage.service import StorageService

    svc = StorageService(str(tmp_path / "data"), reactor=clock, pack_max_object_bytes=0)
    svc.startService()
    await svc.when_ready()
    try:
        account = await svc.create_account("alice")
        await svc.create_bucket("bkt", account.account_id)
        await svc.create_bucket("plain", account.account_id)
        await svc.set_bucket_config("bkt", BUCKET_CONFIG_LIFECYCLE, encode_rules(RULES))
        for key, body in (
            ("logs/a", b"a"),
            ("logs/b", b"b"),
            ("logs/race", b"old version"),
            ("keep/x", b"x"),
            ("other/small", b"s" * 10),
            ("other/big", b"B" * 200),
            ("untagged", b"u"),
        ):
            await put(svc, "bkt", key, body)
        await put(svc, "plain", "logs/a", b"no rules here")
        old_upload = await svc.create_multipart_upload("bkt", "mp/old", ObjectAttributes(), "x")
        await svc.create_multipart_upload("bkt", "elsewhere/old", ObjectAttributes(), "x")

        # Day 1 12:00: the 1-day rule is due at day 3 00:00; only the dated rule applies.
        metrics = CountingMetrics()
        storage = OverwritingStorage(svc, "logs/race")
        expirer = LifecycleExpirer(storage, clock=clock, metrics=metrics, page_size=2)  # type: ignore[arg-type]
        first = await expirer.run_pass()
        assert first.objects_expired == 1 and first.uploads_aborted == 0
        assert "other/big" not in await keys(svc, "bkt")

        # Day 2 23:00: still one hour before the 1-day rule's midnight.
        clock.advance_days(1 + 11 / 24)
        assert (await expirer.run_pass()).objects_expired == 0

        clock.advance_days(2 / 24)  # day 3 01:00
        await put(svc, "bkt", "logs/fresh", b"written today")
        await svc.create_multipart_upload("bkt", "mp/fresh", ObjectAttributes(), "x")
        result = await expirer.run_pass()

        assert await keys(svc, "bkt") == [
            "keep/x",  # its rule is disabled
            "logs/fresh",  # created today: due in two days
            "logs/race",  # overwritten between the scan and the delete: the new version stays
            "other/small",
            "untagged",  # the tag rule needs env=tmp
        ]
        assert storage.overwrites == 1
        info = await svc.get_object_info("bkt", "logs/race")
        assert info.size == len(b"new version")
        assert await keys(svc, "plain") == ["logs/a"]  # no lifecycle configuration
        assert sorted(await upload_keys(svc, "bkt")) == ["elsewhere/old", "mp/fresh"]
        with pytest.raises(NoSuchUpload):
            await svc.get_multipart_upload("bkt", "mp/old", old_upload.upload_id)
        assert result.objects_expired == 2  # logs/a, logs/b
        assert result.objects_changed == 1  # logs/race
        assert result.uploads_aborted == 1
        assert metrics.counters == {
            "lifecycle_objects_expired": 3,
            "lifecycle_uploads_aborted": 1,
        }

        # Idempotent: nothing more is due, nothing else goes.
        again = await expirer.run_pass()
        assert (again.objects_expired, again.uploads_aborted) == (0, 0)
        with pytest.raises(NoSuchKey):
            await svc.get_object_info("bkt", "logs/a")
    finally:
        await stop_service(svc)


@pytest_twisted.ensureDeferred
async def test_pass_without_configurations_and_with_only_disabled_rules(tmp_path: Any) -> None:
    svc = await start_service(str(tmp_path / "data"))
    try:
        account = await svc.create_account("alice")
        await svc.create_bucket("bkt", account.account_id)
        await put(svc, "bkt", "k", b"v")
        expirer = LifecycleExpirer(svc, clock=reactor)
        assert (await expirer.run_pass()).buckets == 0
        disabled = LifecycleRule(
            rule_id="r", status="Disabled", filter=RuleFilter(), expiration_date=0
        )
        await svc.set_bucket_config("bkt", BUCKET_CONFIG_LIFECYCLE, encode_rules((disabled,)))
        assert (await expirer.run_pass()).buckets == 0
        await svc.set_bucket_config("bkt", BUCKET_CONFIG_LIFECYCLE, "not json")
        assert (await expirer.run_pass()).errors == 1
        assert await keys(svc, "bkt") == ["k"]
    finally:
        await stop_service(svc)


@pytest_twisted.ensureDeferred
async def test_maintenance_runs_the_lifecycle_pass_on_its_interval(svc: Any) -> None:
    clock = task.Clock()

    def maintenance(interval: float) -> MaintenanceService:
        return MaintenanceService(
            svc,
            scrub=ScrubSettings(),
            gc=GCSettings(),
            backup=BackupSettings(),
            clock=clock,
            lifecycle_interval_seconds=interval,
        )

    assert not maintenance(0).lifecycle_task.is_enabled
    service = maintenance(30)
    service.startService()
    try:
        clock.advance(29)  # the first pass after min(120 s, interval)
        assert service.lifecycle_task.passes_completed == 0
        clock.advance(1)
        await wait_until(lambda: service.lifecycle_task.passes_completed == 1)
        clock.advance(30)
        await wait_until(lambda: service.lifecycle_task.passes_completed == 2)
        assert service.lifecycle_task.last_result.buckets == 0
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_versioned_bucket_expiration_noncurrent_versions_and_expired_markers(
    tmp_path: Any,
) -> None:
    """In a versioned bucket: Expiration adds delete markers (the versions stay, noncurrent);
    NoncurrentVersionExpiration removes noncurrent versions NoncurrentDays after they stopped
    being current, beyond the NewerNoncurrentVersions newest; ExpiredObjectDeleteMarker removes
    a current marker once it is the last version of its key. Small pages: the walk crosses
    page boundaries while it deletes."""
    from jay.storage.api import BUCKET_CONFIG_VERSIONING
    from jay.storage.lifecycle import NoncurrentVersionExpiration
    from jay.storage.service import StorageService

    clock = ShiftedReactor(utc(2024, 3, 1, 12))
    svc = StorageService(str(tmp_path / "data"), reactor=clock, pack_max_object_bytes=0)
    svc.startService()
    await svc.when_ready()
    try:
        account = await svc.create_account("alice")
        await svc.create_bucket("vbkt", account.account_id)
        await svc.set_bucket_config("vbkt", BUCKET_CONFIG_VERSIONING, "Enabled")
        rules = (
            enabled("tmp-1d", RuleFilter(form="prefix", prefix="tmp/"), expiration_days=1),
            enabled(
                "old-2d-keep-1",
                RuleFilter(form="prefix", prefix="keep/"),
                noncurrent_expiration=NoncurrentVersionExpiration(
                    noncurrent_days=2, newer_noncurrent_versions=1
                ),
            ),
            enabled(
                "markers",
                RuleFilter(form="prefix", prefix=""),
                expired_object_delete_marker=True,
                noncurrent_expiration=NoncurrentVersionExpiration(noncurrent_days=5),
            ),
        )
        await svc.set_bucket_config("vbkt", BUCKET_CONFIG_LIFECYCLE, encode_rules(rules))
        tmp = await put(svc, "vbkt", "tmp/a", b"temporary")
        kept = [(await put(svc, "vbkt", "keep/k", b"%d" % n)).version_id for n in range(4)]
        await put(svc, "vbkt", "lone", b"x")
        lone_marker = (await svc.delete_version("vbkt", "lone")).version_id

        async def versions(key: str) -> list[tuple[str, bool]]:
            page = await svc.list_object_versions("vbkt", prefix=key)
            return [(v.version_id, v.is_delete_marker) for v in page.versions if v.key == key]

        expirer = LifecycleExpirer(svc, clock=clock, page_size=2)
        clock.advance_days(1.5)  # day 3 00:00 has passed: tmp/a is due
        result = await expirer.run_pass()
        assert result.objects_expired == 1
        tmp_versions = await versions("tmp/a")
        assert tmp_versions[0][1] is True and tmp_versions[1] == (tmp.version_id, False)
        assert result.versions_expired == 0 and result.markers_removed == 0

        clock.advance_days(2)  # keep/k's noncurrent versions are 3.5 days noncurrent
        result = await expirer.run_pass()
        # The newest noncurrent one is kept (NewerNoncurrentVersions 1), the older two go.
        assert await versions("keep/k") == [(kept[3], False), (kept[2], False)]
        assert result.versions_expired == 2

        clock.advance_days(4)  # the 5-day rule: lone's version and tmp/a's go, then markers
        result = await expirer.run_pass()
        assert await versions("lone") == [] and await versions("tmp/a") == []
        assert result.markers_removed == 2
        assert await versions("keep/k") == [(kept[3], False)]
        del lone_marker
    finally:
        await svc.stopService()
