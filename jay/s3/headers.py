"""S3 request and response headers: Range, conditionals, copy source, metadata, overrides.

Pure functions over strings and numbers. Header names are lower-case everywhere here; the HTTP
layer lower-cases once when it builds the mapping.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import email.utils
import enum
import functools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from jay.errors import (
    BadDigest,
    InvalidArgument,
    InvalidDigest,
    InvalidRange,
    InvalidRequest,
    MetadataTooLarge,
    NotImplementedOperation,
)
from jay.s3.routing import parse_query, percent_decode
from jay.storage.api import DeleteCondition, WriteCondition
from jay.storage.encryption import (
    AES256,
    AWS_KMS,
    MODE_SSE_C,
    MODE_SSE_KMS,
    MODE_SSE_S3,
    CustomerKey,
    parse_customer_key,
    parse_kms_context,
)
from jay.storage.names import validate_version_id

META_PREFIX = "x-amz-meta-"

# AWS: "the user-defined metadata is limited to 2 KB in size", measured as the UTF-8 bytes of
# every name (without the x-amz-meta- prefix) and value.
MAX_USER_METADATA_BYTES = 2048

# ---------------------------------------------------------------------------------------------
# HTTP dates and ETags


def format_http_date(timestamp: float) -> str:
    """IMF-fixdate (RFC 7231 §7.1.1.1), e.g. ``Tue, 02 Jan 2024 03:04:05 GMT``."""
    return _format_http_date(int(timestamp))


@functools.lru_cache(maxsize=4096)
def _format_http_date(seconds: int) -> str:
    # Cached: hot objects send the same Last-Modified on every GET and HEAD.
    return email.utils.formatdate(seconds, usegmt=True)


def parse_http_date(value: str) -> float | None:
    """Any of the three HTTP date forms → POSIX seconds; ``None`` when unparsable."""
    value = value.strip()
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_tz(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed is None:
        return None
    try:
        seconds = calendar.timegm(parsed[:9])
    except (TypeError, ValueError, OverflowError):
        return None
    return float(seconds - (parsed[9] or 0))


def quote_etag(etag: str) -> str:
    return '"' + etag + '"'


def unquote_etag(value: str) -> str:
    """``"abc"``, ``W/"abc"`` or bare ``abc`` → ``abc``."""
    value = value.strip()
    if value.startswith("W/"):
        value = value[2:]
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        value = value[1:-1]
    return value


def etag_list_matches(header_value: str, etag: str, *, weak: bool) -> bool:
    """Does an If-Match / If-None-Match list match ``etag`` (unquoted)?

    ``weak`` selects weak comparison (If-None-Match, RFC 7232 §2.3.2): ``W/"x"`` matches ``x``.
    Strong comparison (If-Match) never matches a weak tag. Bare unquoted tags, which some
    clients send, are compared as if quoted.
    """
    for item in header_value.split(","):
        item = item.strip()
        if not item:
            continue
        if item == "*":
            return True
        is_weak = item.startswith("W/")
        if is_weak and not weak:
            continue
        if unquote_etag(item) == etag:
            return True
    return False


# ---------------------------------------------------------------------------------------------
# Range (JAY_SPEC §2.7 with §8.2 item 9)


@dataclass(frozen=True, slots=True)
class ByteRange:
    start: int
    length: int

    @property
    def end(self) -> int:
        """Inclusive last byte offset."""
        return self.start + self.length - 1

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end}/{size}"


_RANGE_SPEC = re.compile(r"(\d*)-(\d*)")


def unsatisfiable_content_range(size: int) -> str:
    return f"bytes */{size}"


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The byte range to serve for a ``Range`` header, or ``None`` for the whole object.

    * absent, another unit, bad syntax, or ``E < S``: ignored (RFC 7233 §3.1) → ``None``;
    * several ranges: ignored, the whole object is served with 200 (upstream answered 416);
    * ``S-E`` / ``S-`` with ``S ≥ size``, or ``-0``: ``InvalidRange`` (416);
    * ``-N`` on an empty object: ``None`` — 200 with the empty body, never
      ``bytes 0--1/0`` as upstream sent.
    """
    if not header:
        return None
    unit, sep, spec = header.strip().partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    spec = spec.strip()
    if "," in spec:
        return None
    match = _RANGE_SPEC.fullmatch(spec)
    if match is None:
        return None
    first, last = match.group(1), match.group(2)
    try:
        if first:
            start = int(first)
            end = int(last) if last else None
            if end is not None and end < start:
                return None
            if start >= size:
                raise InvalidRange(size=size, range=header)
            end = size - 1 if end is None else min(end, size - 1)
            return ByteRange(start, end - start + 1)
        if not last:
            return None  # "bytes=-"
        suffix = int(last)
    except ValueError:  # absurdly long digit strings
        return None
    if suffix == 0:
        raise InvalidRange(size=size, range=header)
    if size == 0:
        return None
    return ByteRange(max(size - suffix, 0), min(suffix, size))


def if_range_allows(if_range: str | None, etag: str, last_modified: float) -> bool:
    """True when the Range header should be honoured (RFC 7233 §3.2).

    An entity tag must match strongly (a weak tag never does); a date must equal Last-Modified
    to the second. Anything unparsable means "serve the whole object".
    """
    if if_range is None:
        return True
    value = if_range.strip()
    if value.startswith('"') or value.startswith("W/"):
        if value.startswith("W/"):
            return False
        return unquote_etag(value) == etag
    when = parse_http_date(value)
    return when is not None and int(when) == int(last_modified)


# ---------------------------------------------------------------------------------------------
# Conditional requests (RFC 7232 §6 with S3's documented precedence)


class Condition(enum.Enum):
    PROCEED = "proceed"
    NOT_MODIFIED = "not-modified"  # 304
    PRECONDITION_FAILED = "precondition-failed"  # 412


def _evaluate(
    if_match: str | None,
    if_none_match: str | None,
    if_modified_since: str | None,
    if_unmodified_since: str | None,
    etag: str,
    last_modified: float,
) -> Condition:
    modified_second = int(last_modified)
    if if_match is not None:
        if not etag_list_matches(if_match, etag, weak=False):
            return Condition.PRECONDITION_FAILED
        # S3: If-Match true and If-Unmodified-Since false → proceed.
    elif if_unmodified_since is not None:
        when = parse_http_date(if_unmodified_since)
        if when is not None and modified_second > when:
            return Condition.PRECONDITION_FAILED
    if if_none_match is not None:
        if etag_list_matches(if_none_match, etag, weak=True):
            # S3: If-None-Match false and If-Modified-Since true → 304.
            return Condition.NOT_MODIFIED
    elif if_modified_since is not None:
        when = parse_http_date(if_modified_since)
        if when is not None and modified_second <= when:
            return Condition.NOT_MODIFIED
    return Condition.PROCEED


def evaluate_conditionals(headers: Mapping[str, str], etag: str, last_modified: float) -> Condition:
    """If-Match / If-None-Match / If-(Un)Modified-Since for GET and HEAD."""
    return _evaluate(
        headers.get("if-match"),
        headers.get("if-none-match"),
        headers.get("if-modified-since"),
        headers.get("if-unmodified-since"),
        etag,
        last_modified,
    )


def evaluate_copy_source_conditionals(
    headers: Mapping[str, str], etag: str, last_modified: float
) -> Condition:
    """x-amz-copy-source-if-*: every failure is 412 (CopyObject, UploadPartCopy)."""
    result = _evaluate(
        headers.get("x-amz-copy-source-if-match"),
        headers.get("x-amz-copy-source-if-none-match"),
        headers.get("x-amz-copy-source-if-modified-since"),
        headers.get("x-amz-copy-source-if-unmodified-since"),
        etag,
        last_modified,
    )
    if result is Condition.NOT_MODIFIED:
        return Condition.PRECONDITION_FAILED
    return result


def parse_write_condition(headers: Mapping[str, str]) -> WriteCondition | None:
    """Conditional writes (PutObject, CompleteMultipartUpload): ``If-None-Match: *`` (create
    only), ``If-None-Match: "<etag>", …`` (not over a version with one of these ETags, HTTP's
    meaning, as Ceph and MinIO apply it) and ``If-Match: "<etag>"``."""
    if_none_match = headers.get("if-none-match")
    if_match = headers.get("if-match")
    if if_none_match is None and if_match is None:
        return None
    etags: tuple[str, ...] = ()
    star = False
    if if_none_match is not None:
        if if_none_match.strip() == "*":
            star = True
        else:
            etags = tuple(unquote_etag(v) for v in if_none_match.split(",") if v.strip())
    return WriteCondition(
        if_match=unquote_etag(if_match) if if_match is not None else None,
        if_none_match_star=star,
        if_none_match=etags,
    )


# Request headers for features jay does not have (or a bucket does not have: Object Lock).
# Accepting and ignoring them would tell a client its data is encrypted under its own or a KMS
# key, or locked against deletion, when it is not.
_SSE_C_HEADERS = frozenset(
    {
        "x-amz-server-side-encryption-customer-algorithm",
        "x-amz-server-side-encryption-customer-key",
        "x-amz-server-side-encryption-customer-key-md5",
        "x-amz-copy-source-server-side-encryption-customer-algorithm",
        "x-amz-copy-source-server-side-encryption-customer-key",
        "x-amz-copy-source-server-side-encryption-customer-key-md5",
    }
)
_OBJECT_LOCK_HEADERS = frozenset(
    {
        "x-amz-object-lock-mode",
        "x-amz-object-lock-retain-until-date",
        "x-amz-object-lock-legal-hold",
    }
)
_KMS_HEADERS = frozenset(
    {"x-amz-server-side-encryption-aws-kms-key-id", "x-amz-server-side-encryption-context"}
)
_UNSUPPORTED_WRITE_HEADERS = (
    _SSE_C_HEADERS | _OBJECT_LOCK_HEADERS | _KMS_HEADERS | {"x-amz-server-side-encryption"}
)


_SSE_C_WRITE_HEADERS = (
    "x-amz-server-side-encryption-customer-algorithm",
    "x-amz-server-side-encryption-customer-key",
    "x-amz-server-side-encryption-customer-key-md5",
)
_SSE_C_SOURCE_HEADERS = (
    "x-amz-copy-source-server-side-encryption-customer-algorithm",
    "x-amz-copy-source-server-side-encryption-customer-key",
    "x-amz-copy-source-server-side-encryption-customer-key-md5",
)


@dataclass(frozen=True, slots=True)
class RequestedEncryption:
    """What a write's headers ask for: SSE-S3 (``mode``), SSE-C with ``customer``'s key, or
    SSE-KMS with a keyring key (``kms_key_id``, None: the default one) and context."""

    mode: str  # encryption.MODE_SSE_S3 | MODE_SSE_C | MODE_SSE_KMS
    customer: CustomerKey | None = None
    kms_key_id: str | None = None
    kms_context: str = ""


def check_write_features(
    headers: Mapping[str, str], *, is_lock_enabled: bool = False
) -> RequestedEncryption | None:
    """The encryption a write asks for (PutObject, CopyObject, multipart, POST forms), None
    when it asks for none; refuses what jay cannot do: DSSE-KMS → 501 ``NotImplemented``;
    object-lock headers → 400 ``InvalidRequest``, S3's answer for a bucket without an object
    lock configuration (``is_lock_enabled``: the bucket has one, and the caller reads them).
    Bad or conflicting encryption headers are S3's 400 ``InvalidArgument``s."""
    if headers.keys().isdisjoint(_UNSUPPORTED_WRITE_HEADERS):
        return None
    if not is_lock_enabled and not headers.keys().isdisjoint(_OBJECT_LOCK_HEADERS):
        raise InvalidRequest("Bucket is missing Object Lock Configuration")
    customer = parse_customer_key(*(headers.get(name) for name in _SSE_C_WRITE_HEADERS))
    sse = headers.get("x-amz-server-side-encryption")
    if sse is None or sse.strip() == AES256:
        if not headers.keys().isdisjoint(_KMS_HEADERS):
            raise InvalidArgument(
                "Server Side Encryption with AWS KMS managed key requires HTTP header "
                "x-amz-server-side-encryption : aws:kms",
                argument_name="x-amz-server-side-encryption",
            )
        if customer is not None:
            if sse is not None:
                raise InvalidArgument(
                    "Server Side Encryption with Customer provided key is incompatible with "
                    "the encryption method specified",
                    argument_name="x-amz-server-side-encryption",
                    argument_value=sse,
                )
            return RequestedEncryption(MODE_SSE_C, customer)
        return RequestedEncryption(MODE_SSE_S3) if sse is not None else None
    if sse.strip() == AWS_KMS:
        if customer is not None:
            raise InvalidArgument(
                "Server Side Encryption with Customer provided key is incompatible with the "
                "encryption method specified",
                argument_name="x-amz-server-side-encryption",
                argument_value=sse,
            )
        key_id = headers.get("x-amz-server-side-encryption-aws-kms-key-id")
        return RequestedEncryption(
            MODE_SSE_KMS,
            kms_key_id=key_id.strip() if key_id and key_id.strip() else None,
            kms_context=parse_kms_context(headers.get("x-amz-server-side-encryption-context")),
        )
    if sse.strip() == "aws:kms:dsse":
        raise NotImplementedOperation(
            "Dual-layer server-side encryption with KMS keys is not supported"
        )
    raise InvalidArgument(
        "The encryption method specified is not supported",
        argument_name="x-amz-server-side-encryption",
        argument_value=sse,
    )


def check_read_features(headers: Mapping[str, str]) -> CustomerKey | None:
    """The SSE-C key a GET/HEAD (or an UploadPart) carries, checked against its MD5; None
    without SSE-C headers."""
    if headers.keys().isdisjoint(_SSE_C_HEADERS):
        return None
    return parse_customer_key(*(headers.get(name) for name in _SSE_C_WRITE_HEADERS))


def copy_source_customer_key(headers: Mapping[str, str]) -> CustomerKey | None:
    """The key a CopyObject / UploadPartCopy gives for an SSE-C source."""
    if headers.keys().isdisjoint(_SSE_C_HEADERS):
        return None
    return parse_customer_key(
        *(headers.get(name) for name in _SSE_C_SOURCE_HEADERS), copy_source=True
    )


def parse_delete_condition(headers: Mapping[str, str]) -> DeleteCondition | None:
    """Conditional DeleteObject: ``If-Match`` (an ETag or ``*``),
    ``x-amz-if-match-last-modified-time`` (an HTTP date) and ``x-amz-if-match-size``. A
    precondition that cannot be read is an error, never ignored."""
    fields = {
        "if-match": headers.get("if-match"),
        "x-amz-if-match-last-modified-time": headers.get("x-amz-if-match-last-modified-time"),
        "x-amz-if-match-size": headers.get("x-amz-if-match-size"),
    }
    try:
        return delete_condition(*fields.values(), parse_date=parse_http_date)
    except UnreadablePrecondition as bad:
        name = list(fields)[bad.index]
        raise InvalidArgument(
            f"Invalid {name}", argument_name=name, argument_value=fields[name]
        ) from None


class UnreadablePrecondition(ValueError):
    """``delete_condition``: argument number ``index`` (0: ETag, 1: time, 2: size) is bad."""

    def __init__(self, index: int) -> None:
        super().__init__(index)
        self.index = index


def delete_condition(
    etag: str | None,
    last_modified: str | None,
    size: str | None,
    *,
    parse_date: Callable[[str], float | None],
) -> DeleteCondition | None:
    """The preconditions of one conditional delete, whether they came as headers (DeleteObject)
    or as elements of one ``Object`` (DeleteObjects); None when there are none."""
    if etag is None and last_modified is None and size is None:
        return None
    when = None
    if last_modified is not None:
        when = parse_date(last_modified)
        if when is None:
            raise UnreadablePrecondition(1)
    if size is not None and not (size.strip().isdigit() and size.strip().isascii()):
        raise UnreadablePrecondition(2)
    return DeleteCondition(
        if_match=unquote_etag(etag) if etag is not None else None,
        last_modified=when,
        size=int(size) if size is not None else None,
    )


# ---------------------------------------------------------------------------------------------
# CopyObject / UploadPartCopy source (JAY_SPEC §2.10)


@dataclass(frozen=True, slots=True)
class CopySource:
    bucket: str
    key: str
    version_id: str | None = None  # a ``?versionId=`` suffix: copy that version


def parse_copy_source(value: str) -> CopySource:
    """``x-amz-copy-source`` → bucket and key.

    Accepts ``bucket/key`` and ``/bucket/key``, each percent-decoded (``+`` stays a plus). A
    ``?versionId=`` suffix is split off and names the version to copy (upstream made the
    suffix part of the key); a malformed id is InvalidArgument.
    """
    raw = value.strip()
    raw_path, _, raw_query = raw.partition("?")
    try:
        query = dict(parse_query(raw_query)) if raw_query else {}
    except ValueError:
        raise InvalidArgument("Invalid copy source encoding", resource=value) from None
    version_id = query.get("versionId")
    if version_id is not None:
        validate_version_id(version_id)
    raw_path = raw_path.removeprefix("/")
    raw_bucket, slash, raw_key = raw_path.partition("/")
    if not slash or not raw_bucket or not raw_key:
        raise InvalidArgument("Invalid copy source object key", resource=value)
    try:
        bucket = percent_decode(raw_bucket)
        key = percent_decode(raw_key)
    except ValueError:
        raise InvalidArgument("Invalid copy source encoding", resource=value) from None
    if "/" in bucket or not key:
        raise InvalidArgument("Invalid copy source object key", resource=value)
    return CopySource(bucket, key, version_id)


_COPY_RANGE = re.compile(r"bytes=(\d+)-(\d+)")


def parse_copy_source_range(value: str, size: int) -> ByteRange:
    """``x-amz-copy-source-range: bytes=first-last``, both required and inside the source.

    Out of bounds is InvalidArgument (400), not InvalidRange: that is what S3 answers.
    """
    match = _COPY_RANGE.fullmatch(value.strip())
    if match is None:
        raise InvalidArgument(
            "The x-amz-copy-source-range value must be of the form bytes=first-last where "
            "first and last are the zero-based offsets of the first and last bytes to copy",
            argument_name="x-amz-copy-source-range",
            argument_value=value,
        )
    first, last = int(match.group(1)), int(match.group(2))
    if first > last or last >= size:
        raise InvalidArgument(f"Range specified is not valid for source object of size: {size}")
    return ByteRange(first, last - first + 1)


# ---------------------------------------------------------------------------------------------
# User metadata and response headers

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def _clean_value(value: str) -> str:
    return value.replace("\r", "").replace("\n", "")


# An RFC 2047 encoded-word: =?charset?B|Q?text?= (charset may carry an RFC 2231 *language).
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([BbQq])\?([^?\s]*)\?=")


def decode_metadata_value(value: str) -> str:
    """A metadata value as S3 stores it: RFC 2047 encoded-words (``=?UTF-8?B?…?=``) decoded,
    as the S3 user guide says. Only whole words set off by spaces count, and whitespace
    between two of them goes, as RFC 2047 says; a value with a word that does not decode
    (bad base64, unknown charset, bytes invalid in it) is kept exactly as sent."""
    if "=?" not in value:  # nearly every value: no regex run
        return value
    out: list[str] = []
    position = 0
    after_word = False
    for match in _ENCODED_WORD.finditer(value):
        start, end = match.span()
        if (start > 0 and not value[start - 1].isspace()) or (
            end < len(value) and not value[end].isspace()
        ):
            continue  # not delimited: plain text (RFC 2047 §5)
        decoded = _decode_word(match[1], match[2], match[3])
        if decoded is None:
            return value
        between = value[position:start]
        if not (after_word and not between.strip()):
            out.append(between)
        out.append(decoded)
        position = end
        after_word = True
    out.append(value[position:])
    return "".join(out)


def _decode_word(charset: str, encoding: str, text: str) -> str | None:
    try:
        if encoding in "Bb":
            raw = base64.b64decode(text, validate=True)
        else:
            raw = binascii.a2b_qp(text.encode("ascii"), header=True)
        return raw.decode(charset.partition("*")[0])
    except (binascii.Error, LookupError, UnicodeError, ValueError):
        return None


def encode_metadata_value(value: str) -> str:
    """A stored metadata value as S3 sends it: as is when US-ASCII, else one RFC 2047
    encoded-word of its UTF-8 (``=?UTF-8?B?…?=``), so the header stays ASCII and a client
    that decodes encoded-words gets the value back unchanged."""
    if value.isascii():
        return value
    encoded = base64.b64encode(value.encode("utf-8", "replace")).decode("ascii")
    return f"=?UTF-8?B?{encoded}?="


def extract_user_metadata(
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
) -> dict[str, str]:
    """``x-amz-meta-*`` request headers → stored metadata (JAY_SPEC §2.3).

    Names are lower-cased and keep the prefix (the stored map key); the first value of a
    repeated header wins; CR and LF are removed from values and RFC 2047 encoded-words decoded.
    More than 2 KB in total (names without the prefix plus values, UTF-8) is
    MetadataTooLarge.
    """
    items = headers.items() if isinstance(headers, Mapping) else headers
    metadata: dict[str, str] = {}
    total = 0
    for name, value in items:
        lowered = name.lower()
        if not lowered.startswith(META_PREFIX) or lowered in metadata:
            continue
        if len(lowered) == len(META_PREFIX):
            continue  # "x-amz-meta-" alone names nothing
        clean = decode_metadata_value(_clean_value(value).strip())
        metadata[lowered] = clean
        total += len(lowered[len(META_PREFIX) :].encode()) + len(clean.encode())
    if total > MAX_USER_METADATA_BYTES:
        raise MetadataTooLarge(size=total, max_size=MAX_USER_METADATA_BYTES)
    return metadata


def metadata_response_headers(metadata: Mapping[str, str]) -> list[tuple[str, str]]:
    """Stored metadata → ``x-amz-meta-*`` response headers.

    Keys stored by the native protocol without the prefix (``author``) get it, so metadata can
    never override a standard header (upstream let a native ``content-type`` key win). Keys
    that cannot be a header name are left out and counted in ``x-amz-missing-meta``, as S3
    does for metadata it cannot represent. Values beyond US-ASCII go out as RFC 2047
    encoded-words, as S3 sends them.
    """
    if not metadata:
        return []
    out: list[tuple[str, str]] = []
    missing = 0
    seen: set[str] = set()
    for key, value in metadata.items():
        lowered = key.lower()
        name = lowered if lowered.startswith(META_PREFIX) else META_PREFIX + lowered
        if not _TOKEN.fullmatch(name) or len(name) == len(META_PREFIX) or name in seen:
            missing += 1
            continue
        seen.add(name)
        out.append((name, encode_metadata_value(_clean_value(value))))
    if missing:
        out.append(("x-amz-missing-meta", str(missing)))
    return out


# response-* query parameters → the header each one overrides (GetObject, HeadObject).
RESPONSE_OVERRIDES: Mapping[str, str] = {
    "response-content-type": "Content-Type",
    "response-content-language": "Content-Language",
    "response-expires": "Expires",
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
}


def response_overrides(params: Mapping[str, str]) -> list[tuple[str, str]]:
    """(header, value) pairs the caller sets in place of the stored values.

    CR/LF are removed so a query parameter can never inject a header.
    """
    if not params:
        return []  # the usual GET/HEAD: no query at all
    return [
        (header, _clean_value(params[param]))
        for param, header in RESPONSE_OVERRIDES.items()
        if param in params
    ]


# ---------------------------------------------------------------------------------------------
# Digests

# Raw digest length of each flexible checksum algorithm.
CHECKSUM_DIGEST_BYTES: Mapping[str, int] = {
    "CRC32": 4,
    "CRC32C": 4,
    "CRC64NVME": 8,
    "SHA1": 20,
    "SHA256": 32,
}


def _strict_b64(value: str) -> bytes | None:
    try:
        return base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None


def parse_content_md5(value: str) -> bytes:
    """``Content-MD5`` → the raw 16-byte digest; InvalidDigest unless base64 of 16 bytes."""
    digest = _strict_b64(value)
    if digest is None or len(digest) != 16:
        raise InvalidDigest()
    return digest


# (algorithm, request header, digest bytes), built once: every PUT looks for each of them.
_CHECKSUM_HEADERS = tuple(
    (algorithm, "x-amz-checksum-" + algorithm.lower(), length)
    for algorithm, length in CHECKSUM_DIGEST_BYTES.items()
)


def parse_checksum_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """``x-amz-checksum-<alg>`` request headers → {ALGORITHM: base64}, each validated.

    A value that is not base64 of the algorithm's digest length is InvalidRequest, which is
    what S3 answers ("Value for x-amz-checksum-… header is invalid."). More than one algorithm
    is InvalidRequest too.
    """
    found: dict[str, str] = {}
    for algorithm, header, length in _CHECKSUM_HEADERS:
        value = headers.get(header)
        if value is None:
            continue
        digest = _strict_b64(value)
        if digest is None or len(digest) != length:
            raise InvalidRequest(f"Value for {header} header is invalid.")
        found[algorithm] = value.strip()
    if len(found) > 1:
        raise InvalidRequest(
            "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed."
        )
    return found


def parse_complete_checksum_headers(headers: Mapping[str, str]) -> tuple[dict[str, str], str]:
    """CompleteMultipartUpload's claims about the whole object: ({ALGORITHM: value},
    checksum type or "").

    A value is base64 of the algorithm's digest, followed by "-N" (N parts) for a COMPOSITE
    checksum; anything else is InvalidRequest ("Value for x-amz-checksum-… header is
    invalid."), as for any other request. Whether it matches is for completion to say
    (BadDigest). More than one algorithm is InvalidRequest.
    """
    found: dict[str, str] = {}
    for algorithm, header, length in _CHECKSUM_HEADERS:
        value = headers.get(header)
        if value is not None:
            digest, dash, count = value.strip().partition("-")
            raw = _strict_b64(digest)
            if (
                raw is None
                or len(raw) != length
                or (dash and not (count.isdigit() and 1 <= int(count) <= 10000))
            ):
                raise InvalidRequest(f"Value for {header} header is invalid.")
            found[algorithm] = value.strip()
    if len(found) > 1:
        raise InvalidRequest(
            "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed."
        )
    checksum_type = headers.get("x-amz-checksum-type", "").strip().upper()
    if checksum_type not in ("", "COMPOSITE", "FULL_OBJECT"):
        raise InvalidRequest("Value for x-amz-checksum-type header is invalid.")
    return found, checksum_type


# What x-amz-object-attributes may name (GetObjectAttributes).
OBJECT_ATTRIBUTES = frozenset({"ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"})
# S3's cap on the parts one GetObjectAttributes lists (as for ListParts).
MAX_ATTRIBUTE_PARTS = 1000


def parse_object_attributes(headers: Mapping[str, str]) -> frozenset[str]:
    """``x-amz-object-attributes`` (comma-separated, case-sensitive names) → the set asked for.

    Missing or empty is InvalidRequest and an unknown name InvalidArgument naming it, as S3
    answers; empty items between commas are skipped.
    """
    names = [item.strip() for item in headers.get("x-amz-object-attributes", "").split(",")]
    names = [name for name in names if name]
    if not names:
        raise InvalidRequest(
            "The x-amz-object-attributes header specifying the attributes to be retrieved is "
            "either missing or empty"
        )
    for name in names:
        if name not in OBJECT_ATTRIBUTES:
            raise InvalidArgument(
                "Invalid attribute name specified.",
                argument_name="x-amz-object-attributes",
                argument_value=name,
            )
    return frozenset(names)


def parse_attribute_parts_paging(headers: Mapping[str, str]) -> tuple[int, int]:
    """(max parts, part number marker) from ``x-amz-max-parts`` / ``x-amz-part-number-marker``.

    S3 ignores a value that is not a non-negative integer (the default applies); more than
    1000 parts are never listed at once."""
    max_parts = _non_negative(headers.get("x-amz-max-parts"), MAX_ATTRIBUTE_PARTS)
    marker = _non_negative(headers.get("x-amz-part-number-marker"), 0)
    return min(max_parts, MAX_ATTRIBUTE_PARTS), marker


def _non_negative(text: str | None, default: int) -> int:
    text = (text or "").strip()
    if not (text.isascii() and text.isdigit()):
        return default
    return int(text)


def check_given_checksums(given: Mapping[str, str], computed: Mapping[str, str]) -> None:
    """BadDigest unless every checksum the client sent (algorithm → base64, from headers,
    trailers or form fields) equals the one computed over the bytes received."""
    for algorithm, value in given.items():
        if computed.get(algorithm) != value:
            raise BadDigest(f"The {algorithm} you specified did not match the calculated checksum.")
