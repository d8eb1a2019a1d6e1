"""S3 Object Lock on the wire: the ``x-amz-object-lock-*`` request and response headers, the
``ObjectLockConfiguration``, ``Retention`` and ``LegalHold`` documents. Pure.

Wording and codes are S3's (AWS S3 API reference: PutObjectLockConfiguration, PutObjectRetention,
PutObjectLegalHold, PutObject): a bad document is MalformedXML, a default retention period that
is not a positive number InvalidRetentionPeriod, a bad header InvalidArgument.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from xml.etree.ElementTree import Element

from jay.errors import InvalidArgument, InvalidRequest, InvalidRetentionPeriod, MalformedXML
from jay.s3.xml import S3_NAMESPACE, XML_DECLARATION, format_timestamp
from jay.storage import objectlock as ol
from jay.storage.api import ObjectAttributes
from jay.xmlsafe import first_child, parse_root

MODE_HEADER = "x-amz-object-lock-mode"
UNTIL_HEADER = "x-amz-object-lock-retain-until-date"
LEGAL_HOLD_HEADER = "x-amz-object-lock-legal-hold"
LOCK_HEADERS = frozenset({MODE_HEADER, UNTIL_HEADER, LEGAL_HOLD_HEADER})
BYPASS_HEADER = "x-amz-bypass-governance-retention"
# CreateBucket: create the bucket with Object Lock (and versioning) enabled.
BUCKET_LOCK_HEADER = "x-amz-bucket-object-lock-enabled"

# The documents are a few hundred bytes; 64 KiB leaves room for whitespace and nothing more.
MAX_LOCK_BODY = 64 * 1024

CHECKSUM_REQUIRED_MESSAGE = (
    "Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object requests with "
    "Object Lock parameters"
)
PART_CHECKSUM_MESSAGE = (
    "Content-MD5 OR x-amz-checksum- HTTP header is required for Put Part requests with "
    "Object Lock parameters"
)


def _text(parent: Element, name: str) -> str | None:
    child = first_child(parent, name)
    return None if child is None else (child.text or "").strip()


def parse_timestamp(text: str) -> float | None:
    """An ISO 8601 date and time (``2030-01-01T00:00:00Z``, fractions and offsets allowed;
    UTC without an offset); None when it is not one."""
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


# --- the bucket's configuration --------------------------------------------------------------


def parse_configuration(body: bytes) -> ol.LockConfiguration:
    """PutObjectLockConfiguration's document: ``ObjectLockEnabled`` must be ``Enabled``; a
    ``Rule`` holds a ``DefaultRetention`` with ``Mode`` and exactly one of ``Days``/``Years``."""
    root = parse_root(body, "ObjectLockConfiguration", MAX_LOCK_BODY)
    if _text(root, "ObjectLockEnabled") != "Enabled":
        raise MalformedXML()
    rule = first_child(root, "Rule")
    if rule is None:
        return ol.ENABLED_ONLY
    retention = first_child(rule, "DefaultRetention")
    if retention is None:
        raise MalformedXML()
    mode = _text(retention, "Mode")
    days_text = _text(retention, "Days")
    years_text = _text(retention, "Years")
    if mode not in ol.MODES or (days_text is None) == (years_text is None):
        raise MalformedXML()
    period_text = days_text if days_text is not None else years_text
    assert period_text is not None
    try:
        period = int(period_text)
    except ValueError:
        raise MalformedXML() from None
    if period <= 0:
        raise InvalidRetentionPeriod()
    if days_text is not None:
        if period > ol.MAX_DAYS:
            raise InvalidRetentionPeriod("Default retention period too large.")
        return ol.LockConfiguration(mode=mode, days=period)
    if period > ol.MAX_YEARS:
        raise InvalidRetentionPeriod("Default retention period too large.")
    return ol.LockConfiguration(mode=mode, years=period)


def _document(root: str, body: str) -> bytes:
    return (XML_DECLARATION + f'<{root} xmlns="{S3_NAMESPACE}">{body}</{root}>').encode()


def render_configuration(config: ol.LockConfiguration) -> bytes:
    body = "<ObjectLockEnabled>Enabled</ObjectLockEnabled>"
    if config.mode is not None:
        period = (
            f"<Days>{config.days}</Days>"
            if config.days is not None
            else f"<Years>{config.years}</Years>"
        )
        body += (
            f"<Rule><DefaultRetention><Mode>{config.mode}</Mode>{period}</DefaultRetention></Rule>"
        )
    return _document("ObjectLockConfiguration", body)


# --- a version's retention and legal hold ----------------------------------------------------


def parse_retention(body: bytes) -> tuple[str | None, float | None]:
    """PutObjectRetention's ``Retention``: (mode, retain-until); (None, None) for an empty one,
    which removes the retention (GOVERNANCE with the bypass only)."""
    root = parse_root(body, "Retention", MAX_LOCK_BODY)
    mode = _text(root, "Mode")
    until_text = _text(root, "RetainUntilDate")
    if mode is None and until_text is None:
        return None, None
    if mode not in ol.MODES or until_text is None:
        raise MalformedXML()
    until = parse_timestamp(until_text)
    if until is None:
        raise MalformedXML()
    return mode, until


def render_retention(attributes: ObjectAttributes) -> bytes:
    assert attributes.lock_mode is not None and attributes.lock_until is not None
    return _document(
        "Retention",
        f"<Mode>{attributes.lock_mode}</Mode>"
        f"<RetainUntilDate>{format_timestamp(attributes.lock_until)}</RetainUntilDate>",
    )


def parse_legal_hold(body: bytes) -> str:
    root = parse_root(body, "LegalHold", MAX_LOCK_BODY)
    status = _text(root, "Status")
    if status not in ol.LEGAL_HOLD_STATUSES:
        raise MalformedXML()
    assert status is not None
    return status


def render_legal_hold(status: str) -> bytes:
    return _document("LegalHold", f"<Status>{status}</Status>")


# --- headers ---------------------------------------------------------------------------------


def requested_lock(
    headers: Mapping[str, str], attributes: ObjectAttributes, now: float
) -> ObjectAttributes:
    """``attributes`` with the lock a write's headers ask for (none: unchanged), validated as
    S3 does: mode and date together, the date ISO 8601 and in the future, hold ON or OFF."""
    mode = headers.get(MODE_HEADER)
    until_text = headers.get(UNTIL_HEADER)
    legal_hold = headers.get(LEGAL_HOLD_HEADER)
    if mode is None and until_text is None and legal_hold is None:
        return attributes
    until: float | None = None
    if mode is not None or until_text is not None:
        if mode is None or until_text is None:
            raise InvalidArgument(
                "x-amz-object-lock-retain-until-date and x-amz-object-lock-mode must both be "
                "supplied",
                argument_name=UNTIL_HEADER if until_text is None else MODE_HEADER,
            )
        mode = mode.strip()
        if mode not in ol.MODES:
            raise InvalidArgument(
                "Unknown wormMode directive.", argument_name=MODE_HEADER, argument_value=mode
            )
        until = parse_timestamp(until_text)
        if until is None:
            raise InvalidArgument(
                "The retain until date must be provided in ISO 8601 format",
                argument_name=UNTIL_HEADER,
                argument_value=until_text,
            )
        if until <= now:
            raise InvalidArgument(
                "The retain until date must be in the future!",
                argument_name=UNTIL_HEADER,
                argument_value=until_text,
            )
    if legal_hold is not None:
        legal_hold = legal_hold.strip()
        if legal_hold not in ol.LEGAL_HOLD_STATUSES:
            raise InvalidArgument(
                "Legal Hold must be either of 'ON' or 'OFF'",
                argument_name=LEGAL_HOLD_HEADER,
                argument_value=legal_hold,
            )
    return replace(attributes, lock_mode=mode, lock_until=until, legal_hold=legal_hold)


def response_headers(attributes: ObjectAttributes) -> list[tuple[bytes, bytes]]:
    """HEAD/GET headers for a version's lock state (none when it has none)."""
    headers = []
    if attributes.lock_mode is not None and attributes.lock_until is not None:
        headers.append((MODE_HEADER.encode(), attributes.lock_mode.encode()))
        headers.append((UNTIL_HEADER.encode(), format_timestamp(attributes.lock_until).encode()))
    if attributes.legal_hold is not None:
        headers.append((LEGAL_HOLD_HEADER.encode(), attributes.legal_hold.encode()))
    return headers


def has_integrity_header(headers: Mapping[str, str]) -> bool:
    """Content-MD5 or an x-amz-checksum-* value (in a header, or promised as a trailer)."""
    if "content-md5" in headers:
        return True
    if any(name.startswith("x-amz-checksum-") for name in headers):
        return True
    return "x-amz-checksum-" in headers.get("x-amz-trailer", "").lower()


def require_integrity_header(headers: Mapping[str, str], message: str) -> None:
    if not has_integrity_header(headers):
        raise InvalidRequest(message)


def is_true(value: str | None) -> bool:
    return value is not None and value.strip().lower() == "true"
