"""StorageService: the Deferred API of ``jay.storage.api.Storage`` over SQLite and files.

Every SQL statement runs on the dedicated pools (one writer, N readers), every file operation on
the blob pool; the reactor thread only sequences work. Write order (JAY_SPEC §6.2): stage in
``tmp/`` → fsync → rename into the object tree → fsync dir → commit the record → delete the
replaced file. Steps from the rename on are shielded from cancellation, so a client that goes
away can never leave a committed record whose file we then deleted.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar, cast

from twisted.application.service import Service
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IConsumer
from twisted.logger import Logger
from twisted.python.failure import Failure

from jay.checksums import ALGORITHMS
from jay.errors import InvalidArgument, JayError, StorageIOError
from jay.storage import metadata
from jay.storage.api import (
    STATE_ACTIVE,
    Account,
    BucketInfo,
    BucketStats,
    CompletedPart,
    ListPage,
    MultipartUpload,
    ObjectAttributes,
    ObjectInfo,
    OpenObject,
    PartInfo,
    PartsPage,
    StagedBlob,
    StagingWriter,
    TokenRecord,
    UploadsPage,
    WriteCondition,
)
from jay.storage.blobs import BlobStore, make_dirs, remove_quietly
from jay.storage.metadata import NewObject, QuarantinedObject, ReplacedObject
from jay.storage.multipart import (
    check_part_number,
    composite_checksum,
    multipart_etag,
    select_parts,
)
from jay.storage.names import validate_bucket_name, validate_key
from jay.storage.pools import StoragePools
from jay.storage.reading import FileOpenObject
from jay.storage.sqlite import Connection, SQLiteDatabase, read_transaction
from jay.storage.staging import FileStagingWriter, discard_staged

log = Logger()

T = TypeVar("T")

# Attempts to open an object whose file a concurrent overwrite may have just deleted.
OPEN_ATTEMPTS = 3
# Records per recovery batch: bounds memory on huge buckets.
RECOVERY_BATCH = 1000


def _shield(d: Deferred[T]) -> Deferred[T]:
    """A Deferred that follows ``d`` but whose cancellation does not reach ``d``."""
    out: Deferred[T] = Deferred()

    def forward(result: Any) -> None:
        if out.called:
            if isinstance(result, Failure) and not result.check(JayError):
                log.failure("Shielded storage step failed after its caller left", result)
            return None
        if isinstance(result, Failure):
            out.errback(result)
        else:
            out.callback(result)
        return None

    d.addBoth(forward)
    return out


def _checked_algorithms(algorithms: Sequence[str]) -> list[str]:
    names = [a.upper() for a in algorithms]
    for name in names:
        if name not in ALGORITHMS:
            raise InvalidArgument("Unsupported checksum algorithm", algorithm=name)
    return names


class StorageService(Service):
    def __init__(
        self,
        data_dir: str,
        *,
        reactor: Any,
        max_buckets_per_account: int = 1000,
        reader_threads: int = 4,
        blob_threads: int = 4,
    ) -> None:
        self.data_dir = os.path.abspath(data_dir)
        self._reactor = reactor
        self._max_buckets = max_buckets_per_account
        self._blobs = BlobStore(self.data_dir)
        self._pools = StoragePools(
            reactor, reader_threads=reader_threads, blob_threads=blob_threads
        )
        self._database = SQLiteDatabase(os.path.join(self.data_dir, "meta", "jay.db"))
        self._ready_result: Failure | bool | None = None
        self._ready_waiters: list[Deferred[None]] = []
        self._starting: Deferred[None] | None = None

    # --- lifecycle -----------------------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        self._pools.start()
        self._starting = Deferred.fromCoroutine(self._start())
        self._starting.addBoth(self._started)

    async def _start(self) -> None:
        await self._pools.blob(self._blobs.create_layout)
        self._pools.open_database(self._database)
        await self._pools.write(self._create_schema)
        await self._recover()

    @staticmethod
    def _create_schema(conn: Connection) -> None:
        for statement in metadata.SCHEMA:
            conn.execute(statement)

    def _started(self, result: Any) -> None:
        if isinstance(result, Failure):
            log.failure("Storage failed to start", result)
            self._ready_result = result
        else:
            log.info("Storage ready in {data_dir}", data_dir=self.data_dir)
            self._ready_result = True
        waiters, self._ready_waiters = self._ready_waiters, []
        for waiter in waiters:
            self._fire_ready(waiter)

    def _fire_ready(self, waiter: Deferred[None]) -> None:
        if isinstance(self._ready_result, Failure):
            waiter.errback(self._ready_result)
        else:
            waiter.callback(None)

    def when_ready(self) -> Deferred[None]:
        if self._ready_result is True:
            return succeed(None)
        if isinstance(self._ready_result, Failure):
            return fail(self._ready_result)
        waiter: Deferred[None] = Deferred()
        self._ready_waiters.append(waiter)
        return waiter

    def stopService(self) -> Deferred[None]:
        super().stopService()
        done: Deferred[None] = Deferred()
        starting = self._starting if self._starting is not None else succeed(None)

        def stop_pools(_: object) -> Deferred[None]:
            # Joining threads blocks until running jobs end: do it off the reactor thread.
            def run() -> None:
                try:
                    self._pools.stop()
                finally:
                    self._reactor.callFromThread(done.callback, None)

            threading.Thread(target=run, name="jay-storage-stop", daemon=True).start()
            return done

        waiting: Deferred[None] = Deferred()
        starting.addBoth(lambda _: waiting.callback(None))
        waiting.addCallback(stop_pools)
        return waiting

    def _now(self) -> float:
        return float(self._reactor.seconds())

    # --- accounts and tokens -------------------------------------------------------------

    def create_account(self, name: str) -> Deferred[Account]:
        account = Account(account_id=str(uuid.uuid4()), name=name, created_at=self._now())
        return self._pools.write(metadata.insert_account, account)

    def get_account(self, account_id: str) -> Deferred[Account]:
        return self._pools.read(metadata.get_account, account_id)

    def list_accounts(self) -> Deferred[list[Account]]:
        return self._pools.read(metadata.list_accounts)

    def set_account_status(self, account_id: str, status: str) -> Deferred[Account]:
        return self._pools.write(metadata.set_account_status, account_id, status)

    def create_token(self, record: TokenRecord) -> Deferred[TokenRecord]:
        return self._pools.write(metadata.insert_token, record)

    def get_token(self, token_id: str) -> Deferred[TokenRecord]:
        return self._pools.read(metadata.get_token, token_id)

    def list_tokens(self, account_id: str | None = None) -> Deferred[list[TokenRecord]]:
        return self._pools.read(metadata.list_tokens, account_id)

    def set_token_status(self, token_id: str, status: str) -> Deferred[TokenRecord]:
        return self._pools.write(metadata.set_token_status, token_id, status)

    def replace_token_secret_keys(self, secret_keys: Mapping[str, str]) -> Deferred[None]:
        return self._pools.write(metadata.replace_token_secret_keys, dict(secret_keys))

    # --- buckets -------------------------------------------------------------------------

    def create_bucket(self, name: str, owner_account_id: str) -> Deferred[BucketInfo]:
        return Deferred.fromCoroutine(self._create_bucket(name, owner_account_id))

    async def _create_bucket(self, name: str, owner_account_id: str) -> BucketInfo:
        validate_bucket_name(name)
        bucket = BucketInfo(
            bucket_id=str(uuid.uuid4()),
            name=name,
            owner_account_id=owner_account_id,
            created_at=self._now(),
        )
        created = await self._pools.write(metadata.insert_bucket, bucket, self._max_buckets)
        # After the commit: a crash in between leaves a record without a directory, which
        # the first put creates; never a directory without a record.
        objects_dir = os.path.join(self._blobs.bucket_path(created.bucket_id), "objects")
        await self._pools.blob(make_dirs, objects_dir)
        return created

    def get_bucket(self, name: str) -> Deferred[BucketInfo]:
        return self._pools.read(metadata.get_bucket, name)

    def get_bucket_by_id(self, bucket_id: str) -> Deferred[BucketInfo]:
        return self._pools.read(metadata.get_bucket_by_id, bucket_id)

    def delete_bucket(self, name: str) -> Deferred[None]:
        return Deferred.fromCoroutine(self._delete_bucket(name))

    async def _delete_bucket(self, name: str) -> None:
        bucket_id, upload_ids = await self._pools.write(metadata.delete_bucket, name)
        paths = [self._blobs.bucket_path(bucket_id)]
        paths.extend(self._blobs.upload_path(u) for u in upload_ids)
        for path in paths:
            await self._pools.blob(self._blobs.remove_tree, path)

    def list_buckets(self, owner_account_id: str | None = None) -> Deferred[list[BucketInfo]]:
        return self._pools.read(metadata.list_buckets, owner_account_id)

    def set_bucket_policy(self, name: str, policy_json: str | None) -> Deferred[BucketInfo]:
        return self._pools.write(metadata.set_bucket_policy, name, policy_json)

    def bucket_stats(self, name: str) -> Deferred[BucketStats]:
        return self._pools.read(metadata.bucket_stats, name)

    # --- objects -------------------------------------------------------------------------

    def begin_write(self, checksum_algorithms: Sequence[str] = ()) -> StagingWriter:
        return FileStagingWriter(
            self._reactor,
            self._pools.blob,
            self._blobs.temp_path("upload"),
            _checked_algorithms(checksum_algorithms),
        )

    def discard(self, staged: StagedBlob) -> Deferred[None]:
        return discard_staged(self._pools.blob, staged)

    def put_object(
        self,
        bucket: str,
        key: str,
        staged: StagedBlob,
        attributes: ObjectAttributes,
        *,
        condition: WriteCondition | None = None,
        etag: str | None = None,
        part_sizes: tuple[int, ...] = (),
        checksum_type: str = "",
    ) -> Deferred[ObjectInfo]:
        return Deferred.fromCoroutine(
            self._put_object(
                bucket, key, staged, attributes, condition, etag, part_sizes, checksum_type
            )
        )

    async def _put_object(
        self,
        bucket: str,
        key: str,
        staged: StagedBlob,
        attributes: ObjectAttributes,
        condition: WriteCondition | None,
        etag: str | None,
        part_sizes: tuple[int, ...],
        checksum_type: str,
    ) -> ObjectInfo:
        try:
            validate_key(key)
            bucket_info = await self._pools.read(metadata.get_bucket, bucket)
        except BaseException:
            await _shield(self.discard(staged))
            raise
        object_id = str(uuid.uuid4())
        new = NewObject(
            key=key,
            object_id=object_id,
            size=staged.size,
            etag=etag if etag is not None else staged.md5_hex,
            sha256_hex=staged.sha256_hex,
            attributes=attributes,
            checksums=dict(staged.checksums),
            checksum_type=checksum_type,
            part_sizes=part_sizes,
            location_ref=BlobStore.object_ref(bucket_info.bucket_id, object_id),
        )
        return await _shield(self._place_and_commit(staged.temp_path, bucket, new, condition))

    def _place_and_commit(
        self,
        temp_path: str,
        bucket: str,
        new: NewObject,
        condition: WriteCondition | None,
        upload_id: str | None = None,
    ) -> Deferred[ObjectInfo]:
        """Rename then commit; on a failed commit the new file goes, after it the old one.

        Callers shield the returned Deferred: this sequence always runs to its end.
        """
        return Deferred.fromCoroutine(
            self._place_and_commit_steps(temp_path, bucket, new, condition, upload_id)
        )

    async def _place_and_commit_steps(
        self,
        temp_path: str,
        bucket: str,
        new: NewObject,
        condition: WriteCondition | None,
        upload_id: str | None,
    ) -> ObjectInfo:
        await self._pools.blob(self._blobs.place, temp_path, new.location_ref)
        try:
            info, replaced = await self._pools.write(
                metadata.commit_object, bucket, new, self._now(), condition, upload_id
            )
        except BaseException:
            await self._pools.blob(self._blobs.remove, new.location_ref)
            raise
        if replaced is not None and replaced.location_ref != info.location_ref:
            self._dispose(replaced)
        return info

    def _dispose(self, replaced: ReplacedObject) -> None:
        """Delete an overwritten active file; move a quarantined one aside (§8.2 item 23)."""
        d: Deferred[Any]
        if replaced.state == STATE_ACTIVE:
            d = self._pools.blob(self._blobs.remove, replaced.location_ref)
        else:
            d = self._pools.blob(self._blobs.quarantine, replaced.location_ref, replaced.object_id)
        d.addErrback(lambda f: log.failure("Could not dispose of a replaced file", f))

    def get_object_info(self, bucket: str, key: str) -> Deferred[ObjectInfo]:
        return self._pools.read(metadata.get_active_object, bucket, key)

    def open_object(self, bucket: str, key: str) -> Deferred[OpenObject]:
        opened = self._pools.read_raw(self._open_in_thread, bucket, key)
        out: Deferred[OpenObject] = Deferred()

        def forward(result: Any) -> None:
            if isinstance(result, Failure):
                if not out.called:
                    out.errback(result)
                return
            info, fd = result
            handle = FileOpenObject(info, fd, self._pools.blob, self._quarantine_after_read)
            if out.called:  # cancelled while opening: nobody will close it
                handle.close()
            else:
                out.callback(handle)

        opened.addBoth(forward)
        return out

    def _open_in_thread(self, conn: Connection, bucket: str, key: str) -> tuple[ObjectInfo, int]:
        """Lookup and open in one hop; retry when an overwrite removed the file meanwhile."""
        for _ in range(OPEN_ATTEMPTS):
            info = read_transaction(conn, metadata.get_active_object, bucket, key)
            try:
                return info, os.open(self._blobs.resolve(info.location_ref), os.O_RDONLY)
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise StorageIOError() from exc
        log.error("Object file missing: {bucket}/{key}", bucket=bucket, key=key)
        raise StorageIOError("Object data is missing", bucket=bucket, key=key)

    def _quarantine_after_read(self, info: ObjectInfo) -> Deferred[ObjectInfo | None]:
        log.critical(
            "Checksum mismatch reading {bucket}/{key} ({object_id}); quarantining",
            bucket=info.bucket,
            key=info.key,
            object_id=info.object_id,
        )
        return self._quarantine(
            info.bucket_id, info.key, "checksum mismatch on read", info.object_id
        )

    def delete_object(self, bucket: str, key: str) -> Deferred[bool]:
        return Deferred.fromCoroutine(self._delete_object(bucket, key))

    async def _delete_object(self, bucket: str, key: str) -> bool:
        ref = await _shield(self._pools.write(metadata.delete_object, bucket, key))
        if ref is None:
            return False
        await _shield(self._pools.blob(self._blobs.remove, ref))
        return True

    def stage_copy(
        self,
        source: OpenObject,
        start: int = 0,
        length: int | None = None,
        checksum_algorithms: Sequence[str] = (),
    ) -> Deferred[StagedBlob]:
        return Deferred.fromCoroutine(self._stage_copy(source, start, length, checksum_algorithms))

    async def _stage_copy(
        self,
        source: OpenObject,
        start: int,
        length: int | None,
        checksum_algorithms: Sequence[str],
    ) -> StagedBlob:
        writer = self.begin_write(checksum_algorithms)
        try:
            await source.stream(cast(IConsumer, writer), start, length)
            return await writer.finish()
        except BaseException:
            await writer.abort()
            raise

    def list_objects(
        self,
        bucket: str,
        *,
        prefix: str = "",
        delimiter: str = "",
        start_after: str = "",
        max_keys: int = 1000,
    ) -> Deferred[ListPage]:
        return self._pools.read(
            metadata.list_objects, bucket, prefix, delimiter, start_after, max_keys
        )

    # --- quarantine (for maintenance) ----------------------------------------------------

    def quarantine_object(
        self, bucket_id: str, key: str, reason: str
    ) -> Deferred[ObjectInfo | None]:
        """Mark the active object quarantined and move its file to ``quarantine/``.

        Fires with the quarantined record, or None when there was no active object.
        """
        return self._quarantine(bucket_id, key, reason, None)

    def _quarantine(
        self, bucket_id: str, key: str, reason: str, object_id: str | None
    ) -> Deferred[ObjectInfo | None]:
        async def run() -> ObjectInfo | None:
            info = await self._pools.write(
                metadata.quarantine_object, bucket_id, key, reason, self._now(), object_id
            )
            if info is not None:
                await self._pools.blob(self._blobs.quarantine, info.location_ref, info.object_id)
            return info

        return _shield(Deferred.fromCoroutine(run()))

    def list_quarantined(
        self, *, after: tuple[str, str] = ("", ""), limit: int = 1000
    ) -> Deferred[list[QuarantinedObject]]:
        """Quarantined records ordered by (bucket_id, key), after ``after``; page with limit."""
        return self._pools.read(metadata.list_quarantined, after[0], after[1], limit)

    # --- multipart -----------------------------------------------------------------------

    def create_multipart_upload(
        self,
        bucket: str,
        key: str,
        attributes: ObjectAttributes,
        initiated_by: str,
        *,
        checksum_algorithm: str = "",
        checksum_type: str = "",
    ) -> Deferred[MultipartUpload]:
        return Deferred.fromCoroutine(
            self._create_upload(
                bucket, key, attributes, initiated_by, checksum_algorithm, checksum_type
            )
        )

    async def _create_upload(
        self,
        bucket: str,
        key: str,
        attributes: ObjectAttributes,
        initiated_by: str,
        checksum_algorithm: str,
        checksum_type: str,
    ) -> MultipartUpload:
        validate_key(key)
        algorithm = _checked_algorithms([checksum_algorithm])[0] if checksum_algorithm else ""
        if checksum_type not in ("", "COMPOSITE", "FULL_OBJECT"):
            raise InvalidArgument("Invalid checksum type", checksum_type=checksum_type)
        upload = MultipartUpload(
            upload_id=str(uuid.uuid4()),
            bucket=bucket,
            bucket_id="",
            key=key,
            attributes=attributes,
            initiated_by=initiated_by,
            created_at=self._now(),
            checksum_algorithm=algorithm,
            checksum_type=checksum_type,
        )
        return await self._pools.write(metadata.insert_upload, upload)

    def get_multipart_upload(
        self, bucket: str, key: str, upload_id: str
    ) -> Deferred[MultipartUpload]:
        return self._pools.read(metadata.get_upload, bucket, key, upload_id)

    def upload_part(
        self, bucket: str, key: str, upload_id: str, part_number: int, staged: StagedBlob
    ) -> Deferred[PartInfo]:
        return Deferred.fromCoroutine(
            self._upload_part(bucket, key, upload_id, part_number, staged)
        )

    async def _upload_part(
        self, bucket: str, key: str, upload_id: str, part_number: int, staged: StagedBlob
    ) -> PartInfo:
        try:
            check_part_number(part_number)
            await self._pools.read(metadata.get_upload, bucket, key, upload_id)
        except BaseException:
            await _shield(self.discard(staged))
            raise
        part = PartInfo(
            part_number=part_number,
            size=staged.size,
            etag=staged.md5_hex,
            sha256_hex=staged.sha256_hex,
            created_at=self._now(),
            checksums=dict(staged.checksums),
            location_ref=BlobStore.part_ref(upload_id, part_number),
        )
        return await _shield(
            Deferred.fromCoroutine(self._store_part(bucket, key, upload_id, part, staged))
        )

    async def _store_part(
        self, bucket: str, key: str, upload_id: str, part: PartInfo, staged: StagedBlob
    ) -> PartInfo:
        await self._pools.blob(self._blobs.place, staged.temp_path, part.location_ref)
        try:
            return await self._pools.write(metadata.put_part, bucket, key, upload_id, part)
        except BaseException:
            await self._pools.blob(self._blobs.remove, part.location_ref)
            raise

    def list_parts(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        *,
        part_number_marker: int = 0,
        max_parts: int = 1000,
    ) -> Deferred[PartsPage]:
        return self._pools.read(
            metadata.list_parts, bucket, key, upload_id, part_number_marker, max_parts
        )

    def list_multipart_uploads(
        self,
        bucket: str,
        *,
        prefix: str = "",
        delimiter: str = "",
        key_marker: str = "",
        upload_id_marker: str = "",
        max_uploads: int = 1000,
    ) -> Deferred[UploadsPage]:
        return self._pools.read(
            metadata.list_uploads,
            bucket,
            prefix,
            delimiter,
            key_marker,
            upload_id_marker,
            max_uploads,
        )

    def complete_multipart_upload(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        parts: Sequence[CompletedPart],
        *,
        min_part_size: int = 0,
        condition: WriteCondition | None = None,
    ) -> Deferred[ObjectInfo]:
        return Deferred.fromCoroutine(
            self._complete(bucket, key, upload_id, list(parts), min_part_size, condition)
        )

    async def _complete(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        requested: list[CompletedPart],
        min_part_size: int,
        condition: WriteCondition | None,
    ) -> ObjectInfo:
        upload, uploaded = await self._pools.read(
            metadata.get_parts, bucket, key, upload_id, [p.part_number for p in requested]
        )
        selected = select_parts(requested, uploaded, min_part_size, bucket=bucket, key=key)
        algorithm = upload.checksum_algorithm
        checksum_type = upload.checksum_type
        if algorithm and not checksum_type:
            checksum_type = "FULL_OBJECT" if algorithm == "CRC64NVME" else "COMPOSITE"
        full_object = [algorithm] if algorithm and checksum_type == "FULL_OBJECT" else []
        temp, size, sha256, checksums = await self._pools.blob(
            self._blobs.assemble, [p.location_ref for p in selected], full_object
        )
        if algorithm and checksum_type == "COMPOSITE":
            value = composite_checksum(algorithm, selected)
            checksums = {algorithm: value} if value is not None else {}
        object_id = str(uuid.uuid4())
        new = NewObject(
            key=key,
            object_id=object_id,
            size=size,
            etag=multipart_etag([bytes.fromhex(p.etag) for p in selected]),
            sha256_hex=sha256.hex(),
            attributes=upload.attributes,
            checksums=checksums,
            checksum_type=checksum_type if checksums else "",
            part_sizes=tuple(p.size for p in selected),
            location_ref=BlobStore.object_ref(upload.bucket_id, object_id),
        )
        return await _shield(
            Deferred.fromCoroutine(self._commit_upload(temp, bucket, new, condition, upload_id))
        )

    async def _commit_upload(
        self,
        temp: str,
        bucket: str,
        new: NewObject,
        condition: WriteCondition | None,
        upload_id: str,
    ) -> ObjectInfo:
        info = await self._place_and_commit_steps(temp, bucket, new, condition, upload_id)
        await self._pools.blob(self._blobs.remove_tree, self._blobs.upload_path(upload_id))
        return info

    def abort_multipart_upload(self, bucket: str, key: str, upload_id: str) -> Deferred[None]:
        return Deferred.fromCoroutine(self._abort_upload(bucket, key, upload_id))

    async def _abort_upload(self, bucket: str, key: str, upload_id: str) -> None:
        await _shield(self._pools.write(metadata.delete_upload, bucket, key, upload_id))
        await _shield(self._pools.blob(self._blobs.remove_tree, self._blobs.upload_path(upload_id)))

    # --- startup recovery (JAY_SPEC §7.5, §8.2 item 24) -----------------------------------

    async def _recover(self) -> None:
        removed = await self._pools.blob(self._clean_tmp)
        bucket_ids = await self._pools.read(metadata.all_bucket_ids)
        missing = orphans = 0
        for bucket_id in bucket_ids:
            try:
                missing += await self._recover_missing_files(bucket_id)
                orphans += await self._recover_orphans(bucket_id)
            except Exception:
                log.failure("Recovery of bucket {bucket_id} failed", bucket_id=bucket_id)
        stale_uploads = stale_buckets = 0
        try:
            stale_uploads = await self._remove_unknown_dirs(
                self._blobs.multipart_dir, metadata.existing_upload_ids
            )
            stale_buckets = await self._remove_unknown_dirs(
                self._blobs.buckets_dir, metadata.existing_bucket_ids
            )
        except Exception:
            log.failure("Recovery of stale directories failed")
        log.info(
            "Recovery: {temp} temp files removed, {missing} records with missing files "
            "quarantined, {orphans} orphan files quarantined, {uploads} stale multipart and "
            "{buckets} stale bucket directories removed",
            temp=removed,
            missing=missing,
            orphans=orphans,
            uploads=stale_uploads,
            buckets=stale_buckets,
        )

    def _clean_tmp(self) -> int:
        removed = 0
        try:
            names = os.listdir(self._blobs.tmp_dir)
        except OSError as exc:
            log.error("Cannot list {dir}: {error}", dir=self._blobs.tmp_dir, error=str(exc))
            return 0
        for name in names:
            path = os.path.join(self._blobs.tmp_dir, name)
            if os.path.isfile(path):
                remove_quietly(path)
                removed += not os.path.exists(path)
        return removed

    def _missing_refs(self, entries: list[tuple[str, str, str]]) -> list[tuple[str, str]]:
        missing = []
        for key, object_id, ref in entries:
            try:
                path = self._blobs.resolve(ref)
            except JayError:
                missing.append((key, object_id))
                continue
            if not os.path.isfile(path):
                missing.append((key, object_id))
        return missing

    async def _recover_missing_files(self, bucket_id: str) -> int:
        count = 0
        after = ""
        while True:
            entries = await self._pools.read(
                metadata.active_objects_after, bucket_id, after, RECOVERY_BATCH
            )
            if not entries:
                return count
            after = entries[-1][0]
            for key, object_id in await self._pools.blob(self._missing_refs, entries):
                log.warn("Object file missing for {bucket_id}/{key}", bucket_id=bucket_id, key=key)
                info = await self._pools.write(
                    metadata.quarantine_object,
                    bucket_id,
                    key,
                    "file missing at startup",
                    self._now(),
                    object_id,
                )
                count += info is not None

    def _shard_files(self, shard_dir: str) -> list[tuple[str, str]]:
        """(object id, ref) of every file under one first-level shard directory."""
        return [
            (os.path.basename(path), self._blobs.ref_of(path))
            for path in self._blobs.iter_files(shard_dir)
        ]

    def _list_dirs(self, path: str) -> list[str]:
        try:
            return sorted(e.name for e in os.scandir(path) if e.is_dir(follow_symlinks=False))
        except FileNotFoundError:
            return []

    async def _recover_orphans(self, bucket_id: str) -> int:
        """Files no active record points at (crash between rename and commit) go to
        quarantine/. One first-level shard at a time bounds memory."""
        objects_dir = os.path.join(self._blobs.bucket_path(bucket_id), "objects")
        count = 0
        for shard in await self._pools.blob(self._list_dirs, objects_dir):
            files = await self._pools.blob(self._shard_files, os.path.join(objects_dir, shard))
            if not files:
                continue
            known = await self._pools.read(metadata.active_object_ids, [f[0] for f in files])
            for object_id, ref in files:
                if object_id in known:
                    continue
                try:
                    await self._pools.blob(self._blobs.quarantine, ref, object_id)
                    count += 1
                except OSError:
                    log.failure("Could not quarantine orphan {ref}", ref=ref)
        return count

    async def _remove_unknown_dirs(
        self, parent: str, existing: Callable[[Connection, Sequence[str]], set[str]]
    ) -> int:
        names = await self._pools.blob(self._list_dirs, parent)
        if not names:
            return 0
        known = await self._pools.read(existing, names)
        count = 0
        for name in names:
            if name not in known:
                await self._pools.blob(self._blobs.remove_tree, os.path.join(parent, name))
                count += 1
        return count
