"""S3 bucket lifecycle configuration XML: parsing with validation, and rendering. Pure.

``parse_lifecycle_configuration`` turns a PutBucketLifecycleConfiguration body into rules
(``jay.storage.lifecycle``), with S3's error codes: a document that does not fit the schema
(unknown or repeated elements, a Status other than ``Enabled``/``Disabled``, a filter with two
conditions outside ``And``, a rule with both ``Prefix`` and ``Filter`` or neither) is
``MalformedXML``; values out of range are ``InvalidArgument`` with S3's messages; combinations S3
refuses are ``InvalidRequest``. ``Transition`` actions move objects to another storage class,
which jay (one storage class) cannot do: they are checked like the rest and then refused with
``NotImplemented`` rather than stored and silently ignored. ``NoncurrentVersionExpiration``
and ``ExpiredObjectDeleteMarker`` act on versioned buckets (``jay.maintenance.lifecycle``);
``NoncurrentVersionTransition`` (a storage class again) is stored and rendered without effect.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from xml.etree.ElementTree import Element

from jay.errors import InvalidArgument, InvalidRequest, MalformedXML, NotImplementedOperation
from jay.s3.xml import _document, _el, format_timestamp
from jay.storage.lifecycle import (
    FILTER_AND,
    FILTER_EMPTY,
    FILTER_LEGACY_PREFIX,
    FILTER_PREFIX,
    FILTER_SIZE_GREATER,
    FILTER_SIZE_LESS,
    FILTER_TAG,
    SECONDS_PER_DAY,
    STATUS_DISABLED,
    STATUS_ENABLED,
    LifecycleRule,
    NoncurrentVersionExpiration,
    NoncurrentVersionTransition,
    RuleFilter,
)
from jay.xmlsafe import local_name, parse_root

# S3's limits (PutBucketLifecycleConfiguration).
MAX_RULES = 1000
MAX_RULE_ID_CHARS = 255
MAX_PREFIX_BYTES = 1024  # a key prefix is at most a key
MAX_TAG_KEY_CHARS = 128
MAX_TAG_VALUE_CHARS = 256
# 1000 rules with long IDs, 1 KiB prefixes and a few tags each stay well under this.
MAX_LIFECYCLE_BODY = 4 * 1024 * 1024

_INTEGER = re.compile(r"[+-]?[0-9]{1,19}")
# The schema's types: day counts are Integer (32 bits), object sizes Long (64 bits).
MAX_INTEGER = 2**31 - 1
MAX_LONG = 2**63 - 1

_RULE_ELEMENTS = frozenset(
    {
        "ID",
        "Status",
        "Prefix",
        "Filter",
        "Expiration",
        "Transition",
        "NoncurrentVersionTransition",
        "NoncurrentVersionExpiration",
        "AbortIncompleteMultipartUpload",
    }
)
_FILTER_ELEMENTS = frozenset(
    {"Prefix", "Tag", "ObjectSizeGreaterThan", "ObjectSizeLessThan", "And"}
)
_AND_ELEMENTS = frozenset({"Prefix", "Tag", "ObjectSizeGreaterThan", "ObjectSizeLessThan"})
_REPEATABLE = frozenset({"Transition", "NoncurrentVersionTransition", "Tag"})


# --- parsing -----------------------------------------------------------------------------------


def parse_lifecycle_configuration(
    body: bytes, *, new_rule_id: Callable[[], str], max_bytes: int = MAX_LIFECYCLE_BODY
) -> tuple[LifecycleRule, ...]:
    """The rules of a ``<LifecycleConfiguration>`` body, validated as S3 validates them.
    ``new_rule_id`` names a rule that has no ``ID`` (S3 generates one)."""
    root = parse_root(body, "LifecycleConfiguration", max_bytes)
    elements = _named_children(root, frozenset({"Rule"}), repeatable=frozenset({"Rule"}))
    rule_elements = elements.get("Rule", [])
    if not rule_elements:
        raise MalformedXML()
    if len(rule_elements) > MAX_RULES:
        raise InvalidRequest(f"A lifecycle configuration can have at most {MAX_RULES} rules")
    rules: list[LifecycleRule] = []
    seen: set[str] = set()
    for element in rule_elements:
        rule = _parse_rule(element, new_rule_id)
        if rule.rule_id in seen:
            raise InvalidArgument(
                "Rule ID must be unique. Found same ID for more than one rule",
                argument_name="ID",
                argument_value=rule.rule_id,
            )
        seen.add(rule.rule_id)
        rules.append(rule)
    return tuple(rules)


def _named_children(
    element: Element, allowed: frozenset[str], *, repeatable: frozenset[str] = _REPEATABLE
) -> dict[str, list[Element]]:
    """The element's children by local name; an unknown or repeated element is MalformedXML."""
    found: dict[str, list[Element]] = {}
    for child in element:
        name = local_name(child.tag)
        if not name:  # a comment or processing instruction
            continue
        if name not in allowed:
            raise MalformedXML()
        found.setdefault(name, []).append(child)
        if len(found[name]) > 1 and name not in repeatable:
            raise MalformedXML()
    return found


def _only(found: dict[str, list[Element]], name: str) -> Element | None:
    items = found.get(name)
    return items[0] if items else None


def _text_of(element: Element) -> str:
    if len(element):
        raise MalformedXML()  # a value where the schema has text
    return element.text or ""


def _integer(element: Element, maximum: int = MAX_INTEGER) -> int:
    text = _text_of(element).strip()
    if not _INTEGER.fullmatch(text) or int(text) > maximum:
        raise MalformedXML()
    return int(text)


def _parse_rule(element: Element, new_rule_id: Callable[[], str]) -> LifecycleRule:
    found = _named_children(element, _RULE_ELEMENTS)
    id_element = _only(found, "ID")
    rule_id = _text_of(id_element) if id_element is not None else ""
    if len(rule_id) > MAX_RULE_ID_CHARS:
        raise InvalidArgument(
            f"ID length should not exceed allowed limit of {MAX_RULE_ID_CHARS}",
            argument_name="ID",
            argument_value=rule_id,
        )
    if not rule_id:
        rule_id = new_rule_id()

    status_element = _only(found, "Status")
    status = _text_of(status_element) if status_element is not None else ""
    if status not in (STATUS_ENABLED, STATUS_DISABLED):
        raise MalformedXML()

    legacy = _only(found, "Prefix")
    filter_element = _only(found, "Filter")
    if (legacy is None) == (filter_element is None):
        # Exactly one of the deprecated rule-level Prefix and Filter (the schema's choice).
        raise MalformedXML()
    if legacy is not None:
        rule_filter = RuleFilter(form=FILTER_LEGACY_PREFIX, prefix=_prefix(legacy))
    else:
        assert filter_element is not None
        rule_filter = _parse_filter(filter_element)

    days = date = None
    delete_marker = None
    expiration = _only(found, "Expiration")
    if expiration is not None:
        days, date, delete_marker = _parse_expiration(expiration)

    abort_days = None
    abort = _only(found, "AbortIncompleteMultipartUpload")
    if abort is not None:
        abort_days = _parse_abort(abort, rule_filter)

    noncurrent_expiration = None
    noncurrent = _only(found, "NoncurrentVersionExpiration")
    if noncurrent is not None:
        noncurrent_expiration = _parse_noncurrent_expiration(noncurrent)
    noncurrent_transitions = tuple(
        _parse_noncurrent_transition(item) for item in found.get("NoncurrentVersionTransition", [])
    )

    transitions = found.get("Transition", [])
    for transition in transitions:
        _check_transition(transition)

    if (
        expiration is None
        and abort is None
        and noncurrent is None
        and not noncurrent_transitions
        and not transitions
    ):
        raise InvalidRequest("At least one action needs to be specified in a rule")
    if transitions:
        raise NotImplementedOperation(
            "Lifecycle Transition actions are not supported: jay has a single storage class "
            "(STANDARD), so objects cannot move to another one"
        )
    return LifecycleRule(
        rule_id=rule_id,
        status=status,
        filter=rule_filter,
        expiration_days=days,
        expiration_date=date,
        expired_object_delete_marker=delete_marker,
        abort_days_after_initiation=abort_days,
        noncurrent_expiration=noncurrent_expiration,
        noncurrent_transitions=noncurrent_transitions,
    )


def _prefix(element: Element) -> str:
    prefix = _text_of(element)
    if len(prefix.encode("utf-8", "surrogatepass")) > MAX_PREFIX_BYTES:
        raise InvalidArgument(
            f"The prefix of a lifecycle rule must be at most {MAX_PREFIX_BYTES} bytes",
            argument_name="Prefix",
        )
    return prefix


def _parse_tag(element: Element) -> tuple[str, str]:
    found = _named_children(element, frozenset({"Key", "Value"}))
    key_element, value_element = _only(found, "Key"), _only(found, "Value")
    if key_element is None or value_element is None:
        raise MalformedXML()
    key, value = _text_of(key_element), _text_of(value_element)
    if not key or len(key) > MAX_TAG_KEY_CHARS:
        raise InvalidArgument("The TagKey you have provided is invalid", argument_name="Key")
    if len(value) > MAX_TAG_VALUE_CHARS:
        raise InvalidArgument("The TagValue you have provided is invalid", argument_name="Value")
    return key, value


def _size(element: Element, name: str, minimum: int) -> int:
    value = _integer(element, MAX_LONG)
    if value < minimum:
        raise InvalidArgument(
            f"'{name}' must be an integer of at least {minimum}",
            argument_name=name,
            argument_value=str(value),
        )
    return value


def _parse_filter(element: Element) -> RuleFilter:
    found = _named_children(element, _FILTER_ELEMENTS, repeatable=frozenset())
    if len(found) > 1:
        # Two conditions must be combined with And.
        raise MalformedXML()
    if not found:
        return RuleFilter(form=FILTER_EMPTY)
    name, (child,) = next(iter(found.items()))
    if name == "Prefix":
        return RuleFilter(form=FILTER_PREFIX, prefix=_prefix(child))
    if name == "Tag":
        return RuleFilter(form=FILTER_TAG, tags=(_parse_tag(child),))
    if name == "ObjectSizeGreaterThan":
        return RuleFilter(form=FILTER_SIZE_GREATER, size_greater_than=_size(child, name, 0))
    if name == "ObjectSizeLessThan":
        return RuleFilter(form=FILTER_SIZE_LESS, size_less_than=_size(child, name, 1))
    return _parse_and(child)


def _parse_and(element: Element) -> RuleFilter:
    found = _named_children(element, _AND_ELEMENTS)
    prefix_element = _only(found, "Prefix")
    tags = tuple(_parse_tag(item) for item in found.get("Tag", []))
    if len({name for name, _ in tags}) != len(tags):
        raise InvalidRequest("Duplicate Tag Keys are not allowed.")
    greater = _only(found, "ObjectSizeGreaterThan")
    less = _only(found, "ObjectSizeLessThan")
    rule_filter = RuleFilter(
        form=FILTER_AND,
        prefix=_prefix(prefix_element) if prefix_element is not None else "",
        tags=tags,
        size_greater_than=_size(greater, "ObjectSizeGreaterThan", 0)
        if greater is not None
        else None,
        size_less_than=_size(less, "ObjectSizeLessThan", 1) if less is not None else None,
    )
    if (
        rule_filter.size_greater_than is not None
        and rule_filter.size_less_than is not None
        and rule_filter.size_greater_than >= rule_filter.size_less_than
    ):
        raise InvalidArgument(
            "ObjectSizeGreaterThan must be less than ObjectSizeLessThan",
            argument_name="ObjectSizeGreaterThan",
        )
    return rule_filter


def _positive_days(element: Element, name: str, action: str) -> int:
    value = _integer(element)
    if value <= 0:
        raise InvalidArgument(
            f"'{name}' for {action} action must be a positive integer",
            argument_name=name,
            argument_value=str(value),
        )
    return value


def _midnight_date(element: Element) -> int:
    """An ISO 8601 timestamp that falls on midnight UTC, as POSIX seconds."""
    text = _text_of(element).strip()
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidArgument(
            "'Date' must be an ISO 8601 date at midnight GMT", argument_name="Date"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = when.timestamp()
    if seconds % SECONDS_PER_DAY != 0:
        raise InvalidArgument(
            "'Date' must be at midnight GMT", argument_name="Date", argument_value=text
        )
    return int(seconds)


def _parse_expiration(element: Element) -> tuple[int | None, int | None, bool | None]:
    """(Days, Date, ExpiredObjectDeleteMarker): exactly one of them."""
    found = _named_children(element, frozenset({"Days", "Date", "ExpiredObjectDeleteMarker"}))
    if len(found) != 1:
        raise MalformedXML()
    days_element = _only(found, "Days")
    if days_element is not None:
        return _positive_days(days_element, "Days", "Expiration"), None, None
    date_element = _only(found, "Date")
    if date_element is not None:
        return None, _midnight_date(date_element), None
    marker = _text_of(found["ExpiredObjectDeleteMarker"][0]).strip().lower()
    if marker not in ("true", "false"):
        raise MalformedXML()
    return None, None, marker == "true"


def _parse_abort(element: Element, rule_filter: RuleFilter) -> int:
    found = _named_children(element, frozenset({"DaysAfterInitiation"}))
    days_element = _only(found, "DaysAfterInitiation")
    if days_element is None:
        raise MalformedXML()
    days = _positive_days(days_element, "DaysAfterInitiation", "AbortIncompleteMultipartUpload")
    # Uploads carry no tags and no size yet: only a prefix can select them.
    if rule_filter.tags:
        raise InvalidRequest("AbortIncompleteMultipartUpload cannot be specified with Tags.")
    if rule_filter.size_greater_than is not None or rule_filter.size_less_than is not None:
        raise InvalidRequest(
            "AbortIncompleteMultipartUpload cannot be specified with an object size filter."
        )
    return days


def _optional_newer(found: dict[str, list[Element]]) -> int | None:
    element = _only(found, "NewerNoncurrentVersions")
    if element is None:
        return None
    return _positive_days(element, "NewerNoncurrentVersions", "NoncurrentVersion")


def _parse_noncurrent_expiration(element: Element) -> NoncurrentVersionExpiration:
    found = _named_children(element, frozenset({"NoncurrentDays", "NewerNoncurrentVersions"}))
    days_element = _only(found, "NoncurrentDays")
    if days_element is None:
        raise MalformedXML()
    return NoncurrentVersionExpiration(
        noncurrent_days=_positive_days(
            days_element, "NoncurrentDays", "NoncurrentVersionExpiration"
        ),
        newer_noncurrent_versions=_optional_newer(found),
    )


def _storage_class(found: dict[str, list[Element]]) -> str:
    element = _only(found, "StorageClass")
    if element is None:
        raise MalformedXML()
    storage_class = _text_of(element).strip()
    if not storage_class:
        raise MalformedXML()
    return storage_class


def _non_negative_days(element: Element, name: str, action: str) -> int:
    value = _integer(element)
    if value < 0:
        raise InvalidArgument(
            f"'{name}' for {action} action must be nonnegative",
            argument_name=name,
            argument_value=str(value),
        )
    return value


def _parse_noncurrent_transition(element: Element) -> NoncurrentVersionTransition:
    found = _named_children(
        element, frozenset({"NoncurrentDays", "StorageClass", "NewerNoncurrentVersions"})
    )
    days_element = _only(found, "NoncurrentDays")
    if days_element is None:
        raise MalformedXML()
    return NoncurrentVersionTransition(
        noncurrent_days=_non_negative_days(
            days_element, "NoncurrentDays", "NoncurrentVersionTransition"
        ),
        storage_class=_storage_class(found),
        newer_noncurrent_versions=_optional_newer(found),
    )


def _check_transition(element: Element) -> None:
    """A Transition's own shape and values (then the rule is refused: see the module doc)."""
    found = _named_children(element, frozenset({"Days", "Date", "StorageClass"}))
    days_element, date_element = _only(found, "Days"), _only(found, "Date")
    if (days_element is None) == (date_element is None):
        raise MalformedXML()
    if days_element is not None:
        _non_negative_days(days_element, "Days", "Transition")
    if date_element is not None:
        _midnight_date(date_element)
    _storage_class(found)


# --- rendering ---------------------------------------------------------------------------------


def render_lifecycle_configuration(rules: tuple[LifecycleRule, ...]) -> bytes:
    """The GetBucketLifecycleConfiguration answer: each rule in the shape it was put."""
    return _document("LifecycleConfiguration", (_render_rule(rule) for rule in rules))


def _render_tag(name: str, value: str) -> str:
    return f"<Tag>{_el('Key', name)}{_el('Value', value)}</Tag>"


def _render_filter(f: RuleFilter) -> str:
    if f.form == FILTER_LEGACY_PREFIX:
        return _el("Prefix", f.prefix)
    if f.form == FILTER_EMPTY:
        return "<Filter></Filter>"
    if f.form == FILTER_PREFIX:
        inner = _el("Prefix", f.prefix)
    elif f.form == FILTER_TAG:
        inner = _render_tag(*f.tags[0])
    elif f.form == FILTER_SIZE_GREATER:
        inner = _el("ObjectSizeGreaterThan", str(f.size_greater_than))
    elif f.form == FILTER_SIZE_LESS:
        inner = _el("ObjectSizeLessThan", str(f.size_less_than))
    else:
        parts = [_el("Prefix", f.prefix)] if f.prefix else []
        parts.extend(_render_tag(name, value) for name, value in f.tags)
        if f.size_greater_than is not None:
            parts.append(_el("ObjectSizeGreaterThan", str(f.size_greater_than)))
        if f.size_less_than is not None:
            parts.append(_el("ObjectSizeLessThan", str(f.size_less_than)))
        inner = "<And>" + "".join(parts) + "</And>"
    return "<Filter>" + inner + "</Filter>"


def _render_rule(rule: LifecycleRule) -> str:
    parts = [_el("ID", rule.rule_id), _render_filter(rule.filter), _el("Status", rule.status)]
    if rule.expiration_days is not None:
        parts.append(f"<Expiration>{_el('Days', str(rule.expiration_days))}</Expiration>")
    elif rule.expiration_date is not None:
        date = format_timestamp(rule.expiration_date)
        parts.append(f"<Expiration>{_el('Date', date)}</Expiration>")
    elif rule.expired_object_delete_marker is not None:
        marker = "true" if rule.expired_object_delete_marker else "false"
        parts.append(f"<Expiration>{_el('ExpiredObjectDeleteMarker', marker)}</Expiration>")
    for t in rule.noncurrent_transitions:
        newer = (
            _el("NewerNoncurrentVersions", str(t.newer_noncurrent_versions))
            if t.newer_noncurrent_versions is not None
            else ""
        )
        parts.append(
            "<NoncurrentVersionTransition>"
            + _el("NoncurrentDays", str(t.noncurrent_days))
            + _el("StorageClass", t.storage_class)
            + newer
            + "</NoncurrentVersionTransition>"
        )
    expiration = rule.noncurrent_expiration
    if expiration is not None:
        newer = (
            _el("NewerNoncurrentVersions", str(expiration.newer_noncurrent_versions))
            if expiration.newer_noncurrent_versions is not None
            else ""
        )
        parts.append(
            "<NoncurrentVersionExpiration>"
            + _el("NoncurrentDays", str(expiration.noncurrent_days))
            + newer
            + "</NoncurrentVersionExpiration>"
        )
    if rule.abort_days_after_initiation is not None:
        parts.append(
            "<AbortIncompleteMultipartUpload>"
            + _el("DaysAfterInitiation", str(rule.abort_days_after_initiation))
            + "</AbortIncompleteMultipartUpload>"
        )
    return "<Rule>" + "".join(parts) + "</Rule>"
