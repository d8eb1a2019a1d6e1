"""Bucket-name and object-key validation; pure (JAY_SPEC §6.4, §8.2 item 8)."""

from __future__ import annotations

import ipaddress
import re

from jay.errors import InvalidArgument, InvalidBucketName, KeyTooLong

# S3's limit on an encoded key; upstream Jay had none (JAY_SPEC §6.4 GAP).
MAX_KEY_BYTES = 1024

# Version ids jay hands out are object ids (UUIDv4 text), besides "null" (§ versioning).
_VERSION_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")

_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def validate_bucket_name(name: str) -> None:
    """Raise InvalidBucketName unless ``name`` is acceptable at bucket creation (§6.4)."""
    if not _BUCKET_NAME.match(name) or ".." in name or "--" in name:
        raise InvalidBucketName(bucket=name)
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return
    raise InvalidBucketName(bucket=name)


def validate_key(key: str) -> None:
    """Keys are non-empty valid UTF-8 without NUL, at most 1024 bytes encoded.

    Keys never become paths, so ``../``, spaces and any other Unicode are fine.
    """
    if not key or "\x00" in key:
        raise InvalidArgument("Object key is not valid", key=key)
    try:
        encoded = key.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates
        raise InvalidArgument("Object key is not valid") from None
    if len(encoded) > MAX_KEY_BYTES:
        raise KeyTooLong(key=key[:64])


def validate_version_id(version_id: str) -> str:
    """A ``versionId`` argument: ``null`` or an id of the form jay hands out, else
    InvalidArgument (as S3 answers a malformed id; a well-formed unknown one is NoSuchVersion)."""
    if version_id == "null" or _VERSION_ID.match(version_id):
        return version_id
    raise InvalidArgument(
        "Invalid version id specified", argument_name="versionId", argument_value=version_id
    )
