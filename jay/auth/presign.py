"""Query-string presigned URLs: Jay's own (X-Jay-*) and AWS Signature Version 2 (AWSAccessKeyId),
plus SigV2 header authentication (``Authorization: AWS id:signature``), which shares the V2
string to sign.

Pure: ``now`` is an argument, nothing here reads a clock or does I/O. SigV4 presigned URLs
(X-Amz-*) live in ``jay.auth.sigv4`` with the rest of SigV4.

Jay URLs (JAY_SPEC §3.6) are signed with the server's signing secret, not a token secret, so
verifying one proves only that the server (through the admin API) issued it for that token; the
caller still loads the token and checks it is active, unexpired and scoped.
"""

from __future__ import annotations

import base64
import datetime
import email.utils
import hashlib
import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import quote, quote_plus, unquote_to_bytes

from jay.errors import (
    AccessDenied,
    AuthorizationQueryParametersError,
    RequestTimeTooSkewed,
    SignatureDoesNotMatch,
)

JAY_TOKEN = "X-Jay-Token"
JAY_EXPIRES = "X-Jay-Expires"
JAY_SIGNATURE = "X-Jay-Signature"
_JAY_PARAMS = frozenset({JAY_TOKEN.encode(), JAY_EXPIRES.encode(), JAY_SIGNATURE.encode()})
# JAY_SPEC §3.6: a Jay URL may not be valid for more than seven days from now.
MAX_JAY_EXPIRES_AHEAD_SECONDS = 604800
_INVALID_JAY_URL = "Invalid presigned URL"


def _as_bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8")


def form_escape(value: bytes | str) -> str:
    """Go's url.QueryEscape: A-Z a-z 0-9 - _ . ~ kept, space → '+', the rest %XX upper-case."""
    return quote_plus(_as_bytes(value), safe="")


def parse_form_query(raw_query: bytes | str) -> list[tuple[bytes, bytes]]:
    """Split a query the way Go's url.ParseQuery does: '+' is a space, %XX decoded."""
    pairs: list[tuple[bytes, bytes]] = []
    for part in _as_bytes(raw_query).split(b"&"):
        if not part:
            continue
        name, _, value = part.partition(b"=")
        pairs.append(
            (
                unquote_to_bytes(name.replace(b"+", b" ")),
                unquote_to_bytes(value.replace(b"+", b" ")),
            )
        )
    return pairs


def jay_canonical_query(pairs: Iterable[tuple[bytes | str, bytes | str]]) -> str:
    """All parameters but X-Jay-*: keys sorted, a repeated key's values sorted, form-escaped."""
    kept = sorted(
        (_as_bytes(name), _as_bytes(value))
        for name, value in pairs
        if _as_bytes(name) not in _JAY_PARAMS
    )
    return "&".join(f"{form_escape(name)}={form_escape(value)}" for name, value in kept)


def jay_string_to_sign(
    token_id: str, method: str, decoded_path: bytes | str, canonical_query: str, expires: str
) -> bytes:
    return b"\n".join(
        [
            token_id.encode("utf-8"),
            method.encode("utf-8"),
            _as_bytes(decoded_path),
            canonical_query.encode("ascii"),
            expires.encode("utf-8"),
        ]
    )


def jay_signature(signing_secret: bytes | str, string_to_sign: bytes) -> str:
    """HMAC-SHA256 keyed with the raw signing secret (not the KEK), lower-case hex."""
    return hmac.new(_as_bytes(signing_secret), string_to_sign, hashlib.sha256).hexdigest()


def generate_jay_url(
    *,
    base_url: str,
    signing_secret: bytes | str,
    token_id: str,
    method: str,
    path: str,
    expires: int,
    query: Sequence[tuple[str, str]] = (),
) -> str:
    """``<base_url><escaped path>?<other params&>X-Jay-Expires=…&X-Jay-Signature=…&X-Jay-Token=…``.

    ``path`` is the decoded path (``/photos/my file.txt``); ``expires`` is Unix seconds.
    The method is signed exactly as given, as upstream does (JAY_SPEC §3.6).
    """
    canonical = jay_canonical_query(query)
    signature = jay_signature(
        signing_secret, jay_string_to_sign(token_id, method, path, canonical, str(expires))
    )
    auth = (
        f"{JAY_EXPIRES}={expires}&{JAY_SIGNATURE}={signature}&{JAY_TOKEN}={form_escape(token_id)}"
    )
    escaped_path = quote(path.encode("utf-8"), safe="/")
    prefix = f"{canonical}&" if canonical else ""
    return f"{base_url.rstrip('/')}{escaped_path}?{prefix}{auth}"


def has_jay_presign(raw_query: bytes | str) -> bool:
    query = _as_bytes(raw_query)
    return any(name in _JAY_PARAMS for name, _ in parse_form_query(query))


@dataclass(frozen=True, slots=True)
class JayPresign:
    token_id: str
    expires: int


def verify_jay_url(
    *,
    signing_secret: bytes | str,
    method: str,
    raw_path: bytes | str,
    raw_query: bytes | str,
    now: float,
) -> JayPresign:
    """Check a Jay presigned request; the caller then checks the token and its account.

    Every failure is AccessDenied("Invalid presigned URL") (JAY_SPEC §3.6), in the upstream
    order: parameters present → integer expiry → not past → not > 7 days ahead → signature.
    """
    pairs = parse_form_query(raw_query)
    found: dict[bytes, bytes] = {}
    for name, value in pairs:
        if name in _JAY_PARAMS:
            found.setdefault(name, value)
    token = found.get(JAY_TOKEN.encode())
    expires_raw = found.get(JAY_EXPIRES.encode())
    signature = found.get(JAY_SIGNATURE.encode())
    if not token or not expires_raw or not signature:
        raise AccessDenied(_INVALID_JAY_URL)
    expires_text = expires_raw.decode("utf-8", "replace")
    try:
        expires = int(expires_text)
    except ValueError:
        raise AccessDenied(_INVALID_JAY_URL) from None
    if now > expires or expires - now > MAX_JAY_EXPIRES_AHEAD_SECONDS:
        raise AccessDenied(_INVALID_JAY_URL)
    token_id = token.decode("utf-8", "replace")
    decoded_path = unquote_to_bytes(_as_bytes(raw_path)) or b"/"
    expected = jay_signature(
        signing_secret,
        jay_string_to_sign(
            token_id, method, decoded_path, jay_canonical_query(pairs), expires_text
        ),
    )
    if not hmac.compare_digest(expected.encode("ascii"), signature):
        raise AccessDenied(_INVALID_JAY_URL)
    return JayPresign(token_id=token_id, expires=expires)


# --- AWS Signature Version 2 query authentication ----------------------------------------------

# Sub-resources that are part of the SigV2 canonical resource (the list botocore signs).
SIGV2_SUBRESOURCES = frozenset(
    {
        "accelerate",
        "acl",
        "analytics",
        "cors",
        "defaultObjectAcl",
        "delete",
        "inventory",
        "lifecycle",
        "location",
        "logging",
        "metrics",
        "notification",
        "object-lock",
        "partNumber",
        "policy",
        "replication",
        "requestPayment",
        "response-cache-control",
        "response-content-disposition",
        "response-content-encoding",
        "response-content-language",
        "response-content-type",
        "response-expires",
        "restore",
        "select",
        "select-type",
        "storageClass",
        "tagging",
        "torrent",
        "uploadId",
        "uploads",
        "versionId",
        "versioning",
        "versions",
        "website",
    }
)
_SIGV2_PARAMS = ("AWSAccessKeyId", "Expires", "Signature")


@dataclass(frozen=True, slots=True, kw_only=True)
class SigV2Presign:
    access_key: str
    expires: int
    signature: str  # base64 as sent
    method: str
    raw_path: bytes
    raw_query: bytes
    headers: tuple[tuple[bytes, bytes], ...]


def has_sigv2_query(raw_query: bytes | str) -> bool:
    query = _as_bytes(raw_query)
    return b"AWSAccessKeyId=" in query and b"Signature=" in query


def _split_raw(raw_query: bytes) -> list[tuple[str, str | None]]:
    """(decoded name, decoded value or None when there was no '=')."""
    out: list[tuple[str, str | None]] = []
    for part in raw_query.split(b"&"):
        if not part:
            continue
        name, sep, value = part.partition(b"=")
        decoded_value = unquote_to_bytes(value).decode("utf-8", "replace") if sep else None
        out.append((unquote_to_bytes(name).decode("utf-8", "replace"), decoded_value))
    return out


def parse_sigv2_query(
    method: bytes | str,
    raw_path: bytes | str,
    raw_query: bytes | str,
    headers: Sequence[tuple[bytes | str, bytes | str]],
) -> SigV2Presign:
    query = _as_bytes(raw_query)
    values: dict[str, list[str]] = {}
    for name, value in _split_raw(query):
        if name in _SIGV2_PARAMS:
            values.setdefault(name, []).append(value or "")
    for name in _SIGV2_PARAMS:
        if len(values.get(name, ())) != 1 or not values[name][0]:
            raise AuthorizationQueryParametersError(
                f"Query-string authentication requires exactly one {name}"
            )
    expires_text = values["Expires"][0]
    if not expires_text.isdigit():
        raise AuthorizationQueryParametersError("Expires must be a number of Unix seconds")
    return SigV2Presign(
        access_key=values["AWSAccessKeyId"][0],
        expires=int(expires_text),
        signature=values["Signature"][0],
        method=(method.decode("ascii") if isinstance(method, bytes) else method).upper(),
        raw_path=_as_bytes(raw_path),
        raw_query=query,
        headers=tuple((_as_bytes(k), _as_bytes(v)) for k, v in headers),
    )


def _sigv2_string(
    method: str,
    headers: Sequence[tuple[bytes, bytes]],
    raw_query: bytes,
    resource_path: bytes,
    date_slot: bytes,
    *,
    query_fills_headers: bool,
    raw_subresource_values: bool = False,
) -> bytes:
    """METHOD, Content-MD5, Content-Type, date slot, x-amz-* headers, resource + sub-resources.

    ``raw_subresource_values`` keeps sub-resource values as sent (s3cmd signs them escaped)
    instead of decoded (botocore and AWS's documentation).
    """
    header_values: dict[str, list[bytes]] = {}
    for raw_name, raw_value in headers:
        header_values.setdefault(raw_name.decode("latin-1").strip().lower(), []).append(
            raw_value.strip()
        )
    query_values: dict[str, bytes] = {}
    if query_fills_headers:
        for query_name, query_value in _split_raw(raw_query):
            lowered = query_name.lower()
            if query_value is not None and (
                lowered.startswith("x-amz-") or lowered in ("content-md5", "content-type")
            ):
                query_values.setdefault(lowered, query_value.encode("utf-8"))

    def standard(name: str) -> bytes:
        if name in header_values:
            return header_values[name][0]
        return query_values.get(name, b"")

    amz: dict[str, bytes] = {
        name: v for name, v in query_values.items() if name.startswith("x-amz-")
    }
    for name, values in header_values.items():
        if name.startswith("x-amz-"):
            amz[name] = b",".join(values)
    amz_block = b"".join(name.encode("ascii") + b":" + amz[name] + b"\n" for name in sorted(amz))

    if raw_subresource_values:
        subresources: list[tuple[str, str | None]] = []
        for part in raw_query.split(b"&"):
            name_raw, sep, value_raw = part.partition(b"=")
            name = unquote_to_bytes(name_raw).decode("utf-8", "replace")
            if name in SIGV2_SUBRESOURCES:
                subresources.append((name, value_raw.decode("latin-1") if sep else None))
    else:
        subresources = [
            (name, value) for name, value in _split_raw(raw_query) if name in SIGV2_SUBRESOURCES
        ]
    subresources.sort(key=lambda item: item[0])  # stable: repeated names keep their order
    resource = resource_path or b"/"
    if subresources:
        resource += b"?" + b"&".join(
            (name if value is None else f"{name}={value}").encode("utf-8")
            for name, value in subresources
        )
    return b"\n".join(
        [
            method.encode("ascii"),
            standard("content-md5"),
            standard("content-type"),
            date_slot,
            amz_block + resource,
        ]
    )


def sigv2_string_to_sign(parsed: SigV2Presign) -> bytes:
    """METHOD, Content-MD5, Content-Type, Expires, x-amz-* headers, resource with sub-resources.

    Content-MD5, Content-Type and x-amz-* come from the request headers; a presigner such as
    botocore also copies them into the query, so query values fill in headers the client omits.
    """
    return _sigv2_string(
        parsed.method,
        parsed.headers,
        parsed.raw_query,
        parsed.raw_path,
        str(parsed.expires).encode("ascii"),
        query_fills_headers=True,
    )


def sigv2_signature(secret: str, string_to_sign: bytes) -> str:
    digest = hmac.new(secret.encode("utf-8"), string_to_sign, hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_sigv2_query(parsed: SigV2Presign, secret: str, *, now: float) -> None:
    """AccessDenied("Request has expired") when past ``Expires``; SignatureDoesNotMatch if wrong.

    SigV2 has no upper bound on ``Expires`` (AWS has none either for V2).
    """
    if now > parsed.expires:
        raise AccessDenied("Request has expired")
    if not secret:
        raise SignatureDoesNotMatch()
    expected = sigv2_signature(secret, sigv2_string_to_sign(parsed))
    if not hmac.compare_digest(expected.encode("ascii"), parsed.signature.encode("utf-8")):
        raise SignatureDoesNotMatch()


# --- AWS Signature Version 2 header authentication (``Authorization: AWS id:signature``) -------

# Same window as SigV4 (and AWS): a Date more than 15 minutes from the server's clock fails.
SIGV2_MAX_SKEW_SECONDS = 15 * 60


@dataclass(frozen=True, slots=True, kw_only=True)
class SigV2Header:
    access_key: str
    signature: str  # base64 as sent
    method: str
    # The path the client signed: "/bucket/key" (a virtual-host request gets "/bucket" put back).
    resource_path: bytes
    raw_query: bytes
    headers: tuple[tuple[bytes, bytes], ...]
    request_time: float  # Unix seconds from x-amz-date, else Date


def has_sigv2_header(authorization: bytes) -> bool:
    return authorization.startswith(b"AWS ")


def _http_date(value: bytes) -> float | None:
    try:
        parsed = email.utils.parsedate_to_datetime(value.decode("latin-1").strip())
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return parsed.timestamp()


def parse_sigv2_header(
    method: bytes | str,
    raw_path: bytes | str,
    raw_query: bytes | str,
    headers: Sequence[tuple[bytes | str, bytes | str]],
    *,
    virtual_host_bucket: str = "",
) -> SigV2Header:
    """Parse ``Authorization: AWS <access key>:<base64 signature>`` and the request's date.

    AccessDenied when the header is malformed or no usable Date / x-amz-date is present, as AWS.
    """
    pairs = tuple((_as_bytes(k), _as_bytes(v)) for k, v in headers)
    authorization = b""
    date_header: bytes | None = None
    amz_date: bytes | None = None
    for name, value in pairs:
        lowered = name.lower()
        if lowered == b"authorization" and not authorization:
            authorization = value
        elif lowered == b"date" and date_header is None:
            date_header = value
        elif lowered == b"x-amz-date" and amz_date is None:
            amz_date = value
    if not has_sigv2_header(authorization):
        raise AccessDenied("Authorization header is not AWS Signature Version 2")
    access_key, sep, signature = (
        authorization[4:].strip().decode("utf-8", "replace").rpartition(":")
    )
    if not sep or not access_key or not signature:
        raise AccessDenied(
            "AWS authorization header is invalid; expected AWS AccessKeyId:signature"
        )
    request_time = _http_date(amz_date) if amz_date is not None else None
    if request_time is None and date_header is not None:
        request_time = _http_date(date_header)
    if request_time is None:
        raise AccessDenied("AWS authentication requires a valid Date or x-amz-date header")
    path = _as_bytes(raw_path) or b"/"
    if virtual_host_bucket:
        path = b"/" + virtual_host_bucket.encode("utf-8") + path
    return SigV2Header(
        access_key=access_key,
        signature=signature,
        method=(method.decode("ascii") if isinstance(method, bytes) else method).upper(),
        resource_path=path,
        raw_query=_as_bytes(raw_query),
        headers=pairs,
        request_time=request_time,
    )


def sigv2_header_strings_to_sign(parsed: SigV2Header) -> list[bytes]:
    """The strings a client may have signed, most common first.

    The Date slot is empty when x-amz-date is sent (it is then signed among the x-amz-*
    headers). Sub-resource values are signed decoded by botocore and escaped by s3cmd; jay's
    own values (upload ids) need no escaping, so both forms are accepted.
    """
    has_amz_date = any(name.lower() == b"x-amz-date" for name, _ in parsed.headers)
    date_slot = b""
    if not has_amz_date:
        for name, value in parsed.headers:
            if name.lower() == b"date":
                date_slot = value.strip()
                break
    paths = [parsed.resource_path]
    if parsed.resource_path.count(b"/") == 1 and len(parsed.resource_path) > 1:
        # A bucket request "/bucket": botocore signs the resource as "/bucket/".
        paths.append(parsed.resource_path + b"/")
    candidates = []
    for path in paths:
        for raw_values in (False, True):
            candidate = _sigv2_string(
                parsed.method,
                parsed.headers,
                parsed.raw_query,
                path,
                date_slot,
                query_fills_headers=False,
                raw_subresource_values=raw_values,
            )
            if candidate not in candidates:
                candidates.append(candidate)
    return candidates


def verify_sigv2_header(parsed: SigV2Header, secret: str, *, now: float) -> None:
    """RequestTimeTooSkewed beyond ±15 minutes; SignatureDoesNotMatch when no form matches."""
    if abs(now - parsed.request_time) > SIGV2_MAX_SKEW_SECONDS:
        raise RequestTimeTooSkewed()
    if not secret:
        raise SignatureDoesNotMatch()
    sent = parsed.signature.encode("utf-8")
    for string_to_sign in sigv2_header_strings_to_sign(parsed):
        expected = sigv2_signature(secret, string_to_sign).encode("ascii")
        if hmac.compare_digest(expected, sent):
            return
    raise SignatureDoesNotMatch()
