"""S3 Object Lock (WORM) rules: a bucket's lock configuration and what a version's retention
and legal hold allow. Pure: values in, values or domain exceptions out; the caller passes the
time and runs these inside the write transaction that acts on the answer.

A version's lock state lives in its attributes (``ObjectAttributes.lock_mode``, ``lock_until``,
``legal_hold``), so it moves with the version between ``objects`` and ``object_versions`` and
HEAD/GET read it from the record they already have. The bucket's configuration is the
``BUCKET_CONFIG_OBJECT_LOCK`` entry, cached with the bucket record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

from jay.errors import AccessDenied, InvalidArgument, InvalidRequest
from jay.storage.api import ObjectAttributes

GOVERNANCE = "GOVERNANCE"
COMPLIANCE = "COMPLIANCE"
MODES = (GOVERNANCE, COMPLIANCE)
LEGAL_HOLD_ON = "ON"
LEGAL_HOLD_OFF = "OFF"
LEGAL_HOLD_STATUSES = (LEGAL_HOLD_ON, LEGAL_HOLD_OFF)

DAY_SECONDS = 86_400
# S3 counts a default retention of Years as 365 days each.
YEAR_DAYS = 365
# S3's limits on a default retention period.
MAX_DAYS = 36_500
MAX_YEARS = 100

# AWS's message when a lock forbids a delete or a retention change.
LOCKED_MESSAGE = "Access Denied because object protected by object lock."
NOT_ENABLED_MESSAGE = "Bucket is missing Object Lock Configuration"


@dataclass(frozen=True, slots=True)
class LockConfiguration:
    """A bucket's Object Lock configuration: enabled, with an optional default retention
    (``mode`` with exactly one of ``days`` / ``years``)."""

    mode: str | None = None
    days: int | None = None
    years: int | None = None

    @property
    def has_default_retention(self) -> bool:
        return self.mode is not None

    def default_until(self, now: float) -> float | None:
        """When a version written at ``now`` stops being retained by default; None without a
        default rule."""
        if self.mode is None:
            return None
        days = self.days if self.days is not None else (self.years or 0) * YEAR_DAYS
        return now + days * DAY_SECONDS


ENABLED_ONLY = LockConfiguration()


def encode_configuration(config: LockConfiguration) -> str:
    doc: dict[str, object] = {"enabled": True}
    if config.mode is not None:
        doc["mode"] = config.mode
        if config.days is not None:
            doc["days"] = config.days
        if config.years is not None:
            doc["years"] = config.years
    return json.dumps(doc, sort_keys=True)


def decode_configuration(text: str) -> LockConfiguration:
    doc = json.loads(text)
    return LockConfiguration(mode=doc.get("mode"), days=doc.get("days"), years=doc.get("years"))


def has_lock(attributes: ObjectAttributes) -> bool:
    """The attributes ask for a retention or a legal hold (set or explicitly OFF)."""
    return attributes.lock_mode is not None or attributes.legal_hold is not None


def without_lock(attributes: ObjectAttributes) -> ObjectAttributes:
    """The attributes with no lock state (a copy never inherits its source's lock)."""
    if not has_lock(attributes) and attributes.lock_until is None:
        return attributes
    return replace(attributes, lock_mode=None, lock_until=None, legal_hold=None)


def with_default(
    attributes: ObjectAttributes, config: LockConfiguration | None, now: float
) -> ObjectAttributes:
    """A new version's attributes: an explicit retention is kept, else the bucket's default
    retention applies (S3: "objects placed in the bucket" get it when they ask for none)."""
    if config is None or attributes.lock_mode is not None or config.mode is None:
        return attributes
    return replace(attributes, lock_mode=config.mode, lock_until=config.default_until(now))


def is_retained(attributes: ObjectAttributes, now: float) -> bool:
    return (
        attributes.lock_mode is not None
        and attributes.lock_until is not None
        and attributes.lock_until > now
    )


def is_locked(attributes: ObjectAttributes, now: float) -> bool:
    """Protected from permanent deletion without a bypass: a legal hold, or a retention period
    that has not passed."""
    return attributes.legal_hold == LEGAL_HOLD_ON or is_retained(attributes, now)


def check_delete(
    attributes: ObjectAttributes, now: float, *, bypass_governance: bool, bucket: str, key: str
) -> None:
    """AccessDenied unless the version may go for good: no legal hold, and no retention in
    force other than GOVERNANCE with the bypass asked for (and allowed by the caller)."""
    if attributes.legal_hold == LEGAL_HOLD_ON:
        raise AccessDenied(LOCKED_MESSAGE, bucket=bucket, key=key, reason="legal hold")
    if not is_retained(attributes, now):
        return
    if attributes.lock_mode == GOVERNANCE and bypass_governance:
        return
    raise AccessDenied(LOCKED_MESSAGE, bucket=bucket, key=key, reason="retention")


def check_retention_change(
    attributes: ObjectAttributes,
    mode: str | None,
    until: float | None,
    now: float,
    *,
    bypass_governance: bool,
    bucket: str,
    key: str,
) -> None:
    """May a version's retention become (``mode``, ``until``)? (None, None) removes it.

    While a retention is in force: COMPLIANCE only ever extends (same mode, a date no
    earlier); GOVERNANCE extends freely and anything else (shorter, removed, a change of mode)
    needs the bypass. A retention that has passed protects nothing and may be replaced."""
    if until is not None and until <= now:
        raise InvalidArgument("The retain until date must be in the future!")
    if not is_retained(attributes, now):
        return
    assert attributes.lock_until is not None
    is_extension = (
        mode == attributes.lock_mode and until is not None and (until >= attributes.lock_until)
    )
    if is_extension:
        return
    if attributes.lock_mode == GOVERNANCE and bypass_governance:
        return
    raise AccessDenied(LOCKED_MESSAGE, bucket=bucket, key=key, reason="retention")


def check_new_version(attributes: ObjectAttributes, config: LockConfiguration | None) -> None:
    """Lock state on a new version needs a bucket with Object Lock. (A retain-until date is
    checked when the request asks for it: a multipart upload completed later keeps it.)"""
    if has_lock(attributes) and config is None:
        raise InvalidRequest(NOT_ENABLED_MESSAGE)
