"""The multipart rules: part validation at completion and the multipart ETag; pure (§2.9, §8.2.6)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence

from jay.checksums import new_hasher
from jay.errors import EntityTooSmall, InvalidArgument, InvalidPart, InvalidPartOrder
from jay.storage.api import CompletedPart, PartInfo

MIN_PART_NUMBER = 1
MAX_PART_NUMBER = 10_000


def check_part_number(part_number: int) -> None:
    if not MIN_PART_NUMBER <= part_number <= MAX_PART_NUMBER:
        raise InvalidArgument("Invalid part number", part_number=part_number)


def multipart_etag(part_md5s: Sequence[bytes]) -> str:
    """hex(MD5(concat(raw part MD5s))) + "-N" (JAY_SPEC §2.9, vectors in §9.1)."""
    return f"{hashlib.md5(b''.join(part_md5s)).hexdigest()}-{len(part_md5s)}"


def select_parts(
    requested: Sequence[CompletedPart],
    uploaded: Mapping[int, PartInfo],
    min_part_size: int,
    *,
    bucket: str = "",
    key: str = "",
) -> list[PartInfo]:
    """The uploaded parts named in a Complete request, checked as S3 does."""
    previous = 0
    for item in requested:
        if item.part_number <= previous:
            raise InvalidPartOrder(bucket=bucket, key=key)
        previous = item.part_number
    selected: list[PartInfo] = []
    for item in requested:
        part = uploaded.get(item.part_number)
        if part is None:
            raise InvalidPart(bucket=bucket, key=key, part_number=item.part_number)
        if item.etag is not None and item.etag.strip().strip('"').lower() != part.etag:
            raise InvalidPart(bucket=bucket, key=key, part_number=item.part_number)
        selected.append(part)
    for part in selected[:-1]:
        if part.size < min_part_size:
            raise EntityTooSmall(bucket=bucket, key=key, part_number=part.part_number)
    return selected


def composite_checksum(algorithm: str, parts: Sequence[PartInfo]) -> str | None:
    """S3's COMPOSITE checksum: hash of the concatenated raw part checksums, then "-N"."""
    raw: list[bytes] = []
    for part in parts:
        value = part.checksums.get(algorithm)
        if value is None:
            return None
        raw.append(base64.b64decode(value))
    hasher = new_hasher(algorithm)
    hasher.update(b"".join(raw))
    return f"{base64.b64encode(hasher.digest()).decode('ascii')}-{len(parts)}"
