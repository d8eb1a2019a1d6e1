"""Memory target of the performance work: one 1 GiB PUT and one 1 GiB GET (over a real
loopback socket, the zero-copy path, then the verified copying path) grow the resident set by at
most 64 MiB."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import pytest
import pytest_twisted

from jay.storage.api import ObjectAttributes

from .conftest import GeneratingProducer
from .test_memory import GIB, MIB, PeakSampler, reset_peak_rss, status_bytes
from .test_perf_sendfile import Receiver, link  # noqa: F401  (link is a fixture)

ALLOWED_GROWTH = 64 * MIB


@pytest.mark.bigdata
@pytest.mark.timeout(300)
@pytest_twisted.ensureDeferred
async def test_one_gib_put_and_gets_grow_rss_by_at_most_64_mib(
    svc: Any,
    bucket: str,
    link: Any,  # noqa: F811
) -> None:
    block = os.urandom(MIB)
    sha = hashlib.sha256()

    def make_chunk(index: int, size: int) -> bytes:
        chunk = index.to_bytes(8, "big") + block[8:size]
        sha.update(chunk)
        return chunk

    # Warm-up: pools, helper threads, sockets, a big-ish transfer each way.
    warm = svc.begin_write()
    warm.write(os.urandom(2 * MIB))
    await svc.put_object(bucket, "warm", await warm.finish(), ObjectAttributes())
    receiver = Receiver(2 * MIB)
    server = await link(receiver)
    await (await svc.open_object(bucket, "warm")).stream(server.transport)
    await receiver.complete

    baseline = status_bytes("VmRSS")
    hwm_reset = reset_peak_rss()
    sampler = PeakSampler()
    sampler.start()
    try:
        writer = svc.begin_write()
        await GeneratingProducer(writer, GIB, make_chunk, MIB).start()
        info = await svc.put_object(bucket, "gib", await writer.finish(), ObjectAttributes())
        assert info.sha256_hex == sha.hexdigest()
        for verify in (False, True):
            receiver = Receiver(GIB)
            server = await link(receiver)
            opened = await svc.open_object(bucket, "gib")
            assert await opened.stream(server.transport, verify=verify) == GIB
            await receiver.complete
            assert receiver.sha.hexdigest() == sha.hexdigest()
            server.transport.loseConnection()
    finally:
        peak = sampler.stop()
        if hwm_reset:
            peak = max(peak, status_bytes("VmHWM"))
        await svc.delete_object(bucket, "gib")
    growth = peak - baseline
    print(f"baseline RSS {baseline / MIB:.1f} MiB, peak growth {growth / MIB:.1f} MiB")
    assert growth <= ALLOWED_GROWTH, f"peak RSS grew by {growth / MIB:.1f} MiB"
