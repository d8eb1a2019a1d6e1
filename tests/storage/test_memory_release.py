"""IdleMemoryRelease (jay/storage/memory.py): memory kept for reuse under load goes back to the
system once the process is quiet, once per quiet spell."""

from __future__ import annotations

import platform

import pytest
from twisted.internet import task

from jay.storage import blobs
from jay.storage.memory import QUIET_SECONDS, IdleMemoryRelease, release_memory

from .conftest import run_fresh_python


class Work:
    def __init__(self) -> None:
        self.count = 0
        self.releases = 0

    def release(self) -> None:
        self.releases += 1


def started(work: Work, clock: task.Clock) -> IdleMemoryRelease:
    service = IdleMemoryRelease(lambda: work.count, clock=clock, release=work.release)
    service.startService()
    return service


def test_nothing_is_released_before_any_work() -> None:
    work, clock = Work(), task.Clock()
    service = started(work, clock)
    clock.advance(QUIET_SECONDS * 10)
    clock.pump([QUIET_SECONDS] * 10)
    assert work.releases == 0
    service.stopService()


def test_released_once_after_a_quiet_interval_then_again_after_new_work() -> None:
    work, clock = Work(), task.Clock()
    service = started(work, clock)
    for _ in range(6):  # busy: something happens every interval
        work.count += 3
        clock.advance(QUIET_SECONDS)
    assert work.releases == 0
    clock.advance(QUIET_SECONDS)  # the first interval with nothing new
    assert work.releases == 1
    clock.pump([QUIET_SECONDS] * 20)  # staying quiet releases nothing more
    assert work.releases == 1
    work.count += 1
    clock.advance(QUIET_SECONDS)
    assert work.releases == 1
    clock.advance(QUIET_SECONDS)
    assert work.releases == 2
    service.stopService()
    work.count += 1
    clock.pump([QUIET_SECONDS] * 4)
    assert work.releases == 2 and not clock.getDelayedCalls()


def test_release_memory_unmaps_the_kept_direct_buffers() -> None:
    buffers = [blobs._take_direct_buffer() for _ in range(3)]
    for buffer in buffers:
        blobs._give_direct_buffer(buffer)
    before = blobs.direct_buffer_takes()
    release_memory()
    assert all(buffer.closed for buffer in buffers)
    fresh = blobs._take_direct_buffer()
    try:
        assert fresh not in buffers and blobs.direct_buffer_takes() == before + 1
    finally:
        blobs._give_direct_buffer(fresh)


FREED_THEN_TRIMMED = """
import sys
from jay.storage.libc import release_free_memory, tune_allocator
assert tune_allocator({})
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096
held = [bytearray(1024 * 1024) for _ in range(24)]  # 24 MiB, under the 32 MiB trim threshold
for b in held:
    b[::4096] = b"x" * len(b[::4096])  # touch every page
del held
kept = rss()
released = release_free_memory()
print(released, kept - rss())
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc malloc_trim")
def test_malloc_gives_back_what_the_trim_threshold_kept() -> None:
    out = run_fresh_python(FREED_THEN_TRIMMED)
    assert out[0] == "True"
    assert int(out[1]) > 16 * 1024 * 1024
