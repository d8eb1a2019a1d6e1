"""tune_allocator(): glibc malloc thresholds for 1 MiB body buffers (jay/storage/libc.py).

The behaviour it fixes is measured in a fresh interpreter each (malloc settings are
per-process): the pattern of a body read, ``recv(1 MiB)`` that returns less, the bytes kept
while a job writes them, then freed. Without the tuning each read maps fresh pages and faults
on every one the kernel copies into; with it the heap's memory is reused.
"""

from __future__ import annotations

import platform

import pytest

from jay.storage.libc import ALLOCATOR_ENVIRONMENT, tune_allocator

from .conftest import run_fresh_python

glibc_only = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc mallopt")

READS = """
import resource, socket, sys, threading
from jay.storage.libc import tune_allocator
tuned = tune_allocator({}) if sys.argv[1] == "tune" else False
a, b = socket.socketpair()
a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
piece = b"x" * (300 * 1024)
held = []
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for i in range(200):
    a.sendall(piece)
    got = 0
    while got < len(piece):
        data = b.recv(1 << 20)
        got += len(data)
        held.append(data)
    if len(held) > 8:  # a few reads queued for the writer, then freed
        del held[:4]
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(tuned, faults)
"""


def _faults(mode: str) -> tuple[bool, int]:
    out = run_fresh_python(READS, mode)
    return out[0] == "True", int(out[1])


@glibc_only
def test_tuned_reads_reuse_memory_instead_of_faulting_in_fresh_pages() -> None:
    tuned, tuned_faults = _faults("tune")
    untuned, untuned_faults = _faults("plain")
    assert tuned and not untuned
    # 200 reads of 300 KiB: untuned about 75 faults each (one per 4 KiB page copied into).
    assert untuned_faults > 5000
    assert tuned_faults * 10 < untuned_faults


@glibc_only
@pytest.mark.parametrize("name", ALLOCATOR_ENVIRONMENT)
def test_an_operators_malloc_environment_wins(name: str) -> None:
    assert tune_allocator({name: "1"}) is False


def test_tunes_only_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(platform, "libc_ver", lambda: ("musl", "1.2"))
    assert tune_allocator({}) is False
