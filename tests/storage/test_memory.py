"""A 1 GiB put and get through the storage API stays within a bounded amount of memory.

Memory is measured, not inferred (STYLE.md): the process's resident set size is sampled every
50 ms while the body streams through a StagingWriter (fed by a producer that honours
back-pressure) and back out through a BlobProducer into a consumer that hashes and discards.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor, task

from jay.storage.api import ObjectAttributes

from .conftest import (
    CollectingConsumer,
    GeneratingProducer,
    object_file_path,
    tmp_files,
    wait_until,
)

GIB = 1024 * 1024 * 1024
MIB = 1024 * 1024
ALLOWED_GROWTH = 100 * MIB


def status_bytes(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024  # the value is in kB
    raise AssertionError(f"{field} not in /proc/self/status")


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where that is not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class PeakSampler:
    def __init__(self) -> None:
        self.peak = status_bytes("VmRSS")
        self.loop = task.LoopingCall(self.sample)
        self.loop.clock = reactor

    def sample(self) -> None:
        self.peak = max(self.peak, status_bytes("VmRSS"))

    def start(self) -> None:
        self.loop.start(0.05, now=True)

    def stop(self) -> int:
        self.sample()
        if self.loop.running:
            self.loop.stop()
        return self.peak


@pytest.mark.bigdata
@pytest.mark.timeout(240)
@pytest_twisted.ensureDeferred
async def test_one_gib_put_and_get_in_bounded_memory(svc: Any, bucket: str, data_dir: str) -> None:
    block = os.urandom(MIB)
    sha = hashlib.sha256()
    md5 = hashlib.md5()

    def make_chunk(index: int, size: int) -> bytes:
        # A fresh chunk each time (the index makes every MiB distinct); never the whole body.
        chunk = index.to_bytes(8, "big") + block[8:size]
        sha.update(chunk)
        md5.update(chunk)
        return chunk

    # Warm up pools and connections so their one-off allocations are in the baseline.
    warm = svc.begin_write()
    warm.write(b"warm-up")
    await svc.put_object(bucket, "warm", await warm.finish(), ObjectAttributes())
    opened = await svc.open_object(bucket, "warm")
    await opened.stream(CollectingConsumer(keep=False))

    baseline = status_bytes("VmRSS")
    hwm_reset = reset_peak_rss()
    sampler = PeakSampler()
    sampler.start()
    info = None
    try:
        writer = svc.begin_write()
        producer = GeneratingProducer(writer, GIB, make_chunk, MIB)
        await producer.start()
        staged = await writer.finish()
        assert staged.size == GIB
        assert staged.sha256_hex == sha.hexdigest()
        info = await svc.put_object(bucket, "gib", staged, ObjectAttributes())
        assert info.size == GIB
        assert info.etag == md5.hexdigest()
        assert tmp_files(data_dir) == []

        opened = await svc.open_object(bucket, "gib")
        consumer = CollectingConsumer(keep=False)
        written = await opened.stream(consumer, verify=True)
        assert written == GIB
        assert consumer.byte_count == GIB
        assert consumer.sha256.hexdigest() == sha.hexdigest()
    finally:
        peak = sampler.stop()
        if hwm_reset:
            peak = max(peak, status_bytes("VmHWM"))
        if info is not None:
            await svc.delete_object(bucket, "gib")
            path = object_file_path(data_dir, info)
            await wait_until(lambda: not os.path.exists(path))
    growth = peak - baseline
    assert growth < ALLOWED_GROWTH, f"peak RSS grew by {growth / MIB:.1f} MiB"
