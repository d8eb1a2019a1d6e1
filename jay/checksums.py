"""Streaming flexible checksums as S3 defines them (x-amz-checksum-*), a leaf module.

CRCs come from awscrt (C, releases the GIL), SHA-1/SHA-256 from hashlib. Values are base64 of the
big-endian digest, as AWS sends them. Anyone may import this module.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from collections.abc import Callable, Iterable
from typing import Protocol

from awscrt import checksums as _crt

ALGORITHMS: tuple[str, ...] = ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256")
# Length in bytes of each raw digest: a base64 value that decodes to another length is invalid.
DIGEST_SIZES: dict[str, int] = {"CRC32": 4, "CRC32C": 4, "CRC64NVME": 8, "SHA1": 20, "SHA256": 32}


class Hasher(Protocol):
    def update(self, data: bytes | memoryview) -> None: ...
    def digest(self) -> bytes: ...


class _CRC:
    __slots__ = ("_fn", "_fmt", "_value")

    def __init__(self, fn: Callable[[bytes | memoryview, int], int], fmt: str) -> None:
        self._fn = fn
        self._fmt = fmt
        self._value = 0

    def update(self, data: bytes | memoryview) -> None:
        self._value = self._fn(data, self._value)

    def digest(self) -> bytes:
        return struct.pack(self._fmt, self._value)


def new_hasher(algorithm: str) -> Hasher:
    """A fresh hasher for one of ``ALGORITHMS`` (upper-case). ValueError for anything else."""
    name = algorithm.upper()
    if name == "CRC32":
        return _CRC(_crt.crc32, ">I")
    if name == "CRC32C":
        return _CRC(_crt.crc32c, ">I")
    if name == "CRC64NVME":
        return _CRC(_crt.crc64nvme, ">Q")
    if name == "SHA1":
        return hashlib.sha1()
    if name == "SHA256":
        return hashlib.sha256()
    raise ValueError(f"unknown checksum algorithm {algorithm!r}")


def encode(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def is_valid_value(algorithm: str, value: str) -> bool:
    """True when ``value`` is base64 of a digest of the right length for ``algorithm``."""
    try:
        raw = base64.b64decode(value, validate=True)
    except (ValueError, TypeError):
        return False
    return len(raw) == DIGEST_SIZES.get(algorithm.upper(), -1)


class MultiHasher:
    """Feeds several algorithms at once; ``values()`` gives algorithm -> base64."""

    __slots__ = ("_hashers",)

    def __init__(self, algorithms: Iterable[str]) -> None:
        self._hashers = {a.upper(): new_hasher(a) for a in algorithms}

    def update(self, data: bytes | memoryview) -> None:
        for h in self._hashers.values():
            h.update(data)

    def values(self) -> dict[str, str]:
        return {name: encode(h.digest()) for name, h in self._hashers.items()}


def checksum_of(algorithm: str, data: bytes) -> str:
    h = new_hasher(algorithm)
    h.update(data)
    return encode(h.digest())
