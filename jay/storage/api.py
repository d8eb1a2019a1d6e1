"""The storage service contract: value types and the Deferred API every front end uses.

``jay.storage.service.StorageService`` implements ``Storage``. Front ends (S3, native, admin) and
``jay.core`` import only this module from ``jay.storage``: they never see SQL, paths or fsync.

Times are POSIX seconds (float, UTC) taken from the injected clock. Keys are ``str`` (valid UTF-8,
no NUL, at most 1024 bytes encoded) and compare in UTF-8 byte order, as S3 lists them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IConsumer, IPushProducer

from jay.storage.encryption import CustomerKey, Sealing

# Object states (JAY_SPEC §6.5).
STATE_ACTIVE = "active"
STATE_QUARANTINED = "quarantined"
# A delete marker (S3 versioning): a version with no bytes; as the current version of a key it
# makes the key answer NoSuchKey and keeps it out of listings.
STATE_DELETE_MARKER = "marker"

# The version id of objects written while a bucket was unversioned or versioning suspended.
NULL_VERSION = "null"
# What a bucket's BUCKET_CONFIG_VERSIONING holds once PutBucketVersioning set it.
VERSIONING_ENABLED = "Enabled"
VERSIONING_SUSPENDED = "Suspended"

# Checksum algorithm names as S3 spells them in x-amz-checksum-<lower(name)>.
CHECKSUM_ALGORITHMS = ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256")


@dataclass(frozen=True, slots=True, kw_only=True)
class Account:
    account_id: str
    name: str
    created_at: float
    status: str = "active"  # "active" | "suspended"


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenRecord:
    token_id: str
    account_id: str
    name: str
    secret_hash: str  # bcrypt
    secret_key: str  # "enc:v1:…" AES-GCM of the plaintext secret (JAY_SPEC §3.4)
    allowed_actions: tuple[str, ...]
    bucket_scope: tuple[str, ...] = ()
    prefix_scope: tuple[str, ...] = ()
    created_at: float
    expires_at: float | None = None
    status: str = "active"  # "active" | "revoked"


@dataclass(frozen=True, slots=True, kw_only=True)
class BucketInfo:
    bucket_id: str
    name: str
    owner_account_id: str
    created_at: float
    visibility: str = "private"
    policy_json: str | None = None
    # Bucket sub-resource configurations (BUCKET_CONFIGS: CORS rules, tags, lifecycle rules),
    # each the canonical JSON its feature stores, sorted by name. Part of the cached record, so
    # a request that needs one (a CORS check on every request with an Origin) costs no query.
    configs: tuple[tuple[str, str], ...] = ()

    def config(self, name: str) -> str | None:
        """The stored configuration ``name`` (one of BUCKET_CONFIGS), None when unset."""
        for stored, value in self.configs:
            if stored == name:
                return value
        return None


# The bucket configurations ``set_bucket_config`` stores (the S3 sub-resource they back).
BUCKET_CONFIG_CORS = "cors"
BUCKET_CONFIG_TAGGING = "tagging"
BUCKET_CONFIG_LIFECYCLE = "lifecycle"
BUCKET_CONFIG_ACL = "acl"
# "Enabled" or "Suspended"; absent while versioning was never turned on, and never removed
# once it was (a bucket cannot go back to unversioned, as on S3).
BUCKET_CONFIG_VERSIONING = "versioning"
BUCKET_CONFIG_PUBLIC_ACCESS_BLOCK = "public-access-block"
BUCKET_CONFIG_ENCRYPTION = (
    "encryption"  # default encryption of new objects (jay.storage.encryption)
)
BUCKET_CONFIG_OWNERSHIP = "ownership"  # ObjectWriter | BucketOwnerPreferred | BucketOwnerEnforced
# Object Lock (jay.storage.objectlock JSON): present once enabled, never removed; only on a
# bucket whose versioning is Enabled, which then cannot be suspended.
BUCKET_CONFIG_OBJECT_LOCK = "object-lock"
BUCKET_CONFIGS = frozenset(
    {
        BUCKET_CONFIG_ENCRYPTION,
        BUCKET_CONFIG_OBJECT_LOCK,
        BUCKET_CONFIG_CORS,
        BUCKET_CONFIG_TAGGING,
        BUCKET_CONFIG_LIFECYCLE,
        BUCKET_CONFIG_ACL,
        BUCKET_CONFIG_VERSIONING,
        BUCKET_CONFIG_PUBLIC_ACCESS_BLOCK,
        BUCKET_CONFIG_OWNERSHIP,
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class BucketStats:
    object_count: int
    total_size_bytes: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ObjectAttributes:
    """What a client sets when it writes an object and gets back on read.

    ``metadata`` keys are stored as given: HTTP stores ``x-amz-meta-<name>`` lower-cased, the
    native protocol stores its map keys verbatim (JAY_SPEC §2.3, cross-protocol metadata).
    """

    content_type: str = "application/octet-stream"
    content_encoding: str | None = None
    content_disposition: str | None = None
    content_language: str | None = None
    cache_control: str | None = None
    expires: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    # Object tags (S3 tagging), at most 10.
    tags: Mapping[str, str] = field(default_factory=dict)
    # Server-side encryption: the JSON of a jay.storage.encryption.EncryptionRecord (never a
    # key), None for bytes stored as sent. On an upload it applies to every part.
    encryption: str | None = None
    # S3 Object Lock of this version (jay.storage.objectlock): retention mode GOVERNANCE |
    # COMPLIANCE and its retain-until time (epoch seconds), legal hold "ON" | "OFF"; None when
    # never set.
    lock_mode: str | None = None
    lock_until: float | None = None
    legal_hold: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ObjectInfo:
    bucket: str  # bucket name
    bucket_id: str
    key: str
    object_id: str
    size: int
    etag: str  # unquoted: 32 hex, or "<32 hex>-<N>" for multipart
    sha256_hex: str
    attributes: ObjectAttributes
    created_at: float
    updated_at: float  # Last-Modified
    state: str = STATE_ACTIVE
    # Flexible checksums stored at write time: algorithm name ("CRC32", …) -> base64 value.
    checksums: Mapping[str, str] = field(default_factory=dict)
    checksum_type: str = ""  # "FULL_OBJECT" | "COMPOSITE" | "" when none stored
    # Sizes of the parts in order for multipart objects (GET ?partNumber=N); () for single-part.
    part_sizes: tuple[int, ...] = ()
    location_ref: str = ""
    # NULL_VERSION for objects written while the bucket was unversioned or versioning was
    # suspended, else the version's id (its object id).
    version_id: str = NULL_VERSION


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteOutcome:
    """What a DeleteObject did (S3 answers with it in headers and DeleteResult entries).

    ``deleted``: a version was removed or a delete marker added (False: nothing was there).
    ``version_id``: the version removed or the marker created; None in an unversioned bucket
    when no version was named. ``is_delete_marker``: the version removed, or the one created,
    is a delete marker.
    """

    deleted: bool
    version_id: str | None = None
    is_delete_marker: bool = False


class ListedVersion(NamedTuple):
    """One entry of a ListObjectVersions page: an object version or a delete marker."""

    key: str
    version_id: str
    is_latest: bool
    is_delete_marker: bool
    size: int
    etag: str  # unquoted; "" for a delete marker
    updated_at: float  # Last-Modified
    # When it stopped being current (lifecycle NoncurrentDays count from it); None if latest.
    noncurrent_since: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class VersionsPage:
    """A ListObjectVersions page: versions of each key newest first, keys in UTF-8 order."""

    versions: tuple[ListedVersion, ...]
    common_prefixes: tuple[str, ...]
    is_truncated: bool
    # The last entry on the page (a common prefix leaves the version id marker empty); "" when
    # not truncated.
    next_key_marker: str
    next_version_id_marker: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StagedBlob:
    """Bytes that are durable in ``tmp/`` (fsynced) but belong to no object yet.

    Created by ``StagingWriter.finish()``; consumed (renamed into place) by ``put_object`` or
    ``upload_part``, or thrown away with ``Storage.discard``.

    A small body may instead still be in memory (``pending``): it was hashed when it ended and
    is written, fsynced and renamed into place by the consumer in one blob-pool job, so a small
    PUT costs one thread hop for its bytes instead of two. ``temp_path`` is then the file that
    job will create; nothing exists on disk until it runs.
    """

    temp_path: str
    size: int
    md5: bytes  # raw digest
    sha256: bytes  # raw digest
    checksums: Mapping[str, str] = field(default_factory=dict)  # algorithm -> base64
    pending: tuple[bytes, ...] | None = None
    # Encrypted bodies (jay.storage.encryption): the SHA-256 of the bytes on disk, which the
    # record keeps so the scrubber can check them without a key; None when they are the body.
    stored_sha256: bytes | None = None

    @property
    def record_sha256_hex(self) -> str:
        """The SHA-256 an object or part record keeps: of the bytes on disk."""
        return (self.stored_sha256 or self.sha256).hex()

    @property
    def md5_hex(self) -> str:
        return self.md5.hex()

    @property
    def sha256_hex(self) -> str:
        return self.sha256.hex()


@dataclass(frozen=True, slots=True, kw_only=True)
class WriteCondition:
    """Compare-and-swap for a write, checked inside the commit transaction.

    ``if_none_match_star``: fail with PreconditionFailed if the key exists.
    ``if_none_match``: fail with PreconditionFailed if the key exists with one of these ETags
    (unquoted): HTTP's If-None-Match with entity tags, as Ceph and MinIO take it on writes.
    ``if_match``: fail with PreconditionFailed unless the current ETag equals this (unquoted;
    ``*`` matches any current version); a missing key fails with NoSuchKey as S3 does.
    """

    if_match: str | None = None
    if_none_match_star: bool = False
    if_none_match: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteCondition:
    """Conditional delete (S3 DeleteObject headers / DeleteObjects elements), checked inside the
    delete's transaction against the current version.

    ``if_match``: PreconditionFailed unless the current ETag equals this (unquoted; ``*``
    matches any current version); a missing key fails with NoSuchKey, as S3 answers.
    ``last_modified`` (POSIX seconds) and ``size``: PreconditionFailed when the current version
    differs (Last-Modified compared to the second, as the header carries it); a missing key
    is deleted as usual (nothing happens).
    """

    if_match: str | None = None
    last_modified: float | None = None
    size: int | None = None


class ListedObject(NamedTuple):
    """One object of a LIST page: only the fields a listing shows (S3 ``Contents``, native
    ``ObjectEntry``).

    A tuple rather than an ``ObjectInfo`` because a page holds up to 10000 of them and is built on
    the reactor thread: it is made straight from a database row and unpacks cheaply when rendered.
    The full record is one ``get_object_info`` away.
    """

    key: str
    size: int
    etag: str  # unquoted, as ObjectInfo.etag
    sha256_hex: str
    updated_at: float  # Last-Modified
    content_type: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ListPage:
    objects: tuple[ListedObject, ...]
    common_prefixes: tuple[str, ...]
    is_truncated: bool
    # Where the next page starts (exclusive): after the last entry of either kind. Feeding it back
    # as ``start_after`` never repeats or skips an entry, also when the page ended on a common
    # prefix. "" when not truncated.
    next_start_after: str


@dataclass(frozen=True, slots=True, kw_only=True)
class MultipartUpload:
    upload_id: str
    bucket: str
    bucket_id: str
    key: str
    attributes: ObjectAttributes
    initiated_by: str  # account id
    created_at: float
    checksum_algorithm: str = ""  # "" or one of CHECKSUM_ALGORITHMS
    checksum_type: str = ""  # "" | "COMPOSITE" | "FULL_OBJECT"
    state: str = "initiated"
    # The ACL the completed object gets (jay.auth.acl JSON), None for the default.
    acl_json: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PartInfo:
    part_number: int
    size: int
    etag: str  # unquoted md5 hex
    sha256_hex: str
    created_at: float
    checksums: Mapping[str, str] = field(default_factory=dict)
    location_ref: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class PartsPage:
    upload: MultipartUpload
    parts: tuple[PartInfo, ...]
    is_truncated: bool
    next_part_number_marker: int


@dataclass(frozen=True, slots=True, kw_only=True)
class UploadsPage:
    uploads: tuple[MultipartUpload, ...]
    common_prefixes: tuple[str, ...]
    is_truncated: bool
    next_key_marker: str
    next_upload_id_marker: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CompletedPart:
    part_number: int
    etag: str | None = None  # unquoted; None = do not check (native protocol)


class StagingWriter(Protocol):
    """An ``IConsumer`` that streams a body into ``tmp/`` while hashing it.

    ``write`` never blocks: chunks are queued for the blob thread pool. Above a high-water mark
    the registered producer is paused, below a low-water mark resumed (JAY_SPEC §6.2 step 3).
    """

    def registerProducer(self, producer: IPushProducer, streaming: bool) -> None: ...
    def unregisterProducer(self) -> None: ...
    def write(self, data: bytes) -> None: ...

    @property
    def bytes_written(self) -> int: ...

    def finish(self) -> Deferred[StagedBlob]:
        """Flush, fsync and close; fires with the digests once the temp file is durable."""

    def abort(self) -> Deferred[None]:
        """Stop and delete the temp file. Safe to call more than once and after errors."""


class OpenObject(Protocol):
    """An object whose file is open: its bytes stay readable even if the key is overwritten."""

    info: ObjectInfo
    # The whole file when it was small enough to read with its lookup (INLINE_READ_BYTES),
    # else None; a caller may answer from it instead of streaming (unverified reads only).
    prefetched: bytes | None

    def stream(
        self,
        consumer: IConsumer,
        start: int = 0,
        length: int | None = None,
        *,
        verify: bool = False,
        on_progress: Callable[[], None] | None = None,
    ) -> Deferred[int]:
        """Push bytes [start, start+length) to ``consumer`` with a push producer (back-pressure
        honoured); fires with the number of bytes written. Closes the file when done.

        When ``consumer`` is a plain TCP transport the bytes may go out by ``sendfile``, with no
        ``write`` calls; ``on_progress`` is then called each time some were sent.

        ``verify`` (only meaningful for a full read) hashes while streaming; on a SHA-256 mismatch
        the object is quarantined and the Deferred fails with ChecksumMismatch *before* the last
        chunk is written, so a caller can abort the response. A short file also fails.
        Cancelling the Deferred (client gone) stops reading and closes the file.
        """

    def close(self) -> None: ...


class Storage(Protocol):
    # --- lifecycle ---------------------------------------------------------------------------
    def when_ready(self) -> Deferred[None]:
        """Fires once the database is open and startup recovery has finished."""

    # --- accounts and tokens -----------------------------------------------------------------
    def create_account(self, name: str) -> Deferred[Account]: ...
    def get_account(self, account_id: str) -> Deferred[Account]: ...  # NoSuchAccount
    def list_accounts(self) -> Deferred[list[Account]]: ...
    def set_account_status(self, account_id: str, status: str) -> Deferred[Account]: ...
    def create_token(self, record: TokenRecord) -> Deferred[TokenRecord]: ...
    def get_token(self, token_id: str) -> Deferred[TokenRecord]: ...  # NoSuchToken
    def list_tokens(self, account_id: str | None = None) -> Deferred[list[TokenRecord]]: ...
    def set_token_status(self, token_id: str, status: str) -> Deferred[TokenRecord]: ...
    def replace_token_secret_keys(self, secret_keys: Mapping[str, str]) -> Deferred[None]:
        """Rewrite several tokens' encrypted secrets in one transaction (startup migration)."""

    # --- buckets -----------------------------------------------------------------------------
    def create_bucket(
        self, name: str, owner_account_id: str, configs: Mapping[str, str] | None = None
    ) -> Deferred[BucketInfo]:
        """InvalidBucketName, BucketAlreadyOwnedByYou (same owner), BucketAlreadyExists,
        TooManyBuckets (1000 per account). ``configs`` are stored with the bucket."""

    def get_bucket(self, name: str) -> Deferred[BucketInfo]: ...  # NoSuchBucket
    def get_bucket_by_id(self, bucket_id: str) -> Deferred[BucketInfo]: ...
    def delete_bucket(self, name: str) -> Deferred[None]:
        """BucketNotEmpty while any object record exists; aborts its multipart uploads."""

    def list_buckets(self, owner_account_id: str | None = None) -> Deferred[list[BucketInfo]]:
        """Sorted by name; all buckets when owner is None."""

    def set_bucket_policy(self, name: str, policy_json: str | None) -> Deferred[BucketInfo]: ...
    def set_bucket_config(self, name: str, config: str, value: str | None) -> Deferred[BucketInfo]:
        """Store (or with None remove) configuration ``config`` (one of BUCKET_CONFIGS) of
        bucket ``name``; fires with the updated record. NoSuchBucket when it does not exist."""

    def get_object_acl(
        self, bucket: str, key: str, version_id: str | None = None
    ) -> Deferred[str | None]:
        """The ACL (jay.auth.acl JSON) of the current version or of ``version_id``, None for
        the default. NoSuchKey / NoSuchVersion."""

    def set_object_acl(
        self, bucket: str, key: str, acl_json: str | None, version_id: str | None = None
    ) -> Deferred[None]: ...
    def bucket_stats(self, name: str) -> Deferred[BucketStats]: ...

    # --- objects -----------------------------------------------------------------------------
    def begin_write(
        self,
        checksum_algorithms: Sequence[str] = (),
        *,
        sealing: Sealing | None = None,
        part_number: int = 0,
        size_hint: int | None = None,
    ) -> StagingWriter:
        """Start staging a body; ``checksum_algorithms`` are computed besides MD5 and SHA-256.
        With ``sealing`` the bytes are encrypted on their way to disk (part ``part_number`` of
        an upload, 0 for a whole object); digests and size stay those of the body.
        ``size_hint``: the size the client declared, when known (only how the bytes are
        written depends on it)."""

    # --- server-side encryption (jay.storage.encryption) ---------------------------------------
    def new_sealing(
        self,
        customer: CustomerKey | None = None,
        *,
        kms_key_id: str | None = None,
        kms_context: str = "",
    ) -> Sealing:
        """A new data key and record: SSE-C under ``customer``'s key, SSE-KMS under the local
        keyring's ``kms_key_id`` (KMSKeyNotFound when it holds no such key), else SSE-S3."""

    def default_sealing(self, bucket: BucketInfo) -> Sealing | None:
        """The sealing a write that asks for no encryption gets: the bucket's default."""

    def check_kms_key(self, kms_key_id: str) -> None:
        """KMSKeyNotFound unless the local keyring holds ``kms_key_id``."""

    def data_key(self, attributes: ObjectAttributes, customer: CustomerKey | None) -> bytes:
        """The data key of an encrypted object or upload: InvalidRequest without the SSE-C key
        it needs (or with one it does not), AccessDenied with another key."""

    def decrypting(self, opened: OpenObject, data_key: bytes) -> OpenObject:
        """An encrypted open object read as its plaintext (ranges of the plaintext)."""

    def discard(self, staged: StagedBlob) -> Deferred[None]: ...

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
        """Rename the staged file into the object tree and commit its record (JAY_SPEC §6.2).

        The staged blob is consumed whatever happens (renamed or deleted). The previous object's
        file is deleted after the commit. NoSuchBucket, KeyTooLong, InvalidArgument (bad key),
        PreconditionFailed.
        """

    def get_object_info(self, bucket: str, key: str) -> Deferred[ObjectInfo]:
        """NoSuchBucket / NoSuchKey; quarantined objects are NoSuchKey."""

    def get_object_part_checksums(
        self, bucket: str, key: str, version_id: str | None = None
    ) -> Deferred[tuple[ObjectInfo, tuple[Mapping[str, str], ...]]]:
        """The current record and, for an object completed from an upload with a checksum
        algorithm, each part's checksum ({ALGORITHM: base64}) in part order; () when the object
        kept none. One snapshot. NoSuchBucket/NoSuchKey."""

    def open_object(self, bucket: str, key: str) -> Deferred[OpenObject]:
        """Look up and open in one step, retrying if a concurrent overwrite removed the file."""

    def delete_object(
        self, bucket: str, key: str, condition: DeleteCondition | None = None
    ) -> Deferred[bool]:
        """True if an object was removed (in a versioned bucket: a delete marker added);
        False if there was none (not an error). ``condition``: PreconditionFailed (or
        NoSuchKey for If-Match) instead of deleting."""

    def delete_version(
        self,
        bucket: str,
        key: str,
        *,
        version_id: str | None = None,
        condition: DeleteCondition | None = None,
        bypass_governance: bool = False,
    ) -> Deferred[DeleteOutcome]:
        """S3 DeleteObject: without ``version_id`` as ``delete_object``; with it, that version
        goes for good (the newest remaining one becomes current if it was current), unless
        Object Lock protects it (AccessDenied; GOVERNANCE yields to ``bypass_governance``)."""

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
        """Object Lock of one version: ``retention`` (mode, until) or (None, None) to remove
        it; ``legal_hold`` "ON" / "OFF". InvalidRequest without Object Lock on the bucket,
        AccessDenied when the version's retention forbids the change."""

    def get_object_version(self, bucket: str, key: str, version_id: str) -> Deferred[ObjectInfo]:
        """NoSuchBucket / NoSuchVersion; MethodNotAllowed (405) for a delete marker."""

    def open_object_version(self, bucket: str, key: str, version_id: str) -> Deferred[OpenObject]:
        """``open_object`` for the version ``version_id``."""

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
        """Every version and delete marker, keys in UTF-8 order, each key's newest first."""

    def set_object_tags(
        self, bucket: str, key: str, tags: Mapping[str, str], version_id: str | None = None
    ) -> Deferred[ObjectInfo]:
        """Replace the tags of the key's current version in one transaction and fire with the
        updated record; bytes, ETag and Last-Modified stay as they are. NoSuchBucket /
        NoSuchKey (quarantined objects too)."""

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
        """Copy (a range of) an open object into a new staged blob, hashing on the way (and
        encrypting with ``sealing``, as ``begin_write``)."""

    def list_objects(
        self,
        bucket: str,
        *,
        prefix: str = "",
        delimiter: str = "",
        start_after: str = "",
        max_keys: int = 1000,
    ) -> Deferred[ListPage]:
        """Active objects in UTF-8 byte order of key (JAY_SPEC §2.8, with its gaps fixed)."""

    # --- multipart ---------------------------------------------------------------------------
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
    ) -> Deferred[MultipartUpload]: ...

    def get_multipart_upload(
        self, bucket: str, key: str, upload_id: str
    ) -> Deferred[MultipartUpload]:
        """NoSuchUpload unless the id exists, is initiated, and belongs to bucket/key."""

    def completed_multipart_upload(
        self, bucket: str, key: str, upload_id: str, account_id: str
    ) -> Deferred[ObjectInfo | None]:
        """The object ``upload_id`` (initiated by ``account_id``) completed into, while that
        is still the key's current version and the completion is recent (a day); else None."""

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
        """Replace any earlier part with that number. Consumes ``staged``. ``etag``: the part's
        ETag when it is not the body's MD5 (SSE-C)."""

    def list_parts(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        *,
        part_number_marker: int = 0,
        max_parts: int = 1000,
    ) -> Deferred[PartsPage]: ...

    def list_multipart_uploads(
        self,
        bucket: str,
        *,
        prefix: str = "",
        delimiter: str = "",
        key_marker: str = "",
        upload_id_marker: str = "",
        max_uploads: int = 1000,
    ) -> Deferred[UploadsPage]: ...

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
        """Assemble the listed parts (ascending, each uploaded, ETags equal when given; every part
        but the last at least ``min_part_size``) into a new object with the multipart ETag of
        JAY_SPEC §2.9. InvalidPart, InvalidPartOrder, EntityTooSmall, NoSuchUpload.

        ``expected_checksums`` ({ALGORITHM: value}) and ``expected_checksum_type`` are what the
        client claims about the whole object: another algorithm than the upload's is
        InvalidRequest, another type or a value unlike the computed one is BadDigest, and then
        nothing is committed (the upload stays open)."""

    def abort_multipart_upload(self, bucket: str, key: str, upload_id: str) -> Deferred[None]: ...
