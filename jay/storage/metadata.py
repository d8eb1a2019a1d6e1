"""Portable SQL over a DB-API connection: schema and one plain function per operation.

Each function runs inside a transaction opened by the caller (``sqlite.write_transaction`` or
``read_transaction``) on a pool thread, and returns frozen values, never rows or cursors.
Keys are TEXT compared bytewise (SQLite BINARY collation on UTF-8 = UTF-8 byte order, as S3
lists; PostgreSQL would use ``COLLATE "C"``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

from jay.errors import (
    AccessDenied,
    BucketAlreadyExists,
    BucketAlreadyOwnedByYou,
    BucketNotEmpty,
    InvalidBucketState,
    InvalidRequest,
    MethodNotAllowed,
    NoSuchAccount,
    NoSuchBucket,
    NoSuchKey,
    NoSuchToken,
    NoSuchUpload,
    NoSuchVersion,
    PreconditionFailed,
    TooManyBuckets,
)
from jay.storage import objectlock
from jay.storage.api import (
    BUCKET_CONFIG_OBJECT_LOCK,
    BUCKET_CONFIG_VERSIONING,
    NULL_VERSION,
    STATE_ACTIVE,
    STATE_DELETE_MARKER,
    STATE_QUARANTINED,
    VERSIONING_ENABLED,
    VERSIONING_SUSPENDED,
    Account,
    BucketInfo,
    BucketStats,
    DeleteCondition,
    DeleteOutcome,
    ListedObject,
    ListedVersion,
    ListPage,
    MultipartUpload,
    ObjectAttributes,
    ObjectInfo,
    PartInfo,
    PartsPage,
    TokenRecord,
    UploadsPage,
    VersionsPage,
    WriteCondition,
)
from jay.storage.encryption import file_size_of
from jay.storage.listing import CONTINUE, SENTINEL, PageBuilder, Seek, common_prefix_of

Conn = Any  # a DB-API connection

# The object change log keeps the last OBJECT_CHANGES_KEPT keys, pruned every
# OBJECT_CHANGES_PRUNE_EVERY changes (a range delete by primary key).
OBJECT_CHANGES_KEPT = 65_536
OBJECT_CHANGES_PRUNE_EVERY = 1024

# The pack name of a pack ref ``packs/<name>:<offset>:<length>`` (jay.storage.packs).
_PACK_NAME = "substr({ref}, 7, instr({ref}, ':') - 7)"
_PACK_UP = (
    "INSERT INTO packs (name, live) VALUES (" + _PACK_NAME + ", 1) "
    "ON CONFLICT (name) DO UPDATE SET live = live + 1;"
)
_PACK_DOWN = "UPDATE packs SET live = live - 1 WHERE name = " + _PACK_NAME + ";"

SCHEMA: tuple[str, ...] = (
    "CREATE TABLE IF NOT EXISTS sys (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS accounts (
        account_id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at REAL NOT NULL,
        status TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS tokens (
        token_id TEXT PRIMARY KEY, account_id TEXT NOT NULL, name TEXT NOT NULL,
        secret_hash TEXT NOT NULL, secret_key TEXT NOT NULL, allowed_actions TEXT NOT NULL,
        bucket_scope TEXT NOT NULL, prefix_scope TEXT NOT NULL, created_at REAL NOT NULL,
        expires_at REAL, status TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS tokens_by_account ON tokens (account_id, token_id)",
    """CREATE TABLE IF NOT EXISTS buckets (
        bucket_id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, owner_account_id TEXT NOT NULL,
        created_at REAL NOT NULL, visibility TEXT NOT NULL, policy_json TEXT,
        object_count INTEGER NOT NULL DEFAULT 0, total_bytes INTEGER NOT NULL DEFAULT 0)""",
    "CREATE INDEX IF NOT EXISTS buckets_by_owner ON buckets (owner_account_id, name)",
    """CREATE TABLE IF NOT EXISTS objects (
        bucket_id TEXT NOT NULL, key TEXT NOT NULL, object_id TEXT NOT NULL,
        state TEXT NOT NULL, size INTEGER NOT NULL, etag TEXT NOT NULL, sha256 TEXT NOT NULL,
        content_type TEXT NOT NULL, attrs_json TEXT NOT NULL, checksums_json TEXT NOT NULL,
        checksum_type TEXT NOT NULL, part_sizes_json TEXT NOT NULL, location_ref TEXT NOT NULL,
        created_at REAL NOT NULL, updated_at REAL NOT NULL, reason TEXT NOT NULL DEFAULT '',
        version_id TEXT NOT NULL DEFAULT 'null',
        PRIMARY KEY (bucket_id, key))""",
    "CREATE INDEX IF NOT EXISTS objects_by_object_id ON objects (object_id)",
    """CREATE INDEX IF NOT EXISTS objects_quarantined ON objects (bucket_id, key)
        WHERE state = 'quarantined'""",
    """CREATE TABLE IF NOT EXISTS uploads (
        upload_id TEXT PRIMARY KEY, bucket_id TEXT NOT NULL, key TEXT NOT NULL,
        attrs_json TEXT NOT NULL, initiated_by TEXT NOT NULL, created_at REAL NOT NULL,
        checksum_algorithm TEXT NOT NULL, checksum_type TEXT NOT NULL, state TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS uploads_by_key ON uploads (bucket_id, key, upload_id)",
    """CREATE TABLE IF NOT EXISTS parts (
        upload_id TEXT NOT NULL, part_number INTEGER NOT NULL, size INTEGER NOT NULL,
        etag TEXT NOT NULL, sha256 TEXT NOT NULL, checksums_json TEXT NOT NULL,
        location_ref TEXT NOT NULL, created_at REAL NOT NULL,
        PRIMARY KEY (upload_id, part_number))""",
    "INSERT INTO sys (name, value) VALUES ('version', '1') ON CONFLICT (name) DO NOTHING",
    # Where the scrubber continues in each bucket (JAY_SPEC §7.1; persisted, unlike upstream).
    """CREATE TABLE IF NOT EXISTS scrub_cursors (
        bucket_id TEXT PRIMARY KEY, cursor TEXT NOT NULL, updated_at REAL NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS uploads_by_age ON uploads (created_at, upload_id)",
    # Completed multipart uploads, remembered for COMPLETED_UPLOADS_KEPT_SECONDS so that a
    # retried CompleteMultipartUpload (its first answer lost) succeeds again, as on S3.
    """CREATE TABLE IF NOT EXISTS completed_uploads (
        upload_id TEXT PRIMARY KEY, bucket_id TEXT NOT NULL, key TEXT NOT NULL,
        object_id TEXT NOT NULL, initiated_by TEXT NOT NULL, completed_at REAL NOT NULL)""",
    """CREATE INDEX IF NOT EXISTS completed_uploads_by_age
        ON completed_uploads (completed_at)""",
    # Several worker processes (jay/workers.py): who runs maintenance, and a counter bumped on
    # every change that cached token verifications must not outlive.
    """CREATE TABLE IF NOT EXISTS leases (
        name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at REAL NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS generations (
        name TEXT PRIMARY KEY, value INTEGER NOT NULL)""",
    # Bucket records (what access decisions read) are cached by every worker under the
    # "buckets" generation; triggers bump it on any change to what a BucketInfo holds, so no
    # writer can forget to (the object counters, updated by every PUT, are not part of it).
    "INSERT INTO generations (name, value) VALUES ('buckets', 0) ON CONFLICT (name) DO NOTHING",
    """CREATE TRIGGER IF NOT EXISTS buckets_generation_on_insert AFTER INSERT ON buckets
        BEGIN UPDATE generations SET value = value + 1 WHERE name = 'buckets'; END""",
    """CREATE TRIGGER IF NOT EXISTS buckets_generation_on_delete AFTER DELETE ON buckets
        BEGIN UPDATE generations SET value = value + 1 WHERE name = 'buckets'; END""",
    """CREATE TRIGGER IF NOT EXISTS buckets_generation_on_update
        AFTER UPDATE OF bucket_id, name, owner_account_id, created_at, visibility, policy_json
        ON buckets
        BEGIN UPDATE generations SET value = value + 1 WHERE name = 'buckets'; END""",
    # Object records for GET/HEAD are cached under the "objects" generation, bumped by any
    # change to the objects table: other commits (the maintenance lease renewed every few
    # seconds, token and bucket changes) then leave those caches valid.
    "INSERT INTO generations (name, value) VALUES ('objects', 0) ON CONFLICT (name) DO NOTHING",
    """CREATE TRIGGER IF NOT EXISTS objects_generation_on_insert AFTER INSERT ON objects
        BEGIN UPDATE generations SET value = value + 1 WHERE name = 'objects'; END""",
    """CREATE TRIGGER IF NOT EXISTS objects_generation_on_delete AFTER DELETE ON objects
        BEGIN UPDATE generations SET value = value + 1 WHERE name = 'objects'; END""",
    """CREATE TRIGGER IF NOT EXISTS objects_generation_on_update AFTER UPDATE ON objects
        BEGIN UPDATE generations SET value = value + 1 WHERE name = 'objects'; END""",
    # Which keys changed, in commit order: a worker that sees the objects generation move
    # drops just those keys from its record cache instead of all of them (a PUT of one key no
    # longer costs every other worker its whole cache). AUTOINCREMENT numbers are contiguous
    # (a rolled-back insert gives its number back), so a gap after a reader's last number means
    # rows were pruned: that reader starts its cache over. The last trigger prunes the log.
    """CREATE TABLE IF NOT EXISTS object_changes (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, bucket TEXT NOT NULL, key TEXT NOT NULL)""",
    """CREATE TRIGGER IF NOT EXISTS object_changes_on_insert AFTER INSERT ON objects
        BEGIN INSERT INTO object_changes (bucket, key) VALUES (COALESCE(
            (SELECT name FROM buckets WHERE bucket_id = NEW.bucket_id), ''), NEW.key); END""",
    """CREATE TRIGGER IF NOT EXISTS object_changes_on_delete AFTER DELETE ON objects
        BEGIN INSERT INTO object_changes (bucket, key) VALUES (COALESCE(
            (SELECT name FROM buckets WHERE bucket_id = OLD.bucket_id), ''), OLD.key); END""",
    """CREATE TRIGGER IF NOT EXISTS object_changes_on_update AFTER UPDATE ON objects
        BEGIN
            INSERT INTO object_changes (bucket, key) VALUES (COALESCE(
                (SELECT name FROM buckets WHERE bucket_id = NEW.bucket_id), ''), NEW.key);
            INSERT INTO object_changes (bucket, key) SELECT COALESCE(
                (SELECT name FROM buckets WHERE bucket_id = OLD.bucket_id), ''), OLD.key
                WHERE OLD.bucket_id != NEW.bucket_id OR OLD.key != NEW.key;
        END""",
    # Records referencing each pack file (jay.storage.packs), kept by triggers so that no
    # path that adds, moves or deletes a record can forget: garbage collection removes a pack
    # no record references once no process writes it any more.
    """CREATE TABLE IF NOT EXISTS packs (name TEXT PRIMARY KEY, live INTEGER NOT NULL)""",
    f"""CREATE TRIGGER IF NOT EXISTS packs_on_object_insert AFTER INSERT ON objects
        WHEN NEW.location_ref GLOB 'packs/*'
        BEGIN {_PACK_UP.format(ref="NEW.location_ref")} END""",
    f"""CREATE TRIGGER IF NOT EXISTS packs_on_object_delete AFTER DELETE ON objects
        WHEN OLD.location_ref GLOB 'packs/*'
        BEGIN {_PACK_DOWN.format(ref="OLD.location_ref")} END""",
    f"""CREATE TRIGGER IF NOT EXISTS packs_on_object_move_out AFTER UPDATE OF location_ref
        ON objects WHEN OLD.location_ref != NEW.location_ref AND OLD.location_ref GLOB 'packs/*'
        BEGIN {_PACK_DOWN.format(ref="OLD.location_ref")} END""",
    f"""CREATE TRIGGER IF NOT EXISTS packs_on_object_move_in AFTER UPDATE OF location_ref
        ON objects WHEN OLD.location_ref != NEW.location_ref AND NEW.location_ref GLOB 'packs/*'
        BEGIN {_PACK_UP.format(ref="NEW.location_ref")} END""",
    f"""CREATE TRIGGER IF NOT EXISTS object_changes_pruned AFTER INSERT ON object_changes
        WHEN NEW.seq % {OBJECT_CHANGES_PRUNE_EVERY} = 0
        BEGIN DELETE FROM object_changes WHERE seq <= NEW.seq - {OBJECT_CHANGES_KEPT}; END""",
    # Bucket sub-resource configurations (CORS, tagging, lifecycle: api.BUCKET_CONFIGS), one
    # row each, loaded with the bucket record; part of what the buckets generation covers.
    """CREATE TABLE IF NOT EXISTS bucket_configs (
        bucket_id TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL,
        PRIMARY KEY (bucket_id, name))""",
    """CREATE TRIGGER IF NOT EXISTS bucket_configs_generation_on_insert
        AFTER INSERT ON bucket_configs
        BEGIN UPDATE generations SET value = value + 1 WHERE name = 'buckets'; END""",
    """CREATE TRIGGER IF NOT EXISTS bucket_configs_generation_on_delete
        AFTER DELETE ON bucket_configs
        BEGIN UPDATE generations SET value = value + 1 WHERE name = 'buckets'; END""",
    """CREATE TRIGGER IF NOT EXISTS bucket_configs_generation_on_update
        AFTER UPDATE ON bucket_configs
        BEGIN UPDATE generations SET value = value + 1 WHERE name = 'buckets'; END""",
    # Noncurrent object versions and delete markers of versioned buckets (S3 versioning). The
    # ``objects`` table keeps exactly the current version of each key (what GET, HEAD and LIST
    # read, unchanged by versioning); a write or delete in a versioned bucket moves the current
    # row here first. ``seq`` orders a key's versions (a larger one is newer: rows arrive in the
    # order their successors were written); ``noncurrent_since`` is when the version stopped
    # being current (lifecycle NoncurrentDays counts from it).
    """CREATE TABLE IF NOT EXISTS object_versions (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        bucket_id TEXT NOT NULL, key TEXT NOT NULL, version_id TEXT NOT NULL,
        object_id TEXT NOT NULL, state TEXT NOT NULL, size INTEGER NOT NULL, etag TEXT NOT NULL,
        sha256 TEXT NOT NULL, content_type TEXT NOT NULL, attrs_json TEXT NOT NULL,
        checksums_json TEXT NOT NULL, checksum_type TEXT NOT NULL,
        part_sizes_json TEXT NOT NULL, location_ref TEXT NOT NULL, created_at REAL NOT NULL,
        updated_at REAL NOT NULL, reason TEXT NOT NULL DEFAULT '',
        noncurrent_since REAL NOT NULL)""",
    """CREATE UNIQUE INDEX IF NOT EXISTS object_versions_by_key
        ON object_versions (bucket_id, key, seq)""",
    """CREATE INDEX IF NOT EXISTS object_versions_by_version
        ON object_versions (bucket_id, key, version_id)""",
    "CREATE INDEX IF NOT EXISTS object_versions_by_object_id ON object_versions (object_id)",
    # The scrubber visits a bucket's noncurrent versions in ``seq`` order.
    """CREATE INDEX IF NOT EXISTS object_versions_by_bucket
        ON object_versions (bucket_id, seq)""",
    # A noncurrent version's bytes are as live as a current one's: it counts towards its pack.
    f"""CREATE TRIGGER IF NOT EXISTS packs_on_version_insert AFTER INSERT ON object_versions
        WHEN NEW.location_ref GLOB 'packs/*'
        BEGIN {_PACK_UP.format(ref="NEW.location_ref")} END""",
    f"""CREATE TRIGGER IF NOT EXISTS packs_on_version_delete AFTER DELETE ON object_versions
        WHEN OLD.location_ref GLOB 'packs/*'
        BEGIN {_PACK_DOWN.format(ref="OLD.location_ref")} END""",
    # Object ACLs other than the default (jay.auth.acl), per object version: a new version
    # (a new object id) starts without one, and the row goes with its version. A version
    # moving between ``objects`` and ``object_versions`` keeps it: the row goes only when no
    # table holds the version any more (the move inserts before it deletes). The triggers of
    # the first schema dropped it whenever the current row went; they are replaced.
    "DROP TRIGGER IF EXISTS object_acls_on_object_delete",
    "DROP TRIGGER IF EXISTS object_acls_on_object_replace",
    "DROP TRIGGER IF EXISTS object_part_checksums_on_object_delete",
    "DROP TRIGGER IF EXISTS object_part_checksums_on_object_replace",
    """CREATE TABLE IF NOT EXISTS object_acls (object_id TEXT PRIMARY KEY, acl TEXT NOT NULL)""",
    # The part checksums of a multipart object completed from an upload with a checksum
    # algorithm (GetObjectAttributes lists them), per object version like object_acls:
    # ``checksums_json`` is a list, in part order, of {ALGORITHM: base64}.
    """CREATE TABLE IF NOT EXISTS object_part_checksums (
        object_id TEXT PRIMARY KEY, checksums_json TEXT NOT NULL)""",
    *(
        f"""CREATE TRIGGER IF NOT EXISTS {table}_on_{event}
        AFTER {timing} WHEN {when} AND NOT EXISTS
            (SELECT 1 FROM {other} WHERE object_id = OLD.object_id)
        BEGIN DELETE FROM {table} WHERE object_id = OLD.object_id; END"""
        for table in ("object_acls", "object_part_checksums")
        for event, timing, when, other in (
            ("current_delete", "DELETE ON objects", "1", "object_versions"),
            (
                "current_replace",
                "UPDATE OF object_id ON objects",
                "OLD.object_id != NEW.object_id",
                "object_versions",
            ),
            ("version_delete", "DELETE ON object_versions", "1", "objects"),
        )
    ),
)


def migrate(conn: Conn) -> None:
    """Bring a database created by an earlier schema up to SCHEMA (run after it, in the same
    transaction): ``objects.version_id`` arrived with versioning; rows written before it are
    the "null" version, which is what S3 calls objects stored before versioning was enabled."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(objects)").fetchall()}
    if "version_id" not in columns:
        conn.execute("ALTER TABLE objects ADD COLUMN version_id TEXT NOT NULL DEFAULT 'null'")


# Rows fetched per query while paging: bounds memory for huge buckets (JAY_SPEC §8.2 item 29).
BATCH_SIZE = 1000


# --- attribute encoding --------------------------------------------------------------------


def encode_attributes(attributes: ObjectAttributes) -> str:
    if (
        not attributes.metadata
        and attributes.content_encoding is None
        and attributes.content_disposition is None
        and attributes.content_language is None
        and attributes.cache_control is None
        and attributes.expires is None
        and not attributes.tags
        and attributes.encryption is None
        and attributes.lock_mode is None
        and attributes.legal_hold is None
    ):
        return _PLAIN_ATTRIBUTES_JSON  # most objects; json.dumps costs ~15 µs a commit
    fields: dict[str, Any] = {
        "content_encoding": attributes.content_encoding,
        "content_disposition": attributes.content_disposition,
        "content_language": attributes.content_language,
        "cache_control": attributes.cache_control,
        "expires": attributes.expires,
        "metadata": dict(attributes.metadata),
    }
    if attributes.tags:
        # Only when there are tags: rows written before tagging existed read the same.
        fields["tags"] = dict(attributes.tags)
    if attributes.encryption is not None:
        fields["encryption"] = attributes.encryption
    # Object Lock (jay.storage.objectlock), likewise only when set.
    if attributes.lock_mode is not None:
        fields["lock_mode"] = attributes.lock_mode
        fields["lock_until"] = attributes.lock_until
    if attributes.legal_hold is not None:
        fields["legal_hold"] = attributes.legal_hold
    return json.dumps(fields, sort_keys=True)


# What ``encode_attributes`` writes for an object with nothing but a content type: most objects.
# Rows carrying it (and empty checksum / part lists) skip the JSON parser, which was about half
# the per-row cost of building a LIST page (py-spy: _object 11 % of native LIST c=16 samples).
_PLAIN_ATTRIBUTES_JSON = json.dumps(
    {
        "content_encoding": None,
        "content_disposition": None,
        "content_language": None,
        "cache_control": None,
        "expires": None,
        "metadata": {},
    },
    sort_keys=True,
)


def decode_attributes(content_type: str, attrs_json: str) -> ObjectAttributes:
    if attrs_json == _PLAIN_ATTRIBUTES_JSON or not attrs_json:
        return ObjectAttributes(content_type=content_type, metadata={})
    raw = json.loads(attrs_json)
    return ObjectAttributes(
        content_type=content_type,
        content_encoding=raw.get("content_encoding"),
        content_disposition=raw.get("content_disposition"),
        content_language=raw.get("content_language"),
        cache_control=raw.get("cache_control"),
        expires=raw.get("expires"),
        metadata=dict(raw.get("metadata") or {}),
        tags=dict(raw.get("tags") or {}),
        encryption=raw.get("encryption"),
        lock_mode=raw.get("lock_mode"),
        lock_until=raw.get("lock_until"),
        legal_hold=raw.get("legal_hold"),
    )


# --- leases and generations (several processes on one database) ----------------------------

# Bumped with every token or account status change and secret re-encryption: processes that cache
# verifications poll it and drop their caches when it moves.
AUTH_GENERATION = "auth"
# Bumped by triggers (SCHEMA) on every change to a bucket record.
BUCKETS_GENERATION = "buckets"
# Bumped by triggers (SCHEMA) on every change to the objects table.
OBJECTS_GENERATION = "objects"


def bump_generation(conn: Conn, name: str) -> None:
    conn.execute(
        "INSERT INTO generations (name, value) VALUES (?, 1) "
        "ON CONFLICT (name) DO UPDATE SET value = generations.value + 1",
        (name,),
    )


def object_changes_after(conn: Conn, seq: int, limit: int) -> list[tuple[int, str, str]]:
    """(seq, bucket name, key) of the object changes numbered above ``seq``, oldest first, at
    most ``limit`` of them (one statement: one snapshot)."""
    return conn.execute(
        "SELECT seq, bucket, key FROM object_changes WHERE seq > ? ORDER BY seq LIMIT ?",
        (seq, limit),
    ).fetchall()


def last_object_change(conn: Conn) -> int:
    """The number of the latest object change (0 when there has been none)."""
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'object_changes'").fetchone()
    return int(row[0]) if row is not None else 0


def get_generation(conn: Conn, name: str) -> int:
    row = conn.execute("SELECT value FROM generations WHERE name = ?", (name,)).fetchone()
    return int(row[0]) if row is not None else 0


class CacheGenerations(NamedTuple):
    """The generations the reactor's caches are stamped with, read in one snapshot."""

    auth: int
    buckets: int
    objects: int


def get_cache_generations(conn: Conn) -> CacheGenerations:
    """The auth, buckets and objects generations in one statement (one snapshot)."""
    values = dict.fromkeys((AUTH_GENERATION, BUCKETS_GENERATION, OBJECTS_GENERATION), 0)
    for name, value in conn.execute(
        "SELECT name, value FROM generations WHERE name IN (?, ?, ?)",
        (AUTH_GENERATION, BUCKETS_GENERATION, OBJECTS_GENERATION),
    ).fetchall():
        values[name] = int(value)
    return CacheGenerations(
        values[AUTH_GENERATION], values[BUCKETS_GENERATION], values[OBJECTS_GENERATION]
    )


def acquire_lease(conn: Conn, name: str, holder: str, now: float, ttl_seconds: float) -> bool:
    """Take or renew the lease ``name`` for ``holder`` until ``now + ttl_seconds``; True when
    ``holder`` has it afterwards. Run in a write transaction (BEGIN IMMEDIATE), so two processes
    never both see themselves as holder of an unexpired lease."""
    conn.execute(
        "INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?) "
        "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, "
        "expires_at = excluded.expires_at "
        "WHERE leases.holder = excluded.holder OR leases.expires_at <= ?",
        (name, holder, now + ttl_seconds, now),
    )
    row = conn.execute("SELECT holder FROM leases WHERE name = ?", (name,)).fetchone()
    return row is not None and row[0] == holder


def release_lease(conn: Conn, name: str, holder: str) -> None:
    conn.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder))


# --- accounts and tokens -------------------------------------------------------------------


def _account(row: Sequence[Any]) -> Account:
    return Account(account_id=row[0], name=row[1], created_at=row[2], status=row[3])


_ACCOUNT_COLUMNS = "account_id, name, created_at, status"


def insert_account(conn: Conn, account: Account) -> Account:
    conn.execute(
        f"INSERT INTO accounts ({_ACCOUNT_COLUMNS}) VALUES (?, ?, ?, ?)",
        (account.account_id, account.name, account.created_at, account.status),
    )
    return account


def get_account(conn: Conn, account_id: str) -> Account:
    row = conn.execute(
        f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE account_id = ?", (account_id,)
    ).fetchone()
    if row is None:
        raise NoSuchAccount(resource=account_id)
    return _account(row)


def list_accounts(conn: Conn) -> list[Account]:
    rows = conn.execute(f"SELECT {_ACCOUNT_COLUMNS} FROM accounts ORDER BY created_at, account_id")
    return [_account(r) for r in rows.fetchall()]


def set_account_status(conn: Conn, account_id: str, status: str) -> Account:
    cur = conn.execute("UPDATE accounts SET status = ? WHERE account_id = ?", (status, account_id))
    if cur.rowcount == 0:
        raise NoSuchAccount(resource=account_id)
    bump_generation(conn, AUTH_GENERATION)
    return get_account(conn, account_id)


_TOKEN_COLUMNS = (
    "token_id, account_id, name, secret_hash, secret_key, allowed_actions, bucket_scope, "
    "prefix_scope, created_at, expires_at, status"
)


def _token(row: Sequence[Any]) -> TokenRecord:
    return TokenRecord(
        token_id=row[0],
        account_id=row[1],
        name=row[2],
        secret_hash=row[3],
        secret_key=row[4],
        allowed_actions=tuple(json.loads(row[5])),
        bucket_scope=tuple(json.loads(row[6])),
        prefix_scope=tuple(json.loads(row[7])),
        created_at=row[8],
        expires_at=row[9],
        status=row[10],
    )


def insert_token(conn: Conn, record: TokenRecord) -> TokenRecord:
    get_account(conn, record.account_id)
    conn.execute(
        f"INSERT INTO tokens ({_TOKEN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            record.token_id,
            record.account_id,
            record.name,
            record.secret_hash,
            record.secret_key,
            json.dumps(list(record.allowed_actions)),
            json.dumps(list(record.bucket_scope)),
            json.dumps(list(record.prefix_scope)),
            record.created_at,
            record.expires_at,
            record.status,
        ),
    )
    return record


def get_token(conn: Conn, token_id: str) -> TokenRecord:
    row = conn.execute(
        f"SELECT {_TOKEN_COLUMNS} FROM tokens WHERE token_id = ?", (token_id,)
    ).fetchone()
    if row is None:
        raise NoSuchToken(resource=token_id)
    return _token(row)


def list_tokens(conn: Conn, account_id: str | None) -> list[TokenRecord]:
    if account_id is None:
        cur = conn.execute(f"SELECT {_TOKEN_COLUMNS} FROM tokens ORDER BY created_at, token_id")
    else:
        cur = conn.execute(
            f"SELECT {_TOKEN_COLUMNS} FROM tokens WHERE account_id = ? "
            "ORDER BY created_at, token_id",
            (account_id,),
        )
    return [_token(r) for r in cur.fetchall()]


def set_token_status(conn: Conn, token_id: str, status: str) -> TokenRecord:
    cur = conn.execute("UPDATE tokens SET status = ? WHERE token_id = ?", (status, token_id))
    if cur.rowcount == 0:
        raise NoSuchToken(resource=token_id)
    bump_generation(conn, AUTH_GENERATION)
    return get_token(conn, token_id)


def replace_token_secret_keys(conn: Conn, secret_keys: Mapping[str, str]) -> None:
    bump_generation(conn, AUTH_GENERATION)
    for token_id, secret_key in secret_keys.items():
        cur = conn.execute(
            "UPDATE tokens SET secret_key = ? WHERE token_id = ?", (secret_key, token_id)
        )
        if cur.rowcount == 0:
            raise NoSuchToken(resource=token_id)


# --- buckets -------------------------------------------------------------------------------

_BUCKET_COLUMNS = "bucket_id, name, owner_account_id, created_at, visibility, policy_json"
# The columns plus the bucket's configurations, as one JSON array of [name, value] pairs (NULL
# without any): one statement per lookup, cached records carry everything.
_BUCKET_SELECT = (
    f"SELECT {_BUCKET_COLUMNS}, (SELECT json_group_array(json_array(c.name, c.value)) FROM "
    "(SELECT name, value FROM bucket_configs WHERE bucket_id = buckets.bucket_id ORDER BY name)"
    " AS c HAVING count(*) > 0) FROM buckets"
)


def _bucket(row: Sequence[Any]) -> BucketInfo:
    return BucketInfo(
        bucket_id=row[0],
        name=row[1],
        owner_account_id=row[2],
        created_at=row[3],
        visibility=row[4],
        policy_json=row[5],
        configs=tuple((n, v) for n, v in json.loads(row[6])) if row[6] else (),
    )


def find_bucket(conn: Conn, name: str) -> BucketInfo | None:
    row = conn.execute(f"{_BUCKET_SELECT} WHERE name = ?", (name,)).fetchone()
    return None if row is None else _bucket(row)


def get_bucket(conn: Conn, name: str) -> BucketInfo:
    bucket = find_bucket(conn, name)
    if bucket is None:
        raise NoSuchBucket(bucket=name)
    return bucket


def get_bucket_by_id(conn: Conn, bucket_id: str) -> BucketInfo:
    row = conn.execute(f"{_BUCKET_SELECT} WHERE bucket_id = ?", (bucket_id,)).fetchone()
    if row is None:
        raise NoSuchBucket(resource=bucket_id)
    return _bucket(row)


def insert_bucket(conn: Conn, bucket: BucketInfo, max_buckets_per_account: int) -> BucketInfo:
    existing = find_bucket(conn, bucket.name)
    if existing is not None:
        if existing.owner_account_id == bucket.owner_account_id:
            raise BucketAlreadyOwnedByYou(bucket=bucket.name)
        raise BucketAlreadyExists(bucket=bucket.name)
    (count,) = conn.execute(
        "SELECT COUNT(*) FROM buckets WHERE owner_account_id = ?", (bucket.owner_account_id,)
    ).fetchone()
    if count >= max_buckets_per_account:
        raise TooManyBuckets(bucket=bucket.name)
    conn.execute(
        f"INSERT INTO buckets ({_BUCKET_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
        (
            bucket.bucket_id,
            bucket.name,
            bucket.owner_account_id,
            bucket.created_at,
            bucket.visibility,
            bucket.policy_json,
        ),
    )
    # Configurations a bucket is created with (Object Lock and the versioning it needs) are
    # in force before any write can reach it.
    for config, value in bucket.configs:
        conn.execute(
            "INSERT INTO bucket_configs (bucket_id, name, value) VALUES (?, ?, ?)",
            (bucket.bucket_id, config, value),
        )
    return bucket


def delete_bucket(conn: Conn, name: str) -> tuple[str, list[str]]:
    """Remove the bucket and its uploads; returns (bucket_id, upload ids) for file cleanup."""
    bucket = get_bucket(conn, name)
    row = conn.execute(
        "SELECT key FROM objects WHERE bucket_id = ? LIMIT 1", (bucket.bucket_id,)
    ).fetchone()
    if row is None:
        # Noncurrent versions and delete markers keep a bucket from being deleted, as on S3.
        row = conn.execute(
            "SELECT key FROM object_versions WHERE bucket_id = ? LIMIT 1", (bucket.bucket_id,)
        ).fetchone()
    if row is not None:
        raise BucketNotEmpty(bucket=name)
    upload_ids = [
        r[0]
        for r in conn.execute(
            "SELECT upload_id FROM uploads WHERE bucket_id = ?", (bucket.bucket_id,)
        ).fetchall()
    ]
    for upload_id in upload_ids:
        conn.execute("DELETE FROM parts WHERE upload_id = ?", (upload_id,))
    conn.execute("DELETE FROM uploads WHERE bucket_id = ?", (bucket.bucket_id,))
    conn.execute("DELETE FROM bucket_configs WHERE bucket_id = ?", (bucket.bucket_id,))
    conn.execute("DELETE FROM buckets WHERE bucket_id = ?", (bucket.bucket_id,))
    return bucket.bucket_id, upload_ids


def list_buckets(conn: Conn, owner_account_id: str | None) -> list[BucketInfo]:
    if owner_account_id is None:
        cur = conn.execute(f"{_BUCKET_SELECT} ORDER BY name")
    else:
        cur = conn.execute(
            f"{_BUCKET_SELECT} WHERE owner_account_id = ? ORDER BY name",
            (owner_account_id,),
        )
    return [_bucket(r) for r in cur.fetchall()]


def set_bucket_policy(conn: Conn, name: str, policy_json: str | None) -> BucketInfo:
    get_bucket(conn, name)
    conn.execute("UPDATE buckets SET policy_json = ? WHERE name = ?", (policy_json, name))
    return get_bucket(conn, name)


def set_bucket_config(conn: Conn, name: str, config: str, value: str | None) -> BucketInfo:
    bucket = get_bucket(conn, name)
    if config == BUCKET_CONFIG_VERSIONING and value is None:
        # Once versioning was turned on a bucket never goes back to unversioned (S3's rule):
        # its writes must keep treating the versions it holds as versions.
        raise InvalidRequest("Versioning cannot be removed from a bucket", bucket=name)
    # Object Lock protects versions: it needs versioning Enabled, keeps it so, and stays.
    # Checked here, in the write's transaction, so no race lets the two disagree.
    is_locked_bucket = bucket.config(BUCKET_CONFIG_OBJECT_LOCK) is not None
    if config == BUCKET_CONFIG_VERSIONING and value != VERSIONING_ENABLED and is_locked_bucket:
        raise InvalidBucketState(
            "An Object Lock configuration is present on this bucket, so the versioning state "
            "cannot be changed.",
            bucket=name,
        )
    if config == BUCKET_CONFIG_OBJECT_LOCK:
        if value is None:
            raise InvalidRequest("Object Lock cannot be disabled on a bucket", bucket=name)
        if bucket.config(BUCKET_CONFIG_VERSIONING) != VERSIONING_ENABLED:
            raise InvalidBucketState(
                "Versioning must be 'Enabled' on the bucket to apply a Object Lock configuration",
                bucket=name,
            )
    if value is None:
        conn.execute(
            "DELETE FROM bucket_configs WHERE bucket_id = ? AND name = ?",
            (bucket.bucket_id, config),
        )
    else:
        conn.execute(
            """INSERT INTO bucket_configs (bucket_id, name, value) VALUES (?, ?, ?)
            ON CONFLICT (bucket_id, name) DO UPDATE SET value = excluded.value""",
            (bucket.bucket_id, config, value),
        )
    return get_bucket(conn, name)


def _current_object_id(
    conn: Conn, bucket_name: str, key: str, version_id: str | None = None
) -> str:
    if version_id is not None:
        return get_object_version(conn, bucket_name, key, version_id).object_id
    row = conn.execute(
        "SELECT o.object_id FROM objects o JOIN buckets b ON b.bucket_id = o.bucket_id "
        "WHERE b.name = ? AND o.key = ? AND o.state = ?",
        (bucket_name, key, STATE_ACTIVE),
    ).fetchone()
    if row is None:
        get_bucket(conn, bucket_name)  # NoSuchBucket first
        raise NoSuchKey(bucket=bucket_name, key=key)
    return str(row[0])


def get_object_acl(
    conn: Conn, bucket_name: str, key: str, version_id: str | None = None
) -> str | None:
    """The ACL (jay.auth.acl JSON) of the current version or of ``version_id``, None for the
    default; NoSuchKey / NoSuchVersion."""
    object_id = _current_object_id(conn, bucket_name, key, version_id)
    row = conn.execute("SELECT acl FROM object_acls WHERE object_id = ?", (object_id,)).fetchone()
    return None if row is None else str(row[0])


def set_object_acl(
    conn: Conn, bucket_name: str, key: str, acl_json: str | None, version_id: str | None = None
) -> None:
    object_id = _current_object_id(conn, bucket_name, key, version_id)
    if acl_json is None:
        conn.execute("DELETE FROM object_acls WHERE object_id = ?", (object_id,))
    else:
        conn.execute(
            "INSERT OR REPLACE INTO object_acls (object_id, acl) VALUES (?, ?)",
            (object_id, acl_json),
        )


def bucket_stats(conn: Conn, name: str) -> BucketStats:
    row = conn.execute(
        "SELECT object_count, total_bytes FROM buckets WHERE name = ?", (name,)
    ).fetchone()
    if row is None:
        raise NoSuchBucket(bucket=name)
    return BucketStats(object_count=row[0], total_size_bytes=row[1])


def all_bucket_ids(conn: Conn) -> list[str]:
    return [r[0] for r in conn.execute("SELECT bucket_id FROM buckets").fetchall()]


def _adjust_counters(conn: Conn, bucket_id: str, count: int, size: int) -> None:
    conn.execute(
        "UPDATE buckets SET object_count = object_count + ?, total_bytes = total_bytes + ? "
        "WHERE bucket_id = ?",
        (count, size, bucket_id),
    )


# --- objects -------------------------------------------------------------------------------

_OBJECT_COLUMNS = (
    "o.bucket_id, b.name, o.key, o.object_id, o.state, o.size, o.etag, o.sha256, "
    "o.content_type, o.attrs_json, o.checksums_json, o.checksum_type, o.part_sizes_json, "
    "o.location_ref, o.created_at, o.updated_at, o.version_id"
)
_OBJECT_FROM = "objects o JOIN buckets b ON b.bucket_id = o.bucket_id"
# The same columns of a noncurrent version (aliased ``o`` too, so _object reads either).
_VERSION_FROM = "object_versions o JOIN buckets b ON b.bucket_id = o.bucket_id"
# The columns a version keeps when it moves between ``objects`` and ``object_versions``.
_MOVED_COLUMNS = (
    "bucket_id, key, version_id, object_id, state, size, etag, sha256, content_type, "
    "attrs_json, checksums_json, checksum_type, part_sizes_json, location_ref, created_at, "
    "updated_at, reason"
)


def _object(row: Sequence[Any]) -> ObjectInfo:
    return ObjectInfo(
        bucket_id=row[0],
        bucket=row[1],
        key=row[2],
        object_id=row[3],
        state=row[4],
        size=row[5],
        etag=row[6],
        sha256_hex=row[7],
        attributes=decode_attributes(row[8], row[9]),
        checksums={} if row[10] == "{}" else json.loads(row[10]),
        checksum_type=row[11],
        part_sizes=() if row[12] == "[]" else tuple(json.loads(row[12])),
        location_ref=row[13],
        created_at=row[14],
        updated_at=row[15],
        version_id=row[16],
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class NewObject:
    """Everything a commit stores about a new object version, except bucket and timestamps."""

    key: str
    object_id: str
    size: int
    etag: str
    sha256_hex: str
    attributes: ObjectAttributes
    checksums: Mapping[str, str]
    checksum_type: str
    part_sizes: tuple[int, ...]
    location_ref: str
    # The version's ACL (jay.auth.acl JSON); None: the default (owner FULL_CONTROL).
    acl_json: str | None = None
    # Each part's checksums ({ALGORITHM: base64}) in part order; () when none are kept.
    part_checksums: tuple[Mapping[str, str], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplacedObject:
    """The record a commit replaced: its file is deleted (active) or left to quarantine."""

    object_id: str
    state: str
    location_ref: str


@dataclass(frozen=True, slots=True)
class _Version:
    """What a write needs to know of the record it replaces (no JSON decoding, no JOIN)."""

    object_id: str
    state: str
    size: int
    etag: str
    location_ref: str
    updated_at: float
    version_id: str


def _bucket_id_and_version(
    conn: Conn, bucket_name: str, key: str
) -> tuple[str, str | None, _Version | None]:
    """The bucket's id, its versioning status ("Enabled", "Suspended" or None) and the key's
    current record in one statement (a write's first look): NoSuchBucket when there is no such
    bucket. The status is read in the write's own transaction, never from a cache, so a write
    racing PutBucketVersioning never discards a version S3 would keep."""
    row = conn.execute(
        "SELECT b.bucket_id, (SELECT c.value FROM bucket_configs c "
        "WHERE c.bucket_id = b.bucket_id AND c.name = 'versioning'), "
        "o.object_id, o.state, o.size, o.etag, o.location_ref, o.updated_at, o.version_id "
        "FROM buckets b LEFT JOIN objects o ON o.bucket_id = b.bucket_id AND o.key = ? "
        "WHERE b.name = ?",
        (key, bucket_name),
    ).fetchone()
    if row is None:
        raise NoSuchBucket(bucket=bucket_name)
    return row[0], row[1], None if row[2] is None else _Version(*row[2:])


def find_object(conn: Conn, bucket_id: str, key: str) -> ObjectInfo | None:
    row = conn.execute(
        f"SELECT {_OBJECT_COLUMNS} FROM {_OBJECT_FROM} WHERE o.bucket_id = ? AND o.key = ?",
        (bucket_id, key),
    ).fetchone()
    return None if row is None else _object(row)


def get_active_object(conn: Conn, bucket_name: str, key: str) -> ObjectInfo:
    """One statement, so it is its own consistent snapshot (the GET/HEAD hot path): no
    explicit read transaction is needed. The bucket is looked up again only on a miss, to
    tell NoSuchBucket from NoSuchKey."""
    row = conn.execute(
        f"SELECT {_OBJECT_COLUMNS} FROM {_OBJECT_FROM} WHERE b.name = ? AND o.key = ?",
        (bucket_name, key),
    ).fetchone()
    if row is None:
        get_bucket(conn, bucket_name)
        raise NoSuchKey(bucket=bucket_name, key=key)
    info = _object(row)
    if info.state != STATE_ACTIVE:
        raise _missing(info)
    return info


def _missing(info: ObjectInfo) -> NoSuchKey:
    """NoSuchKey for a current record that is not readable; a delete marker says so."""
    if info.state == STATE_DELETE_MARKER:
        return NoSuchKey(
            bucket=info.bucket, key=info.key, is_delete_marker=True, version_id=info.version_id
        )
    return NoSuchKey(bucket=info.bucket, key=info.key)


def get_object_version(conn: Conn, bucket_name: str, key: str, version_id: str) -> ObjectInfo:
    """The version ``version_id`` of ``key``, current or not: NoSuchBucket, NoSuchVersion
    (also for a quarantined one), MethodNotAllowed for a delete marker (S3 answers 405)."""
    row = conn.execute(
        f"SELECT {_OBJECT_COLUMNS} FROM {_OBJECT_FROM} "
        "WHERE b.name = ? AND o.key = ? AND o.version_id = ?",
        (bucket_name, key, version_id),
    ).fetchone()
    if row is None:
        row = conn.execute(
            f"SELECT {_OBJECT_COLUMNS} FROM {_VERSION_FROM} "
            "WHERE b.name = ? AND o.key = ? AND o.version_id = ?",
            (bucket_name, key, version_id),
        ).fetchone()
    if row is None:
        get_bucket(conn, bucket_name)
        raise NoSuchVersion(bucket=bucket_name, key=key, version_id=version_id)
    info = _object(row)
    if info.state == STATE_DELETE_MARKER:
        raise MethodNotAllowed(
            bucket=bucket_name,
            key=key,
            is_delete_marker=True,
            version_id=version_id,
            method="GET",
            resource_type="DeleteMarker",
            updated_at=info.updated_at,
        )
    if info.state != STATE_ACTIVE:
        raise NoSuchVersion(bucket=bucket_name, key=key, version_id=version_id)
    return info


def get_object_part_checksums(
    conn: Conn, bucket_name: str, key: str, version_id: str | None = None
) -> tuple[ObjectInfo, tuple[Mapping[str, str], ...]]:
    """The active record (or the version ``version_id``) and its kept part checksums."""
    if version_id is not None:
        info = get_object_version(conn, bucket_name, key, version_id)
        kept = conn.execute(
            "SELECT checksums_json FROM object_part_checksums WHERE object_id = ?",
            (info.object_id,),
        ).fetchone()
        return info, () if kept is None else tuple(json.loads(kept[0]))
    row = conn.execute(
        f"SELECT {_OBJECT_COLUMNS}, p.checksums_json FROM {_OBJECT_FROM} "
        "LEFT JOIN object_part_checksums p ON p.object_id = o.object_id "
        "WHERE b.name = ? AND o.key = ?",
        (bucket_name, key),
    ).fetchone()
    if row is None:
        get_bucket(conn, bucket_name)
        raise NoSuchKey(bucket=bucket_name, key=key)
    if row[4] != STATE_ACTIVE:
        raise _missing(_object(row))
    parts = () if row[-1] is None else tuple(json.loads(row[-1]))
    return _object(row), parts


def _check_condition(
    condition: WriteCondition | None, current: _Version | None, bucket: str, key: str
) -> None:
    if condition is None:
        return
    is_present = current is not None and current.state == STATE_ACTIVE
    if is_present and (
        condition.if_none_match_star
        or (current is not None and current.etag in condition.if_none_match)
    ):
        raise PreconditionFailed(bucket=bucket, key=key, condition="If-None-Match")
    if condition.if_match is not None:
        if not is_present:
            raise NoSuchKey(bucket=bucket, key=key)
        assert current is not None
        wanted = condition.if_match.strip('"')
        if wanted != "*" and current.etag != wanted:  # "*": any current version
            raise PreconditionFailed(bucket=bucket, key=key, condition="If-Match")


def _check_delete_condition(
    condition: DeleteCondition, current: _Version | None, bucket: str, key: str
) -> None:
    if condition.if_match is not None:
        _check_condition(WriteCondition(if_match=condition.if_match), current, bucket, key)
    if current is None or current.state != STATE_ACTIVE:
        return
    if condition.size is not None and current.size != condition.size:
        raise PreconditionFailed(bucket=bucket, key=key, condition="x-amz-if-match-size")
    if condition.last_modified is not None and math.floor(current.updated_at) != math.floor(
        condition.last_modified
    ):
        raise PreconditionFailed(
            bucket=bucket, key=key, condition="x-amz-if-match-last-modified-time"
        )


def commit_object(
    conn: Conn,
    bucket_name: str,
    new: NewObject,
    now: float,
    condition: WriteCondition | None,
    upload_id: str | None = None,
) -> tuple[ObjectInfo, ReplacedObject | None]:
    """Insert or replace one object record, checking ``condition`` in this transaction.

    With ``upload_id`` the multipart upload and its parts are deleted in the same transaction,
    so an upload is either still complete-able or its object exists, never both or neither.
    """
    bucket_id, versioning, current = _bucket_id_and_version(conn, bucket_name, new.key)
    _check_condition(condition, current, bucket_name, new.key)
    attributes = new.attributes
    if (
        versioning == VERSIONING_ENABLED
        or attributes.lock_mode is not None
        or attributes.legal_hold is not None
    ):
        # Only versioned buckets can have Object Lock: unversioned writes skip this look-up.
        lock = _lock_configuration(conn, bucket_id)
        objectlock.check_new_version(attributes, lock)
        attributes = objectlock.with_default(attributes, lock, now)
    acl_json = new.acl_json
    if upload_id is not None:
        upload = _require_upload(conn, upload_id, bucket_id, new.key)
        if acl_json is None:
            acl_json = upload.acl_json
        conn.execute("DELETE FROM parts WHERE upload_id = ?", (upload_id,))
        conn.execute("DELETE FROM uploads WHERE upload_id = ?", (upload_id,))
        _remember_completed_upload(conn, upload, new.object_id, now)
    version_id = NULL_VERSION
    replaced = None
    if versioning is not None:
        version_id = new.object_id if versioning == VERSIONING_ENABLED else NULL_VERSION
        replaced = _make_way(conn, bucket_id, new.key, versioning, current, now)
    elif current is not None:
        replaced = ReplacedObject(
            object_id=current.object_id, state=current.state, location_ref=current.location_ref
        )
    conn.execute(
        _UPSERT_CURRENT,
        (
            bucket_id,
            new.key,
            new.object_id,
            STATE_ACTIVE,
            new.size,
            new.etag,
            new.sha256_hex,
            attributes.content_type,
            encode_attributes(attributes),
            json.dumps(dict(new.checksums), sort_keys=True) if new.checksums else "{}",
            new.checksum_type,
            json.dumps(list(new.part_sizes)) if new.part_sizes else "[]",
            new.location_ref,
            now,
            now,
            version_id,
        ),
    )
    if acl_json is not None:
        conn.execute(
            "INSERT OR REPLACE INTO object_acls (object_id, acl) VALUES (?, ?)",
            (new.object_id, acl_json),
        )
    if new.part_checksums:
        conn.execute(
            "INSERT OR REPLACE INTO object_part_checksums (object_id, checksums_json) "
            "VALUES (?, ?)",
            (new.object_id, json.dumps([dict(c) for c in new.part_checksums], sort_keys=True)),
        )
    # The counters cover current versions (what a listing shows): the one replaced or made
    # noncurrent leaves them, the new one enters.
    count, size = 1, new.size
    if current is not None and current.state == STATE_ACTIVE:
        count, size = 0, new.size - current.size
    _adjust_counters(conn, bucket_id, count, size)
    # Exactly what was just stored (reading it back cost a JOIN and a JSON decode).
    info = ObjectInfo(
        bucket_id=bucket_id,
        bucket=bucket_name,
        key=new.key,
        object_id=new.object_id,
        state=STATE_ACTIVE,
        size=new.size,
        etag=new.etag,
        sha256_hex=new.sha256_hex,
        attributes=attributes,
        checksums=dict(new.checksums),
        checksum_type=new.checksum_type,
        part_sizes=tuple(new.part_sizes),
        location_ref=new.location_ref,
        created_at=now,
        updated_at=now,
        version_id=version_id,
    )
    return info, replaced


def _lock_configuration(conn: Conn, bucket_id: str) -> objectlock.LockConfiguration | None:
    """The bucket's Object Lock configuration, read in the caller's transaction."""
    row = conn.execute(
        "SELECT value FROM bucket_configs WHERE bucket_id = ? AND name = ?",
        (bucket_id, BUCKET_CONFIG_OBJECT_LOCK),
    ).fetchone()
    return None if row is None else objectlock.decode_configuration(row[0])


# Insert or replace the current version of a key (values: every column but ``reason``).
_UPSERT_CURRENT = """INSERT INTO objects (bucket_id, key, object_id, state, size, etag, sha256,
        content_type, attrs_json, checksums_json, checksum_type, part_sizes_json,
        location_ref, created_at, updated_at, reason, version_id)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', ?)
    ON CONFLICT (bucket_id, key) DO UPDATE SET
        object_id = excluded.object_id, state = excluded.state, size = excluded.size,
        etag = excluded.etag, sha256 = excluded.sha256,
        content_type = excluded.content_type, attrs_json = excluded.attrs_json,
        checksums_json = excluded.checksums_json, checksum_type = excluded.checksum_type,
        part_sizes_json = excluded.part_sizes_json, location_ref = excluded.location_ref,
        created_at = excluded.created_at, updated_at = excluded.updated_at, reason = '',
        version_id = excluded.version_id"""


def _make_way(
    conn: Conn,
    bucket_id: str,
    key: str,
    versioning: str,
    current: _Version | None,
    now: float,
) -> ReplacedObject | None:
    """Before a new current version (object or delete marker) of ``key`` is written into a
    versioned bucket: keep the current one as a noncurrent version — unless it is the "null"
    version and versioning is suspended (the new "null" version replaces it, as on S3), or it
    is quarantined (its bytes are known bad: replaced as in an unversioned bucket, unless it is
    under Object Lock, which no write overrides). Suspended,
    a noncurrent "null" version goes too. Returns the one record whose file must go, if any
    (there is at most one "null" version of a key)."""
    replaced = None
    if current is not None:
        # A quarantined version's bytes are known bad: it is replaced as in an unversioned
        # bucket, unless Object Lock protects it (then it is kept, noncurrent and quarantined).
        if (versioning == VERSIONING_SUSPENDED and current.version_id == NULL_VERSION) or (
            current.state == STATE_QUARANTINED and not _is_locked_current(conn, bucket_id, key, now)
        ):
            replaced = ReplacedObject(
                object_id=current.object_id,
                state=current.state,
                location_ref=current.location_ref,
            )
        else:
            # Insert before the row is overwritten: the ACL and part checksum triggers keep
            # a version's rows while either table holds it.
            conn.execute(
                f"INSERT INTO object_versions ({_MOVED_COLUMNS}, noncurrent_since) "
                f"SELECT {_MOVED_COLUMNS}, ? FROM objects WHERE bucket_id = ? AND key = ?",
                (now, bucket_id, key),
            )
    if versioning == VERSIONING_SUSPENDED:
        row = conn.execute(
            "SELECT seq, object_id, state, location_ref FROM object_versions "
            "WHERE bucket_id = ? AND key = ? AND version_id = 'null'",
            (bucket_id, key),
        ).fetchone()
        if row is not None:
            conn.execute("DELETE FROM object_versions WHERE seq = ?", (row[0],))
            replaced = ReplacedObject(object_id=row[1], state=row[2], location_ref=row[3])
    return replaced


def _is_locked_current(conn: Conn, bucket_id: str, key: str, now: float) -> bool:
    """The key's current record is under Object Lock (a quarantined one that a new version
    would otherwise replace: it is kept as a noncurrent version instead, as S3 keeps it)."""
    row = conn.execute(
        "SELECT content_type, attrs_json FROM objects WHERE bucket_id = ? AND key = ?",
        (bucket_id, key),
    ).fetchone()
    return row is not None and objectlock.is_locked(decode_attributes(row[0], row[1]), now)


# How long a completed multipart upload can be completed again (a client retrying a Complete
# whose answer it never got). S3 keeps answering such retries for a while after completion.
COMPLETED_UPLOADS_KEPT_SECONDS = 24 * 3600


def _remember_completed_upload(
    conn: Conn, upload: MultipartUpload, object_id: str, now: float
) -> None:
    conn.execute(
        "DELETE FROM completed_uploads WHERE completed_at < ?",
        (now - COMPLETED_UPLOADS_KEPT_SECONDS,),
    )
    conn.execute(
        "INSERT OR REPLACE INTO completed_uploads "
        "(upload_id, bucket_id, key, object_id, initiated_by, completed_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (upload.upload_id, upload.bucket_id, upload.key, object_id, upload.initiated_by, now),
    )


def find_completed_upload(
    conn: Conn, bucket_name: str, key: str, upload_id: str, account_id: str, now: float
) -> ObjectInfo | None:
    """The object a multipart upload completed into, while it is still the key's current
    version, the completion is recent and ``account_id`` initiated the upload; else None."""
    row = conn.execute(
        "SELECT c.bucket_id, c.object_id FROM completed_uploads c "
        "JOIN buckets b ON b.bucket_id = c.bucket_id "
        "WHERE c.upload_id = ? AND b.name = ? AND c.key = ? AND c.initiated_by = ? "
        "AND c.completed_at >= ?",
        (upload_id, bucket_name, key, account_id, now - COMPLETED_UPLOADS_KEPT_SECONDS),
    ).fetchone()
    if row is None:
        return None
    info = find_object(conn, row[0], key)
    if info is None or info.object_id != row[1] or info.state != STATE_ACTIVE:
        return None
    return info


def delete_version(
    conn: Conn,
    bucket_name: str,
    key: str,
    condition: DeleteCondition | None = None,
    version_id: str | None = None,
    now: float = 0.0,
    marker_id: str = "",
    bypass_governance: bool = False,
) -> tuple[DeleteOutcome, ReplacedObject | None]:
    """S3 DeleteObject. Without ``version_id``: in an unversioned bucket the current record
    goes; in a versioned one a delete marker (id ``marker_id``, or "null" while versioning is
    suspended) becomes the current version and the previous one is kept (``_make_way``). With
    ``version_id``: exactly that version goes for good; if it was the current one, the newest
    remaining version or marker becomes current. A version that does not exist is no error
    (nothing happens). A version under Object Lock (a legal hold, a retention in force) is
    AccessDenied; GOVERNANCE retention yields to ``bypass_governance``. Returns what happened
    and the record whose file must go, if any."""
    bucket_id, versioning, current = _bucket_id_and_version(conn, bucket_name, key)
    if version_id is None:
        if condition is not None:
            _check_delete_condition(condition, current, bucket_name, key)
        if versioning is None:
            if current is None or current.state != STATE_ACTIVE:
                return DeleteOutcome(deleted=False), None
            conn.execute("DELETE FROM objects WHERE bucket_id = ? AND key = ?", (bucket_id, key))
            _adjust_counters(conn, bucket_id, -1, -current.size)
            return DeleteOutcome(deleted=True), _replaced(current)
        marker_version = marker_id if versioning == VERSIONING_ENABLED else NULL_VERSION
        replaced = _make_way(conn, bucket_id, key, versioning, current, now)
        conn.execute(
            _UPSERT_CURRENT,
            (
                bucket_id,
                key,
                marker_id,
                STATE_DELETE_MARKER,
                0,
                "",
                "",
                "",
                "",
                "{}",
                "",
                "[]",
                "",
                now,
                now,
                marker_version,
            ),
        )
        if current is not None and current.state == STATE_ACTIVE:
            _adjust_counters(conn, bucket_id, -1, -current.size)
        return DeleteOutcome(
            deleted=True, version_id=marker_version, is_delete_marker=True
        ), replaced
    if current is not None and current.version_id == version_id:
        if versioning is not None:  # only versioned buckets can hold locked versions
            row = conn.execute(
                "SELECT content_type, attrs_json FROM objects WHERE bucket_id = ? AND key = ?",
                (bucket_id, key),
            ).fetchone()
            objectlock.check_delete(
                decode_attributes(row[0], row[1]),
                now,
                bypass_governance=bypass_governance,
                bucket=bucket_name,
                key=key,
            )
        conn.execute("DELETE FROM objects WHERE bucket_id = ? AND key = ?", (bucket_id, key))
        if current.state == STATE_ACTIVE:
            _adjust_counters(conn, bucket_id, -1, -current.size)
        _promote_newest(conn, bucket_id, key)
        return (
            DeleteOutcome(
                deleted=True,
                version_id=version_id,
                is_delete_marker=current.state == STATE_DELETE_MARKER,
            ),
            _replaced(current),
        )
    row = conn.execute(
        "SELECT seq, object_id, state, location_ref, content_type, attrs_json "
        "FROM object_versions WHERE bucket_id = ? AND key = ? AND version_id = ?",
        (bucket_id, key, version_id),
    ).fetchone()
    if row is None:
        return DeleteOutcome(deleted=False, version_id=version_id), None
    objectlock.check_delete(
        decode_attributes(row[4], row[5]),
        now,
        bypass_governance=bypass_governance,
        bucket=bucket_name,
        key=key,
    )
    conn.execute("DELETE FROM object_versions WHERE seq = ?", (row[0],))
    replaced = ReplacedObject(object_id=row[1], state=row[2], location_ref=row[3])
    return (
        DeleteOutcome(
            deleted=True, version_id=version_id, is_delete_marker=row[2] == STATE_DELETE_MARKER
        ),
        replaced,
    )


def _replaced(current: _Version) -> ReplacedObject | None:
    if current.state == STATE_DELETE_MARKER:
        return None  # no file
    return ReplacedObject(
        object_id=current.object_id, state=current.state, location_ref=current.location_ref
    )


def _promote_newest(conn: Conn, bucket_id: str, key: str) -> None:
    """Make the newest noncurrent version (or delete marker) of ``key`` its current one, after
    the current one was deleted by its version id (S3: the previous version becomes current)."""
    row = conn.execute(
        "SELECT seq, state, size FROM object_versions WHERE bucket_id = ? AND key = ? "
        "ORDER BY seq DESC LIMIT 1",
        (bucket_id, key),
    ).fetchone()
    if row is None:
        return
    # Insert before delete: the ACL and part checksum triggers keep the version's rows.
    conn.execute(
        f"INSERT INTO objects ({_MOVED_COLUMNS}) "
        f"SELECT {_MOVED_COLUMNS} FROM object_versions WHERE seq = ?",
        (row[0],),
    )
    conn.execute("DELETE FROM object_versions WHERE seq = ?", (row[0],))
    if row[1] == STATE_ACTIVE:
        _adjust_counters(conn, bucket_id, 1, row[2])


def set_object_lock(
    conn: Conn,
    bucket_name: str,
    key: str,
    version_id: str | None,
    now: float,
    *,
    retention: tuple[str | None, float | None] | None = None,
    legal_hold: str | None = None,
    bypass_governance: bool = False,
) -> ObjectInfo:
    """PutObjectRetention (``retention``: (mode, until), or (None, None) to remove it) and
    PutObjectLegalHold (``legal_hold``) on the current version or ``version_id``, checked
    against the version's lock in this transaction (``objectlock.check_retention_change``).
    InvalidRequest when the bucket has no Object Lock."""
    bucket = get_bucket(conn, bucket_name)
    if bucket.config(BUCKET_CONFIG_OBJECT_LOCK) is None:
        raise InvalidRequest(objectlock.NOT_ENABLED_MESSAGE, bucket=bucket_name, key=key)
    if version_id is not None:
        info = get_object_version(conn, bucket_name, key, version_id)
    else:
        current = find_object(conn, bucket.bucket_id, key)
        if current is None or current.state != STATE_ACTIVE:
            raise NoSuchKey(bucket=bucket_name, key=key) if current is None else _missing(current)
        info = current
    attributes = info.attributes
    if retention is not None:
        mode, until = retention
        objectlock.check_retention_change(
            attributes,
            mode,
            until,
            now,
            bypass_governance=bypass_governance,
            bucket=bucket_name,
            key=key,
        )
        attributes = replace(attributes, lock_mode=mode, lock_until=until)
    if legal_hold is not None:
        attributes = replace(attributes, legal_hold=legal_hold)
    _set_version_attributes(conn, info, attributes)
    return replace(info, attributes=attributes)


def _set_version_attributes(conn: Conn, info: ObjectInfo, attributes: ObjectAttributes) -> None:
    """Store ``attributes`` on the version ``info`` is, current (``objects``) or not."""
    encoded = encode_attributes(attributes)
    cur = conn.execute(
        "UPDATE objects SET attrs_json = ? WHERE bucket_id = ? AND key = ? AND object_id = ?",
        (encoded, info.bucket_id, info.key, info.object_id),
    )
    if cur.rowcount == 0:
        conn.execute(
            "UPDATE object_versions SET attrs_json = ? WHERE bucket_id = ? AND key = ? "
            "AND object_id = ?",
            (encoded, info.bucket_id, info.key, info.object_id),
        )


def set_object_tags(
    conn: Conn,
    bucket_name: str,
    key: str,
    tags: Mapping[str, str],
    version_id: str | None = None,
) -> ObjectInfo:
    """Replace the tags of the key's active record (or of version ``version_id``), nothing
    else (S3 Put/DeleteObjectTagging: bytes, ETag and Last-Modified unchanged). The UPDATE
    fires the object change triggers, so every process's cached record of the key is dropped."""
    if version_id is not None:
        info = get_object_version(conn, bucket_name, key, version_id)
        attributes = replace(info.attributes, tags=dict(tags))
        _set_version_attributes(conn, info, attributes)
        return replace(info, attributes=attributes)
    bucket = get_bucket(conn, bucket_name)
    current = find_object(conn, bucket.bucket_id, key)
    if current is None or current.state != STATE_ACTIVE:
        raise NoSuchKey(bucket=bucket_name, key=key) if current is None else _missing(current)
    attributes = replace(current.attributes, tags=dict(tags))
    conn.execute(
        "UPDATE objects SET attrs_json = ? WHERE bucket_id = ? AND key = ?",
        (encode_attributes(attributes), bucket.bucket_id, key),
    )
    return replace(current, attributes=attributes)


def quarantine_object(
    conn: Conn,
    bucket_id: str,
    key: str,
    reason: str,
    now: float,
    object_id: str | None = None,
) -> ObjectInfo | None:
    """Mark an active record quarantined (only that version when ``object_id`` is given: the
    current one, or else a noncurrent version of the key, which reads then answer
    NoSuchVersion and listings leave out)."""
    current = find_object(conn, bucket_id, key)
    if object_id is not None and (current is None or current.object_id != object_id):
        return _quarantine_noncurrent(conn, bucket_id, key, object_id, reason, now)
    if current is None or current.state != STATE_ACTIVE:
        return None
    conn.execute(
        "UPDATE objects SET state = ?, reason = ?, updated_at = ? WHERE bucket_id = ? AND key = ?",
        (STATE_QUARANTINED, reason, now, bucket_id, key),
    )
    _adjust_counters(conn, bucket_id, -1, -current.size)
    return find_object(conn, bucket_id, key)


def _quarantine_noncurrent(
    conn: Conn, bucket_id: str, key: str, object_id: str, reason: str, now: float
) -> ObjectInfo | None:
    row = conn.execute(
        f"SELECT {_OBJECT_COLUMNS}, o.seq FROM {_VERSION_FROM} "
        "WHERE o.bucket_id = ? AND o.key = ? AND o.object_id = ? AND o.state = 'active'",
        (bucket_id, key, object_id),
    ).fetchone()
    if row is None:
        return None
    # Counters cover current versions only: nothing to adjust.
    conn.execute(
        "UPDATE object_versions SET state = ?, reason = ? WHERE seq = ?",
        (STATE_QUARANTINED, reason, row[-1]),
    )
    return replace(_object(row), state=STATE_QUARANTINED)


@dataclass(frozen=True, slots=True, kw_only=True)
class QuarantinedObject:
    info: ObjectInfo
    reason: str


def list_quarantined(
    conn: Conn, after_bucket_id: str, after_key: str, limit: int
) -> list[QuarantinedObject]:
    rows = conn.execute(
        f"SELECT {_OBJECT_COLUMNS}, o.reason FROM {_OBJECT_FROM} "
        "WHERE o.state = 'quarantined' AND (o.bucket_id > ? OR (o.bucket_id = ? AND o.key > ?)) "
        "ORDER BY o.bucket_id, o.key LIMIT ?",
        (after_bucket_id, after_bucket_id, after_key, limit),
    ).fetchall()
    return [QuarantinedObject(info=_object(r), reason=r[17]) for r in rows]


def prefix_successor(prefix: str) -> str | None:
    """The smallest string greater than every string starting with ``prefix`` (None: no bound).

    Code-point order equals UTF-8 byte order, so this is also the byte-order bound SQLite uses.
    """
    chars = list(prefix)
    while chars:
        last = ord(chars[-1])
        if last < 0x10FFFF:
            nxt = last + 1
            if 0xD800 <= nxt <= 0xDFFF:  # skip the surrogate block, never valid in a key
                nxt = 0xE000
            chars[-1] = chr(nxt)
            return "".join(chars)
        chars.pop()
    return None


# What a LIST page shows of each object, in ListedObject's field order: a row becomes an entry
# with no decoding. No JOIN: the bucket is looked up once per page, not once per row.
# One lower bound per statement: given both ``key > start_after`` and ``key >= prefix`` SQLite
# seeks the index by only one of them and filters the other row by row, so a first page after
# an empty start_after walked every key sorting before the prefix.
_LISTED_SELECT = "SELECT key, size, etag, sha256, updated_at, content_type FROM objects "
_LISTED_FROM_PREFIX = _LISTED_SELECT + "WHERE bucket_id = ? AND key >= ?"
_LISTED_AFTER = _LISTED_SELECT + "WHERE bucket_id = ? AND key > ?"
_LISTED_ORDER = " AND state = 'active' ORDER BY key LIMIT ?"


@dataclass(frozen=True, slots=True)
class _ListRange:
    """The statements and bounds of one prefix's key range [prefix, end)."""

    prefix: str
    from_prefix: str
    after: str
    upper: tuple[Any, ...]

    @classmethod
    def of(cls, prefix: str) -> _ListRange:
        # Every key in [prefix, end) starts with prefix (code-point order is UTF-8 byte order).
        end = prefix_successor(prefix)
        tail = (" AND key < ?" if end is not None else "") + _LISTED_ORDER
        return cls(
            prefix, _LISTED_FROM_PREFIX + tail, _LISTED_AFTER + tail, () if end is None else (end,)
        )

    def rows(self, conn: Conn, bucket_id: str, position: str, limit: int) -> list[Any]:
        """Up to ``limit`` active rows in range with keys after ``position``, in key order."""
        if position < self.prefix:
            return conn.execute(
                self.from_prefix, (bucket_id, self.prefix, *self.upper, limit)
            ).fetchall()
        return conn.execute(self.after, (bucket_id, position, *self.upper, limit)).fetchall()


# The first batch after skipping a common prefix (doubling up to BATCH_SIZE while no seek comes):
# a listing of many "directories" reads about one row per directory instead of a full batch.
_BATCH_AFTER_SEEK = 4


def list_objects(
    conn: Conn, bucket_name: str, prefix: str, delimiter: str, start_after: str, max_keys: int
) -> ListPage:
    """One indexed range query per batch (and per common prefix skipped), never the bucket."""
    bucket_id = get_bucket(conn, bucket_name).bucket_id
    # Bounded from above too, so a prefix listing never reads keys sorting after it.
    key_range = _ListRange.of(prefix)
    if not delimiter:
        return _list_without_delimiter(conn, key_range, bucket_id, start_after, max_keys)
    builder: PageBuilder[tuple[Any, ...]] = PageBuilder(
        prefix=prefix, delimiter=delimiter, max_keys=max_keys
    )
    position = start_after
    step = BATCH_SIZE
    while not builder.is_done:
        # One row past what the page can still take tells whether it is truncated.
        batch = min(builder.room + 1, step)
        rows = key_range.rows(conn, bucket_id, position, batch)
        sought = False
        for row in rows:
            action = builder.offer(row[0], row)
            if action is CONTINUE:
                position = row[0]
                continue
            if isinstance(action, Seek):
                position = action.after
                sought = True
            break
        if sought:
            # The rest of this batch was thrown away, and the next rows may well roll up into
            # the next common prefix too: read few, and more while no seek comes.
            step = min(_BATCH_AFTER_SEEK, BATCH_SIZE)
        elif len(rows) < batch:
            builder.finish()
        else:
            step = min(step * 2, BATCH_SIZE)
    return ListPage(
        objects=tuple(map(ListedObject._make, builder.objects)),
        common_prefixes=tuple(builder.common_prefixes),
        is_truncated=builder.is_truncated,
        next_start_after=builder.next_start_after,
    )


def _list_without_delimiter(
    conn: Conn,
    key_range: _ListRange,
    bucket_id: str,
    start_after: str,
    max_keys: int,
) -> ListPage:
    """Without a delimiter every row in range is an entry: the page is the first ``max_keys``
    rows, truncated when one more exists. This is what PageBuilder decides for such rows, without
    a call per row; rows are fetched in batches so a huge ``max_keys`` reads in bounded steps."""
    limit = max(max_keys, 0)
    objects: list[ListedObject] = []
    position = start_after
    # One row past the page tells whether it is truncated; an empty page reads nothing.
    wanted = limit + 1 if limit else 0
    while len(objects) < wanted:
        batch = min(wanted - len(objects), BATCH_SIZE)
        rows = key_range.rows(conn, bucket_id, position, batch)
        objects.extend(map(ListedObject._make, rows))
        if len(rows) < batch:
            break
        position = rows[-1][0]
    is_truncated = len(objects) > limit
    if is_truncated:
        del objects[limit:]
    return ListPage(
        objects=tuple(objects),
        common_prefixes=(),
        is_truncated=is_truncated,
        next_start_after=objects[-1].key if is_truncated else "",
    )


# --- versions ------------------------------------------------------------------------------

# The keys of a bucket that have a current or a noncurrent version, in a range.
_VERSION_KEYS = (
    "SELECT key FROM objects WHERE bucket_id = ? AND key {op} ?{upper} "
    "UNION SELECT key FROM object_versions WHERE bucket_id = ? AND key {op} ?{upper} "
    "ORDER BY key LIMIT ?"
)
_LISTED_VERSION = "version_id, state, size, etag, updated_at, {since}"


def _version_keys(
    conn: Conn, bucket_id: str, lower: str, inclusive: bool, end: str | None, limit: int
) -> list[str]:
    sql = _VERSION_KEYS.format(
        op=">=" if inclusive else ">", upper="" if end is None else (" AND key < ?")
    )
    bounds: tuple[Any, ...] = (lower,) if end is None else (lower, end)
    rows = conn.execute(sql, (bucket_id, *bounds, bucket_id, *bounds, limit)).fetchall()
    return [r[0] for r in rows]


def _key_versions(
    conn: Conn, bucket_id: str, key: str, after_version: str | None, limit: int
) -> list[ListedVersion]:
    """Up to ``limit`` versions of ``key``, newest first (the current one, then noncurrent ones
    by falling ``seq``), after the version ``after_version`` when given (one that does not
    exist: none). Quarantined records are left out: they cannot be read."""
    out: list[ListedVersion] = []
    before_seq = 2**62
    current = conn.execute(
        f"SELECT {_LISTED_VERSION.format(since='NULL')} FROM objects "
        "WHERE bucket_id = ? AND key = ?",
        (bucket_id, key),
    ).fetchone()
    if after_version is not None:
        if current is None or current[0] != after_version:
            row = conn.execute(
                "SELECT seq FROM object_versions WHERE bucket_id = ? AND key = ? "
                "AND version_id = ?",
                (bucket_id, key, after_version),
            ).fetchone()
            if row is None:
                return []
            before_seq = row[0]
        current = None
    if current is not None and current[1] != STATE_QUARANTINED:
        out.append(_listed_version(key, current, True))
    if len(out) >= limit:
        return out
    rows = conn.execute(
        f"SELECT {_LISTED_VERSION.format(since='noncurrent_since')} FROM object_versions "
        "WHERE bucket_id = ? AND key = ? "
        "AND seq < ? AND state != 'quarantined' ORDER BY seq DESC LIMIT ?",
        (bucket_id, key, before_seq, limit - len(out)),
    ).fetchall()
    out.extend(_listed_version(key, row, False) for row in rows)
    return out


def _listed_version(key: str, row: Sequence[Any], is_latest: bool) -> ListedVersion:
    return ListedVersion(
        key=key,
        version_id=row[0],
        is_latest=is_latest,
        is_delete_marker=row[1] == STATE_DELETE_MARKER,
        size=row[2],
        etag=row[3],
        updated_at=row[4],
        noncurrent_since=row[5],
    )


def list_object_versions(
    conn: Conn,
    bucket_name: str,
    prefix: str,
    delimiter: str,
    key_marker: str,
    version_id_marker: str,
    max_keys: int,
) -> VersionsPage:
    """S3 ListObjectVersions: keys in UTF-8 order from both tables, each key's versions newest
    first, common prefixes rolled up as ListObjects does; every version, marker and common
    prefix takes one of ``max_keys``. Paging: after ``key_marker`` (all of its versions), or,
    with ``version_id_marker``, after that version of ``key_marker``. Reads in bounded batches
    (keys per query, versions per key), never the whole bucket."""
    bucket_id = get_bucket(conn, bucket_name).bucket_id
    limit = max(max_keys, 0)
    end = prefix_successor(prefix)
    versions: list[ListedVersion] = []
    prefixes: list[str] = []
    is_truncated = False
    next_key = next_version = ""

    def room() -> int:
        return limit - len(versions) - len(prefixes)

    if limit == 0:
        return VersionsPage(
            versions=(),
            common_prefixes=(),
            is_truncated=False,
            next_key_marker="",
            next_version_id_marker="",
        )
    lower, inclusive = prefix, True
    if key_marker and key_marker >= prefix:
        lower, inclusive = key_marker, False
        rolled = common_prefix_of(key_marker, prefix, delimiter)
        if rolled is not None and rolled == key_marker:
            # A marker that is a common prefix (a page ended on it): after every key under it.
            successor = prefix_successor(rolled)
            if successor is None:
                lower = SENTINEL
            else:
                lower, inclusive = successor, True
        elif version_id_marker and rolled is None:
            # The rest of the marker's key first.
            pending = _key_versions(conn, bucket_id, key_marker, version_id_marker, limit + 1)
            for version in pending:
                if room() <= 0:
                    is_truncated = True
                    break
                versions.append(version)
                next_key, next_version = version.key, version.version_id
    while not is_truncated:
        batch = min(room() + 1, BATCH_SIZE)
        keys = _version_keys(conn, bucket_id, lower, inclusive, end, batch)
        sought = exhausted = False
        for key in keys:
            rolled = common_prefix_of(key, prefix, delimiter)
            if rolled is not None:
                if room() <= 0:
                    is_truncated = True
                    break
                prefixes.append(rolled)
                next_key, next_version = rolled, ""
                successor = prefix_successor(rolled)
                if successor is None:
                    exhausted = True
                else:
                    lower, inclusive = successor, True
                sought = True
                break
            for version in _key_versions(conn, bucket_id, key, None, room() + 1):
                if room() <= 0:
                    is_truncated = True
                    break
                versions.append(version)
                next_key, next_version = version.key, version.version_id
            if is_truncated:
                break
            lower, inclusive = key, False
        if exhausted or (not sought and len(keys) < batch):
            break
    if not is_truncated:
        next_key = next_version = ""
    return VersionsPage(
        versions=tuple(versions),
        common_prefixes=tuple(prefixes),
        is_truncated=is_truncated,
        next_key_marker=next_key,
        next_version_id_marker=next_version,
    )


# --- multipart -----------------------------------------------------------------------------

_UPLOAD_SELECT = (
    "SELECT u.upload_id, b.name, u.bucket_id, u.key, u.attrs_json, u.initiated_by, "
    "u.created_at, u.checksum_algorithm, u.checksum_type, u.state "
    "FROM uploads u JOIN buckets b ON b.bucket_id = u.bucket_id"
)


def _upload(row: Sequence[Any]) -> MultipartUpload:
    attrs = json.loads(row[4])
    return MultipartUpload(
        upload_id=row[0],
        bucket=row[1],
        bucket_id=row[2],
        key=row[3],
        attributes=decode_attributes(attrs["content_type"], attrs["rest"]),
        initiated_by=row[5],
        created_at=row[6],
        checksum_algorithm=row[7],
        checksum_type=row[8],
        state=row[9],
        acl_json=attrs.get("acl"),
    )


def insert_upload(conn: Conn, upload: MultipartUpload) -> MultipartUpload:
    bucket = get_bucket(conn, upload.bucket)
    fields = {
        "content_type": upload.attributes.content_type,
        "rest": encode_attributes(upload.attributes),
    }
    if upload.acl_json is not None:
        fields["acl"] = upload.acl_json
    attrs = json.dumps(fields)
    conn.execute(
        "INSERT INTO uploads (upload_id, bucket_id, key, attrs_json, initiated_by, created_at, "
        "checksum_algorithm, checksum_type, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            upload.upload_id,
            bucket.bucket_id,
            upload.key,
            attrs,
            upload.initiated_by,
            upload.created_at,
            upload.checksum_algorithm,
            upload.checksum_type,
            upload.state,
        ),
    )
    return get_upload(conn, upload.bucket, upload.key, upload.upload_id)


def get_upload(conn: Conn, bucket_name: str, key: str, upload_id: str) -> MultipartUpload:
    bucket = get_bucket(conn, bucket_name)
    return _require_upload(conn, upload_id, bucket.bucket_id, key)


def _require_upload(conn: Conn, upload_id: str, bucket_id: str, key: str) -> MultipartUpload:
    row = conn.execute(f"{_UPLOAD_SELECT} WHERE u.upload_id = ?", (upload_id,)).fetchone()
    if row is None:
        raise NoSuchUpload(key=key, resource=upload_id)
    upload = _upload(row)
    if upload.bucket_id != bucket_id or upload.key != key or upload.state != "initiated":
        raise NoSuchUpload(key=key, resource=upload_id)
    return upload


_PART_COLUMNS = "part_number, size, etag, sha256, created_at, checksums_json, location_ref"


def _part(row: Sequence[Any]) -> PartInfo:
    return PartInfo(
        part_number=row[0],
        size=row[1],
        etag=row[2],
        sha256_hex=row[3],
        created_at=row[4],
        checksums=json.loads(row[5]),
        location_ref=row[6],
    )


def put_part(conn: Conn, bucket_name: str, key: str, upload_id: str, part: PartInfo) -> PartInfo:
    get_upload(conn, bucket_name, key, upload_id)
    conn.execute(
        f"INSERT INTO parts (upload_id, {_PART_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (upload_id, part_number) DO UPDATE SET size = excluded.size, "
        "etag = excluded.etag, sha256 = excluded.sha256, created_at = excluded.created_at, "
        "checksums_json = excluded.checksums_json, location_ref = excluded.location_ref",
        (
            upload_id,
            part.part_number,
            part.size,
            part.etag,
            part.sha256_hex,
            part.created_at,
            json.dumps(dict(part.checksums), sort_keys=True),
            part.location_ref,
        ),
    )
    return part


def get_parts(
    conn: Conn, bucket_name: str, key: str, upload_id: str, part_numbers: Sequence[int]
) -> tuple[MultipartUpload, dict[int, PartInfo]]:
    upload = get_upload(conn, bucket_name, key, upload_id)
    found: dict[int, PartInfo] = {}
    wanted = sorted(set(part_numbers))
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        marks = ", ".join("?" for _ in chunk)
        rows = conn.execute(
            f"SELECT {_PART_COLUMNS} FROM parts WHERE upload_id = ? AND part_number IN ({marks})",
            (upload_id, *chunk),
        ).fetchall()
        for row in rows:
            found[row[0]] = _part(row)
    return upload, found


def list_parts(
    conn: Conn, bucket_name: str, key: str, upload_id: str, marker: int, max_parts: int
) -> PartsPage:
    upload = get_upload(conn, bucket_name, key, upload_id)
    limit = max(0, min(max_parts, BATCH_SIZE))
    rows = conn.execute(
        f"SELECT {_PART_COLUMNS} FROM parts WHERE upload_id = ? AND part_number > ? "
        "ORDER BY part_number LIMIT ?",
        (upload_id, marker, limit + 1),
    ).fetchall()
    parts = tuple(_part(r) for r in rows[:limit])
    is_truncated = len(rows) > limit
    return PartsPage(
        upload=upload,
        parts=parts,
        is_truncated=is_truncated,
        next_part_number_marker=parts[-1].part_number if parts and is_truncated else 0,
    )


def delete_upload(conn: Conn, bucket_name: str, key: str, upload_id: str) -> None:
    get_upload(conn, bucket_name, key, upload_id)
    conn.execute("DELETE FROM parts WHERE upload_id = ?", (upload_id,))
    conn.execute("DELETE FROM uploads WHERE upload_id = ?", (upload_id,))


def list_uploads(
    conn: Conn,
    bucket_name: str,
    prefix: str,
    delimiter: str,
    key_marker: str,
    upload_id_marker: str,
    max_uploads: int,
) -> UploadsPage:
    bucket = get_bucket(conn, bucket_name)
    builder: PageBuilder[MultipartUpload] = PageBuilder(
        prefix=prefix, delimiter=delimiter, max_keys=max_uploads
    )
    # (key, upload_id) strictly after the markers; no upload id marker skips the whole key.
    position = (key_marker, upload_id_marker if upload_id_marker and key_marker else SENTINEL)
    if not key_marker:
        position = ("", "")
    batch = min(max(max_uploads, 0) + 1, BATCH_SIZE)
    while not builder.is_done:
        rows = conn.execute(
            f"{_UPLOAD_SELECT} WHERE u.bucket_id = ? AND u.key >= ? "
            "AND (u.key > ? OR (u.key = ? AND u.upload_id > ?)) "
            "ORDER BY u.key, u.upload_id LIMIT ?",
            (bucket.bucket_id, prefix, position[0], position[0], position[1], batch),
        ).fetchall()
        sought = False
        for row in rows:
            action = builder.offer(row[3], _upload(row))
            if isinstance(action, Seek):
                position = (action.after, SENTINEL)
                sought = True
                break
            position = (row[3], row[0])
            if builder.is_done:
                break
        if not sought and len(rows) < batch:
            builder.finish()
    next_key = next_upload = ""
    if builder.is_truncated:
        next_key = builder.next_start_after
        if builder.objects and builder.objects[-1].key == next_key:
            next_upload = builder.objects[-1].upload_id
    return UploadsPage(
        uploads=tuple(builder.objects),
        common_prefixes=tuple(builder.common_prefixes),
        is_truncated=builder.is_truncated,
        next_key_marker=next_key,
        next_upload_id_marker=next_upload,
    )


# --- recovery ------------------------------------------------------------------------------


def active_objects_after(
    conn: Conn, bucket_id: str, after_key: str, limit: int
) -> list[tuple[str, str, str, int]]:
    """(key, object_id, location_ref, file size) of active records, in key order, for
    recovery (the file of an encrypted object is larger than the object)."""
    rows = conn.execute(
        "SELECT key, object_id, location_ref, size, attrs_json, part_sizes_json FROM objects "
        "WHERE bucket_id = ? AND key > ? AND state = 'active' ORDER BY key LIMIT ?",
        (bucket_id, after_key, limit),
    ).fetchall()
    return [(r[0], r[1], r[2], _file_size(r[3], r[4], r[5])) for r in rows]


def noncurrent_versions_after(
    conn: Conn, bucket_id: str, after_seq: int, limit: int
) -> list[tuple[int, str, str, str, int]]:
    """(seq, key, object_id, location_ref, file size) of active noncurrent versions, in
    ``seq`` order, for recovery (an encrypted version's file is larger than the object)."""
    rows = conn.execute(
        "SELECT seq, key, object_id, location_ref, size, attrs_json, part_sizes_json "
        "FROM object_versions "
        "WHERE bucket_id = ? AND seq > ? AND state = 'active' ORDER BY seq LIMIT ?",
        (bucket_id, after_seq, limit),
    ).fetchall()
    return [(r[0], r[1], r[2], r[3], _file_size(r[4], r[5], r[6])) for r in rows]


def rebuild_counters(conn: Conn) -> int:
    """Recompute every bucket's object_count / total_bytes from its active records; returns
    the number of buckets whose counters were wrong."""
    rows = conn.execute(
        "SELECT b.bucket_id, b.object_count, b.total_bytes, COUNT(o.key), "
        "COALESCE(SUM(o.size), 0) FROM buckets b LEFT JOIN objects o "
        "ON o.bucket_id = b.bucket_id AND o.state = 'active' GROUP BY b.bucket_id"
    ).fetchall()
    fixed = 0
    for bucket_id, count, total, real_count, real_total in rows:
        if (count, total) != (real_count, real_total):
            conn.execute(
                "UPDATE buckets SET object_count = ?, total_bytes = ? WHERE bucket_id = ?",
                (real_count, real_total, bucket_id),
            )
            fixed += 1
    return fixed


def upload_part_refs(conn: Conn, upload_id: str) -> list[tuple[int, str]]:
    rows = conn.execute(
        "SELECT part_number, location_ref FROM parts WHERE upload_id = ? ORDER BY part_number",
        (upload_id,),
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


def delete_parts(conn: Conn, upload_id: str, part_numbers: Sequence[int]) -> None:
    for number in part_numbers:
        conn.execute(
            "DELETE FROM parts WHERE upload_id = ? AND part_number = ?", (upload_id, number)
        )


def uploads_after(conn: Conn, after_upload_id: str, limit: int) -> list[str]:
    rows = conn.execute(
        "SELECT upload_id FROM uploads WHERE upload_id > ? ORDER BY upload_id LIMIT ?",
        (after_upload_id, limit),
    ).fetchall()
    return [r[0] for r in rows]


# --- scrubbing, GC and quarantine administration -------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ScrubEntry:
    """One record the scrubber visits (records of every state count towards the slice)."""

    bucket_id: str
    key: str
    object_id: str
    state: str
    size: int  # of the file: an encrypted object's file is larger than the object
    sha256_hex: str
    location_ref: str
    # A noncurrent version's ``seq`` (0: the key's current record): the scrubber keeps a
    # cursor of its own for those (``version_cursor_name``).
    version_seq: int = 0


def version_cursor_name(bucket_id: str) -> str:
    """The scrub cursor row of a bucket's noncurrent versions (a ``seq``, as text)."""
    return bucket_id + "/versions"


def _file_size(size: int, attrs_json: str, part_sizes_json: str) -> int:
    """The bytes a record's file holds: more than its size when it is encrypted."""
    if '"encryption"' not in attrs_json:
        return size
    encryption = decode_attributes("", attrs_json).encryption
    part_sizes = tuple(json.loads(part_sizes_json)) if part_sizes_json else ()
    return file_size_of(size, part_sizes, encryption)


def _scrub_entries(
    conn: Conn, bucket_id: str, after_key: str, before_key: str | None, limit: int
) -> list[ScrubEntry]:
    sql = (
        "SELECT key, object_id, state, size, sha256, location_ref, attrs_json, part_sizes_json "
        "FROM objects WHERE bucket_id = ? AND state != 'marker' AND key > ?"
    )
    params: list[Any] = [bucket_id, after_key]
    if before_key is not None:
        sql += " AND key <= ?"
        params.append(before_key)
    sql += " ORDER BY key LIMIT ?"
    params.append(limit)
    return [
        ScrubEntry(
            bucket_id=bucket_id,
            key=r[0],
            object_id=r[1],
            state=r[2],
            size=_file_size(r[3], r[6], r[7]),
            sha256_hex=r[4],
            location_ref=r[5],
        )
        for r in conn.execute(sql, params).fetchall()
    ]


def scrub_slice(
    conn: Conn, bucket_id: str, sample_rate: float, max_per_run: int
) -> tuple[list[ScrubEntry], bool]:
    """The next slice of a bucket's key space after its cursor, wrapping to the start.

    The slice holds ceil(records × sample_rate) records (at least one, at most max_per_run and
    never more than the bucket holds), so with an uncapped slice every record is visited within
    ceil(1 / sample_rate) passes. Returns (entries, wrapped): ``wrapped`` is True when the slice
    reached the end of the key space in this pass.
    """
    entries, wrapped = _current_slice(conn, bucket_id, sample_rate, max_per_run)
    entries.extend(_noncurrent_slice(conn, bucket_id, sample_rate, max_per_run))
    return entries, wrapped


def _slice_size(total: int, sample_rate: float, max_per_run: int) -> int:
    wanted = max(1, math.ceil(total * max(0.0, min(sample_rate, 1.0))))
    return min(wanted, max(1, max_per_run), total)


def _current_slice(
    conn: Conn, bucket_id: str, sample_rate: float, max_per_run: int
) -> tuple[list[ScrubEntry], bool]:
    (total,) = conn.execute(
        "SELECT COUNT(*) FROM objects WHERE bucket_id = ? AND state != 'marker'", (bucket_id,)
    ).fetchone()
    if total == 0:
        return [], True
    row = conn.execute(
        "SELECT cursor FROM scrub_cursors WHERE bucket_id = ?", (bucket_id,)
    ).fetchone()
    cursor = row[0] if row is not None else ""
    wanted = _slice_size(total, sample_rate, max_per_run)
    entries = _scrub_entries(conn, bucket_id, cursor, None, wanted)
    wrapped = False
    if len(entries) < wanted:
        wrapped = True
        if cursor:
            entries.extend(_scrub_entries(conn, bucket_id, "", cursor, wanted - len(entries)))
    return entries, wrapped


def _noncurrent_slice(
    conn: Conn, bucket_id: str, sample_rate: float, max_per_run: int
) -> list[ScrubEntry]:
    """The same share of the bucket's noncurrent versions (their bytes are kept as long as the
    current ones'), in ``seq`` order after their own cursor, wrapping to the first."""
    (total,) = conn.execute(
        "SELECT COUNT(*) FROM object_versions WHERE bucket_id = ? AND state = 'active'",
        (bucket_id,),
    ).fetchone()
    if total == 0:
        return []
    cursor = int(get_scrub_cursor(conn, version_cursor_name(bucket_id)) or 0)
    wanted = _slice_size(total, sample_rate, max_per_run)
    sql = (
        "SELECT key, object_id, state, size, sha256, location_ref, seq, attrs_json, "
        "part_sizes_json FROM object_versions "
        "WHERE bucket_id = ? AND seq > ? AND seq <= ? AND state = 'active' ORDER BY seq LIMIT ?"
    )
    rows = conn.execute(sql, (bucket_id, cursor, 2**62, wanted)).fetchall()
    if len(rows) < wanted and cursor:
        rows += conn.execute(sql, (bucket_id, 0, cursor, wanted - len(rows))).fetchall()
    return [
        ScrubEntry(
            bucket_id=bucket_id,
            key=r[0],
            object_id=r[1],
            state=r[2],
            size=_file_size(r[3], r[7], r[8]),
            sha256_hex=r[4],
            location_ref=r[5],
            version_seq=r[6],
        )
        for r in rows
    ]


def set_scrub_cursor(conn: Conn, bucket_id: str, cursor: str, now: float) -> None:
    conn.execute(
        "INSERT INTO scrub_cursors (bucket_id, cursor, updated_at) VALUES (?, ?, ?) "
        "ON CONFLICT (bucket_id) DO UPDATE SET cursor = excluded.cursor, "
        "updated_at = excluded.updated_at",
        (bucket_id, cursor, now),
    )


def get_scrub_cursor(conn: Conn, bucket_id: str) -> str:
    row = conn.execute(
        "SELECT cursor FROM scrub_cursors WHERE bucket_id = ?", (bucket_id,)
    ).fetchone()
    return "" if row is None else str(row[0])


def find_quarantined(conn: Conn, bucket_id: str, key: str) -> ObjectInfo | None:
    info = find_object(conn, bucket_id, key)
    if info is None or info.state != STATE_QUARANTINED:
        return None
    return info


def restore_quarantined(conn: Conn, bucket_id: str, key: str, object_id: str, now: float) -> bool:
    """Make a quarantined record active again (the same version only); counters follow."""
    current = find_object(conn, bucket_id, key)
    if current is None or current.state != STATE_QUARANTINED or current.object_id != object_id:
        return False
    conn.execute(
        "UPDATE objects SET state = ?, reason = '', updated_at = ? WHERE bucket_id = ? AND key = ?",
        (STATE_ACTIVE, now, bucket_id, key),
    )
    _adjust_counters(conn, bucket_id, 1, current.size)
    return True


def delete_quarantined(conn: Conn, bucket_id: str, key: str, now: float) -> ObjectInfo | None:
    """Delete a quarantined record; counters already exclude it, so they stay as they are.
    A version under Object Lock is AccessDenied even quarantined: WORM storage keeps what it
    promised to keep, and revalidation may yet find its bytes good (see ``_check_purge``)."""
    current = find_quarantined(conn, bucket_id, key)
    if current is None:
        return None
    _check_purge(current, now)
    conn.execute("DELETE FROM objects WHERE bucket_id = ? AND key = ?", (bucket_id, key))
    _promote_newest(conn, bucket_id, key)  # versioned: the previous version is current again
    return current


def find_object_by_bucket_id(conn: Conn, bucket_id: str, key: str) -> ObjectInfo:
    """The record in any state; NoSuchBucket / NoSuchKey."""
    get_bucket_by_id(conn, bucket_id)
    info = find_object(conn, bucket_id, key)
    if info is None:
        raise NoSuchKey(key=key, resource=bucket_id)
    return info


def _check_purge(info: ObjectInfo, now: float) -> None:
    """Admin purges obey Object Lock like S3 clients do, with no override: a legal hold or a
    retention in force (GOVERNANCE too: the admin API has no bypass) refuses the purge.
    An operator who must remove such a version lifts the legal hold or waits out (or, for
    GOVERNANCE, bypasses through the S3 API with s3:BypassGovernanceRetention) first."""
    if objectlock.is_locked(info.attributes, now):
        raise AccessDenied(
            objectlock.LOCKED_MESSAGE, bucket=info.bucket, key=info.key, reason="object lock"
        )


def delete_object_any_state(conn: Conn, bucket_id: str, key: str, now: float) -> ObjectInfo:
    """Delete a record whatever its state (admin purge); counters follow an active one.
    AccessDenied for a version under Object Lock (``_check_purge``)."""
    info = find_object_by_bucket_id(conn, bucket_id, key)
    _check_purge(info, now)
    conn.execute("DELETE FROM objects WHERE bucket_id = ? AND key = ?", (bucket_id, key))
    if info.state == STATE_ACTIVE:
        _adjust_counters(conn, bucket_id, -1, -info.size)
    _promote_newest(conn, bucket_id, key)  # versioned: the previous version is current again
    return info


def expired_uploads(conn: Conn, created_before: float, limit: int) -> list[str]:
    rows = conn.execute(
        "SELECT upload_id FROM uploads WHERE created_at < ? ORDER BY created_at, upload_id LIMIT ?",
        (created_before, limit),
    ).fetchall()
    return [r[0] for r in rows]


def delete_upload_by_id(conn: Conn, upload_id: str, created_before: float) -> bool:
    """Delete an upload and its parts if it still exists and is still expired."""
    row = conn.execute(
        "SELECT 1 FROM uploads WHERE upload_id = ? AND created_at < ?",
        (upload_id, created_before),
    ).fetchone()
    if row is None:
        return False
    conn.execute("DELETE FROM parts WHERE upload_id = ?", (upload_id,))
    conn.execute("DELETE FROM uploads WHERE upload_id = ?", (upload_id,))
    return True


def _present(conn: Conn, query: str, ids: Sequence[str]) -> set[str]:
    """The ids among ``ids`` that ``query`` (ending in ``IN``) finds, 500 bound values a time
    (SQLite's default limit on host parameters is 999)."""
    found: set[str] = set()
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        marks = ", ".join("?" for _ in chunk)
        found.update(r[0] for r in conn.execute(f"{query} ({marks})", chunk).fetchall())
    return found


def active_object_ids(conn: Conn, object_ids: Sequence[str]) -> set[str]:
    """The ids among ``object_ids`` whose files are live: active current versions and every
    noncurrent version (their bytes are kept until the version is deleted or expires)."""
    return _present(
        conn, "SELECT object_id FROM objects WHERE state = 'active' AND object_id IN", object_ids
    ) | _present(
        conn,
        "SELECT object_id FROM object_versions WHERE state = 'active' AND object_id IN",
        object_ids,
    )


def existing_upload_ids(conn: Conn, upload_ids: Sequence[str]) -> set[str]:
    return _present(conn, "SELECT upload_id FROM uploads WHERE upload_id IN", upload_ids)


def existing_bucket_ids(conn: Conn, bucket_ids: Sequence[str]) -> set[str]:
    return _present(conn, "SELECT bucket_id FROM buckets WHERE bucket_id IN", bucket_ids)


# --- pack files (jay.storage.packs) ----------------------------------------------------------


def pack_references(conn: Conn) -> dict[str, int]:
    """How many records reference each pack that has a row."""
    return {name: live for name, live in conn.execute("SELECT name, live FROM packs")}


def forget_packs(conn: Conn, names: Sequence[str]) -> None:
    """Drop the rows of packs that were removed (only ones no record references)."""
    conn.executemany("DELETE FROM packs WHERE name = ? AND live <= 0", [(n,) for n in names])
