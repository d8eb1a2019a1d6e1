"""Query-string presigned URLs: Jay's own (X-Jay-*) and AWS Signature Version 2 (AWSAccessKeyId).

Pure: ``now`` is an argument, nothing here reads a clock or does I/O. SigV4 presigned URLs
(X-Amz-*) live in ``jay.auth.sigv4`` with the rest of SigV4.

Jay URLs (JAY_SPEC §3.6) are signed with the server's signing secret, not a token secret, so
verifying one proves only that the server (through the admin API) issued it for that token; the
caller still loads the token and checks it is active, unexpired and scoped.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import quote, quote_plus, unquote_to_bytes

from jay.errors import AccessDenied, AuthorizationQueryParametersError, SignatureDoesNotMatch

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


def sigv2_string_to_sign(parsed: SigV2Presign) -> bytes:
    """METHOD, Content-MD5, Content-Type, Expires, x-amz-* headers, resource with sub-resources.

    Content-MD5, Content-Type and x-amz-* come from the request headers; a presigner such as
    botocore also copies them into the query, so query values fill in headers the client omits.
    """
    header_values: dict[str, list[bytes]] = {}
    for raw_name, raw_value in parsed.headers:
        header_values.setdefault(raw_name.decode("latin-1").strip().lower(), []).append(
            raw_value.strip()
        )
    query_values: dict[str, bytes] = {}
    for query_name, query_value in _split_raw(parsed.raw_query):
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

    subresources = [
        (name, value) for name, value in _split_raw(parsed.raw_query) if name in SIGV2_SUBRESOURCES
    ]
    subresources.sort(key=lambda item: item[0])  # stable: repeated names keep their order
    resource = parsed.raw_path or b"/"
    if subresources:
        resource += b"?" + b"&".join(
            (name if value is None else f"{name}={value}").encode("utf-8")
            for name, value in subresources
        )
    return b"\n".join(
        [
            parsed.method.encode("ascii"),
            standard("content-md5"),
            standard("content-type"),
            str(parsed.expires).encode("ascii"),
            amz_block + resource,
        ]
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
