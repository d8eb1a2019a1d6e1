"""AWS Signature Version 4 for S3: parsing, canonical requests, signatures, chunk signatures.

Pure: no clock reads (``now`` is an argument), no I/O. Inputs are the bytes as received (raw
path, raw query, header pairs); ``str`` arguments are accepted and encoded UTF-8, which is the
same for the ASCII that well-behaved clients send.

Usage by the HTTP layer (JAY_SPEC §3.3, §8.2 item 1)::

    parsed = parse_header_request(method, raw_path, raw_query, headers)   # or parse_presigned_request
    secret = lookup(parsed.access_key)                                     # InvalidAccessKeyId if unknown
    context = verify_header_request(parsed, secret, now=clock.seconds())   # or verify_presigned_request
    # context.payload_mode says how to read the body; the aws-chunked decoder takes the context.
    # SHA256 mode: the caller hashes the body and compares with context.payload_hash before
    # committing (this module never sees the body).

Where jay differs from upstream Jay (JAY_SPEC §3.3 "GAP IN UPSTREAM"): the query is canonicalised
per AWS, header values are whitespace-folded and repeated headers joined, the credential's region
and service are used (service must be ``s3``), presigned query auth is supported, and each
failure has its own error.
"""

from __future__ import annotations

import calendar
import enum
import functools
import hashlib
import hmac
import re
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import cast
from urllib.parse import quote, unquote_to_bytes

from jay.errors import (
    AccessDenied,
    AuthorizationHeaderMalformed,
    AuthorizationQueryParametersError,
    InvalidArgument,
    NotImplementedOperation,
    RequestTimeTooSkewed,
    SignatureDoesNotMatch,
)

ALGORITHM = "AWS4-HMAC-SHA256"
SCOPE_TERMINATOR = "aws4_request"
SERVICE = "s3"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
# JAY_SPEC §3.3 step 2: the request time may differ from ours by at most 15 minutes.
MAX_SKEW_SECONDS = 15 * 60
# AWS caps X-Amz-Expires at seven days; so does jay (JAY_SPEC §8.2 item 1).
MAX_PRESIGN_EXPIRES_SECONDS = 604800

HeaderPairs = Sequence[tuple[bytes | str, bytes | str]]


class PayloadMode(enum.Enum):
    """What ``x-amz-content-sha256`` announces about the body."""

    UNSIGNED = "UNSIGNED-PAYLOAD"
    SHA256 = "<sha256 hex>"  # the value is the hex digest of the whole body
    STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
    STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
    STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"

    @property
    def is_aws_chunked(self) -> bool:
        return self in _CHUNKED_MODES

    @property
    def has_trailer(self) -> bool:
        return self in (
            PayloadMode.STREAMING_SIGNED_TRAILER,
            PayloadMode.STREAMING_UNSIGNED_TRAILER,
        )

    @property
    def has_chunk_signatures(self) -> bool:
        return self in (PayloadMode.STREAMING_SIGNED, PayloadMode.STREAMING_SIGNED_TRAILER)


_CHUNKED_MODES = frozenset(
    {
        PayloadMode.STREAMING_SIGNED,
        PayloadMode.STREAMING_SIGNED_TRAILER,
        PayloadMode.STREAMING_UNSIGNED_TRAILER,
    }
)
_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX64_BYTES = re.compile(rb"[0-9a-f]{64}")


_MODES_BY_VALUE = {mode.value: mode for mode in PayloadMode if mode is not PayloadMode.SHA256}


def parse_payload_mode(value: str) -> PayloadMode:
    """Classify an ``x-amz-content-sha256`` value; anything else is InvalidArgument."""
    mode = _MODES_BY_VALUE.get(value)
    if mode is not None:
        return mode
    if _HEX64.fullmatch(value):
        return PayloadMode.SHA256
    if value.startswith("STREAMING-AWS4-ECDSA-P256-SHA256"):
        raise NotImplementedOperation("SigV4a (ECDSA) streaming signatures are not supported")
    raise InvalidArgument(
        "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, a STREAMING-* value, "
        "or the hex SHA-256 of the payload"
    )


# --- small values ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Credential:
    access_key: str
    date: str  # YYYYMMDD
    region: str
    service: str
    # date/region/service/aws4_request, formed once: parsed credentials are cached and
    # reused by every request of the day.
    scope: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        scope = f"{self.date}/{self.region}/{self.service}/{SCOPE_TERMINATOR}"
        object.__setattr__(self, "scope", scope)


# The next three are not frozen (nothing changes one) for the reason Route is not
# (jay.s3.routing): each is built per request.
@dataclass(slots=True)
class AuthorizationHeader:
    credential: Credential
    signed_headers: tuple[str, ...]  # lower-case, sorted, unique
    signature: str  # 64 lower-case hex


@dataclass(slots=True, kw_only=True)
class ParsedRequest:
    """A SigV4-signed request (header or presigned query) ready for its secret.

    ``amz_date`` is the ISO 8601 basic time that goes into the string to sign; ``request_time``
    is the same instant in Unix seconds. ``expires_seconds`` is set only for presigned requests.
    """

    credential: Credential
    signed_headers: tuple[str, ...]
    signature: str
    amz_date: str
    request_time: int
    payload_hash: str
    payload_mode: PayloadMode
    method: str
    raw_path: bytes
    raw_query: bytes
    headers: tuple[tuple[bytes, bytes], ...]
    expires_seconds: int | None = None
    # ``headers`` by lower-case name, when the parser already built it (saves a second pass).
    header_index: Mapping[str, list[bytes]] | None = field(default=None, compare=False, repr=False)

    @property
    def access_key(self) -> str:
        return self.credential.access_key

    @property
    def is_presigned(self) -> bool:
        return self.expires_seconds is not None


@dataclass(slots=True, kw_only=True)
class SigningContext:
    """What a verified request leaves for the body decoder: enough to check chunk signatures."""

    signing_key: bytes
    seed_signature: str
    scope: str
    amz_date: str
    payload_hash: str
    payload_mode: PayloadMode

    def chunk_signature(self, previous_signature: str, chunk_sha256_hex: str) -> str:
        return chunk_signature(
            self.signing_key, self.amz_date, self.scope, previous_signature, chunk_sha256_hex
        )

    def trailer_signature(self, previous_signature: str, canonical_trailers: bytes) -> str:
        return trailer_signature(
            self.signing_key, self.amz_date, self.scope, previous_signature, canonical_trailers
        )


# --- encoding helpers ------------------------------------------------------------------------


def _as_bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8")


def _as_str(value: bytes | str) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


def _uri_encode(data: bytes) -> str:
    # RFC 3986 unreserved A-Za-z0-9-_.~ stay, everything else is %XX upper-case (AWS rules).
    return quote(data, safe="")


_HEXDIGITS = frozenset(b"0123456789abcdefABCDEF")
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")
# Characters RFC 3986 allows unencoded in a path segment (pchar minus unreserved) plus '/'.
_PATH_LENIENT = _UNRESERVED | frozenset(b"/:@!$&'()*+,;=")
_PATH_STRICT = _UNRESERVED | frozenset(b"/")
_PLAIN_PATH = re.compile(rb"(?:[A-Za-z0-9\-_.~/]|%[0-9A-Fa-f]{2})*")


def _encode_path(raw_path: bytes, allowed: frozenset[int]) -> str:
    out: list[str] = []
    i = 0
    n = len(raw_path)
    while i < n:
        c = raw_path[i]
        if (
            c == 0x25
            and i + 2 < n
            and raw_path[i + 1] in _HEXDIGITS
            and raw_path[i + 2] in _HEXDIGITS
        ):
            out.append(raw_path[i : i + 3].decode("ascii"))
            i += 3
            continue
        out.append(chr(c) if c in allowed else f"%{c:02X}")
        i += 1
    return "".join(out)


def canonical_uri_candidates(raw_path: bytes | str) -> list[str]:
    """Canonical URI forms to try, most likely first.

    S3 signs the path as sent, without normalisation or double encoding. A path arrives already
    percent-encoded from every SDK we know, so the first form is the raw path with only bytes
    that are illegal in a URI path encoded. A client that sent RFC 3986 sub-delimiters raw but
    signed them encoded (as the AWS rules say) is served by the strict second form.
    """
    path = _as_bytes(raw_path) or b"/"
    if _PLAIN_PATH.fullmatch(path):
        # Only unreserved bytes, '/' and valid escapes: both forms are the path as sent.
        return [path.decode("ascii")]
    lenient = _encode_path(path, _PATH_LENIENT)
    strict = _encode_path(path, _PATH_STRICT)
    return [lenient] if lenient == strict else [lenient, strict]


def canonical_query(
    raw_query: bytes | str, *, plus_is_space: bool = False, exclude: Iterable[bytes] = ()
) -> str:
    """AWS canonical query: split on '&', decode, re-encode, sort by name then value.

    botocore signs its own encoding of the query, which is already canonical, so decoding and
    re-encoding gives back exactly what it signed. ``+`` is a literal plus in SigV4 (AWS encodes
    it as %2B); ``plus_is_space`` gives the HTML-form reading some clients sign instead.
    """
    query = _as_bytes(raw_query)
    if not query:
        return ""
    excluded = set(exclude)
    pairs: list[tuple[str, str]] = []
    for part in query.split(b"&"):
        if not part:
            continue
        name, _, value = part.partition(b"=")
        if plus_is_space:
            name = name.replace(b"+", b" ")
            value = value.replace(b"+", b" ")
        name_bytes = unquote_to_bytes(name)
        if name_bytes in excluded:
            continue
        pairs.append((_uri_encode(name_bytes), _uri_encode(unquote_to_bytes(value))))
    pairs.sort()
    return "&".join(f"{name}={value}" for name, value in pairs)


def canonical_query_candidates(
    raw_query: bytes | str, *, exclude: Iterable[bytes] = ()
) -> list[str]:
    query = _as_bytes(raw_query)
    excluded = tuple(exclude)
    first = canonical_query(query, exclude=excluded)
    if b"+" not in query:
        return [first]
    return [first, canonical_query(query, plus_is_space=True, exclude=excluded)]


def _fold_value(value: bytes) -> bytes:
    # Trim, and collapse inner runs of whitespace to one space (AWS "Trimall").
    return b" ".join(value.split())


def canonical_headers(headers: HeaderPairs, signed_headers: Sequence[str]) -> bytes:
    """``name:value\\n`` per signed header; repeated headers joined with ',' in arrival order.

    A signed header that is absent contributes ``name:`` (the signature then fails, as on AWS).
    """
    return _header_block(_index_headers(headers), signed_headers)


def _header_block(index: Mapping[str, list[bytes]], signed_headers: Sequence[str]) -> bytes:
    lines: list[bytes] = []
    for name in signed_headers:
        values = index.get(name, ())
        if len(values) == 1:
            # The usual case: one value, no join needed.
            lines.append(name.encode("ascii") + b":" + b" ".join(values[0].split()) + b"\n")
        else:
            folded = b",".join([_fold_value(value) for value in values])
            lines.append(name.encode("ascii") + b":" + folded + b"\n")
    return b"".join(lines)


# Header name as received → its lower-case text. Clients send the same dozen names on every
# request; the cap keeps a client that invents names from growing it without bound.
_LOWER_NAMES: dict[bytes, str] = {}
_MAX_LOWER_NAMES = 1024


def lower_name(name: bytes) -> str:
    """``name`` stripped, lower-cased and decoded (latin-1), remembered for the next request."""
    key = _LOWER_NAMES.get(name)
    if key is None:
        key = name.strip().lower().decode("latin-1")
        if len(_LOWER_NAMES) >= _MAX_LOWER_NAMES:
            _LOWER_NAMES.clear()
        _LOWER_NAMES[name] = key
    return key


def _index_headers(headers: HeaderPairs) -> dict[str, list[bytes]]:
    """Lower-case name → values in arrival order, in one pass over the pairs."""
    index: dict[str, list[bytes]] = {}
    for name, value in headers:
        key = lower_name(name) if type(name) is bytes else _as_str(name).strip().lower()
        if type(value) is not bytes:
            value = _as_bytes(value)
        values = index.get(key)
        if values is None:
            index[key] = [value]
        else:
            values.append(value)
    return index


def canonical_request(
    *,
    method: str,
    canonical_uri: str,
    canonical_query_string: str,
    canonical_header_block: bytes,
    signed_headers: Sequence[str],
    payload_hash: str,
) -> bytes:
    return b"\n".join(
        [
            method.encode("ascii"),
            canonical_uri.encode("ascii"),
            canonical_query_string.encode("ascii"),
            canonical_header_block,
            ";".join(signed_headers).encode("ascii"),
            payload_hash.encode("ascii"),
        ]
    )


def string_to_sign(amz_date: str, scope: str, canonical_request_bytes: bytes) -> str:
    digest = hashlib.sha256(canonical_request_bytes).hexdigest()
    return f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}"


def _hmac(key: bytes, msg: str | bytes) -> bytes:
    return hmac.digest(key, _as_bytes(msg), "sha256")


@functools.lru_cache(maxsize=1024)
def signing_key(secret: str, date: str, region: str, service: str = SERVICE) -> bytes:
    """HMAC chain "AWS4"+secret → date → region → service → aws4_request.

    Cached: the key changes once a day per token, and each request would otherwise cost four
    HMACs. The cache holds derived keys only for secrets the process already holds.
    """
    k_date = _hmac(("AWS4" + secret).encode("utf-8"), date)
    k_region = _hmac(k_date, region)
    k_service = _hmac(k_region, service)
    return _hmac(k_service, SCOPE_TERMINATOR)


_SHA256_BLOCK_BYTES = 64
_INNER_PAD = bytes(b ^ 0x36 for b in range(256))
_OUTER_PAD = bytes(b ^ 0x5C for b in range(256))


@functools.lru_cache(maxsize=1024)
def _hmac_states(key: bytes) -> tuple[hashlib._Hash, hashlib._Hash]:
    """SHA-256 after the inner and the outer HMAC pad of ``key`` (RFC 2104).

    One signing key signs every request of a token for a day (and every chunk of a streamed
    body), so the two pad blocks are hashed once per key instead of once per signature; each
    signature then copies the two states. Cached like ``signing_key``, for keys derived from
    secrets the process already holds.
    """
    if len(key) > _SHA256_BLOCK_BYTES:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_SHA256_BLOCK_BYTES, b"\0")
    return hashlib.sha256(key.translate(_INNER_PAD)), hashlib.sha256(key.translate(_OUTER_PAD))


def sign(key: bytes, message: str) -> str:
    """Hex HMAC-SHA256 of ``message`` (UTF-8) under ``key``, as ``hmac.new`` computes it."""
    inner_state, outer_state = _hmac_states(key)
    inner = inner_state.copy()
    inner.update(message.encode("utf-8"))
    outer = outer_state.copy()
    outer.update(inner.digest())
    return outer.hexdigest()


def signatures_equal(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))


# --- chunk and trailer signatures (aws-chunked bodies) ---------------------------------------


def chunk_string_to_sign(
    amz_date: str, scope: str, previous_signature: str, chunk_sha256_hex: str
) -> str:
    return (
        f"{ALGORITHM}-PAYLOAD\n{amz_date}\n{scope}\n{previous_signature}\n"
        f"{EMPTY_SHA256}\n{chunk_sha256_hex}"
    )


def chunk_signature(
    key: bytes, amz_date: str, scope: str, previous_signature: str, chunk_sha256_hex: str
) -> str:
    return sign(key, chunk_string_to_sign(amz_date, scope, previous_signature, chunk_sha256_hex))


def trailer_signature(
    key: bytes, amz_date: str, scope: str, previous_signature: str, canonical_trailers: bytes
) -> str:
    """Signature of the trailer section: ``canonical_trailers`` is ``name:value\\n`` per trailer."""
    digest = hashlib.sha256(canonical_trailers).hexdigest()
    return sign(key, f"{ALGORITHM}-TRAILER\n{amz_date}\n{scope}\n{previous_signature}\n{digest}")


# --- time --------------------------------------------------------------------------------------

_MONTHS = {
    name: index
    for index, name in enumerate(
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], 1
    )
}
_ISO_BASIC = re.compile(r"(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z")
_RFC1123 = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d{2}) ([A-Z][a-z]{2}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) "
    r"(?:GMT|([+-])(\d{2})(\d{2}))"
)


def _epoch(year: int, month: int, day: int, hour: int, minute: int, second: int) -> int:
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour <= 23 and minute <= 59 and second <= 60):
        raise ValueError("field out of range")
    if day > calendar.monthrange(year, month)[1]:
        raise ValueError("day out of range")
    return calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))


def parse_request_time(value: str) -> int:
    """Unix seconds from ``YYYYMMDDTHHMMSSZ`` or RFC 1123 (``GMT`` or ``±hhmm``); ValueError."""
    value = value.strip()
    match = _ISO_BASIC.fullmatch(value)
    if match:
        return _epoch(*(int(part) for part in match.groups()))
    match = _RFC1123.fullmatch(value)
    if match is None or match.group(2) not in _MONTHS:
        raise ValueError(f"unrecognised date format: {value!r}")
    day, month_name, year, hour, minute, second, sign_char, off_h, off_m = match.groups()
    seconds = _epoch(int(year), _MONTHS[month_name], int(day), int(hour), int(minute), int(second))
    if sign_char:
        offset = int(off_h) * 3600 + int(off_m) * 60
        seconds -= offset if sign_char == "+" else -offset
    return seconds


@functools.lru_cache(maxsize=256)
def _request_time(value: str) -> tuple[int, str]:
    """Unix seconds and the ISO 8601 basic form; cached because many requests share a second."""
    seconds = parse_request_time(value)
    return seconds, format_amz_date(seconds)


def format_amz_date(seconds: int) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(seconds))


def check_skew(request_time: int, now: float) -> None:
    """RequestTimeTooSkewed when the request is more than 15 minutes from ``now``."""
    if abs(now - request_time) > MAX_SKEW_SECONDS:
        raise RequestTimeTooSkewed()


# --- header-mode parsing -------------------------------------------------------------------------


@functools.lru_cache(maxsize=1024)
def _parse_credential(value: str, error: type[Exception]) -> Credential:
    # Cached (errors are not): a token sends the same credential all day.
    parts = value.split("/")
    if len(parts) == 5 and parts[4] != SCOPE_TERMINATOR:
        raise error(f"Credential scope must end with {SCOPE_TERMINATOR}")
    if len(parts) not in (4, 5):
        raise error("Credential must be <access key>/<date>/<region>/<service>/aws4_request")
    access_key, date, region, service = parts[:4]
    if not access_key:
        raise error("Credential has no access key")
    if not re.fullmatch(r"\d{8}", date):
        raise error(f"Credential date {date!r} is not YYYYMMDD")
    if not region:
        raise error("Credential has no region")
    if service != SERVICE:
        raise error(f"Credential should be scoped to correct service: '{SERVICE}'")
    return Credential(access_key, date, region, service)


@functools.lru_cache(maxsize=1024)
def _parse_signed_headers(value: str, error: type[Exception]) -> tuple[str, ...]:
    # Cached (errors are not): a client signs the same header set on every request.
    names = sorted({name.strip().lower() for name in value.split(";") if name.strip()})
    if not names:
        raise error("SignedHeaders is empty")
    if "host" not in names:
        raise error("SignedHeaders must include host")
    return tuple(names)


def _parse_signature(value: str, error: type[Exception]) -> str:
    if not _HEX64.fullmatch(value):
        raise error("Signature must be 64 lower-case hex characters")
    return value


# What SDKs send: the three components in the documented order, each without spaces or
# commas inside; this is the part before "Signature=<64 lower-case hex>". Such a header parses
# to the same result as the general loop below would give.
_PLAIN_AUTHORIZATION_HEAD = re.compile(
    ALGORITHM + r" Credential=([^\s,]+), ?SignedHeaders=([^\s,]+), ?"
)


@functools.lru_cache(maxsize=1024)
def _parse_plain_head(head: str) -> tuple[Credential, tuple[str, ...]] | None:
    """Credential and signed headers of a plain head; None when the head is not plain.

    Cached (errors are not): a client sends the same head on every request of the day, only
    the signature after it changes.
    """
    plain = _PLAIN_AUTHORIZATION_HEAD.fullmatch(head)
    if plain is None:
        return None
    credential, signed_headers = plain.groups()
    err = AuthorizationHeaderMalformed
    return _parse_credential(credential, err), _parse_signed_headers(signed_headers, err)


def parse_authorization_header(value: bytes | str) -> AuthorizationHeader:
    """Parse ``AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…``.

    A header in the plain layout (``_PLAIN_AUTHORIZATION_HEAD``, then the signature) is split
    at its last ``Signature=``: the head before it is parsed once per distinct head. Anything
    else, and every malformed header, goes to the general parser.
    """
    text = _as_str(value)
    head, separator, signature = text.rpartition("Signature=")
    if separator and _HEX64.fullmatch(signature):
        parsed = _parse_plain_head(head)
        if parsed is not None:
            return AuthorizationHeader(
                credential=parsed[0], signed_headers=parsed[1], signature=signature
            )
    return _parse_authorization_fields(text)


def _parse_authorization_fields(text: str) -> AuthorizationHeader:
    """The general parser: any order and spacing of the components, each problem named."""
    prefix = ALGORITHM + " "
    if not text.startswith(prefix):
        raise AuthorizationHeaderMalformed(f"Authorization must start with '{prefix}'")
    fields: dict[str, str] = {}
    for part in text[len(prefix) :].split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, field_value = part.partition("=")
        if not sep:
            raise AuthorizationHeaderMalformed(f"Authorization component {name!r} has no '='")
        name = name.strip()
        if name in fields:
            raise AuthorizationHeaderMalformed(f"Authorization repeats {name}")
        fields[name] = field_value.strip()
    missing = [k for k in ("Credential", "SignedHeaders", "Signature") if k not in fields]
    if missing:
        raise AuthorizationHeaderMalformed("Authorization is missing " + ", ".join(missing))
    err = AuthorizationHeaderMalformed
    return AuthorizationHeader(
        credential=_parse_credential(fields["Credential"], err),
        signed_headers=_parse_signed_headers(fields["SignedHeaders"], err),
        signature=_parse_signature(fields["Signature"], err),
    )


def _header_values(headers: HeaderPairs, name: str) -> list[str]:
    return [_as_str(v) for k, v in headers if _as_str(k).strip().lower() == name]


def _normalise_headers(headers: HeaderPairs) -> tuple[tuple[bytes, bytes], ...]:
    pairs = tuple(headers)
    for name, value in pairs:
        if type(name) is not bytes or type(value) is not bytes:
            return tuple((_as_bytes(k), _as_bytes(v)) for k, v in pairs)
    return pairs  # type: ignore[return-value]  # every name and value is bytes


def parse_header_request(
    method: bytes | str,
    raw_path: bytes | str,
    raw_query: bytes | str,
    headers: HeaderPairs,
    *,
    header_index: Mapping[str, list[bytes]] | None = None,
) -> ParsedRequest:
    """Parse a header-signed request far enough to look up its secret.

    ``header_index``: ``headers`` by lower-case name (values as bytes, in arrival order), when
    the caller already has it; it must describe exactly ``headers``.

    Raises AuthorizationHeaderMalformed (header syntax, missing or unparsable date, credential
    date not the request date), InvalidArgument (bad x-amz-content-sha256).
    """
    index = _index_headers(headers) if header_index is None else header_index
    authorizations = index.get("authorization", ())
    if len(authorizations) != 1:
        raise AuthorizationHeaderMalformed("exactly one Authorization header is required")
    auth = parse_authorization_header(authorizations[0].decode("latin-1"))
    dates = index.get("x-amz-date") or index.get("date")
    if not dates:
        raise AuthorizationHeaderMalformed("the request has neither X-Amz-Date nor Date")
    try:
        request_time, amz_date = _request_time(dates[0].decode("latin-1"))
    except ValueError as e:
        raise AuthorizationHeaderMalformed(f"the request date is not valid: {e}") from None
    if amz_date[:8] != auth.credential.date:
        raise AuthorizationHeaderMalformed(
            "Invalid credential date. Date is not the same as X-Amz-Date."
        )
    hashes = index.get("x-amz-content-sha256")
    # JAY_SPEC §3.3 step 4: no header means UNSIGNED-PAYLOAD (upstream compatibility).
    payload_hash = hashes[0].decode("latin-1").strip() if hashes else PayloadMode.UNSIGNED.value
    return ParsedRequest(
        credential=auth.credential,
        signed_headers=auth.signed_headers,
        signature=auth.signature,
        amz_date=amz_date,
        request_time=request_time,
        payload_hash=payload_hash,
        payload_mode=parse_payload_mode(payload_hash),
        method=_as_str(method).upper(),
        raw_path=_as_bytes(raw_path),
        raw_query=_as_bytes(raw_query),
        # A caller with an index built it from bytes pairs (see header_index above).
        headers=(
            _normalise_headers(headers)
            if header_index is None
            else tuple(cast(Sequence[tuple[bytes, bytes]], headers))
        ),
        header_index=index,
    )


# --- presigned (query) parsing -----------------------------------------------------------------

_PRESIGN_PARAMS = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
)


def has_presigned_query(raw_query: bytes | str) -> bool:
    """True when the query carries SigV4 query authentication (X-Amz-Algorithm or -Signature)."""
    query = _as_bytes(raw_query)
    return b"X-Amz-Signature=" in query or b"X-Amz-Algorithm=" in query


def _query_params(raw_query: bytes) -> dict[str, list[str]]:
    params: dict[str, list[str]] = {}
    for part in raw_query.split(b"&"):
        if not part:
            continue
        name, _, value = part.partition(b"=")
        key = unquote_to_bytes(name).decode("utf-8", "replace")
        params.setdefault(key, []).append(unquote_to_bytes(value).decode("utf-8", "replace"))
    return params


def parse_presigned_request(
    method: bytes | str, raw_path: bytes | str, raw_query: bytes | str, headers: HeaderPairs
) -> ParsedRequest:
    """Parse SigV4 query authentication (X-Amz-*); AuthorizationQueryParametersError if bad."""
    err = AuthorizationQueryParametersError
    query = _as_bytes(raw_query)
    params = _query_params(query)
    missing = [name for name in _PRESIGN_PARAMS if name not in params]
    if missing:
        raise err("Query-string authentication requires " + ", ".join(missing))
    values: dict[str, str] = {}
    for name in _PRESIGN_PARAMS:
        if len(params[name]) != 1:
            raise err(f"{name} must appear once")
        values[name] = params[name][0]
    if values["X-Amz-Algorithm"] != ALGORITHM:
        raise err(f"X-Amz-Algorithm only supports '{ALGORITHM}'")
    credential = _parse_credential(values["X-Amz-Credential"], err)
    amz_date = values["X-Amz-Date"]
    if not _ISO_BASIC.fullmatch(amz_date):
        raise err("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"")
    try:
        request_time = parse_request_time(amz_date)
    except ValueError:
        raise err("X-Amz-Date is not a valid date") from None
    if amz_date[:8] != credential.date:
        raise err("Invalid credential date. Date is not the same as X-Amz-Date.")
    expires_text = values["X-Amz-Expires"]
    if not expires_text.isdigit():
        raise err("X-Amz-Expires should be a number")
    expires = int(expires_text)
    if not 1 <= expires <= MAX_PRESIGN_EXPIRES_SECONDS:
        raise err(
            "X-Amz-Expires must be less than a week (in seconds) that is 604800 and at least 1"
        )
    # A presigned URL carries no body hash; a signed x-amz-content-sha256 header overrides.
    payload_hash = PayloadMode.UNSIGNED.value
    signed_headers = _parse_signed_headers(values["X-Amz-SignedHeaders"], err)
    if "x-amz-content-sha256" in signed_headers:
        given = _header_values(headers, "x-amz-content-sha256")
        payload_hash = given[0].strip() if given else ""
    return ParsedRequest(
        credential=credential,
        signed_headers=signed_headers,
        signature=_parse_signature(values["X-Amz-Signature"], err),
        amz_date=amz_date,
        request_time=request_time,
        payload_hash=payload_hash,
        payload_mode=parse_payload_mode(payload_hash),
        method=_as_str(method).upper(),
        raw_path=_as_bytes(raw_path),
        raw_query=query,
        headers=_normalise_headers(headers),
        expires_seconds=expires,
    )


# --- verification ------------------------------------------------------------------------------


def canonical_requests(parsed: ParsedRequest) -> list[bytes]:
    """Every canonical request form jay accepts for ``parsed`` (usually exactly one)."""
    return list(_iter_canonical_requests(parsed))


def _iter_canonical_requests(parsed: ParsedRequest) -> Iterator[bytes]:
    """The canonical request forms, most likely first, each built only when asked for."""
    exclude = (b"X-Amz-Signature",) if parsed.is_presigned else ()
    index = parsed.header_index
    if index is None:
        index = _index_headers(parsed.headers)
    header_block = _header_block(index, parsed.signed_headers)
    queries = (
        canonical_query_candidates(parsed.raw_query, exclude=exclude) if parsed.raw_query else [""]
    )
    for uri in canonical_uri_candidates(parsed.raw_path):
        for query in queries:
            yield canonical_request(
                method=parsed.method,
                canonical_uri=uri,
                canonical_query_string=query,
                canonical_header_block=header_block,
                signed_headers=parsed.signed_headers,
                payload_hash=parsed.payload_hash,
            )


def _matches_first_form(parsed: ParsedRequest, key: bytes, scope: str, given: bytes) -> bool:
    """Whether ``given`` signs the usual form: a header-signed request whose path has only
    unreserved bytes, '/' and escapes, and no query (a GET, HEAD, PUT or DELETE of an object).
    The first form ``_iter_canonical_requests`` would yield, built in one join; False for
    anything else (those forms are left to the general loop, which tries this one again)."""
    if parsed.raw_query or parsed.expires_seconds is not None:
        return False
    path = parsed.raw_path or b"/"
    if not _PLAIN_PATH.fullmatch(path):
        return False
    index = parsed.header_index
    if index is None:
        return False
    signed = parsed.signed_headers
    lines = []
    for name in signed:
        values = index.get(name, ())
        if len(values) != 1:
            return False
        lines.append(name.encode("ascii") + b":" + b" ".join(values[0].split()) + b"\n")
    canonical = b"\n".join(
        (
            parsed.method.encode("ascii"),
            path,
            b"",
            b"".join(lines),
            _signed_header_list(signed),
            parsed.payload_hash.encode("ascii"),
        )
    )
    digest = hashlib.sha256(canonical).hexdigest()
    expected = sign(key, f"{ALGORITHM}\n{parsed.amz_date}\n{scope}\n{digest}")
    return hmac.compare_digest(expected.encode("ascii"), given)


@functools.lru_cache(maxsize=256)
def _signed_header_list(signed_headers: tuple[str, ...]) -> bytes:
    return ";".join(signed_headers).encode("ascii")


def verify(
    parsed: ParsedRequest, secret: str, *, now: float, expected_region: str | None = None
) -> SigningContext:
    """Check time, region and signature; return the context the body decoder needs.

    Raises RequestTimeTooSkewed (header mode), AccessDenied (presigned: expired or not yet
    valid), AuthorizationHeaderMalformed / AuthorizationQueryParametersError (wrong region,
    empty secret), SignatureDoesNotMatch.
    """
    malformed = (
        AuthorizationQueryParametersError if parsed.is_presigned else AuthorizationHeaderMalformed
    )
    if parsed.expires_seconds is not None:
        if now > parsed.request_time + parsed.expires_seconds:
            raise AccessDenied("Request has expired")
        if parsed.request_time - now > MAX_SKEW_SECONDS:
            raise AccessDenied("Request is not yet valid")
    else:
        check_skew(parsed.request_time, now)
    region = parsed.credential.region
    if expected_region is not None and region != expected_region:
        raise malformed(f"the region '{region}' is wrong; expecting '{expected_region}'")
    if not secret:
        # JAY_SPEC §3.3 step 3: a token without a usable secret key cannot sign.
        raise SignatureDoesNotMatch()
    key = signing_key(secret, parsed.credential.date, region, parsed.credential.service)
    scope = parsed.credential.scope
    given = parsed.signature.encode("utf-8")
    if not _matches_first_form(parsed, key, scope, given):
        # The most likely form (tried above) almost always matches, so the others are built
        # only after a mismatch. Each comparison is constant-time; which form matched (the
        # stop) depends only on how the client encoded its own request, never on the secret.
        for request_bytes in _iter_canonical_requests(parsed):
            expected = sign(key, string_to_sign(parsed.amz_date, scope, request_bytes))
            if hmac.compare_digest(expected.encode("ascii"), given):
                break
        else:
            raise SignatureDoesNotMatch()
    return SigningContext(
        signing_key=key,
        seed_signature=parsed.signature,
        scope=scope,
        amz_date=parsed.amz_date,
        payload_hash=parsed.payload_hash,
        payload_mode=parsed.payload_mode,
    )


verify_header_request = verify
verify_presigned_request = verify
