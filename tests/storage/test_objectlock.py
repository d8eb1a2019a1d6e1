"""Object Lock in the storage service, on a real SQLite file and a clock moved by days: the
bucket rules (versioning Enabled, never suspended, never removed), default retention on every
write path, deletes of locked versions refused (GOVERNANCE bypass, COMPLIANCE never), retention
changes, legal holds, lifecycle and admin purges that leave locked versions alone, a restart."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted

from jay.errors import (
    AccessDenied,
    InvalidArgument,
    InvalidBucketState,
    InvalidRequest,
    NoSuchVersion,
)
from jay.maintenance.lifecycle import LifecycleExpirer
from jay.storage import objectlock as ol
from jay.storage.api import (
    BUCKET_CONFIG_LIFECYCLE,
    BUCKET_CONFIG_OBJECT_LOCK,
    BUCKET_CONFIG_VERSIONING,
    ObjectAttributes,
)
from jay.storage.lifecycle import (
    LifecycleRule,
    NoncurrentVersionExpiration,
    RuleFilter,
    encode_rules,
)
from tests.maintenance.conftest import CountingMetrics
from tests.maintenance.test_lifecycle import DAY, ShiftedReactor, utc
from tests.storage.conftest import put

NOW = utc(2025, 6, 1, 12)


async def _service(tmp_path: Any, clock: Any) -> Any:
    from jay.storage.service import StorageService

    svc = StorageService(str(tmp_path / "data"), reactor=clock, pack_max_object_bytes=0)
    svc.startService()
    await svc.when_ready()
    return svc


async def _locked_bucket(svc: Any, name: str, config: ol.LockConfiguration) -> None:
    account = await svc.create_account(f"owner-{name}")
    await svc.create_bucket(
        name,
        account.account_id,
        {
            BUCKET_CONFIG_VERSIONING: "Enabled",
            BUCKET_CONFIG_OBJECT_LOCK: ol.encode_configuration(config),
        },
    )


@pytest_twisted.ensureDeferred
async def test_bucket_rules(tmp_path: Any) -> None:
    svc = await _service(tmp_path, ShiftedReactor(NOW))
    try:
        account = await svc.create_account("alice")
        await svc.create_bucket("plain", account.account_id)
        enabled = ol.encode_configuration(ol.ENABLED_ONLY)
        with pytest.raises(InvalidBucketState):
            await svc.set_bucket_config("plain", BUCKET_CONFIG_OBJECT_LOCK, enabled)
        await svc.set_bucket_config("plain", BUCKET_CONFIG_VERSIONING, "Suspended")
        with pytest.raises(InvalidBucketState):
            await svc.set_bucket_config("plain", BUCKET_CONFIG_OBJECT_LOCK, enabled)
        # An existing bucket with versioning Enabled may turn Object Lock on (S3 since 2023).
        await svc.set_bucket_config("plain", BUCKET_CONFIG_VERSIONING, "Enabled")
        bucket = await svc.set_bucket_config("plain", BUCKET_CONFIG_OBJECT_LOCK, enabled)
        assert bucket.config(BUCKET_CONFIG_OBJECT_LOCK) == enabled
        with pytest.raises(InvalidBucketState):
            await svc.set_bucket_config("plain", BUCKET_CONFIG_VERSIONING, "Suspended")
        with pytest.raises(InvalidRequest):
            await svc.set_bucket_config("plain", BUCKET_CONFIG_OBJECT_LOCK, None)
        # Lock state on a version needs a bucket with Object Lock.
        await svc.create_bucket("other", account.account_id)
        with pytest.raises(InvalidRequest):
            await put(svc, "other", "k", b"x", ObjectAttributes(legal_hold="ON"))
        with pytest.raises(InvalidRequest):
            await svc.set_object_lock("other", "k", legal_hold="ON")
    finally:
        await svc.stopService()


@pytest_twisted.ensureDeferred
async def test_default_retention_and_deletes(tmp_path: Any) -> None:
    clock = ShiftedReactor(NOW)
    svc = await _service(tmp_path, clock)
    try:
        await _locked_bucket(svc, "gov", ol.LockConfiguration(mode="GOVERNANCE", days=2))
        info = await put(svc, "gov", "k", b"one")
        assert info.attributes.lock_mode == "GOVERNANCE"
        assert info.attributes.lock_until == pytest.approx(NOW + 2 * DAY, abs=5)
        # The record read back says the same (it is stored, not computed on read).
        stored = await svc.get_object_version("gov", "k", info.version_id)
        assert stored.attributes.lock_until == info.attributes.lock_until
        with pytest.raises(AccessDenied):
            await svc.delete_version("gov", "k", version_id=info.version_id)
        # A plain delete adds a marker; the locked version stays, noncurrent.
        marker = await svc.delete_version("gov", "k")
        assert marker.is_delete_marker
        with pytest.raises(AccessDenied):
            await svc.delete_version("gov", "k", version_id=info.version_id)
        # An explicit retention wins over the default one.
        explicit = await put(
            svc,
            "gov",
            "e",
            b"x",
            ObjectAttributes(lock_mode="COMPLIANCE", lock_until=NOW + 10 * DAY),
        )
        assert explicit.attributes.lock_mode == "COMPLIANCE"
        with pytest.raises(AccessDenied):
            await svc.delete_version(
                "gov", "e", version_id=explicit.version_id, bypass_governance=True
            )
        # GOVERNANCE yields to the bypass.
        gone = await svc.delete_version(
            "gov", "k", version_id=info.version_id, bypass_governance=True
        )
        assert gone.deleted
        # Once the retention has passed, the version may go like any other.
        clock.advance_days(11)
        assert (await svc.delete_version("gov", "e", version_id=explicit.version_id)).deleted
        # Legal hold: no bypass lifts it.
        held = await put(svc, "gov", "h", b"x", ObjectAttributes(legal_hold="ON"))
        with pytest.raises(AccessDenied):
            await svc.delete_version("gov", "h", version_id=held.version_id, bypass_governance=True)
        await svc.set_object_lock("gov", "h", held.version_id, legal_hold="OFF")
        assert (
            await svc.delete_version("gov", "h", version_id=held.version_id, bypass_governance=True)
        ).deleted
    finally:
        await svc.stopService()


@pytest_twisted.ensureDeferred
async def test_retention_changes(tmp_path: Any) -> None:
    svc = await _service(tmp_path, ShiftedReactor(NOW))
    try:
        await _locked_bucket(svc, "bkt", ol.ENABLED_ONLY)
        plain = await put(svc, "bkt", "k", b"x")
        assert plain.attributes.lock_mode is None  # no default rule: nothing applied
        later, sooner = NOW + 30 * DAY, NOW + 10 * DAY
        await svc.set_object_lock("bkt", "k", retention=("GOVERNANCE", sooner))
        info = await svc.set_object_lock("bkt", "k", retention=("GOVERNANCE", later))
        assert info.attributes.lock_until == later
        with pytest.raises(AccessDenied):  # shorter without the bypass
            await svc.set_object_lock("bkt", "k", retention=("GOVERNANCE", sooner))
        with pytest.raises(AccessDenied):  # removed without the bypass
            await svc.set_object_lock("bkt", "k", retention=(None, None))
        await svc.set_object_lock(
            "bkt", "k", retention=("GOVERNANCE", sooner), bypass_governance=True
        )
        # GOVERNANCE → COMPLIANCE needs the bypass too; COMPLIANCE only ever extends.
        with pytest.raises(AccessDenied):
            await svc.set_object_lock("bkt", "k", retention=("COMPLIANCE", sooner))
        await svc.set_object_lock(
            "bkt", "k", retention=("COMPLIANCE", sooner), bypass_governance=True
        )
        for retention in (("COMPLIANCE", NOW + DAY), ("GOVERNANCE", later), (None, None)):
            with pytest.raises(AccessDenied):
                await svc.set_object_lock("bkt", "k", retention=retention, bypass_governance=True)
        with pytest.raises(InvalidArgument):
            await svc.set_object_lock("bkt", "k", retention=("COMPLIANCE", NOW - DAY))
        info = await svc.set_object_lock("bkt", "k", retention=("COMPLIANCE", later))
        assert (info.attributes.lock_mode, info.attributes.lock_until) == ("COMPLIANCE", later)
        # The tags of a locked version can still change, and the lock stays.
        tagged = await svc.set_object_tags("bkt", "k", {"a": "b"})
        assert tagged.attributes.lock_until == later
        # A noncurrent version keeps its lock, and can get one by its id.
        newer = await put(svc, "bkt", "k", b"y")
        assert newer.attributes.lock_mode is None
        old = await svc.get_object_version("bkt", "k", plain.version_id)
        assert old.attributes.lock_mode == "COMPLIANCE"
        await svc.set_object_lock("bkt", "k", newer.version_id, legal_hold="ON")
        assert (await svc.get_object_info("bkt", "k")).attributes.legal_hold == "ON"
    finally:
        await svc.stopService()


@pytest_twisted.ensureDeferred
async def test_lifecycle_and_purges_keep_locked_versions(tmp_path: Any) -> None:
    clock = ShiftedReactor(NOW)
    svc = await _service(tmp_path, clock)
    try:
        await _locked_bucket(svc, "lcb", ol.ENABLED_ONLY)
        rules = (
            LifecycleRule(
                rule_id="noncurrent-1d",
                status="Enabled",
                filter=RuleFilter(form="prefix", prefix=""),
                noncurrent_expiration=NoncurrentVersionExpiration(noncurrent_days=1),
                expiration_days=1,
            ),
        )
        await svc.set_bucket_config("lcb", BUCKET_CONFIG_LIFECYCLE, encode_rules(rules))
        locked = await put(
            svc,
            "lcb",
            "k",
            b"1",
            ObjectAttributes(lock_mode="GOVERNANCE", lock_until=NOW + 5 * DAY),
        )
        held = await put(svc, "lcb", "k", b"2", ObjectAttributes(legal_hold="ON"))
        free = await put(svc, "lcb", "k", b"3")
        await put(svc, "lcb", "k", b"4")  # current: the other three are noncurrent
        metrics = CountingMetrics()
        expirer = LifecycleExpirer(svc, clock=clock, metrics=metrics, page_size=2)
        clock.advance_days(3)
        result = await expirer.run_pass()
        page = await svc.list_object_versions("lcb")
        ids = {v.version_id for v in page.versions if not v.is_delete_marker}
        assert locked.version_id in ids and held.version_id in ids
        assert free.version_id not in ids
        assert result.versions_locked == 2
        assert metrics.counters["lifecycle_versions_locked"] == 2
        # The admin purge obeys the lock of the current version too.
        current = await put(svc, "lcb", "p", b"x", ObjectAttributes(legal_hold="ON"))
        with pytest.raises(AccessDenied):
            await svc.purge_object(current.bucket_id, "p")
        # Past the retention, lifecycle removes the GOVERNANCE version; the hold stays.
        clock.advance_days(3)
        await expirer.run_pass()
        page = await svc.list_object_versions("lcb", prefix="k")
        ids = {v.version_id for v in page.versions if not v.is_delete_marker}
        assert locked.version_id not in ids and held.version_id in ids
    finally:
        await svc.stopService()


@pytest_twisted.ensureDeferred
async def test_quarantined_locked_versions_are_kept(tmp_path: Any) -> None:
    """A quarantined version is replaced by the next write, and purged by the admin, unless
    it is under Object Lock: then the write keeps it as a noncurrent version and purges skip
    it."""
    svc = await _service(tmp_path, ShiftedReactor(NOW))
    try:
        await _locked_bucket(svc, "qbkt", ol.ENABLED_ONLY)
        held = await put(svc, "qbkt", "held", b"x", ObjectAttributes(legal_hold="ON"))
        free = await put(svc, "qbkt", "free", b"y")
        for info in (held, free):
            assert await svc.quarantine_object(info.bucket_id, info.key, "test") is not None
        assert await svc.purge_quarantined() == 1  # "free" only
        with pytest.raises(AccessDenied):
            await svc.purge_quarantined(held.bucket_id, "held")
        await put(svc, "qbkt", "held", b"new")
        page = await svc.list_object_versions("qbkt", prefix="held")
        assert len(page.versions) == 1  # the quarantined one is left out of listings ...
        with pytest.raises(AccessDenied):  # ... but kept, and still locked
            await svc.delete_version(
                "qbkt", "held", version_id=held.version_id, bypass_governance=True
            )
        # Unreadable while quarantined: its hold can be lifted once revalidation restores it.
        with pytest.raises(NoSuchVersion):
            await svc.set_object_lock("qbkt", "held", held.version_id, legal_hold="OFF")
    finally:
        await svc.stopService()


@pytest_twisted.ensureDeferred
async def test_lock_survives_a_restart(tmp_path: Any) -> None:
    clock = ShiftedReactor(NOW)
    svc = await _service(tmp_path, clock)
    try:
        await _locked_bucket(svc, "rbkt", ol.LockConfiguration(mode="COMPLIANCE", years=1))
        info = await put(svc, "rbkt", "k", b"x", ObjectAttributes(legal_hold="ON"))
    finally:
        await svc.stopService()
    svc = await _service(tmp_path, clock)
    try:
        again = await svc.get_object_info("rbkt", "k")
        assert again.attributes.lock_mode == "COMPLIANCE"
        assert again.attributes.lock_until == pytest.approx(NOW + 365 * DAY, abs=5)
        assert again.attributes.legal_hold == "ON"
        bucket = await svc.get_bucket("rbkt")
        assert ol.decode_configuration(bucket.config(BUCKET_CONFIG_OBJECT_LOCK)).years == 1
        with pytest.raises(AccessDenied):
            await svc.delete_version("rbkt", "k", version_id=info.version_id)
    finally:
        await svc.stopService()
