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

from jay.errors import JayError, NoSuchBucket, NoSuchKey, NoSuchUpload, PreconditionFailed
from jay.storage.api import BUCKET_CONFIG_LIFECYCLE, BucketInfo, DeleteCondition
from jay.storage.lifecycle import LifecycleRule, decode_rules, object_expiration, upload_abort_due
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
                await self._abort_uploads(bucket, rules, result)
            except NoSuchBucket:
                continue  # deleted while we worked on it
            except JayError:
                log.failure("Lifecycle pass over bucket {bucket} failed", bucket=bucket.name)
                result.errors += 1
        log.info(
            "Lifecycle pass: {buckets} buckets with rules, {scanned} objects examined, "
            "{expired} expired, {changed} changed before deletion and kept, {aborted} "
            "multipart uploads aborted, {errors} errors",
            buckets=result.buckets,
            scanned=result.objects_scanned,
            expired=result.objects_expired,
            changed=result.objects_changed,
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
