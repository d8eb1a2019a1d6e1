"""Prefix / delimiter / continuation paging over keys in sorted order; pure (JAY_SPEC §2.8).

The driver (a query loop in ``metadata``) offers keys in ascending UTF-8 byte order (Python's
``str`` order is code-point order, which is the same thing) and obeys the returned action.

Fixes to upstream's algorithm: the continuation point is after the last entry of *either* kind,
and a page that ends on a common prefix continues after every key under that prefix. That
position is CP followed by U+10FFFF repeated until it is longer than any key may be (1024 bytes):
every valid key under CP sorts before it, and no client can mean it as a key, so a StartAfter a
client sends keeps plain S3 semantics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

# The largest code point, 4 bytes in UTF-8.
SENTINEL = "\U0010ffff"
# The longest valid key in UTF-8 bytes (names.MAX_KEY_BYTES; this module stays a leaf).
_MAX_KEY_BYTES = 1024


def common_prefix_of(key: str, prefix: str, delimiter: str) -> str | None:
    """The common prefix ``key`` rolls up into, or None when it is listed as itself."""
    if not delimiter:
        return None
    index = key.find(delimiter, len(prefix))
    if index < 0:
        return None
    return key[: index + len(delimiter)]


def position_after_prefix(common_prefix: str) -> str:
    """An exclusive start position past every valid key under ``common_prefix``."""
    room = _MAX_KEY_BYTES - len(common_prefix.encode("utf-8"))
    return common_prefix + SENTINEL * (max(room, 0) // 4 + 1)


@dataclass(frozen=True, slots=True)
class Seek:
    """Continue the scan from keys strictly greater than ``after``."""

    after: str


CONTINUE = "continue"
STOP = "stop"


class PageBuilder(Generic[T]):
    """Collects one page of objects and common prefixes, one max_keys unit per entry."""

    def __init__(self, *, prefix: str, delimiter: str, max_keys: int) -> None:
        self.prefix = prefix
        self.delimiter = delimiter
        self.max_keys = max(0, max_keys)
        self.objects: list[T] = []
        self.common_prefixes: list[str] = []
        self.is_truncated = False
        self.is_done = self.max_keys == 0
        self._last_position = ""
        self._last_prefix: str | None = None

    @property
    def entry_count(self) -> int:
        return len(self.objects) + len(self.common_prefixes)

    @property
    def room(self) -> int:
        """Entries the page can still take (the driver sizes its next batch by it)."""
        return self.max_keys - len(self.objects) - len(self.common_prefixes)

    @property
    def next_start_after(self) -> str:
        return self._last_position if self.is_truncated else ""

    def finish(self) -> None:
        self.is_done = True

    def offer(self, key: str, item: T) -> str | Seek:
        """Take the next key in order; say whether to go on, seek forward or stop."""
        if self.is_done:
            return STOP
        prefix = self.prefix
        if not key.startswith(prefix):
            self.is_done = True
            return STOP
        # common_prefix_of, inlined: this runs once per row of a delimited listing.
        delimiter = self.delimiter
        index = key.find(delimiter, len(prefix)) if delimiter else -1
        common = key[: index + len(delimiter)] if index >= 0 else None
        if common is not None and common == self._last_prefix:
            return CONTINUE  # already emitted (a safety net: the seek skips these keys)
        if len(self.objects) + len(self.common_prefixes) >= self.max_keys:
            self.is_truncated = True
            self.is_done = True
            return STOP
        if common is None:
            self.objects.append(item)
            self._last_position = key
            return CONTINUE
        self.common_prefixes.append(common)
        self._last_prefix = common
        self._last_position = position_after_prefix(common)
        return Seek(self._last_position)
