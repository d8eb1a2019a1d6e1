"""Bucket CORS configurations: parse, validate, store, render, and match requests. Pure.

A configuration is a list of rules (``PutBucketCors``). A request from a browser carries an
``Origin``; the first rule whose ``AllowedOrigin`` patterns match that origin, whose
``AllowedMethod`` list holds the method (for a preflight, the ``Access-Control-Request-Method``),
and — for a preflight — whose ``AllowedHeader`` patterns cover every header named in
``Access-Control-Request-Headers`` decides the ``Access-Control-*`` response headers. Origins and
headers may hold one ``*`` wildcard each (S3's rule); header names compare case-insensitively,
origins exactly.

Stored as canonical JSON (``to_json``) on the bucket record (``BucketInfo.config("cors")``), so
a request needs no query; ``rules_of`` keeps the decoded rules of recent configurations.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from xml.etree.ElementTree import Element

from jay.errors import InvalidRequest, MalformedXML
from jay.xmlsafe import local_name, parse_root

# S3's limits: a configuration is at most 64 KB of XML and 100 rules.
MAX_CONFIGURATION_BYTES = 64 * 1024
MAX_RULES = 100
MAX_ID_LENGTH = 255
ALLOWED_METHODS = ("GET", "PUT", "POST", "DELETE", "HEAD")

_NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"
_CONTROL = re.compile("[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class CorsRule:
    allowed_origins: tuple[str, ...]
    allowed_methods: tuple[str, ...]
    allowed_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age_seconds: int | None = None
    rule_id: str = ""

    def allows_origin(self, origin: str) -> bool:
        return any(_pattern(p).fullmatch(origin) is not None for p in self.allowed_origins)

    def allows_headers(self, names: Iterable[str]) -> bool:
        patterns = [_pattern(p.lower()) for p in self.allowed_headers]
        return all(any(p.fullmatch(name.lower()) for p in patterns) for name in names)


def _pattern(text: str) -> re.Pattern[str]:
    cached = _PATTERNS.get(text)
    if cached is None:
        if len(_PATTERNS) >= 1024:
            _PATTERNS.clear()
        cached = _PATTERNS[text] = re.compile(
            ".*".join(re.escape(part) for part in text.split("*")), re.DOTALL
        )
    return cached


_PATTERNS: dict[str, re.Pattern[str]] = {}


# --- the request document --------------------------------------------------------------------


def parse_configuration(body: bytes) -> list[CorsRule]:
    """``CORSConfiguration`` XML → its rules; MalformedXML or InvalidRequest as S3 answers."""
    root = parse_root(body, "CORSConfiguration", MAX_CONFIGURATION_BYTES)
    rules: list[CorsRule] = []
    for element in root:
        name = local_name(element.tag)
        if not name:
            continue
        if name != "CORSRule":
            raise MalformedXML()
        rules.append(_parse_rule(element))
    if not rules:
        raise MalformedXML()
    if len(rules) > MAX_RULES:
        raise InvalidRequest(f"A CORS configuration can have at most {MAX_RULES} rules")
    return rules


def _parse_rule(element: Element) -> CorsRule:
    lists: dict[str, list[str]] = {
        "AllowedOrigin": [],
        "AllowedMethod": [],
        "AllowedHeader": [],
        "ExposeHeader": [],
    }
    rule_id = ""
    max_age: int | None = None
    seen_single: set[str] = set()
    for child in element:
        name = local_name(child.tag)
        if not name:
            continue
        text = (child.text or "").strip()
        if _CONTROL.search(text):
            # These values become response header values: no line breaks or controls.
            raise InvalidRequest(f"The {name} of a CORS rule holds a control character")
        if name in lists:
            lists[name].append(text)
        elif name in ("ID", "MaxAgeSeconds"):
            if name in seen_single:
                raise MalformedXML()
            seen_single.add(name)
            if name == "ID":
                if len(text) > MAX_ID_LENGTH:
                    raise InvalidRequest(f"The ID of a CORS rule can be at most {MAX_ID_LENGTH}")
                rule_id = text
            else:
                if not text.isdigit():
                    raise MalformedXML()
                max_age = int(text)
        else:
            raise MalformedXML()
    origins, methods = lists["AllowedOrigin"], lists["AllowedMethod"]
    if not origins or not methods:
        raise MalformedXML()
    for method in methods:
        if method not in ALLOWED_METHODS:
            raise InvalidRequest(
                f"Found unsupported HTTP method in CORS config. Unsupported method is {method}"
            )
    for origin in origins:
        if origin.count("*") > 1:
            raise InvalidRequest(f'AllowedOrigin "{origin}" can not have more than one wildcard.')
    for header in lists["AllowedHeader"]:
        if header.count("*") > 1:
            raise InvalidRequest(f'AllowedHeader "{header}" can not have more than one wildcard.')
    return CorsRule(
        allowed_origins=tuple(origins),
        allowed_methods=tuple(methods),
        allowed_headers=tuple(lists["AllowedHeader"]),
        expose_headers=tuple(lists["ExposeHeader"]),
        max_age_seconds=max_age,
        rule_id=rule_id,
    )


# --- storage and rendering -------------------------------------------------------------------


def to_json(rules: Sequence[CorsRule]) -> str:
    return json.dumps(
        [
            {
                "id": r.rule_id,
                "origins": list(r.allowed_origins),
                "methods": list(r.allowed_methods),
                "headers": list(r.allowed_headers),
                "expose": list(r.expose_headers),
                "max_age": r.max_age_seconds,
            }
            for r in rules
        ],
        separators=(",", ":"),
    )


def from_json(text: str) -> tuple[CorsRule, ...]:
    return tuple(
        CorsRule(
            allowed_origins=tuple(r["origins"]),
            allowed_methods=tuple(r["methods"]),
            allowed_headers=tuple(r["headers"]),
            expose_headers=tuple(r["expose"]),
            max_age_seconds=r["max_age"],
            rule_id=r["id"],
        )
        for r in json.loads(text)
    )


_DECODED: dict[str, tuple[CorsRule, ...]] = {}


def rules_of(stored: str) -> tuple[CorsRule, ...]:
    """``from_json`` with the decoded rules of recent configurations kept (the stored text is
    what the cached bucket record holds, so a hit costs one dict lookup)."""
    rules = _DECODED.get(stored)
    if rules is None:
        if len(_DECODED) >= 256:
            _DECODED.clear()
        rules = _DECODED[stored] = from_json(stored)
    return rules


def _escape(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


def render_configuration(rules: Sequence[CorsRule]) -> bytes:
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n',
        f'<CORSConfiguration xmlns="{_NAMESPACE}">',
    ]
    for rule in rules:
        parts.append("<CORSRule>")
        if rule.rule_id:
            parts.append(f"<ID>{_escape(rule.rule_id)}</ID>")
        parts.extend(f"<AllowedHeader>{_escape(h)}</AllowedHeader>" for h in rule.allowed_headers)
        parts.extend(f"<AllowedMethod>{m}</AllowedMethod>" for m in rule.allowed_methods)
        parts.extend(f"<AllowedOrigin>{_escape(o)}</AllowedOrigin>" for o in rule.allowed_origins)
        parts.extend(f"<ExposeHeader>{_escape(h)}</ExposeHeader>" for h in rule.expose_headers)
        if rule.max_age_seconds is not None:
            parts.append(f"<MaxAgeSeconds>{rule.max_age_seconds}</MaxAgeSeconds>")
        parts.append("</CORSRule>")
    parts.append("</CORSConfiguration>")
    return "".join(parts).encode("utf-8")


# --- matching requests -----------------------------------------------------------------------


def requested_headers(value: str) -> list[str]:
    """The names in an ``Access-Control-Request-Headers`` value."""
    return [name.strip() for name in value.split(",") if name.strip()]


def find_rule(
    rules: Iterable[CorsRule], origin: str, method: str, headers: Sequence[str] = ()
) -> CorsRule | None:
    """The first rule that allows ``origin`` to use ``method`` sending ``headers``."""
    for rule in rules:
        if (
            method in rule.allowed_methods
            and rule.allows_origin(origin)
            and (not headers or rule.allows_headers(headers))
        ):
            return rule
    return None


def response_headers(
    rule: CorsRule, origin: str, *, preflight: bool, request_headers: Sequence[str] = ()
) -> list[tuple[bytes, bytes]]:
    """The ``Access-Control-*`` headers for a request ``rule`` allows. A rule open to every
    origin (``*``) answers ``*`` and never allows credentials; otherwise the origin itself is
    echoed with ``Access-Control-Allow-Credentials: true``, as S3 does."""
    wildcard = "*" in rule.allowed_origins
    out = [
        (b"Access-Control-Allow-Origin", b"*" if wildcard else origin.encode("utf-8", "replace")),
        (b"Access-Control-Allow-Methods", ", ".join(rule.allowed_methods).encode()),
    ]
    if not wildcard:
        out.append((b"Access-Control-Allow-Credentials", b"true"))
    if preflight and request_headers:
        out.append(
            (
                b"Access-Control-Allow-Headers",
                ", ".join(request_headers).encode("latin-1", "replace"),
            )
        )
    if rule.expose_headers:
        out.append(
            (
                b"Access-Control-Expose-Headers",
                ", ".join(rule.expose_headers).encode("latin-1", "replace"),
            )
        )
    if rule.max_age_seconds is not None:
        out.append((b"Access-Control-Max-Age", str(rule.max_age_seconds).encode()))
    out.append((b"Vary", b"Origin, Access-Control-Request-Headers, Access-Control-Request-Method"))
    return out
