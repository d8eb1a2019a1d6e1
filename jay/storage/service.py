"""StorageService: the Deferred API of ``jay.storage.api.Storage`` over SQLite and files.

Every SQL statement runs on the dedicated pools (one writer, N readers), every file operation on
the blob pool; the reactor thread only sequences work. Write order (JAY_SPEC §6.2): stage in
``tmp/`` → fsync → rename into the object tree → fsync dir → commit the record → delete the
replaced file. Steps from the rename on are shielded from cancellation, so a client that goes
away can never leave a committed record whose file we then deleted.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import threading
import uuid
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from typing import Any, Protocol, TypeVar, cast, overload

from twisted.application.service import Service
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IConsumer
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from jay import ids
from jay.checksums import ALGORITHMS
from jay.errors import (
    AccessDenied,
    InvalidArgument,
    JayError,
    KMSKeyNotFound,
    NoSuchKey,
    StorageIOError,
)
from jay.storage import backups, metadata, packs
from jay.storage.api import (
    BUCKET_CONFIG_ENCRYPTION,
    BUCKET_CONFIGS,
    STATE_ACTIVE,
    Account,
    BucketInfo,
    BucketStats,
    CompletedPart,
    DeleteCondition,
    DeleteOutcome,
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
    VersionsPage,
    WriteCondition,
)
from jay.storage.blobs import (
    BlobStore,
    ObjectIds,
    make_dirs,
    release_temps_under,
    remove_empty_dirs,
    remove_temp,
    sweep_temp_dir,
)
from jay.storage.decrypting import DecryptingOpenObject
from jay.storage.encryption import (
    AWS_KMS,
    DEFAULT_KMS_KEY_ID,
    MASTER_KEY_FILE,
    CustomerKey,
    MasterKey,
    Sealing,
    StreamEncryptor,
    bucket_encryption_of,
    file_size_of,
    key_for_record,
    load_or_create_master_key,
    parse_record,
    plaintext_checksums,
    read_master_key,
    seal_with_customer_key,
)
from jay.storage.metadata import NewObject, QuarantinedObject, ReplacedObject, ScrubEntry
from jay.storage.multipart import (
    check_complete_checksum_request,
    check_complete_checksums,
    check_part_number,
    composite_checksum,
    effective_checksum_type,
    multipart_etag,
    select_parts,
)
from jay.storage.names import validate_bucket_name, validate_key
from jay.storage.packs import PackWriter
from jay.storage.pools import BlobStepFailed, StoragePools
from jay.storage.reading import FileOpenObject
from jay.storage.sqlite import Connection, SQLiteDatabase
from jay.storage.staging import FileStagingWriter, discard_staged
from jay.storage.verifying import FileHasher, hash_file

log = Logger()

T = TypeVar("T")

# Attempts to open an object whose file a concurrent overwrite may have just deleted.
OPEN_ATTEMPTS = 3
# Objects up to this size are read on the reactor thread right after their lookup and open (a
# page-cache read of this size costs less than a thread hop); larger ones are streamed.
INLINE_READ_BYTES = 64 * 1024
# How often the reactor looks whether queued punches are due (a lock and a comparison) and, if
# so, hands them to a blob thread in one batch.
PUNCH_CHECK_SECONDS = 1.0
# Access decisions read the bucket record on every request; see StorageService.get_bucket.
BUCKET_CACHE_ENTRIES = 10_000
# Object records kept for GET/HEAD lookups (see _cached_object), about 1 KiB each. When full
# the cache starts over: evicting one entry at a time from the front of a dict makes every
# later eviction scan the deleted slots, which cost more than the lookups saved.
OBJECT_CACHE_ENTRIES = 16_384
# Change-log rows read per statement while catching up (bounded memory after a burst).
OBJECT_CHANGES_PER_READ = 4096
# Records per recovery batch: bounds memory on huge buckets.
RECOVERY_BATCH = 1000
# Uploads examined per multipart-reconciliation / expiry batch.
UPLOAD_BATCH = 200

# Quarantine reasons (stored with the record, shown by the admin API).
REASON_READ_MISMATCH = "checksum mismatch on read"
REASON_SCRUB_MISMATCH = "checksum mismatch (scrub)"
REASON_SCRUB_SIZE = "size mismatch (scrub)"
REASON_SCRUB_MISSING = "file missing (scrub)"
REASON_STARTUP_MISSING = "file missing at startup"
REASON_STARTUP_SIZE = "size mismatch at startup"


class MetricsSink(Protocol):
    """The part of ``jay.metrics.registry.Metrics`` storage reports to (reactor thread)."""

    def count(self, name: str, amount: int = 1) -> None: ...


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


def _commit_packed(
    conn: Connection,
    ref: str,
    bucket: str,
    new: NewObject,
    now: float,
    condition: WriteCondition | None,
    upload_id: str | None,
) -> tuple[ObjectInfo, ReplacedObject | None]:
    """``metadata.commit_object`` for a body the writer just put into its pack at ``ref``."""
    return metadata.commit_object(
        conn, bucket, dataclasses.replace(new, location_ref=ref), now, condition, upload_id
    )


def file_size_of_info(info: ObjectInfo) -> int:
    return file_size_of(info.size, info.part_sizes, info.attributes.encryption)


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
        metrics: MetricsSink | None = None,
        recover: bool = True,
        pack_max_object_bytes: int = packs.DEFAULT_MAX_OBJECT_BYTES,
        master_key_path: str = "",
        kms_key_ids: Sequence[str] = (),
    ) -> None:
        # ``recover=False``: another process on this data directory ran startup recovery and is
        # serving (jay/workers.py); recovering again would race with its writes.
        self._recover_on_start = recover
        self.data_dir = os.path.abspath(data_dir)
        self._reactor = reactor
        # Bucket records stamped with the database's buckets generation they were read under.
        self._bucket_cache: dict[str, tuple[int, BucketInfo]] = {}
        self._bucket_generation = 0
        # Object records by (bucket, key), current as of commit token ``_objects_token``: the
        # objects generation then was ``_objects_generation`` and the change log had been
        # read up to ``_objects_change_seen`` (None: not followed yet, the cache is empty).
        self._object_cache: dict[tuple[str, str], ObjectInfo] = {}
        self._objects_token: Hashable | None = None
        self._objects_generation: int | None = None
        self._objects_change_seen: int | None = None
        # The cache generations as read under commit token ``_generations_token``.
        self._generations_token: Hashable | None = None
        self._generations: metadata.CacheGenerations | None = None
        # Counts objects_quarantined / checksum_failures (JAY_SPEC §8.2 item 22). May be set
        # after construction (``svc.metrics = m``) by whoever wires the service tree.
        self.metrics = metrics
        self._max_buckets = max_buckets_per_account
        self._blobs = BlobStore(self.data_dir)
        self._object_ids = ObjectIds()
        self._pools = StoragePools(
            reactor, reader_threads=reader_threads, blob_threads=blob_threads
        )
        # After each commit the writer reads the cache generations for the new token
        # (``_current_generations`` then needs no query on the reactor).
        self._pools.commit_probe = metadata.get_cache_generations
        # New objects up to this size (bodies already in memory) go into this process's pack
        # file with their group commit (jay.storage.packs); 0: every object gets a file.
        self._pack_max = max(0, min(pack_max_object_bytes, packs.MAX_OBJECT_BYTES))
        if self._pack_max:
            self._pools.packer = PackWriter(self._blobs.packs_dir)
        self._database = SQLiteDatabase(os.path.join(self.data_dir, "meta", "jay.db"))
        self._ready_result: Failure | bool | None = None
        self._ready_waiters: list[Deferred[None]] = []
        self._starting: Deferred[None] | None = None
        self._punch_loop: LoopingCall | None = None
        self._is_punching = False  # a punch_due job is running
        # SSE-S3's master key (jay.storage.encryption): read, or created, on first use.
        self.master_key_path = master_key_path or os.path.join(self.data_dir, MASTER_KEY_FILE)
        self._master_key: MasterKey | None = None
        # The local keyring of SSE-KMS: the key ids it accepts (keys derive from the master key).
        self._kms_key_ids = frozenset((DEFAULT_KMS_KEY_ID, *kms_key_ids))

    # --- lifecycle -----------------------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        self._pools.start()
        # Deleted packed records' blocks are punched once due (BlobStore.punch_due): deletes
        # punch what is due as they go; overwrites only queue theirs (on the reactor) and this
        # punches them in batches, as it catches the rest when deletes stop.
        self._punch_loop = LoopingCall(self._punch_due)
        self._punch_loop.clock = self._reactor
        self._punch_loop.start(PUNCH_CHECK_SECONDS, now=False)
        self._starting = Deferred.fromCoroutine(self._start())
        self._starting.addBoth(self._started)

    async def _start(self) -> None:
        await self._pools.blob(self._blobs.create_layout)
        # An existing master key is read here, off the reactor (and a bad one stops the start);
        # a missing one is created on first use.
        self._master_key = await self._pools.blob(read_master_key, self.master_key_path)
        self._pools.open_database(self._database)
        await self._pools.write(self._create_schema)
        if self._recover_on_start:
            await self._recover()

    @staticmethod
    def _create_schema(conn: Connection) -> None:
        for statement in metadata.SCHEMA:
            conn.execute(statement)
        metadata.migrate(conn)

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

    def _punch_due(self) -> None:
        if self._is_punching or not self._blobs.is_punch_due():
            return
        self._is_punching = True

        def done(result: Any) -> None:
            self._is_punching = False
            if isinstance(result, Failure):
                log.failure("Could not free deleted packed records", result)

        self._pools.blob(self._blobs.punch_due).addBoth(done)

    def stopService(self) -> Deferred[None]:
        super().stopService()
        if self._punch_loop is not None and self._punch_loop.running:
            self._punch_loop.stop()
        done: Deferred[None] = Deferred()
        starting = self._starting if self._starting is not None else succeed(None)

        def stop_pools(_: object) -> Deferred[None]:
            # Joining threads blocks until running jobs end: do it off the reactor thread.
            def run() -> None:
                try:
                    self._pools.stop()
                    release_temps_under(self._blobs.tmp_dir)
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

    # --- several processes on one database ------------------------------------------------

    def auth_generation(self) -> Deferred[int]:
        """A number that changes whenever a token or account status changes (any process)."""
        return self._pools.read(metadata.get_generation, metadata.AUTH_GENERATION)

    def current_auth_generation(self) -> int | None:
        """``auth_generation`` now, synchronously (reactor thread), for a per-request check;
        None when the database cannot answer right now (callers keep their caches)."""
        generations = self._current_generations()
        return None if generations is None else generations.auth

    def _current_generations(self) -> metadata.CacheGenerations | None:
        """The cache generations (auth, buckets, objects) as of now, read from SQLite only
        when the commit token moved since the last read, and then all in one statement.

        Under a write load the token moves with every commit, and each SQLite call on the
        reactor releases the GIL, after which the reactor waits for busy pool threads to hand
        it back (tens of microseconds per call, measured); validating the token, bucket
        and object caches separately cost up to three such calls per request, this costs one per
        commit at most. None when the database cannot say (locked for a moment: ask again next
        request)."""
        version = self._pools.data_version()
        if version is None:
            return None
        if version != self._generations_token:
            probed = self._pools.probed
            if probed is not None and probed[0] == version:
                # Read by this process's writer right after its commit, at this very token:
                # no query needed (a query here hands the GIL to busy threads and waits).
                generations = probed[1]
            else:
                try:
                    generations = self._pools.run_inline(metadata.get_cache_generations)
                except Exception:
                    return None
            self._generations = generations
            self._generations_token = version
        return self._generations

    def acquire_lease(self, name: str, holder: str, ttl_seconds: float) -> Deferred[bool]:
        """Take or renew a named lease; True while ``holder`` holds it (until now + ttl)."""
        return self._pools.write(metadata.acquire_lease, name, holder, self._now(), ttl_seconds)

    def release_lease(self, name: str, holder: str) -> Deferred[None]:
        return self._pools.write(metadata.release_lease, name, holder)

    # --- buckets -------------------------------------------------------------------------

    def create_bucket(
        self, name: str, owner_account_id: str, configs: Mapping[str, str] | None = None
    ) -> Deferred[BucketInfo]:
        """``configs`` (BUCKET_CONFIGS → value) are stored in the same transaction as the
        bucket: Object Lock is in force before anything can be written into it."""
        return Deferred.fromCoroutine(self._create_bucket(name, owner_account_id, configs))

    async def _create_bucket(
        self, name: str, owner_account_id: str, configs: Mapping[str, str] | None
    ) -> BucketInfo:
        validate_bucket_name(name)
        if configs and not BUCKET_CONFIGS.issuperset(configs):
            raise ValueError(f"unknown bucket configuration in {sorted(configs)!r}")
        bucket = BucketInfo(
            bucket_id=str(uuid.uuid4()),
            name=name,
            owner_account_id=owner_account_id,
            created_at=self._now(),
            configs=tuple(sorted((configs or {}).items())),
        )
        created = await self._pools.write(metadata.insert_bucket, bucket, self._max_buckets)
        # After the commit: a crash in between leaves a record without a directory, which
        # the first put creates; never a directory without a record.
        objects_dir = os.path.join(self._blobs.bucket_path(created.bucket_id), "objects")
        await self._pools.blob(make_dirs, objects_dir)
        return created

    def get_bucket(self, name: str) -> Deferred[BucketInfo]:
        """Bucket records are read on every request for access decisions, so they are cached,
        each entry stamped with the database's buckets generation, which triggers bump on any
        change to a bucket record by any connection (this process's writer or another
        worker's). The generation is re-read once per commit token (see
        ``_current_generations``), so a hit is never stale and a policy change is seen
        by every worker at once, yet object writes (which move the token, not the generation)
        leave the cache valid. Writes never rely on the cache: they look the bucket up inside
        their own transaction."""
        generations = self._current_generations()
        hit = self._bucket_cache.get(name)
        if hit is not None and generations is not None and hit[0] == generations.buckets:
            return succeed(hit[1])
        local_generation = self._bucket_generation

        def remember(info: BucketInfo) -> BucketInfo:
            if generations is not None and local_generation == self._bucket_generation:
                if len(self._bucket_cache) >= BUCKET_CACHE_ENTRIES:
                    self._bucket_cache.clear()
                self._bucket_cache[name] = (generations.buckets, info)
            return info

        return self._pools.read_now(metadata.get_bucket, name).addCallback(remember)

    def _forget_bucket(self, name: str) -> None:
        self._bucket_cache.pop(name, None)
        # A lookup already in flight may carry the old record: it must not be cached.
        self._bucket_generation += 1

    def get_bucket_by_id(self, bucket_id: str) -> Deferred[BucketInfo]:
        return self._pools.read(metadata.get_bucket_by_id, bucket_id)

    def delete_bucket(self, name: str) -> Deferred[None]:
        return Deferred.fromCoroutine(self._delete_bucket(name))

    async def _delete_bucket(self, name: str) -> None:
        self._forget_bucket(name)
        try:
            bucket_id, upload_ids = await self._pools.write(metadata.delete_bucket, name)
        finally:
            self._forget_bucket(name)
        paths = [self._blobs.bucket_path(bucket_id)]
        paths.extend(self._blobs.upload_path(u) for u in upload_ids)
        for path in paths:
            await self._pools.blob(self._blobs.remove_tree, path)

    def list_buckets(self, owner_account_id: str | None = None) -> Deferred[list[BucketInfo]]:
        return self._pools.read(metadata.list_buckets, owner_account_id)

    def set_bucket_policy(self, name: str, policy_json: str | None) -> Deferred[BucketInfo]:
        self._forget_bucket(name)

        def done(result: Any) -> Any:
            self._forget_bucket(name)
            return result

        return self._pools.write(metadata.set_bucket_policy, name, policy_json).addBoth(done)

    def set_bucket_config(self, name: str, config: str, value: str | None) -> Deferred[BucketInfo]:
        if config not in BUCKET_CONFIGS:
            raise ValueError(f"unknown bucket configuration {config!r}")
        self._forget_bucket(name)

        def done(result: Any) -> Any:
            self._forget_bucket(name)
            return result

        return self._pools.write(metadata.set_bucket_config, name, config, value).addBoth(done)

    def get_object_acl(
        self, bucket: str, key: str, version_id: str | None = None
    ) -> Deferred[str | None]:
        return self._pools.read_now(metadata.get_object_acl, bucket, key, version_id)

    def get_object_part_checksums(
        self, bucket: str, key: str, version_id: str | None = None
    ) -> Deferred[tuple[ObjectInfo, tuple[Mapping[str, str], ...]]]:
        return self._pools.read(metadata.get_object_part_checksums, bucket, key, version_id)

    def set_object_acl(
        self, bucket: str, key: str, acl_json: str | None, version_id: str | None = None
    ) -> Deferred[None]:
        return self._pools.write(metadata.set_object_acl, bucket, key, acl_json, version_id)

    def bucket_stats(self, name: str) -> Deferred[BucketStats]:
        return self._pools.read(metadata.bucket_stats, name)

    # --- objects -------------------------------------------------------------------------

    def begin_write(
        self,
        checksum_algorithms: Sequence[str] = (),
        *,
        sealing: Sealing | None = None,
        part_number: int = 0,
        size_hint: int | None = None,
    ) -> StagingWriter:
        return FileStagingWriter(
            self._reactor,
            self._pools.blob,
            self._name_upload_temp,
            _checked_algorithms(checksum_algorithms),
            # Bodies that will be packed stay in memory (no temp file to write and remove).
            in_memory_bytes=self._pack_max,
            encryptor=(None if sealing is None else StreamEncryptor(sealing.data_key, part_number)),
            size_hint=size_hint,
        )

    # --- server-side encryption (jay.storage.encryption) ---------------------------------------

    @property
    def master_key(self) -> MasterKey:
        """SSE-S3's master key, created (0600) in the data directory on first use."""
        if self._master_key is None:
            self._master_key = load_or_create_master_key(self.master_key_path)
        return self._master_key

    def new_sealing(
        self,
        customer: CustomerKey | None = None,
        *,
        kms_key_id: str | None = None,
        kms_context: str = "",
    ) -> Sealing:
        """A new data key and its record: under ``customer``'s key (SSE-C), under the keyring's
        ``kms_key_id`` (SSE-KMS; KMSKeyNotFound for a key it does not hold), else SSE-S3."""
        if customer is not None:
            return seal_with_customer_key(customer)
        if kms_key_id is not None:
            self.check_kms_key(kms_key_id)
            return self.master_key.seal(kms_key_id, kms_context)
        return self.master_key.seal()

    def default_sealing(self, bucket: BucketInfo) -> Sealing | None:
        """The sealing of a new object that asks for no encryption: its bucket's default
        encryption (SSE-S3, or SSE-KMS under the configured or default key), None without."""
        stored = bucket.config(BUCKET_CONFIG_ENCRYPTION)
        if stored is None:
            return None
        default = bucket_encryption_of(stored)
        if default.algorithm == AWS_KMS:
            return self.new_sealing(kms_key_id=default.kms_key_id or DEFAULT_KMS_KEY_ID)
        return self.new_sealing()

    def check_kms_key(self, kms_key_id: str) -> None:
        if kms_key_id not in self._kms_key_ids:
            raise KMSKeyNotFound(f"Invalid keyId {kms_key_id}")

    def data_key(self, attributes: ObjectAttributes, customer: CustomerKey | None) -> bytes:
        """The data key of an encrypted object or upload, with S3's errors: an SSE-C one needs
        its key (InvalidRequest without, AccessDenied with another), any other refuses SSE-C
        headers (InvalidRequest)."""
        assert attributes.encryption is not None
        record = parse_record(attributes.encryption)
        return key_for_record(record, customer, self.master_key)

    def decrypting(self, opened: OpenObject, data_key: bytes) -> OpenObject:
        """``opened`` (an encrypted object) as an OpenObject that streams its plaintext."""
        assert isinstance(opened, FileOpenObject)
        return DecryptingOpenObject(opened, data_key)

    def _name_upload_temp(self) -> str:
        return self._blobs.temp_path("upload")

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
        acl_json: str | None = None,
    ) -> Deferred[ObjectInfo]:
        return Deferred.fromCoroutine(
            self._put_object(
                bucket,
                key,
                staged,
                attributes,
                condition,
                etag,
                part_sizes,
                checksum_type,
                acl_json,
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
        acl_json: str | None = None,
    ) -> ObjectInfo:
        try:
            validate_key(key)
            # The cached record is as fresh as a read (see get_bucket); the commit looks the
            # bucket up again inside its own transaction anyway.
            bucket_info = await self.get_bucket(bucket)
        except BaseException:
            await _shield(self.discard(staged))
            raise
        object_id = self._object_ids.new(bucket_info.bucket_id)
        new = NewObject(
            key=key,
            object_id=object_id,
            size=staged.size,
            etag=etag if etag is not None else staged.md5_hex,
            sha256_hex=staged.record_sha256_hex,
            attributes=attributes,
            checksums=dict(staged.checksums),
            checksum_type=checksum_type,
            part_sizes=part_sizes,
            location_ref=BlobStore.object_ref(bucket_info.bucket_id, object_id),
            acl_json=acl_json,
        )
        return await _shield(self._place_and_commit(staged, bucket, new, condition))

    def _place_and_commit(
        self,
        staged: StagedBlob | str,
        bucket: str,
        new: NewObject,
        condition: WriteCondition | None,
        upload_id: str | None = None,
    ) -> Deferred[ObjectInfo]:
        """Rename then commit; on a failed commit the new file goes, after it the old one.

        Callers shield the returned Deferred: this sequence always runs to its end.
        """
        return Deferred.fromCoroutine(
            self._place_and_commit_steps(staged, bucket, new, condition, upload_id)
        )

    def _placement(
        self, source: StagedBlob | str, ref: str, *, is_new: bool
    ) -> tuple[Callable[..., None], tuple[Any, ...]]:
        """The blob job that puts ``source`` at ``ref``: rename the staged (or assembled,
        ``str``) temp file there — or, for a body still in memory, write it there: in place
        when ``ref`` is a new object's (``write_new``), else through a temp file and a rename
        (a part uploaded again replaces its file)."""
        if isinstance(source, str):
            return self._blobs.place, (source, ref)
        if source.pending is not None:
            if is_new:
                return self._blobs.write_new, (source.pending, ref)
            temp_path = source.temp_path or self._name_upload_temp()
            return self._blobs.write_and_place, (temp_path, source.pending, ref)
        return self._blobs.place, (source.temp_path, ref)

    def _place(self, source: StagedBlob | str, ref: str, *, is_new: bool) -> Deferred[None]:
        fn, args = self._placement(source, ref, is_new=is_new)
        return self._pools.blob(fn, *args)

    async def _place_and_commit_steps(
        self,
        staged: StagedBlob | str,
        bucket: str,
        new: NewObject,
        condition: WriteCondition | None,
        upload_id: str | None,
    ) -> ObjectInfo:
        if (
            self._pack_max
            and not isinstance(staged, str)
            and staged.pending is not None
            and staged.size <= self._pack_max
            and new.attributes.encryption is None  # read through a file of its own
        ):
            # Into the pack with the group commit: nothing to remove if the commit fails.
            info, replaced = await self._pools.write_packed(
                staged.pending,
                _commit_packed,
                bucket,
                new,
                self._now(),
                condition,
                upload_id,
            )
            if replaced is not None and replaced.location_ref != info.location_ref:
                self._dispose(replaced)
            return info
        # A new object id on every commit: its path is never one a record points at yet.
        place, place_args = self._placement(staged, new.location_ref, is_new=True)
        try:
            # The blob thread queues the commit itself once the file is durable in place.
            info, replaced = await self._pools.blob_then_write(
                place,
                place_args,
                metadata.commit_object,
                (bucket, new, self._now(), condition, upload_id),
            )
        except BlobStepFailed as placing:
            placing.failure.raiseException()  # nothing was placed: nothing to remove
        except BaseException:
            await self._pools.blob(self._blobs.remove, new.location_ref)
            raise
        if replaced is not None and replaced.location_ref != info.location_ref:
            self._dispose(replaced)
        return info

    def _dispose(self, replaced: ReplacedObject) -> None:
        """Delete an overwritten active file; move a quarantined one aside (§8.2 item 23).
        A delete marker has no file. Only records that left both the current and the
        noncurrent versions reach here: a version kept by versioning is never disposed of."""
        d: Deferred[Any]
        if not replaced.location_ref:
            return
        if replaced.state == STATE_ACTIVE:
            try:
                if self._blobs.forget_packed(replaced.location_ref):
                    return  # queued for the punch timer: no thread hop per overwrite
            except JayError:
                log.warn("Refusing to remove invalid location {ref}", ref=replaced.location_ref)
                return
            d = self._pools.blob(self._blobs.remove, replaced.location_ref)
        else:
            d = self._pools.blob(self._blobs.quarantine, replaced.location_ref, replaced.object_id)
        d.addErrback(lambda f: log.failure("Could not dispose of a replaced file", f))

    # --- object records for reads: a cache kept current by the object change log --------------

    def _cached_object(self, bucket: str, key: str) -> tuple[Hashable | None, ObjectInfo | None]:
        """The commit token the cache is current for, and the record cached for this key.

        Object records for GET/HEAD are kept as long as nothing changes them. Whenever the
        commit token moves, the objects generation (read with the other cache generations)
        says whether any object record changed; if one did, the change log
        (``metadata.object_changes_after``: bucket and key of every insert, update and delete
        of an object record, by any connection — this process's writer, another worker, a
        tool) names the keys to drop. A hit is then the record a read would return right now,
        and a PUT of one key leaves every other cached key in place: a read-mostly key stays
        cached under a write load, and every worker keeps its cache across the maintenance
        lease renewals and other commits that change no object. None as the token: the
        database cannot say right now, so nothing is served from the cache."""
        token = self._pools.data_version()
        if token is None:
            return None, None
        if token != self._objects_token and not self._catch_up_on_changes(token):
            return None, None
        return token, self._object_cache.get((bucket, key))

    def _catch_up_on_changes(self, token: Hashable) -> bool:
        """Drop the cached records of the keys changed since the cache was last current; True
        when the cache is then current for ``token``."""
        generations = self._current_generations()
        if generations is None:
            return False
        if generations.objects != self._objects_generation:
            try:
                if self._objects_change_seen is None:
                    # Not following the log yet: start from its end with an empty cache.
                    self._object_cache.clear()
                    self._objects_change_seen = self._pools.run_inline(metadata.last_object_change)
                else:
                    self._drop_changed_objects()
            except Exception:
                return False
            self._objects_generation = generations.objects
        self._objects_token = token
        return True

    def _drop_changed_objects(self) -> None:
        seen = self._objects_change_seen
        assert seen is not None
        cache = self._object_cache
        while True:
            changes = self._pools.run_inline(
                metadata.object_changes_after, seen, OBJECT_CHANGES_PER_READ
            )
            if not changes:
                break
            if changes[0][0] != seen + 1:
                # Pruned past our place in the log: what changed in between is unknown.
                cache.clear()
            for _, bucket, key in changes:
                if not bucket:
                    cache.clear()  # a record whose bucket was already gone: be safe
                cache.pop((bucket, key), None)
            seen = changes[-1][0]
            if len(changes) < OBJECT_CHANGES_PER_READ:
                break
        self._objects_change_seen = seen

    def _remember_object(self, info: ObjectInfo, token: Hashable | None) -> ObjectInfo:
        # Only while the cache is still current for the token read before the lookup: a
        # lookup that had to wait (a reader thread) may carry a record a change has passed.
        if token is not None and token == self._objects_token:
            cache = self._object_cache
            if len(cache) >= OBJECT_CACHE_ENTRIES:
                cache.clear()
            cache[(info.bucket, info.key)] = info
        return info

    def get_object_info(self, bucket: str, key: str) -> Deferred[ObjectInfo]:
        version, info = self._cached_object(bucket, key)
        if info is not None:
            return succeed(info)
        # A single statement is its own snapshot: no BEGIN/COMMIT round trip needed.
        looked_up = self._pools.read_now(metadata.get_active_object, bucket, key)
        return looked_up.addCallback(self._remember_object, version)

    def open_object(self, bucket: str, key: str) -> Deferred[OpenObject]:
        # On the reactor thread: a lookup and an open(2) cost less than a thread hop.
        version, cached = self._cached_object(bucket, key)
        if cached is not None:
            opened = self._pools.read_now(self._open_known, cached)
        else:
            opened = self._pools.read_now(self._open, bucket, key)

        def handle_for(result: tuple[ObjectInfo, int, bytes | None]) -> FileOpenObject:
            info, fd, prefetched = result
            if info is not cached:
                self._remember_object(info, version)
            return FileOpenObject(
                info, fd, self._pools.blob, self._quarantine_after_read, prefetched
            )

        if opened.called and not isinstance(opened.result, Failure):
            # Opened right here (the usual case): nothing can cancel it before we return.
            return succeed(handle_for(cast(tuple[ObjectInfo, int, bytes | None], opened.result)))
        out: Deferred[OpenObject] = Deferred()

        def forward(result: Any) -> None:
            if isinstance(result, Failure):
                if not out.called:
                    out.errback(result)
                return
            handle = handle_for(result)
            if out.called:  # cancelled while opening: nobody will close it
                handle.close()
            else:
                out.callback(handle)

        opened.addBoth(forward)
        return out

    def _open_known(
        self, conn: Connection, info: ObjectInfo
    ) -> tuple[ObjectInfo, int, bytes | None]:
        """``_open`` for a record from the cache; a file gone meanwhile means the record
        changed under a commit that raced this request, so look it up again."""
        try:
            fd, base = self._blobs.open_blob(info.location_ref)
        except FileNotFoundError:
            return self._open(conn, info.bucket, info.key)
        except OSError as exc:
            raise StorageIOError() from exc
        return info, fd, self._prefetch(fd, info, base)

    @staticmethod
    def _prefetch(fd: int, info: ObjectInfo, base: int) -> bytes | None:
        # A packed record (``base`` past 0) is never larger than INLINE_READ_BYTES.
        if info.size > INLINE_READ_BYTES:
            return None
        try:
            return os.pread(fd, info.size, base)
        except OSError as exc:
            os.close(fd)
            raise StorageIOError() from exc

    def _open(
        self, conn: Connection, bucket: str, key: str
    ) -> tuple[ObjectInfo, int, bytes | None]:
        """Look up and open; retry when an overwrite removed the file meanwhile. Objects up to
        ``INLINE_READ_BYTES`` are read right away (one pread); larger ones are streamed by the
        producer (sendfile to a plain TCP socket, blob-pool reads otherwise)."""
        for _ in range(OPEN_ATTEMPTS):
            info = metadata.get_active_object(conn, bucket, key)  # one statement: a snapshot
            try:
                fd, base = self._blobs.open_blob(info.location_ref)
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise StorageIOError() from exc
            return info, fd, self._prefetch(fd, info, base)
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
            info.bucket_id, info.key, REASON_READ_MISMATCH, info.object_id, checksum_failure=True
        )

    def delete_object(
        self, bucket: str, key: str, condition: DeleteCondition | None = None
    ) -> Deferred[bool]:
        """Remove the key's current version (in a versioned bucket: add a delete marker);
        False when there was nothing to remove. ``condition`` is checked in the delete's
        transaction (PreconditionFailed / NoSuchKey)."""
        return self.delete_version(bucket, key, condition=condition).addCallback(
            lambda outcome: outcome.deleted
        )

    def delete_version(
        self,
        bucket: str,
        key: str,
        *,
        version_id: str | None = None,
        condition: DeleteCondition | None = None,
        bypass_governance: bool = False,
    ) -> Deferred[DeleteOutcome]:
        """S3 DeleteObject with or without a version id (``metadata.delete_version``); a
        version under Object Lock is AccessDenied (GOVERNANCE yields to
        ``bypass_governance``)."""
        return Deferred.fromCoroutine(
            self._delete_version(bucket, key, version_id, condition, bypass_governance)
        )

    async def _delete_version(
        self,
        bucket: str,
        key: str,
        version_id: str | None,
        condition: DeleteCondition | None,
        bypass_governance: bool,
    ) -> DeleteOutcome:
        outcome, replaced = await _shield(
            self._pools.write(
                metadata.delete_version,
                bucket,
                key,
                condition,
                version_id,
                self._now(),
                ids.uuid4(),
                bypass_governance,
            )
        )
        if replaced is not None and replaced.location_ref:
            if replaced.state == STATE_ACTIVE:
                # The record is gone once the commit returned: answer now and let the file go
                # in the background (best effort, JAY_SPEC §6.2; a crash first leaves an orphan
                # that recovery quarantines). Unlinking a large file takes milliseconds the
                # client need not wait for.
                removal = self._pools.blob(self._blobs.remove, replaced.location_ref)
                removal.addErrback(
                    lambda f: log.failure("Could not remove a deleted object's file", f)
                )
            else:
                self._dispose(replaced)
        return outcome

    def get_object_version(self, bucket: str, key: str, version_id: str) -> Deferred[ObjectInfo]:
        """The version ``version_id`` of ``key`` (current or not): NoSuchVersion,
        MethodNotAllowed for a delete marker. Not cached: version reads are rare."""
        return self._pools.read(metadata.get_object_version, bucket, key, version_id)

    def open_object_version(self, bucket: str, key: str, version_id: str) -> Deferred[OpenObject]:
        """``open_object`` for one version. A version's file stays until the version is
        deleted, so a lookup then an open in the pool needs no retry loop."""

        def run(conn: Connection) -> tuple[ObjectInfo, int, bytes | None]:
            info = metadata.get_object_version(conn, bucket, key, version_id)
            try:
                fd, base = self._blobs.open_blob(info.location_ref)
            except OSError as exc:
                # A version's file stays as long as its record: a missing one is data loss.
                log.error(
                    "Object file missing: {bucket}/{key} version {version_id}",
                    bucket=bucket,
                    key=key,
                    version_id=version_id,
                )
                raise StorageIOError("Object data is missing", bucket=bucket, key=key) from exc
            return info, fd, self._prefetch(fd, info, base)

        def handle_for(result: tuple[ObjectInfo, int, bytes | None]) -> OpenObject:
            info, fd, prefetched = result
            return FileOpenObject(
                info, fd, self._pools.blob, self._quarantine_after_read, prefetched
            )

        return self._pools.read(run).addCallback(handle_for)

    def list_object_versions(
        self,
        bucket: str,
        *,
        prefix: str = "",
        delimiter: str = "",
        key_marker: str = "",
        version_id_marker: str = "",
        max_keys: int = 1000,
    ) -> Deferred[VersionsPage]:
        return self._pools.read(
            metadata.list_object_versions,
            bucket,
            prefix,
            delimiter,
            key_marker,
            version_id_marker,
            max_keys,
        )

    def set_object_lock(
        self,
        bucket: str,
        key: str,
        version_id: str | None = None,
        *,
        retention: tuple[str | None, float | None] | None = None,
        legal_hold: str | None = None,
        bypass_governance: bool = False,
    ) -> Deferred[ObjectInfo]:
        """Set a version's retention ((mode, until); (None, None) removes it) and/or legal
        hold (``metadata.set_object_lock``) and fire with the updated record."""
        return _shield(
            self._pools.write(
                functools.partial(
                    metadata.set_object_lock,
                    retention=retention,
                    legal_hold=legal_hold,
                    bypass_governance=bypass_governance,
                ),
                bucket,
                key,
                version_id,
                self._now(),
            )
        )

    def set_object_tags(
        self, bucket: str, key: str, tags: Mapping[str, str], version_id: str | None = None
    ) -> Deferred[ObjectInfo]:
        """Replace the key's tags in one write transaction (``metadata.set_object_tags``);
        cached records of the key are dropped through the object change log like a PUT's."""
        return _shield(
            self._pools.write(metadata.set_object_tags, bucket, key, dict(tags), version_id)
        )

    def stage_copy(
        self,
        source: OpenObject,
        start: int = 0,
        length: int | None = None,
        checksum_algorithms: Sequence[str] = (),
        *,
        sealing: Sealing | None = None,
        part_number: int = 0,
    ) -> Deferred[StagedBlob]:
        return Deferred.fromCoroutine(
            self._stage_copy(source, start, length, checksum_algorithms, sealing, part_number)
        )

    async def _stage_copy(
        self,
        source: OpenObject,
        start: int,
        length: int | None,
        checksum_algorithms: Sequence[str],
        sealing: Sealing | None = None,
        part_number: int = 0,
    ) -> StagedBlob:
        writer = self.begin_write(
            checksum_algorithms,
            sealing=sealing,
            part_number=part_number,
            size_hint=length if length is not None else source.info.size - start,
        )
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
        # On the reactor thread: from a reader thread, every row SQLite steps to releases and
        # re-takes the GIL, and under load each re-take waits for the reactor's switch interval.
        return self._pools.read_snapshot_now(
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

    def quarantine_version(
        self,
        bucket_id: str,
        key: str,
        object_id: str,
        reason: str,
        *,
        checksum_failure: bool = False,
    ) -> Deferred[ObjectInfo | None]:
        """Quarantine ``key`` only while it still holds ``object_id`` (a concurrent overwrite
        wins); the file moves to ``quarantine/`` if it is still there."""
        return self._quarantine(
            bucket_id, key, reason, object_id, checksum_failure=checksum_failure
        )

    def _quarantine(
        self,
        bucket_id: str,
        key: str,
        reason: str,
        object_id: str | None,
        *,
        checksum_failure: bool = False,
    ) -> Deferred[ObjectInfo | None]:
        if checksum_failure:
            self._count("checksum_failures")

        async def run() -> ObjectInfo | None:
            info = await self._pools.write(
                metadata.quarantine_object, bucket_id, key, reason, self._now(), object_id
            )
            if info is not None:
                self._count("objects_quarantined")
                log.warn(
                    "Quarantined {bucket_id}/{key} ({object_id}): {reason}",
                    bucket_id=bucket_id,
                    key=key,
                    object_id=info.object_id,
                    reason=reason,
                )
                await self._pools.blob(self._blobs.quarantine, info.location_ref, info.object_id)
            return info

        return _shield(Deferred.fromCoroutine(run()))

    def _count(self, name: str, amount: int = 1) -> None:
        if self.metrics is None or amount <= 0:
            return
        try:
            self.metrics.count(name, amount)
        except Exception:
            log.failure("Metrics hook failed for {name}", name=name)

    # --- quarantine administration (admin API, JAY_SPEC §8.2 item 23) ---------------------

    def revalidate_quarantined(self, bucket_id: str, key: str) -> Deferred[bool]:
        """Re-hash a quarantined object's bytes wherever they are now (its location, then
        ``quarantine/``); if size and SHA-256 match the record again, move the file back and make
        the object active. True when restored, False when no copy verifies. NoSuchKey when the
        key holds no quarantined record."""
        return _shield(Deferred.fromCoroutine(self._revalidate(bucket_id, key)))

    async def _revalidate(self, bucket_id: str, key: str) -> bool:
        info = await self._pools.read(metadata.find_quarantined, bucket_id, key)
        if info is None:
            raise NoSuchKey(key=key, resource=bucket_id)
        candidates = await self._pools.blob(
            self._blobs.file_candidates, info.location_ref, info.object_id
        )
        for path in candidates:
            digest = await self._pools.blob(hash_file, path)
            if digest != (file_size_of_info(info), info.sha256_hex):
                continue
            # Rename before commit: a crash in between leaves a file no active record points at,
            # which recovery moves back to quarantine/; the record stays quarantined.
            await self._pools.blob(self._blobs.restore_to, path, info.location_ref)
            restored = await self._pools.write(
                metadata.restore_quarantined, bucket_id, key, info.object_id, self._now()
            )
            if not restored:  # purged or overwritten meanwhile
                await self._pools.blob(self._blobs.quarantine, info.location_ref, info.object_id)
                return False
            log.info(
                "Quarantined {bucket_id}/{key} verified again; restored",
                bucket_id=bucket_id,
                key=key,
            )
            return True
        return False

    @overload
    def purge_quarantined(self) -> Deferred[int]: ...
    @overload
    def purge_quarantined(self, bucket_id: str, key: str) -> Deferred[bool]: ...

    def purge_quarantined(
        self, bucket_id: str | None = None, key: str | None = None
    ) -> Deferred[bool] | Deferred[int]:
        """Delete a quarantined record and its file (location and ``quarantine/``). Counters
        already exclude quarantined records, so they stay exact. False when there was none.
        Without arguments: ``purge_all_quarantined()`` (the admin app's spelling)."""
        if bucket_id is None or key is None:
            return self.purge_all_quarantined()
        return _shield(Deferred.fromCoroutine(self._purge(bucket_id, key)))

    # The admin app's QuarantineStore protocol (jay.admin.app): records in any state.

    def revalidate_object(self, bucket_id: str, key: str) -> Deferred[bool]:
        """Quarantined: as ``revalidate_quarantined``. Active: re-hash it; True when it
        verifies, else it is quarantined (a checksum failure) and False. NoSuchBucket/NoSuchKey."""
        return _shield(Deferred.fromCoroutine(self._revalidate_object(bucket_id, key)))

    async def _revalidate_object(self, bucket_id: str, key: str) -> bool:
        info = await self._pools.read(metadata.find_object_by_bucket_id, bucket_id, key)
        if info.state != STATE_ACTIVE:
            return await self._revalidate(bucket_id, key)
        digest = await self._pools.blob(self._blobs.hash_blob, info.location_ref)
        if digest == (file_size_of_info(info), info.sha256_hex):
            return True
        reason = REASON_SCRUB_MISSING if digest is None else REASON_SCRUB_MISMATCH
        await self._quarantine(
            bucket_id, key, reason, info.object_id, checksum_failure=digest is not None
        )
        return False

    def purge_object(self, bucket_id: str, key: str) -> Deferred[None]:
        """Delete a record in any state and its file wherever it is; counters follow an active
        record. NoSuchBucket / NoSuchKey."""

        async def run() -> None:
            info = await self._pools.write(
                metadata.delete_object_any_state, bucket_id, key, self._now()
            )
            if info.location_ref:  # a delete marker has no file
                await self._pools.blob(
                    self._blobs.remove_object_files, info.location_ref, info.object_id
                )

        return _shield(Deferred.fromCoroutine(run()))

    async def _purge(self, bucket_id: str, key: str) -> bool:
        info = await self._pools.write(metadata.delete_quarantined, bucket_id, key, self._now())
        if info is None:
            return False
        await self._pools.blob(self._blobs.remove_object_files, info.location_ref, info.object_id)
        return True

    def purge_all_quarantined(self) -> Deferred[int]:
        """Purge every quarantined record (page by page); fires with the number purged."""
        return _shield(Deferred.fromCoroutine(self._purge_all()))

    async def _purge_all(self) -> int:
        purged = 0
        after = ("", "")
        while True:
            page = await self._pools.read(metadata.list_quarantined, after[0], after[1], 500)
            if not page:
                return purged
            for entry in page:
                try:
                    purged += await self._purge(entry.info.bucket_id, entry.info.key)
                except AccessDenied:
                    log.info(
                        "Quarantined {bucket_id}/{key} kept: it is under Object Lock",
                        bucket_id=entry.info.bucket_id,
                        key=entry.info.key,
                    )
                except Exception:
                    log.failure(
                        "Purge of {bucket_id}/{key} failed",
                        bucket_id=entry.info.bucket_id,
                        key=entry.info.key,
                    )
            after = (page[-1].info.bucket_id, page[-1].info.key)

    # --- scrubbing (driven by jay.maintenance.scrubber) ------------------------------------

    def all_bucket_ids(self) -> Deferred[list[str]]:
        return self._pools.read(metadata.all_bucket_ids)

    def scrub_slice(
        self, bucket_id: str, sample_rate: float, max_per_run: int
    ) -> Deferred[tuple[list[ScrubEntry], bool]]:
        """The records this pass visits in ``bucket_id`` (see ``metadata.scrub_slice``)."""
        return self._pools.read(metadata.scrub_slice, bucket_id, sample_rate, max_per_run)

    def set_scrub_cursor(self, bucket_id: str, cursor: str) -> Deferred[None]:
        return self._pools.write(metadata.set_scrub_cursor, bucket_id, cursor, self._now())

    def set_version_scrub_cursor(self, bucket_id: str, seq: int) -> Deferred[None]:
        """Where the scrubber continues in the bucket's noncurrent versions."""
        return self._pools.write(
            metadata.set_scrub_cursor,
            metadata.version_cursor_name(bucket_id),
            str(seq),
            self._now(),
        )

    def get_scrub_cursor(self, bucket_id: str) -> Deferred[str]:
        return self._pools.read(metadata.get_scrub_cursor, bucket_id)

    def open_for_verify(self, entry: ScrubEntry) -> Deferred[FileHasher | None]:
        """Open an object's file for chunked hashing; None when the file is missing."""

        try:
            packed = packs.parse_ref(entry.location_ref)
        except JayError:
            return succeed(None)

        def open_file() -> tuple[int, int] | None:
            try:
                return self._blobs.open_blob(entry.location_ref)
            except (FileNotFoundError, JayError):
                return None
            except OSError as exc:
                raise StorageIOError() from exc

        def wrap(opened: tuple[int, int] | None) -> FileHasher | None:
            if opened is None:
                return None
            fd, base = opened
            # A record in a pack ends at its length; a file of its own at its end.
            length = packed[2] if packed is not None else None
            return FileHasher(fd, self._pools.blob, base=base, length=length)

        return self._pools.blob(open_file).addCallback(wrap)

    # --- garbage collection (driven by jay.maintenance.gc, JAY_SPEC §7.3) ------------------

    def collect_temp_files(self, max_age_seconds: float) -> Deferred[int]:
        """Delete temp files older than ``max_age_seconds`` that no live writer holds (every
        write refreshes the mtime, and writers hold a flock, so fresh or owned files stay)."""
        older_than = self._now() - max_age_seconds
        return self._pools.blob(lambda: sweep_temp_dir(self._blobs.tmp_dir, older_than=older_than))

    def collect_dead_packs(self, min_age_seconds: float) -> Deferred[int]:
        """Remove pack files no record references, no process writes any more (nobody holds
        their lock; a writer never returns to a pack it left) and nothing appended to for
        ``min_age_seconds``; fires with the number removed."""
        return Deferred.fromCoroutine(self._collect_dead_packs(self._now() - min_age_seconds))

    async def _collect_dead_packs(self, older_than: float) -> int:
        idle = await self._pools.blob(self._blobs.idle_packs, older_than)
        references = await self._pools.read(metadata.pack_references)
        dead = [name for name in idle if references.get(name, 0) <= 0]
        removed = await self._pools.blob(self._blobs.remove_packs, dead) if dead else []
        unreferenced = [name for name, live in references.items() if live <= 0]
        gone = removed + await self._pools.blob(self._blobs.missing_packs, unreferenced)
        if gone:
            await self._pools.write(metadata.forget_packs, sorted(set(gone)))
        return len(removed)

    def collect_empty_dirs(self, min_age_seconds: float) -> Deferred[int]:
        """Remove empty shard directories under each bucket's ``objects/``."""

        def run(older_than: float) -> int:
            removed = 0
            for bucket_dir in self._list_dirs(self._blobs.buckets_dir):
                top = os.path.join(self._blobs.buckets_dir, bucket_dir, "objects")
                removed += remove_empty_dirs(top, older_than=older_than)
            return removed

        return self._pools.blob(run, self._now() - min_age_seconds)

    def expire_multipart_uploads(self, max_age_seconds: float) -> Deferred[int]:
        """Abort uploads initiated more than ``max_age_seconds`` ago, deleting their parts."""
        return Deferred.fromCoroutine(self._expire_uploads(max_age_seconds))

    async def _expire_uploads(self, max_age_seconds: float) -> int:
        before = self._now() - max_age_seconds
        expired = 0
        while True:
            upload_ids = await self._pools.read(metadata.expired_uploads, before, UPLOAD_BATCH)
            if not upload_ids:
                return expired
            for upload_id in upload_ids:
                deleted = await _shield(
                    self._pools.write(metadata.delete_upload_by_id, upload_id, before)
                )
                if deleted:
                    expired += 1
                    await _shield(
                        self._pools.blob(
                            self._blobs.remove_tree, self._blobs.upload_path(upload_id)
                        )
                    )
            if len(upload_ids) < UPLOAD_BATCH:
                return expired

    # --- backups (driven by jay.maintenance.backup, JAY_SPEC §7.4) --------------------------

    @property
    def backups_dir(self) -> str:
        return os.path.join(self.data_dir, "backups")

    def create_backup(self) -> Deferred[str]:
        """A consistent snapshot of the metadata database, taken while serving; fires with the
        path of ``backups/jay-YYYYMMDDTHHMMSSZ.db``."""
        return self._pools.blob(
            backups.create_backup, self._database.path, self.backups_dir, self._now()
        )

    def prune_backups(self, keep: int, max_age_seconds: float) -> Deferred[list[str]]:
        return self._pools.blob(
            lambda: backups.prune_backups(
                self.backups_dir, keep=keep, max_age_seconds=max_age_seconds, now=self._now()
            )
        )

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
        acl_json: str | None = None,
    ) -> Deferred[MultipartUpload]:
        return Deferred.fromCoroutine(
            self._create_upload(
                bucket, key, attributes, initiated_by, checksum_algorithm, checksum_type, acl_json
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
        acl_json: str | None = None,
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
            acl_json=acl_json,
        )
        return await self._pools.write(metadata.insert_upload, upload)

    def get_multipart_upload(
        self, bucket: str, key: str, upload_id: str
    ) -> Deferred[MultipartUpload]:
        return self._pools.read(metadata.get_upload, bucket, key, upload_id)

    def completed_multipart_upload(
        self, bucket: str, key: str, upload_id: str, account_id: str
    ) -> Deferred[ObjectInfo | None]:
        return self._pools.read(
            metadata.find_completed_upload, bucket, key, upload_id, account_id, self._now()
        )

    def upload_part(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        part_number: int,
        staged: StagedBlob,
        *,
        etag: str | None = None,
    ) -> Deferred[PartInfo]:
        return Deferred.fromCoroutine(
            self._upload_part(bucket, key, upload_id, part_number, staged, etag)
        )

    async def _upload_part(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        part_number: int,
        staged: StagedBlob,
        etag: str | None = None,
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
            etag=etag if etag is not None else staged.md5_hex,
            sha256_hex=staged.record_sha256_hex,
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
        await self._place(staged, part.location_ref, is_new=False)
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
        expected_checksums: Mapping[str, str] | None = None,
        expected_checksum_type: str = "",
        customer: CustomerKey | None = None,
    ) -> Deferred[ObjectInfo]:
        return Deferred.fromCoroutine(
            self._complete(
                bucket,
                key,
                upload_id,
                list(parts),
                min_part_size,
                condition,
                expected_checksums or {},
                expected_checksum_type,
                customer,
            )
        )

    async def _complete(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        requested: list[CompletedPart],
        min_part_size: int,
        condition: WriteCondition | None,
        expected_checksums: Mapping[str, str],
        expected_checksum_type: str,
        customer: CustomerKey | None = None,
    ) -> ObjectInfo:
        upload, uploaded = await self._pools.read(
            metadata.get_parts, bucket, key, upload_id, [p.part_number for p in requested]
        )
        selected = select_parts(requested, uploaded, min_part_size, bucket=bucket, key=key)
        algorithm = upload.checksum_algorithm
        checksum_type = effective_checksum_type(algorithm, upload.checksum_type)
        check_complete_checksum_request(
            algorithm,
            upload.checksum_type,
            expected_checksums,
            expected_checksum_type,
            bucket=bucket,
            key=key,
        )
        full_object = [algorithm] if algorithm and checksum_type == "FULL_OBJECT" else []
        attributes = upload.attributes
        if attributes.encryption is not None:
            # The parts' files are concatenated as they are (no decryption); the object's
            # record names each part's upload part number, bound into its file key.
            record = parse_record(attributes.encryption)
            record = dataclasses.replace(
                record, part_numbers=tuple(p.part_number for p in selected)
            )
            attributes = dataclasses.replace(attributes, encryption=record.to_json())
            temp, _, sha256, _ = await self._pools.blob(
                self._blobs.assemble, [p.location_ref for p in selected], []
            )
            size = sum(p.size for p in selected)
            checksums = {}
            if full_object:
                # A whole-object checksum is of the plaintext: decrypt (in the pool) to get it.
                try:
                    data_key = key_for_record(record, customer, self.master_key)
                    checksums = await self._pools.blob(
                        plaintext_checksums,
                        temp,
                        size,
                        tuple(p.size for p in selected),
                        record.part_numbers,
                        data_key,
                        full_object,
                    )
                except BaseException:
                    await _shield(self._pools.blob(remove_temp, temp))
                    raise
        else:
            temp, size, sha256, checksums = await self._pools.blob(
                self._blobs.assemble, [p.location_ref for p in selected], full_object
            )
        if algorithm and checksum_type == "COMPOSITE":
            value = composite_checksum(algorithm, selected)
            checksums = {algorithm: value} if value is not None else {}
        try:
            check_complete_checksums(expected_checksums, checksums, bucket=bucket, key=key)
        except BaseException:
            # Nothing was committed: the upload and its parts stay, so the client can retry.
            await _shield(self._pools.blob(remove_temp, temp))
            raise
        # Kept when every part has the upload's checksum (GetObjectAttributes lists them).
        part_checksums: tuple[Mapping[str, str], ...] = ()
        if algorithm and all(algorithm in p.checksums for p in selected):
            part_checksums = tuple({algorithm: p.checksums[algorithm]} for p in selected)
        object_id = self._object_ids.new(upload.bucket_id)
        new = NewObject(
            key=key,
            object_id=object_id,
            size=size,
            etag=multipart_etag([bytes.fromhex(p.etag) for p in selected]),
            sha256_hex=sha256.hex(),
            attributes=attributes,
            checksums=checksums,
            checksum_type=checksum_type if checksums else "",
            part_sizes=tuple(p.size for p in selected),
            location_ref=BlobStore.object_ref(upload.bucket_id, object_id),
            part_checksums=part_checksums,
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
        """Reconcile files and records after a crash. Every step catches its own failures: one
        bad entry is logged and skipped, it never stops startup (§8.2 item 24)."""
        started = self._now()
        removed = await self._recover_step("temp files", self._pools.blob(self._clean_tmp))
        bucket_ids = await self._pools.read(metadata.all_bucket_ids)
        missing = orphans = 0
        for bucket_id in bucket_ids:
            try:
                missing += await self._recover_missing_files(bucket_id)
            except Exception:
                log.failure("Recovery of records in bucket {bucket_id} failed", bucket_id=bucket_id)
            try:
                orphans += await self._recover_orphans(bucket_id)
            except Exception:
                log.failure("Recovery of files in bucket {bucket_id} failed", bucket_id=bucket_id)
        stale_uploads = await self._recover_step(
            "stale multipart directories",
            self._remove_unknown_dirs(self._blobs.multipart_dir, metadata.existing_upload_ids),
        )
        stale_buckets = await self._recover_step(
            "stale bucket directories",
            self._remove_unknown_dirs(self._blobs.buckets_dir, metadata.existing_bucket_ids),
        )
        parts = await self._recover_step(
            "multipart parts", Deferred.fromCoroutine(self._reconcile_parts())
        )
        counters = await self._recover_step(
            "bucket counters", self._pools.write(metadata.rebuild_counters)
        )
        log.info(
            "Recovery in {seconds:.2f} s: {temp} temp files removed, {missing} records with "
            "missing or short files quarantined, {orphans} orphan files quarantined, {uploads} "
            "stale multipart and {buckets} stale bucket directories removed, {parts} part "
            "records or files reconciled, {counters} bucket counters corrected",
            seconds=self._now() - started,
            temp=removed,
            missing=missing,
            orphans=orphans,
            uploads=stale_uploads,
            buckets=stale_buckets,
            parts=parts,
            counters=counters,
        )

    async def _recover_step(self, what: str, work: Awaitable[int]) -> int:
        try:
            return await work
        except Exception:
            log.failure("Recovery of {what} failed; continuing", what=what)
            return 0

    def _clean_tmp(self) -> int:
        """Remove temp files no live process holds. Writers keep an exclusive flock on their
        temp file until it is renamed or discarded, so with several processes on one data dir
        we delete only what a dead (crashed) writer left, whatever its age; files that are
        still being written elsewhere stay (GC removes them later if abandoned)."""
        return sweep_temp_dir(self._blobs.tmp_dir, older_than=None)

    def _bad_refs(self, entries: list[tuple[str, str, str, int]]) -> list[tuple[str, str, str]]:
        """(key, object id, reason) of records whose file is missing or has the wrong size."""
        bad = []
        for key, object_id, ref, size in entries:
            try:
                actual = self._blobs.blob_size(ref)
            except (OSError, JayError):
                bad.append((key, object_id, REASON_STARTUP_MISSING))
                continue
            if actual != size:
                bad.append((key, object_id, REASON_STARTUP_SIZE))
        return bad

    async def _recover_missing_files(self, bucket_id: str) -> int:
        count = 0
        after = ""
        while True:
            entries = await self._pools.read(
                metadata.active_objects_after, bucket_id, after, RECOVERY_BATCH
            )
            if not entries:
                return count + await self._recover_missing_versions(bucket_id)
            after = entries[-1][0]
            for key, object_id, reason in await self._pools.blob(self._bad_refs, entries):
                try:
                    info = await self._quarantine(bucket_id, key, reason, object_id)
                    count += info is not None
                except Exception:
                    log.failure(
                        "Could not quarantine {bucket_id}/{key}", bucket_id=bucket_id, key=key
                    )

    async def _recover_missing_versions(self, bucket_id: str) -> int:
        """``_recover_missing_files`` for noncurrent versions: their bytes are kept too."""
        count = 0
        after = 0
        while True:
            rows = await self._pools.read(
                metadata.noncurrent_versions_after, bucket_id, after, RECOVERY_BATCH
            )
            if not rows:
                return count
            after = rows[-1][0]
            entries = [(key, object_id, ref, size) for _, key, object_id, ref, size in rows]
            for key, object_id, reason in await self._pools.blob(self._bad_refs, entries):
                try:
                    info = await self._quarantine(bucket_id, key, reason, object_id)
                    count += info is not None
                except Exception:
                    log.failure(
                        "Could not quarantine a version of {bucket_id}/{key}",
                        bucket_id=bucket_id,
                        key=key,
                    )

    async def _reconcile_parts(self) -> int:
        """Part records whose file is gone are dropped (Complete would fail on them anyway;
        the client uploads the part again); part files no record knows (a crash between rename
        and record) are deleted."""
        fixed = 0
        after = ""
        while True:
            upload_ids = await self._pools.read(metadata.uploads_after, after, UPLOAD_BATCH)
            if not upload_ids:
                return fixed
            after = upload_ids[-1]
            for upload_id in upload_ids:
                try:
                    fixed += await self._reconcile_upload(upload_id)
                except Exception:
                    log.failure("Reconciling upload {upload_id} failed", upload_id=upload_id)

    async def _reconcile_upload(self, upload_id: str) -> int:
        records = await self._pools.read(metadata.upload_part_refs, upload_id)
        upload_dir = self._blobs.upload_path(upload_id)

        def scan() -> tuple[list[int], list[str]]:
            try:
                names = set(os.listdir(upload_dir))
            except FileNotFoundError:
                names = set()
            known = {os.path.basename(ref) for _, ref in records}
            lost = [n for n, ref in records if os.path.basename(ref) not in names]
            strays = [os.path.join(upload_dir, n) for n in sorted(names - known)]
            for path in strays:
                os.unlink(path)
            return lost, strays

        lost, strays = await self._pools.blob(scan)
        if lost:
            await self._pools.write(metadata.delete_parts, upload_id, lost)
        return len(lost) + len(strays)

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
