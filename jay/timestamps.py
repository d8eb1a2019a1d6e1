"""UTC timestamps as ISO 8601 text, cached per second (shared by the S3 XML and native codec).

A LIST page formats one time per entry and strftime costs ~3 µs. Entries mostly share a few
seconds (a cache hit costs ~0.1 µs); when they do not they still share days, and the time of
day comes from tables (POSIX days are 86400 s, as gmtime counts them too).
"""

from __future__ import annotations

import functools
import time


@functools.lru_cache(maxsize=4096)
def utc_second(whole_seconds: int) -> str:
    """``2024-01-02T03:04:05`` for a whole number of seconds since the epoch (no zone suffix)."""
    days, second_of_day = divmod(whole_seconds, 86400)
    minute, second = divmod(second_of_day, 60)
    return _utc_day(days) + _CLOCK_MINUTES[minute] + _CLOCK_SECONDS[second]


@functools.lru_cache(maxsize=1024)
def _utc_day(days: int) -> str:
    return time.strftime("%Y-%m-%dT", time.gmtime(days * 86400))


# "HH:MM:" for every minute of a day, "SS" for every second of a minute.
_CLOCK_MINUTES = tuple(f"{minute // 60:02d}:{minute % 60:02d}:" for minute in range(1440))
_CLOCK_SECONDS = tuple(f"{second:02d}" for second in range(60))
