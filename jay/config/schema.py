"""The table of every configuration key (JAY_SPEC §5.1 plus jay's additions); no I/O.

One row per key: its YAML dotted name, env var, type, default, validation rule, whether it is a
secret, and where it lands in :class:`jay.config.model.Config`. The server's loader
(``jay.config.loader``) and the ``jay-config`` tool (§4.6) both read this table, so a key is
added in exactly one place. Rows of the §5.1 table come first, in its order, because
``jay-config yaml-to-env`` writes keys in that order.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Literal, TypeAlias
from urllib.parse import urlsplit

from jay.config.model import Config

SettingType: TypeAlias = Literal["str", "int", "float", "bool", "list"]
Value: TypeAlias = str | int | float | bool | tuple[str, ...]
Validator: TypeAlias = Callable[[Value], str | None]
Normalizer: TypeAlias = Callable[[Value], Value]

# admin_token and signing_secret: §5.1 requires ≥ 32 bytes (Go's len() counts UTF-8 bytes).
MIN_SECRET_BYTES = 32
LOG_LEVELS = ("debug", "info", "warn", "error")
LOG_FORMATS = ("text", "json")
# Go's int is 64-bit on every platform upstream ships for; larger YAML/env ints are errors.
INT_MIN = -(2**63)
INT_MAX = 2**63 - 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Setting:
    """One configuration key."""

    name: str  # YAML dotted name: "scrub.interval_hours"
    type: SettingType
    default: Value
    field: str  # dotted attribute path in Config: "scrub.interval_hours", "tls.cert_path"
    validate: Validator | None = None  # returns an error message (never a secret) or None
    normalize: Normalizer | None = None  # canonical form, applied before validation
    is_secret: bool = False  # redacted in logs and error messages
    is_upstream: bool = False  # part of Jay 0.6.2's §5.1 table (jay-config works on these)
    doc: str = ""

    @property
    def env_var(self) -> str:
        return env_var_for(self.name)


def env_var_for(name: str) -> str:
    """``scrub.interval_hours`` → ``JAY_SCRUB_INTERVAL_HOURS`` (§5.1)."""
    return "JAY_" + name.upper().replace(".", "_")


def default_of(field: str) -> Value:
    """The model's default for a dotted field path: the model is the one source of defaults."""
    value: object = Config()
    for part in field.split("."):
        value = getattr(value, part)
    assert isinstance(value, str | int | float | bool | tuple)
    return value


# --- canonical text -------------------------------------------------------------------------


def format_value(value: Value) -> str:
    """Canonical text of a value: how env files write it and how conflicts are compared (§5.2)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e16:
            return str(int(value))
        return repr(value)
    if isinstance(value, tuple):
        return ",".join(value)
    return str(value)


def describe(value: Value) -> str:
    """A value quoted for an error message (strings get quotes so "" is visible)."""
    if isinstance(value, str):
        return repr(value)
    return format_value(value)


# --- validation rules -----------------------------------------------------------------------
# Each returns a message saying what is wrong ("must be > 0, got -1") or None. Messages for
# secret keys must not contain the value.


def _non_empty(value: Value) -> str | None:
    return "must not be empty" if value == "" else None


def _address(*, allow_empty: bool) -> Validator:
    """``[host]:port`` as Go's net.Listen takes it: ``:9000``, ``127.0.0.1:9000``, ``[::1]:9000``."""

    def check(value: Value) -> str | None:
        assert isinstance(value, str)
        if value == "":
            return None if allow_empty else "must not be empty (expected [host]:port)"
        host, sep, port = value.rpartition(":")
        if not sep:
            return f"expected [host]:port, got {value!r}"
        if not port.isascii() or not port.isdigit() or not 0 <= int(port) <= 65535:
            return f"port must be a number in 0..65535, got {value!r}"
        if host.startswith("["):
            if not host.endswith("]"):
                return f"unbalanced brackets in {value!r}"
            try:
                ipaddress.IPv6Address(host[1:-1])
            except ValueError:
                return f"not an IPv6 address in brackets: {value!r}"
        elif ":" in host:
            return f"an IPv6 host must be in brackets ([::1]:port), got {value!r}"
        return None

    return check


def _secret_length(value: Value) -> str | None:
    # Empty is allowed: jay.config.generated fills it in on first start.
    assert isinstance(value, str)
    size = len(value.encode("utf-8"))
    if value and size < MIN_SECRET_BYTES:
        return f"must be at least {MIN_SECRET_BYTES} bytes long, got {size} bytes"
    return None


def _one_of(choices: tuple[str, ...]) -> Validator:
    def check(value: Value) -> str | None:
        if value not in choices:
            return f"must be one of {'|'.join(choices)}, got {describe(value)}"
        return None

    return check


def _lower(value: Value) -> Value:
    assert isinstance(value, str)
    return value.lower()


def _number(value: Value) -> float:
    assert isinstance(value, int | float) and not isinstance(value, bool)
    return float(value)


def _finite(value: Value) -> str | None:
    if not math.isfinite(_number(value)):
        return f"must be a finite number, got {describe(value)}"
    return None


def _greater_than(bound: float) -> Validator:
    def check(value: Value) -> str | None:
        number = _number(value)
        if not (math.isfinite(number) and number > bound):
            return f"must be > {format_value(bound)}, got {describe(value)}"
        return None

    return check


def _at_least(bound: float) -> Validator:
    def check(value: Value) -> str | None:
        number = _number(value)
        if not (math.isfinite(number) and number >= bound):
            return f"must be >= {format_value(bound)}, got {describe(value)}"
        return None

    return check


def _between(low: float, high: float) -> Validator:
    def check(value: Value) -> str | None:
        number = _number(value)
        if not low <= number <= high:
            return f"must be in [{format_value(low)}, {format_value(high)}], got {describe(value)}"
        return None

    return check


def _rate_open_closed(value: Value) -> str | None:
    number = _number(value)
    if not 0 < number <= 1:
        return f"must be in (0, 1], got {describe(value)}"
    return None


def _rate_closed(value: Value) -> str | None:
    number = _number(value)
    if not 0 <= number <= 1:
        return f"must be in [0, 1], got {describe(value)}"
    return None


def _cidrs(value: Value) -> str | None:
    assert isinstance(value, tuple)
    for item in value:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            return f"not an IP network in CIDR notation: {item!r}"
    return None


def _kms_key_ids(value: Value) -> str | None:
    assert isinstance(value, tuple)
    for item in value:
        # Clients send a key id in a header: printable, no spaces, of a sane length.
        if not item or len(item) > 2048 or not item.isprintable() or " " in item:
            return f"not a KMS key id: {item!r}"
    return None


def _canonical_cidrs(value: Value) -> Value:
    """``10.1.2.3/8`` → ``10.0.0.0/8``; a bare address becomes a /32 or /128. Bad items are
    kept as written so that ``_cidrs`` can name them."""
    assert isinstance(value, tuple)
    out: list[str] = []
    for item in value:
        try:
            out.append(str(ipaddress.ip_network(item.strip(), strict=False)))
        except ValueError:
            out.append(item)
    return tuple(out)


_HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?")


def _domain(value: Value) -> str | None:
    assert isinstance(value, str)
    if value and not _HOSTNAME.fullmatch(value):
        return f"must be a DNS name such as s3.example.com, got {value!r}"
    return None


def _public_url(value: Value) -> str | None:
    assert isinstance(value, str)
    if not value:
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return f"not a URL: {value!r}"
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return f"must be an http:// or https:// URL with a host, got {value!r}"
    if parts.query or parts.fragment:
        return f"must not have a query or fragment, got {value!r}"
    return None


# --- the table ------------------------------------------------------------------------------


def _row(
    name: str,
    type: SettingType,
    field: str | None = None,
    *,
    validate: Validator | None = None,
    normalize: Normalizer | None = None,
    is_secret: bool = False,
    is_upstream: bool = False,
    doc: str = "",
) -> Setting:
    target = field or name
    return Setting(
        name=name,
        type=type,
        default=default_of(target),
        field=target,
        validate=validate,
        normalize=normalize,
        is_secret=is_secret,
        is_upstream=is_upstream,
        doc=doc,
    )


# JAY_SPEC §5.1, in its order.
_UPSTREAM: tuple[Setting, ...] = (
    _row("data_dir", "str", validate=_non_empty, doc="data directory"),
    _row("listen_addr", "str", validate=_address(allow_empty=False), doc="S3 API"),
    _row("admin_addr", "str", validate=_address(allow_empty=False), doc="admin + health"),
    _row("native_addr", "str", validate=_address(allow_empty=True), doc="empty disables native"),
    _row("admin_token", "str", validate=_secret_length, is_secret=True),
    _row("signing_secret", "str", validate=_secret_length, is_secret=True),
    _row("log_level", "str", validate=_one_of(LOG_LEVELS), normalize=_lower),
    _row("tls_cert", "str", "tls.cert_path", doc="PEM certificate path"),
    _row("tls_key", "str", "tls.key_path", doc="PEM key path"),
    _row("rate_limit", "float", "rate_limit.rate", validate=_finite, doc="<= 0 disables"),
    _row("rate_burst", "int", "rate_limit.burst", doc="<= 0 means max(1, 2 x rate)"),
    _row("trust_proxy_headers", "bool", "proxy.trust_proxy_headers"),
    _row("scrub.interval_hours", "int", validate=_greater_than(0)),
    _row("scrub.sample_rate", "float", validate=_rate_open_closed),
    _row("scrub.bytes_per_sec", "int", doc="<= 0 unthrottled"),
    _row("scrub.max_per_run", "int", validate=_greater_than(0)),
    _row("seed_token.account", "str"),
    _row("seed_token.id", "str"),
    _row("seed_token.secret", "str", is_secret=True),
)

_JAY_ONLY: tuple[Setting, ...] = (
    _row("log_format", "str", validate=_one_of(LOG_FORMATS), normalize=_lower),
    _row("native_tls", "bool", "tls.native", doc="TLS on the native port too"),
    _row(
        "trusted_proxies",
        "list",
        "proxy.trusted_proxies",
        validate=_cidrs,
        normalize=_canonical_cidrs,
        doc="CIDRs whose forwarding headers are believed; env: comma-separated",
    ),
    _row("region", "str", validate=_non_empty),
    _row("domain", "str", validate=_domain, doc="virtual-host style <bucket>.<domain>"),
    _row("public_url", "str", validate=_public_url, doc="base URL of presigned links"),
    _row("max_object_size", "int", validate=_greater_than(0)),
    _row("min_part_size", "int", validate=_at_least(0)),
    _row("read_verify_rate", "float", validate=_rate_closed),
    _row(
        "pack_max_object_bytes",
        "int",
        validate=_between(0, 65536),
        doc="new objects up to this size share pack files; 0: a file per object",
    ),
    _row(
        "sse_master_key_file",
        "str",
        doc="SSE-S3 master key file; empty: <data_dir>/sse-master.key (0600, made on first use)",
    ),
    _row(
        "sse_kms_key_ids",
        "list",
        validate=_kms_key_ids,
        doc="SSE-KMS key ids accepted besides aws/s3; env: comma-separated",
    ),
    _row("native_idle_timeout_seconds", "int", validate=_greater_than(0)),
    _row("metrics_public", "bool"),
    _row("shutdown_grace_seconds", "int", validate=_at_least(0)),
    _row("workers", "int", validate=_at_least(0), doc="0: one worker per CPU core"),
    _row(
        "lifecycle_interval_seconds",
        "int",
        validate=_at_least(0),
        doc="bucket lifecycle expiration pass every N seconds; 0 disables",
    ),
    _row("gc.interval_minutes", "int", validate=_greater_than(0)),
    _row("gc.temp_max_age_hours", "int", validate=_greater_than(0)),
    _row("gc.multipart_max_age_hours", "int", validate=_greater_than(0)),
    _row("backup.interval_hours", "int", validate=_greater_than(0)),
    _row("backup.keep", "int", validate=_at_least(1)),
    _row("backup.max_age_days", "int", validate=_greater_than(0)),
)

SETTINGS: tuple[Setting, ...] = tuple(replace(s, is_upstream=True) for s in _UPSTREAM) + _JAY_ONLY
BY_NAME: Mapping[str, Setting] = {s.name: s for s in SETTINGS}
BY_ENV_VAR: Mapping[str, Setting] = {s.env_var: s for s in SETTINGS}
SECRET_NAMES: frozenset[str] = frozenset(s.name for s in SETTINGS if s.is_secret)
# Top-level YAML keys that hold a nested mapping ("scrub:", "seed_token:", …).
SECTIONS: frozenset[str] = frozenset(s.name.split(".")[0] for s in SETTINGS if "." in s.name)
