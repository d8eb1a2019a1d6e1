"""Admin API JSON: decoding request bodies the way upstream's Go decoder does, rendering records
with upstream's field names (JAY_SPEC §4.1, §9.6). Pure: values in, values or bytes out.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from jay.storage.api import Account, BucketInfo, ObjectInfo, TokenRecord

# Admin bodies are a few hundred bytes; a policy is at most 20 KiB. The cap keeps an
# authenticated but confused client from making us parse megabytes.
MAX_BODY_BYTES = 1 << 20


class InvalidBody(ValueError):
    """The body is not the JSON object the endpoint expects (upstream: "invalid request body")."""


def encode_json(value: Any) -> bytes:
    """Compact JSON plus a newline, as Go's json.Encoder writes it (HTML characters escaped)."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    # Go escapes these inside strings; they can appear nowhere else in JSON text.
    for char, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escaped)
    return text.encode("utf-8") + b"\n"


def error_body(message: str) -> bytes:
    return encode_json({"error": message})


# --- timestamps ------------------------------------------------------------------------------


def rfc3339(timestamp: float) -> str:
    """UTC RFC 3339 with the fraction's trailing zeros trimmed, as Go's time.Time marshals.

    Stored times are float seconds, exact to about a microsecond, so six digits at most.
    """
    micros = round(timestamp * 1_000_000)
    seconds, fraction = divmod(micros, 1_000_000)
    text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if fraction:
        text += "." + f"{fraction:06d}".rstrip("0")
    return text + "Z"


_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})", re.ASCII
)


def parse_rfc3339(text: str) -> float:
    """RFC 3339 (a zone is required) → Unix seconds; InvalidBody otherwise."""
    if not _RFC3339.fullmatch(text):
        raise InvalidBody("expires_at must be an RFC 3339 timestamp")
    normalised = text.upper().replace("Z", "+00:00")
    try:
        return datetime.fromisoformat(normalised).timestamp()
    except ValueError:
        raise InvalidBody("expires_at must be an RFC 3339 timestamp") from None


# --- request bodies --------------------------------------------------------------------------


def decode_object(raw: bytes) -> dict[str, Any]:
    """The first JSON value of ``raw``, which must be an object; keys lower-cased because Go
    matches struct fields case-insensitively. An empty body is invalid, as upstream's is."""
    try:
        text = raw.decode("utf-8")
        value, _ = json.JSONDecoder().raw_decode(text.lstrip())
    except (UnicodeDecodeError, ValueError):
        raise InvalidBody("invalid request body") from None
    if not isinstance(value, dict):
        raise InvalidBody("invalid request body")
    return {str(k).lower(): v for k, v in value.items()}


def field_str(doc: dict[str, Any], name: str) -> str:
    value = doc.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidBody("invalid request body")
    return value


def field_str_list(doc: dict[str, Any], name: str) -> list[str]:
    value = doc.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidBody("invalid request body")
    return list(value)


def field_int(doc: dict[str, Any], name: str) -> int:
    """An integer number; floats, strings and booleans fail as Go's int decoding does."""
    value = doc.get(name)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidBody("invalid request body")
    return value


# --- records ---------------------------------------------------------------------------------


def account_json(account: Account) -> dict[str, Any]:
    return {
        "account_id": account.account_id,
        "name": account.name,
        "created_at": rfc3339(account.created_at),
        "status": account.status,
    }


def token_json(token: TokenRecord) -> dict[str, Any]:
    """A token as upstream lists it: secret_hash present but blank, secret_key left out."""
    body: dict[str, Any] = {
        "token_id": token.token_id,
        "account_id": token.account_id,
        "name": token.name,
        "secret_hash": "",
        "allowed_actions": list(token.allowed_actions),
    }
    if token.bucket_scope:
        body["bucket_scope"] = list(token.bucket_scope)
    if token.prefix_scope:
        body["prefix_scope"] = list(token.prefix_scope)
    body["created_at"] = rfc3339(token.created_at)
    if token.expires_at is not None:
        body["expires_at"] = rfc3339(token.expires_at)
    body["status"] = token.status
    return body


def quarantined_json(info: ObjectInfo) -> dict[str, Any]:
    return {
        "bucket_id": info.bucket_id,
        "bucket_name": info.bucket,
        "key": info.key,
        "object_id": info.object_id,
        "size_bytes": info.size,
        "expected_checksum": info.sha256_hex,
        "location_ref": info.location_ref,
    }


def bucket_json(bucket: BucketInfo) -> dict[str, Any]:
    return {
        "bucket_id": bucket.bucket_id,
        "name": bucket.name,
        "owner_account_id": bucket.owner_account_id,
        "created_at": rfc3339(bucket.created_at),
        "visibility": bucket.visibility,
        "has_policy": bucket.policy_json is not None,
    }


# --- presign base URL ------------------------------------------------------------------------


def presign_base_url(*, public_url: str, listen_addr: str, is_tls: bool) -> str:
    """Where presigned links point: ``public_url`` when configured, else the S3 listen address
    with a usable host (upstream prints ``http://:9000``, JAY_SPEC §3.6 gap)."""
    if public_url:
        return public_url.rstrip("/")
    host, _, port = listen_addr.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if host in ("", "0.0.0.0", "::"):
        host = "localhost"
    if ":" in host:
        host = f"[{host}]"
    scheme = "https" if is_tls else "http"
    return f"{scheme}://{host}:{port}"
