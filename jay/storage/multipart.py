"""The multipart rules: part validation at completion and the multipart ETag; pure (§2.9, §8.2.6)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence

from jay.checksums import new_hasher
from jay.errors import (
    BadDigest,
    EntityTooSmall,
    InvalidArgument,
    InvalidPart,
    InvalidPartOrder,
    InvalidRequest,
)
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


def effective_checksum_type(algorithm: str, checksum_type: str) -> str:
    """The type an upload's object checksum has: the one asked for at creation, else S3's
    default for the algorithm (CRC64NVME is only ever FULL_OBJECT, the others COMPOSITE)."""
    if not algorithm:
        return ""
    if checksum_type:
        return checksum_type
    return "FULL_OBJECT" if algorithm == "CRC64NVME" else "COMPOSITE"


def check_complete_checksum_request(
    upload_algorithm: str,
    upload_type: str,
    given: Mapping[str, str],
    given_type: str,
    *,
    bucket: str = "",
    key: str = "",
) -> None:
    """What a CompleteMultipartUpload may claim about the whole object, checked before any
    byte is assembled: a checksum of another algorithm than the upload's is InvalidRequest
    (S3: "Checksum Type mismatch occurred"), a checksum type other than the upload's is
    BadDigest, as the S3 user guide says for a type that differs from CreateMultipartUpload's.
    """
    for algorithm in given:
        if algorithm != upload_algorithm:
            expected = upload_algorithm.lower() if upload_algorithm else "null"
            raise InvalidRequest(
                "Checksum Type mismatch occurred, expected checksum Type: "
                f"{expected}, actual checksum Type: {algorithm.lower()}",
                bucket=bucket,
                key=key,
            )
    effective_type = effective_checksum_type(upload_algorithm, upload_type)
    if given_type and given_type != effective_type:
        raise BadDigest(
            f"The upload was created using the {effective_type or 'null'} checksum mode. "
            "The complete request must use the same checksum mode.",
            bucket=bucket,
            key=key,
        )


def check_complete_checksums(
    given: Mapping[str, str], computed: Mapping[str, str], *, bucket: str = "", key: str = ""
) -> None:
    """The whole-object checksums a Complete request sent against what completion computed
    (the checksum of the assembled bytes for FULL_OBJECT, of the part checksums plus "-N" for
    COMPOSITE, as S3 answers it); any difference is BadDigest."""
    for algorithm, value in given.items():
        if computed.get(algorithm) != value.strip():
            raise BadDigest(
                f"The {algorithm} you specified did not match the calculated checksum.",
                bucket=bucket,
                key=key,
            )
