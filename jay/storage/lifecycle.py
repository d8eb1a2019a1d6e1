"""Bucket lifecycle rules: the stored form, rule matching and when an object falls due. Pure.

A bucket's lifecycle configuration is stored as canonical JSON (``encode_rules``) under the
bucket configuration ``lifecycle`` (``BUCKET_CONFIG_LIFECYCLE``). The S3 front end parses and
renders the XML (``jay.s3.lifecycle``); the expiration job (``jay.maintenance.lifecycle``) and
the ``x-amz-expiration`` response header read the rules through ``decode_rules``.

Due dates follow S3's rules: an ``Expiration`` with ``Days`` is due at the object's creation time
plus that many days, rounded up to the next midnight UTC (created 2014-01-15 10:30 with 3 days:
due 2014-01-19 00:00); with ``Date`` every matching object is due from that midnight on. An
``AbortIncompleteMultipartUpload`` is due the same way from the upload's initiation; a
``NoncurrentVersionExpiration`` from when the version stopped being current (the time its
successor was written), except for the ``NewerNoncurrentVersions`` newest noncurrent versions of
a key, which are kept whatever their age. A current version's Last-Modified is its creation time.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

SECONDS_PER_DAY = 86400

STATUS_ENABLED = "Enabled"
STATUS_DISABLED = "Disabled"

# How the rule's filter was written, so GetBucketLifecycleConfiguration answers in the same
# shape it was given (clients compare what they get back with what they put).
FILTER_LEGACY_PREFIX = "legacy"  # <Rule><Prefix>…</Prefix> (deprecated, still accepted)
FILTER_EMPTY = "empty"  # <Filter/>: every object
FILTER_PREFIX = "prefix"  # <Filter><Prefix>…</Prefix></Filter>
FILTER_TAG = "tag"  # <Filter><Tag>…</Tag></Filter>
FILTER_SIZE_GREATER = "size-gt"  # <Filter><ObjectSizeGreaterThan>
FILTER_SIZE_LESS = "size-lt"  # <Filter><ObjectSizeLessThan>
FILTER_AND = "and"  # <Filter><And>…</And></Filter>
FILTER_FORMS = frozenset(
    {
        FILTER_LEGACY_PREFIX,
        FILTER_EMPTY,
        FILTER_PREFIX,
        FILTER_TAG,
        FILTER_SIZE_GREATER,
        FILTER_SIZE_LESS,
        FILTER_AND,
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleFilter:
    """Which objects a rule applies to: every condition given must hold."""

    form: str = FILTER_EMPTY
    prefix: str = ""
    tags: tuple[tuple[str, str], ...] = ()
    size_greater_than: int | None = None  # bytes, exclusive
    size_less_than: int | None = None  # bytes, exclusive

    def matches(self, key: str, size: int, tags: Mapping[str, str]) -> bool:
        if not key.startswith(self.prefix):
            return False
        if self.size_greater_than is not None and not size > self.size_greater_than:
            return False
        if self.size_less_than is not None and not size < self.size_less_than:
            return False
        return all(tags.get(name) == value for name, value in self.tags)

    @property
    def needs_tags(self) -> bool:
        return bool(self.tags)


@dataclass(frozen=True, slots=True, kw_only=True)
class NoncurrentVersionExpiration:
    """Noncurrent versions (and noncurrent delete markers) go ``noncurrent_days`` after they
    stopped being current, beyond the ``newer_noncurrent_versions`` newest of their key."""

    noncurrent_days: int
    newer_noncurrent_versions: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class NoncurrentVersionTransition:
    """Stored and rendered, without effect: jay has one storage class."""

    noncurrent_days: int
    storage_class: str
    newer_noncurrent_versions: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LifecycleRule:
    rule_id: str
    status: str  # STATUS_ENABLED | STATUS_DISABLED
    filter: RuleFilter
    expiration_days: int | None = None
    expiration_date: int | None = None  # POSIX seconds of a midnight UTC
    # ExpiredObjectDeleteMarker: a current delete marker that is the only version left of its
    # key is removed.
    expired_object_delete_marker: bool | None = None
    abort_days_after_initiation: int | None = None
    noncurrent_expiration: NoncurrentVersionExpiration | None = None
    noncurrent_transitions: tuple[NoncurrentVersionTransition, ...] = ()

    @property
    def is_enabled(self) -> bool:
        return self.status == STATUS_ENABLED

    @property
    def expires_objects(self) -> bool:
        return self.expiration_days is not None or self.expiration_date is not None

    def object_due_at(self, created_at: float) -> float | None:
        """When an object this rule matches, created at ``created_at``, expires (None: never)."""
        if self.expiration_days is not None:
            return days_after(created_at, self.expiration_days)
        if self.expiration_date is not None:
            return float(self.expiration_date)
        return None


def days_after(created_at: float, days: int) -> float:
    """``created_at`` plus ``days``, rounded up to the next midnight UTC (S3's rule)."""
    return float((math.floor(created_at / SECONDS_PER_DAY) + days + 1) * SECONDS_PER_DAY)


def object_expiration(
    rules: Sequence[LifecycleRule],
    key: str,
    size: int,
    tags: Mapping[str, str],
    created_at: float,
) -> tuple[float, str] | None:
    """(due time, rule id) of the enabled rule that expires this object first, or None.

    Where several rules match, S3 applies the earliest expiration; on a tie the rule listed
    first is named."""
    best: tuple[float, str] | None = None
    for rule in rules:
        if not rule.is_enabled or not rule.expires_objects:
            continue
        if not rule.filter.matches(key, size, tags):
            continue
        due = rule.object_due_at(created_at)
        if due is not None and (best is None or due < best[0]):
            best = (due, rule.rule_id)
    return best


def noncurrent_expiration(
    rules: Sequence[LifecycleRule],
    key: str,
    size: int,
    tags: Mapping[str, str],
    noncurrent_since: float,
    newer_noncurrent: int,
) -> tuple[float, str] | None:
    """(due time, rule id) when a noncurrent version expires, or None: the earliest of the
    enabled NoncurrentVersionExpiration rules that match it and do not keep it as one of the
    ``NewerNoncurrentVersions`` newest (``newer_noncurrent`` noncurrent versions of the key
    are newer than this one)."""
    best: tuple[float, str] | None = None
    for rule in rules:
        expiration = rule.noncurrent_expiration
        if not rule.is_enabled or expiration is None:
            continue
        kept = expiration.newer_noncurrent_versions
        if kept is not None and newer_noncurrent < kept:
            continue
        if not rule.filter.matches(key, size, tags):
            continue
        due = days_after(noncurrent_since, expiration.noncurrent_days)
        if best is None or due < best[0]:
            best = (due, rule.rule_id)
    return best


def upload_abort_due(
    rules: Sequence[LifecycleRule], key: str, initiated_at: float
) -> tuple[float, str] | None:
    """(due time, rule id) when an incomplete multipart upload of ``key`` is to be aborted."""
    best: tuple[float, str] | None = None
    for rule in rules:
        days = rule.abort_days_after_initiation
        if not rule.is_enabled or days is None or not key.startswith(rule.filter.prefix):
            continue
        due = days_after(initiated_at, days)
        if best is None or due < best[0]:
            best = (due, rule.rule_id)
    return best


# --- the stored form -------------------------------------------------------------------------

_VERSION = 1


def encode_rules(rules: Sequence[LifecycleRule]) -> str:
    """The canonical JSON stored for a bucket (keys sorted, no spaces): equal rules, equal text."""
    return json.dumps(
        {"version": _VERSION, "rules": [_rule_doc(rule) for rule in rules]},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )


def _rule_doc(rule: LifecycleRule) -> dict[str, Any]:
    f = rule.filter
    doc: dict[str, Any] = {
        "id": rule.rule_id,
        "status": rule.status,
        "filter": {
            "form": f.form,
            "prefix": f.prefix,
            "tags": [[name, value] for name, value in f.tags],
            "size_gt": f.size_greater_than,
            "size_lt": f.size_less_than,
        },
        "expiration_days": rule.expiration_days,
        "expiration_date": rule.expiration_date,
        "expired_object_delete_marker": rule.expired_object_delete_marker,
        "abort_days": rule.abort_days_after_initiation,
        "noncurrent_expiration": None,
        "noncurrent_transitions": [
            {
                "days": t.noncurrent_days,
                "storage_class": t.storage_class,
                "newer": t.newer_noncurrent_versions,
            }
            for t in rule.noncurrent_transitions
        ],
    }
    if rule.noncurrent_expiration is not None:
        doc["noncurrent_expiration"] = {
            "days": rule.noncurrent_expiration.noncurrent_days,
            "newer": rule.noncurrent_expiration.newer_noncurrent_versions,
        }
    return doc


def decode_rules(text: str) -> tuple[LifecycleRule, ...]:
    """The rules of a stored configuration. ValueError when the text is not one
    (``encode_rules`` wrote it, so that means a damaged record)."""
    try:
        doc = json.loads(text)
        if doc.get("version") != _VERSION:
            raise ValueError(f"unknown lifecycle configuration version {doc.get('version')!r}")
        return tuple(_rule(item) for item in doc["rules"])
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"damaged lifecycle configuration: {exc!r}") from None


@functools.lru_cache(maxsize=256)
def cached_rules(text: str) -> tuple[LifecycleRule, ...]:
    """``decode_rules`` remembered per stored text, for the read path (the ``x-amz-expiration``
    header): a bucket's configuration changes rarely and is read on every GET of its objects.
    The rules are frozen, so sharing them is safe."""
    return decode_rules(text)


def _rule(doc: Mapping[str, Any]) -> LifecycleRule:
    f = doc["filter"]
    if f["form"] not in FILTER_FORMS:
        raise ValueError(f"unknown filter form {f['form']!r}")
    noncurrent = doc.get("noncurrent_expiration")
    return LifecycleRule(
        rule_id=str(doc["id"]),
        status=str(doc["status"]),
        filter=RuleFilter(
            form=f["form"],
            prefix=str(f["prefix"]),
            tags=tuple((str(name), str(value)) for name, value in f["tags"]),
            size_greater_than=f["size_gt"],
            size_less_than=f["size_lt"],
        ),
        expiration_days=doc["expiration_days"],
        expiration_date=doc["expiration_date"],
        expired_object_delete_marker=doc["expired_object_delete_marker"],
        abort_days_after_initiation=doc["abort_days"],
        noncurrent_expiration=None
        if noncurrent is None
        else NoncurrentVersionExpiration(
            noncurrent_days=noncurrent["days"], newer_noncurrent_versions=noncurrent["newer"]
        ),
        noncurrent_transitions=tuple(
            NoncurrentVersionTransition(
                noncurrent_days=t["days"],
                storage_class=str(t["storage_class"]),
                newer_noncurrent_versions=t["newer"],
            )
            for t in doc["noncurrent_transitions"]
        ),
    )
