"""Bucket lifecycle expiration: delete the objects and abort the uploads that rules make due.

One pass visits every bucket with a lifecycle configuration (``jay.storage.lifecycle``) that has
an enabled rule. It streams over the bucket's current objects in pages of ``page_size`` (never
all keys at once), starting at the longest prefix every expiring rule shares, and deletes each
object that is due through the normal delete path. The delete is conditional on the ETag, size
and Last-Modified the pass saw (``DeleteCondition``), so an object overwritten after it was
examined is a new object with a new creation time and stays. Rules with a tag filter read the
object's record (its tags) only for objects that every other condition already selects. Then it
aborts the bucket's incomplete multipart uploads whose ``AbortIncompleteMultipartUpload`` rule
is due, paging the same way.

In a versioned bucket the delete of a current version adds a delete marker, as on S3 (the
version stays, noncurrent). ``NoncurrentVersionExpiration`` and ``ExpiredObjectDeleteMarker``
walk ListObjectVersions pages: a noncurrent version or marker due by its rule goes for good
(deleted by its version id: a version never changes, so no condition is needed), and a current
delete marker that is the last version of its key is removed. A page's deletions run after the
next page was fetched, so the markers that page continues from still exist.

Everything a pass does is idempotent: a pass cut short (shutdown, crash) leaves objects that are
still due, and the next pass deletes them. Only the holder of the maintenance lease runs passes
(``jay.service``), every ``lifecycle_interval_seconds`` after the previous one ended.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from jay.errors import (
    AccessDenied,
    JayError,
    NoSuchBucket,
    NoSuchKey,
    NoSuchUpload,
    PreconditionFailed,
)
from jay.storage.api import (
    BUCKET_CONFIG_LIFECYCLE,
    BUCKET_CONFIG_VERSIONING,
    BucketInfo,
    DeleteCondition,
    ListedVersion,
    VersionsPage,
)
from jay.storage.lifecycle import (
    LifecycleRule,
    decode_rules,
    noncurrent_expiration,
    object_expiration,
    upload_abort_due,
)
from jay.storage.service import StorageService

log = Logger()

# Objects or uploads fetched per listing call: the most one step holds in memory.
PAGE_SIZE = 1000


class LifecycleMetrics(Protocol):
    def count(self, name: str, amount: int = 1) -> None: ...


@dataclass(slots=True, kw_only=True)
class LifecycleResult:
    buckets: int = 0  # buckets with an enabled rule, visited
    objects_scanned: int = 0
    objects_expired: int = 0
    objects_changed: int = 0  # due when listed, overwritten or deleted before the delete
    uploads_aborted: int = 0
    versions_expired: int = 0  # noncurrent versions and markers removed for good
    markers_removed: int = 0  # expired object delete markers (the last version of a key)
    versions_locked: int = 0  # due noncurrent versions kept because Object Lock protects them
    errors: int = 0


def _shared_prefix(prefixes: Sequence[str]) -> str:
    return os.path.commonprefix(list(prefixes)) if prefixes else ""


class LifecycleExpirer:
    def __init__(
        self,
        storage: StorageService,
        *,
        clock: IReactorTime,
        metrics: LifecycleMetrics | None = None,
        page_size: int = PAGE_SIZE,
    ) -> None:
        self._storage = storage
        self._clock = clock
        self._metrics = metrics
        self._page_size = page_size

    def run_pass(self) -> Deferred[LifecycleResult]:
        return Deferred.fromCoroutine(self._run_pass())

    async def _run_pass(self) -> LifecycleResult:
        await self._storage.when_ready()
        result = LifecycleResult()
        for bucket in await self._storage.list_buckets(None):
            stored = bucket.config(BUCKET_CONFIG_LIFECYCLE)
            if stored is None:
                continue
            try:
                rules = tuple(rule for rule in decode_rules(stored) if rule.is_enabled)
            except ValueError:
                log.error(
                    "Lifecycle configuration of bucket {bucket} is unreadable", bucket=bucket.name
                )
                result.errors += 1
                continue
            if not rules:
                continue
            result.buckets += 1
            try:
                await self._expire_objects(bucket, rules, result)
                if bucket.config(BUCKET_CONFIG_VERSIONING) is not None:
                    await self._expire_versions(bucket, rules, result)
                await self._abort_uploads(bucket, rules, result)
            except NoSuchBucket:
                continue  # deleted while we worked on it
            except JayError:
                log.failure("Lifecycle pass over bucket {bucket} failed", bucket=bucket.name)
                result.errors += 1
        log.info(
            "Lifecycle pass: {buckets} buckets with rules, {scanned} objects examined, "
            "{expired} expired, {changed} changed before deletion and kept, {versions} "
            "noncurrent versions expired ({locked} due but under Object Lock, kept), {markers} "
            "expired delete markers removed, {aborted} multipart uploads aborted, {errors} errors",
            buckets=result.buckets,
            scanned=result.objects_scanned,
            expired=result.objects_expired,
            changed=result.objects_changed,
            versions=result.versions_expired,
            locked=result.versions_locked,
            markers=result.markers_removed,
            aborted=result.uploads_aborted,
            errors=result.errors,
        )
        return result

    def _count(self, name: str) -> None:
        if self._metrics is not None:
            self._metrics.count(name)

    async def _expire_objects(
        self, bucket: BucketInfo, rules: tuple[LifecycleRule, ...], result: LifecycleResult
    ) -> None:
        now = self._clock.seconds()
        # A rule with a Date in the future cannot make anything due yet: no scan for it.
        expiring = [
            rule
            for rule in rules
            if rule.expiration_days is not None
            or (rule.expiration_date is not None and rule.expiration_date <= now)
        ]
        if not expiring:
            return
        # Rules without tags decide from the listing alone; a tag rule needs the record.
        untagged = [rule for rule in expiring if not rule.filter.needs_tags]
        tagged = [rule for rule in expiring if rule.filter.needs_tags]
        tagged_ignoring_tags = _without_tags(tagged)
        prefix = _shared_prefix([rule.filter.prefix for rule in expiring])
        start_after = ""
        while True:
            now = self._clock.seconds()
            page = await self._storage.list_objects(
                bucket.name, prefix=prefix, start_after=start_after, max_keys=self._page_size
            )
            for listed in page.objects:
                result.objects_scanned += 1
                key, size, etag, updated_at = (
                    listed.key,
                    listed.size,
                    listed.etag,
                    listed.updated_at,
                )
                due = object_expiration(untagged, key, size, {}, updated_at)
                if (due is None or due[0] > now) and tagged:
                    # Ignoring tags, would a tag rule be due? Only then read the tags.
                    candidate = object_expiration(tagged_ignoring_tags, key, size, {}, updated_at)
                    if candidate is not None and candidate[0] <= now:
                        try:
                            info = await self._storage.get_object_info(bucket.name, key)
                        except NoSuchKey:
                            continue
                        key, size, etag, updated_at = (
                            info.key,
                            info.size,
                            info.etag,
                            info.updated_at,
                        )
                        due = object_expiration(
                            expiring, key, size, info.attributes.tags, updated_at
                        )
                if due is None or due[0] > now:
                    continue
                condition = DeleteCondition(if_match=etag, size=size, last_modified=updated_at)
                try:
                    removed = await self._storage.delete_object(bucket.name, key, condition)
                except (PreconditionFailed, NoSuchKey):
                    removed = False
                if removed:
                    result.objects_expired += 1
                    self._count("lifecycle_objects_expired")
                    log.debug(
                        "Lifecycle rule {rule} expired {bucket}/{key}",
                        rule=due[1],
                        bucket=bucket.name,
                        key=key,
                    )
                else:
                    result.objects_changed += 1
            if not page.is_truncated:
                return
            start_after = page.next_start_after

    async def _expire_versions(
        self, bucket: BucketInfo, rules: tuple[LifecycleRule, ...], result: LifecycleResult
    ) -> None:
        noncurrent = [rule for rule in rules if rule.noncurrent_expiration is not None]
        markers = [rule for rule in rules if rule.expired_object_delete_marker]
        if not noncurrent and not markers:
            return
        prefix = _shared_prefix([rule.filter.prefix for rule in noncurrent + markers])
        walk = _VersionWalk()
        page: VersionsPage | None = await self._storage.list_object_versions(
            bucket.name, prefix=prefix, max_keys=self._page_size
        )
        while page is not None:
            now = self._clock.seconds()
            doomed: list[tuple[ListedVersion, str, bool]] = []
            for version in page.versions:
                self._doom_lone_marker(walk.next_entry(version), markers, doomed)
                if version.is_latest:
                    continue
                newer = walk.noncurrent_seen - 1
                due = await self._noncurrent_due(bucket, noncurrent, version, newer)
                if due is not None and due[0] <= now:
                    doomed.append((version, due[1], False))
                    walk.doomed()
            following = None
            if page.is_truncated:
                following = await self._storage.list_object_versions(
                    bucket.name,
                    prefix=prefix,
                    key_marker=page.next_key_marker,
                    version_id_marker=page.next_version_id_marker,
                    max_keys=self._page_size,
                )
            else:
                self._doom_lone_marker(walk.finish(), markers, doomed)
            for version, rule_id, is_lone_marker in doomed:
                try:
                    # Never with a bypass: a version under Object Lock outlives any rule.
                    outcome = await self._storage.delete_version(
                        bucket.name, version.key, version_id=version.version_id
                    )
                except AccessDenied:
                    result.versions_locked += 1
                    self._count("lifecycle_versions_locked")
                    continue
                if not outcome.deleted:
                    continue
                if is_lone_marker:
                    result.markers_removed += 1
                    self._count("lifecycle_delete_markers_removed")
                else:
                    result.versions_expired += 1
                    self._count("lifecycle_versions_expired")
                log.debug(
                    "Lifecycle rule {rule} removed version {version_id} of {bucket}/{key}",
                    rule=rule_id,
                    version_id=version.version_id,
                    bucket=bucket.name,
                    key=version.key,
                )
            page = following

    @staticmethod
    def _doom_lone_marker(
        lone: ListedVersion | None,
        rules: Sequence[LifecycleRule],
        doomed: list[tuple[ListedVersion, str, bool]],
    ) -> None:
        if lone is None:
            return
        rule_id = _marker_rule(rules, lone.key)
        if rule_id is not None:
            doomed.append((lone, rule_id, True))

    async def _noncurrent_due(
        self,
        bucket: BucketInfo,
        rules: Sequence[LifecycleRule],
        version: ListedVersion,
        newer: int,
    ) -> tuple[float, str] | None:
        if not rules:
            return None
        since = version.noncurrent_since if version.noncurrent_since is not None else 0.0
        due = noncurrent_expiration(
            _without_tags(rules), version.key, version.size, {}, since, newer
        )
        if due is None or version.is_delete_marker or not any(r.filter.needs_tags for r in rules):
            return due
        # A tag filter: the version's own tags decide.
        try:
            info = await self._storage.get_object_version(
                bucket.name, version.key, version.version_id
            )
        except JayError:
            return None
        return noncurrent_expiration(
            rules, version.key, version.size, info.attributes.tags, since, newer
        )

    async def _abort_uploads(
        self, bucket: BucketInfo, rules: tuple[LifecycleRule, ...], result: LifecycleResult
    ) -> None:
        aborting = [rule for rule in rules if rule.abort_days_after_initiation is not None]
        if not aborting:
            return
        prefix = _shared_prefix([rule.filter.prefix for rule in aborting])
        key_marker = upload_id_marker = ""
        while True:
            now = self._clock.seconds()
            page = await self._storage.list_multipart_uploads(
                bucket.name,
                prefix=prefix,
                key_marker=key_marker,
                upload_id_marker=upload_id_marker,
                max_uploads=self._page_size,
            )
            for upload in page.uploads:
                due = upload_abort_due(aborting, upload.key, upload.created_at)
                if due is None or due[0] > now:
                    continue
                try:
                    await self._storage.abort_multipart_upload(
                        bucket.name, upload.key, upload.upload_id
                    )
                except NoSuchUpload:
                    continue  # completed or aborted meanwhile
                result.uploads_aborted += 1
                self._count("lifecycle_uploads_aborted")
                log.debug(
                    "Lifecycle rule {rule} aborted upload {upload_id} of {bucket}/{key}",
                    rule=due[1],
                    upload_id=upload.upload_id,
                    bucket=bucket.name,
                    key=upload.key,
                )
            if not page.is_truncated:
                return
            key_marker, upload_id_marker = page.next_key_marker, page.next_upload_id_marker


def _without_tags(rules: Sequence[LifecycleRule]) -> list[LifecycleRule]:
    return [replace(rule, filter=replace(rule.filter, tags=())) for rule in rules]


def _marker_rule(rules: Sequence[LifecycleRule], key: str) -> str | None:
    """The id of the first ExpiredObjectDeleteMarker rule whose prefix covers ``key``."""
    for rule in rules:
        if key.startswith(rule.filter.prefix) and not rule.filter.needs_tags:
            return rule.rule_id
    return None


class _VersionWalk:
    """Follows a ListObjectVersions walk across pages: how many noncurrent versions of the
    current key were seen, and whether a key's only entry left (once the versions this pass
    removes are gone) is its current delete marker."""

    def __init__(self) -> None:
        self._key: str | None = None
        self._entries = 0  # entries of the key that stay
        self._marker: ListedVersion | None = None
        self.noncurrent_seen = 0

    def next_entry(self, version: ListedVersion) -> ListedVersion | None:
        """Take the next entry; returns the previous key's lone current marker, if any."""
        lone = None
        if version.key != self._key:
            lone = self.finish()
            self._key, self._entries, self.noncurrent_seen = version.key, 0, 0
        self._entries += 1
        if version.is_latest:
            self._marker = version if version.is_delete_marker else None
        else:
            self.noncurrent_seen += 1
        return lone

    def doomed(self) -> None:
        """The entry just taken goes in this pass."""
        self._entries -= 1

    def finish(self) -> ListedVersion | None:
        lone = self._marker if self._entries == 1 else None
        self._marker = None
        return lone
