"""Pack files (jay.storage.packs): small new objects share an append-only file per process.

The codec of refs and the writer without a service; then a real StorageService with packs on:
reads, overwrites and deletes (holes punched), failed commits, faults, scrub and quarantine,
startup checks, restarts and garbage collection of dead packs.
"""

from __future__ import annotations

import errno
import os
import time
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import task

from jay.config.model import ScrubSettings
from jay.errors import ChecksumMismatch, NoSuchKey, PreconditionFailed, StorageFull
from jay.maintenance.scrubber import Scrubber
from jay.storage import blobs, packs
from jay.storage.api import WriteCondition
from jay.storage.packs import ALIGN, PackWriter, make_ref, parse_ref

from .conftest import CollectingConsumer, files_under, put, read, start_service, stop_service

PACK_MAX = 64 * 1024


def pack_path(data_dir: str, ref: str) -> str:
    parsed = parse_ref(ref)
    assert parsed is not None, ref
    return os.path.join(data_dir, "packs", parsed[0])


def stored(data_dir: str, ref: str) -> bytes:
    parsed = parse_ref(ref)
    assert parsed is not None
    _, offset, length = parsed
    with open(pack_path(data_dir, ref), "rb") as f:
        f.seek(offset)
        return f.read(length)


def flip(data_dir: str, ref: str, at: int, original: bytes) -> None:
    """Change byte ``at`` of the record at ``ref`` on disk (``original`` is its body)."""
    _, offset, _ = parse_ref(ref)  # type: ignore[misc]
    with open(pack_path(data_dir, ref), "r+b") as f:
        f.seek(offset + at)
        f.write(bytes([original[at] ^ 0xFF]))


def allocated(path: str) -> int:
    return os.stat(path).st_blocks * 512


def can_punch(directory: str) -> bool:
    probe = os.path.join(directory, "punch-probe")
    with open(probe, "wb") as f:
        f.write(b"x" * 2 * ALIGN)
        f.flush()
        os.fsync(f.fileno())
    before = allocated(probe)
    ok = packs.punch(probe, 0, ALIGN) and allocated(probe) < before
    os.unlink(probe)
    return ok


@pytest_twisted.async_yield_fixture
async def psvc(data_dir: str) -> Any:
    svc = await start_service(data_dir, pack_max_object_bytes=PACK_MAX)
    yield svc
    await stop_service(svc)


@pytest_twisted.async_fixture
async def pbucket(psvc: Any) -> str:
    account = await psvc.create_account("packs")
    await psvc.create_bucket("packed", account.account_id)
    return "packed"


# --- refs and the writer, without a service --------------------------------------------------


def test_refs_round_trip_and_malformed_pack_refs_never_become_paths() -> None:
    ref = make_ref("1a2b-0123456789abcdef.pack", 8192, 4096)
    assert ref == "packs/1a2b-0123456789abcdef.pack:8192:4096"
    assert parse_ref(ref) == ("1a2b-0123456789abcdef.pack", 8192, 4096)
    assert parse_ref("buckets/b/objects/aa/bb/id") is None
    for bad in (
        "packs/../../etc/passwd:0:1",
        "packs/1a2b-0123456789abcdef.pack:-1:4",
        "packs/1a2b-0123456789abcdef.pack:0",
        "packs/1a2b-0123456789abcdef.pack:0:x",
        "packs/1a2b-0123456789abcdef.pack:٣:1",
        "packs/x.pack:0:1",
    ):
        with pytest.raises(Exception, match="Invalid location reference"):
            parse_ref(bad)


def test_writer_aligns_records_syncs_once_per_group_and_rolls_over(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    syncs: list[int] = []
    real_sync = packs.os_fdatasync
    monkeypatch.setattr(packs, "os_fdatasync", lambda fd: (syncs.append(fd), real_sync(fd)))
    writer = PackWriter(str(tmp_path / "packs"), rollover_bytes=2 * ALIGN)
    bodies = [[b"a" * 10], [b"b" * ALIGN], [b""], [b"c" * 5, b"d" * 7]]
    refs = writer.append(bodies)
    assert len(syncs) == 1 and writer.groups == 1
    spans = [parse_ref(r)[1:] for r in refs]  # type: ignore[index]
    assert spans == [(0, 10), (ALIGN, ALIGN), (2 * ALIGN, 0), (2 * ALIGN, 12)]
    first = writer.current
    assert first is not None and packs.is_in_use(os.path.join(writer.directory, first))
    for ref, body in zip(refs, bodies, strict=True):
        assert stored(str(tmp_path), ref) == b"".join(body)
    # Past the rollover size the next group opens a new pack and the old one is free.
    (ref,) = writer.append([[b"next"]])
    assert writer.current != first and parse_ref(ref)[:2] == (writer.current, 0)  # type: ignore[index]
    assert not packs.is_in_use(os.path.join(writer.directory, first))
    assert packs.pack_files(writer.directory) == sorted([first, writer.current])
    assert os.stat(os.path.join(writer.directory, first)).st_mode & 0o777 == 0o600
    writer.close()
    assert not packs.is_in_use(os.path.join(writer.directory, str(parse_ref(ref)[0])))  # type: ignore[index]


def test_a_failed_sync_abandons_the_pack(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    writer = PackWriter(str(tmp_path / "packs"))
    writer.append([[b"kept"]])
    first = writer.current

    def failing(fd: int) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(packs, "os_fdatasync", failing)
    with pytest.raises(OSError):
        writer.append([[b"lost"]])
    assert writer.current is None
    monkeypatch.undo()
    (ref,) = writer.append([[b"after"]])
    assert parse_ref(ref)[0] != first  # type: ignore[index]
    writer.close()


def test_punch_frees_a_records_blocks(tmp_path: Any) -> None:
    if not can_punch(str(tmp_path)):
        pytest.skip("this file system cannot punch holes")
    writer = PackWriter(str(tmp_path / "packs"))
    refs = writer.append([[os.urandom(3 * ALIGN)], [b"neighbour" * 100]])
    writer.close()
    path = pack_path(str(tmp_path), refs[0])
    before = allocated(path)
    _, offset, length = parse_ref(refs[0])  # type: ignore[misc]
    assert packs.punch(path, offset, length)
    assert allocated(path) <= before - 3 * ALIGN
    assert stored(str(tmp_path), refs[0]) == bytes(3 * ALIGN)
    assert stored(str(tmp_path), refs[1]) == b"neighbour" * 100


def test_merged_ranges_join_neighbouring_records_only() -> None:
    a = ALIGN
    assert packs.merged_ranges([]) == []
    # Out of order, a record shorter than its block, a gap, a zero-length entry, a duplicate.
    ranges = [(3 * a, 10), (0, a), (a, 2 * a - 1), (6 * a, a), (9 * a, 0), (6 * a, a)]
    assert packs.merged_ranges(ranges) == [(0, 4 * a), (6 * a, a)]


def test_neighbouring_records_are_punched_in_one_call(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not can_punch(str(tmp_path)):
        pytest.skip("this file system cannot punch holes")
    calls: list[tuple[int, int]] = []
    real = packs.os_fallocate
    assert real is not None

    def counting(fd: int, mode: int, offset: int, length: int) -> int:
        calls.append((offset, length))
        return real(fd, mode, offset, length)

    monkeypatch.setattr(packs, "os_fallocate", counting)
    store = blobs.BlobStore(str(tmp_path / "data"))
    store.create_layout()
    store.punch_delay = 5.0
    writer = PackWriter(store.packs_dir)
    bodies = [[os.urandom(1000 + 700 * i)] for i in range(12)]
    refs = writer.append(bodies)
    writer.close()
    # Overwritten one after another: records 0-4 and 6-10 (5 and 11 stay).
    gone = [*refs[0:5], *refs[6:11]]
    for ref in gone:
        assert store.forget_packed(ref)
    assert not store.forget_packed("ab/cd/abcd0123")  # a file of its own: not queued
    assert store.pending_punches == len(gone)
    assert not store.is_punch_due() and store.punch_due() == 0
    later = time.monotonic() + 6.0
    assert store.is_punch_due(later)
    assert store.punch_due(later) == len(gone)
    assert len(calls) == 2 and store.pending_punches == 0
    for ref, body in zip(refs, bodies, strict=True):
        length = len(body[0])
        expected = bytes(length) if ref in gone else body[0]
        assert stored(str(tmp_path / "data"), ref) == expected


# --- the storage service with packs ----------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_small_objects_go_into_a_pack_and_large_ones_get_files(
    psvc: Any, pbucket: str, data_dir: str
) -> None:
    small = os.urandom(5000)
    info = await put(psvc, pbucket, "small", small)
    whole = os.urandom(PACK_MAX)  # the largest packed size, hashed on a blob thread
    limit = await put(psvc, pbucket, "limit", whole)
    assert limit.location_ref.startswith("packs/")
    assert await read(psvc, pbucket, "limit", verify=True) == whole
    assert info.location_ref.startswith("packs/")
    assert stored(data_dir, info.location_ref) == small
    assert await read(psvc, pbucket, "small", verify=True) == small
    assert await read(psvc, pbucket, "small", 100, 50) == small[100:150]
    empty = await put(psvc, pbucket, "empty", b"")
    assert empty.location_ref.startswith("packs/") and await read(psvc, pbucket, "empty") == b""
    large = os.urandom(PACK_MAX + 1)
    big = await put(psvc, pbucket, "large", large)
    assert big.location_ref.startswith("buckets/")
    assert await read(psvc, pbucket, "large") == large
    # Only the large object has a file of its own.
    assert files_under(os.path.join(data_dir, "buckets")) == [
        os.path.relpath(big.location_ref, "buckets")
    ]


@pytest_twisted.ensureDeferred
async def test_concurrent_puts_share_groups_and_every_one_reads_back(
    psvc: Any, pbucket: str, data_dir: str
) -> None:
    from twisted.internet.defer import ensureDeferred, gatherResults

    bodies = {f"k{i:03d}": os.urandom(100 + 37 * i) for i in range(60)}
    infos = await gatherResults(
        [ensureDeferred(put(psvc, pbucket, k, v)) for k, v in bodies.items()]
    )
    spans = sorted(parse_ref(i.location_ref)[:2] for i in infos)  # type: ignore[index]
    assert len(set(spans)) == 60 and all(offset % ALIGN == 0 for _, offset in spans)
    packer = psvc._pools.packer
    assert packer.groups < 60  # bodies waiting together shared one fdatasync
    for key, body in bodies.items():
        assert await read(psvc, pbucket, key, verify=True) == body


@pytest_twisted.ensureDeferred
async def test_overwrite_and_delete_punch_the_old_bytes(
    psvc: Any, pbucket: str, data_dir: str
) -> None:
    if not can_punch(data_dir):
        pytest.skip("this file system cannot punch holes")
    psvc._blobs.punch_delay = 0
    first = await put(psvc, pbucket, "k", b"1" * 3000)
    second = await put(psvc, pbucket, "k", b"2" * 3000)
    assert await read(psvc, pbucket, "k") == b"2" * 3000

    def punched(ref: str) -> bool:
        return stored(data_dir, ref) == bytes(3000)

    from .conftest import wait_until

    await wait_until(lambda: punched(first.location_ref))
    assert not punched(second.location_ref)
    assert await psvc.delete_object(pbucket, "k") is True
    await wait_until(lambda: punched(second.location_ref))
    with pytest.raises(NoSuchKey):
        await psvc.open_object(pbucket, "k")


@pytest_twisted.ensureDeferred
async def test_deleted_bytes_stay_readable_until_their_punch_is_due(
    psvc: Any, pbucket: str, data_dir: str
) -> None:
    """A reader that looked the record up just before a delete committed still reads the
    record's own bytes, not zeros: blocks go back only ``punch_delay`` seconds later."""
    if not can_punch(data_dir):
        pytest.skip("this file system cannot punch holes")
    blobs = psvc._blobs
    assert blobs.punch_delay >= 5
    info = await put(psvc, pbucket, "k", b"v" * 3000)
    assert await psvc.delete_object(pbucket, "k") is True
    from .conftest import wait_until

    await wait_until(lambda: blobs.pending_punches == 1)
    assert stored(data_dir, info.location_ref) == b"v" * 3000
    assert blobs.punch_due() == 0  # not due yet
    assert blobs.punch_due(time.monotonic() + blobs.punch_delay + 1) == 1
    assert stored(data_dir, info.location_ref) == bytes(3000)
    assert blobs.pending_punches == 0


@pytest_twisted.ensureDeferred
async def test_a_failed_conditional_put_leaves_no_reference_and_its_bytes_go(
    psvc: Any, pbucket: str, data_dir: str
) -> None:
    await put(psvc, pbucket, "k", b"original")
    before = os.path.getsize(
        pack_path(data_dir, (await psvc.get_object_info(pbucket, "k")).location_ref)
    )
    with pytest.raises(PreconditionFailed):
        await put(
            psvc, pbucket, "k", b"x" * ALIGN, condition=WriteCondition(if_none_match_star=True)
        )
    assert await read(psvc, pbucket, "k") == b"original"
    info = await psvc.get_object_info(pbucket, "k")
    path = pack_path(data_dir, info.location_ref)
    # The rejected body was appended after the first record, then punched out again.
    assert os.path.getsize(path) > before
    with open(path, "rb") as f:
        f.seek(ALIGN)
        rest = f.read()
    if can_punch(data_dir):
        assert rest == bytes(len(rest))


@pytest_twisted.ensureDeferred
async def test_disk_full_while_packing_fails_the_put_and_the_next_one_works(
    psvc: Any, pbucket: str, data_dir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(fd: int, buffers: Any, offset: int) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(packs, "os_pwritev", full)
    with pytest.raises(StorageFull):
        await put(psvc, pbucket, "k", b"never")
    with pytest.raises(NoSuchKey):
        await psvc.get_object_info(pbucket, "k")
    monkeypatch.undo()
    await put(psvc, pbucket, "k", b"now")
    assert await read(psvc, pbucket, "k") == b"now"


@pytest_twisted.ensureDeferred
async def test_scrub_quarantines_rot_in_a_pack_and_revalidation_restores_it(
    psvc: Any, pbucket: str, data_dir: str
) -> None:
    body = os.urandom(9000)
    info = await put(psvc, pbucket, "rot", body)
    await put(psvc, pbucket, "fine", b"healthy")
    flip(data_dir, info.location_ref, 123, body)

    settings = ScrubSettings(interval_hours=6, sample_rate=1.0, bytes_per_sec=0, max_per_run=100)
    result = await Scrubber(psvc, settings, clock=task.Clock()).run_pass()
    assert (result.checked, result.healthy, result.quarantined) == (2, 1, 1)
    assert result.bytes_scanned == len(body) + 7
    with pytest.raises(NoSuchKey):
        await psvc.get_object_info(pbucket, "rot")
    # The rotten bytes were copied to quarantine/ and left the pack.
    copy = os.path.join(data_dir, "quarantine", info.object_id)
    with open(copy, "rb") as f:
        damaged = f.read()
    assert damaged[:123] == body[:123] and damaged[124:] == body[124:]
    if can_punch(data_dir):
        assert stored(data_dir, info.location_ref) == bytes(len(body))

    assert await psvc.revalidate_quarantined(info.bucket_id, "rot") is False
    with open(copy, "r+b") as f:
        f.seek(123)
        f.write(body[123:124])
    assert await psvc.revalidate_quarantined(info.bucket_id, "rot") is True
    assert not os.path.exists(copy)
    assert stored(data_dir, info.location_ref) == body
    assert await read(psvc, pbucket, "rot", verify=True) == body
    assert await read(psvc, pbucket, "fine") == b"healthy"


@pytest_twisted.ensureDeferred
async def test_read_verification_and_purge_of_a_packed_object(
    psvc: Any, pbucket: str, data_dir: str
) -> None:
    body = os.urandom(2048)
    info = await put(psvc, pbucket, "k", body)
    flip(data_dir, info.location_ref, 0, body)
    opened = await psvc.open_object(pbucket, "k")
    with pytest.raises(ChecksumMismatch):
        await opened.stream(CollectingConsumer(), verify=True)
    from .conftest import wait_until

    copy = os.path.join(data_dir, "quarantine", info.object_id)
    await wait_until(lambda: os.path.exists(copy))
    assert await psvc.purge_quarantined(info.bucket_id, "k") is True
    assert not os.path.exists(copy)
    assert await psvc.list_quarantined() == []


@pytest_twisted.ensureDeferred
async def test_objects_survive_a_restart_and_a_short_pack_is_caught_at_startup(
    data_dir: str,
) -> None:
    svc = await start_service(data_dir, pack_max_object_bytes=PACK_MAX)
    account = await svc.create_account("a")
    await svc.create_bucket("bkt", account.account_id)
    kept = await put(svc, "bkt", "kept", b"k" * 100)
    cut = await put(svc, "bkt", "cut", b"c" * 5000)
    await stop_service(svc)
    assert parse_ref(kept.location_ref)[0] == parse_ref(cut.location_ref)[0]  # type: ignore[index]
    _, offset, _ = parse_ref(cut.location_ref)  # type: ignore[misc]
    os.truncate(pack_path(data_dir, cut.location_ref), offset + 10)

    svc = await start_service(data_dir, pack_max_object_bytes=PACK_MAX)
    try:
        assert await read(svc, "bkt", "kept", verify=True) == b"k" * 100
        with pytest.raises(NoSuchKey):
            await svc.get_object_info("bkt", "cut")
        reasons = {q.info.key: q.reason for q in await svc.list_quarantined()}
        assert reasons == {"cut": "size mismatch at startup"}
        # A new process writes a pack of its own.
        again = await put(svc, "bkt", "again", b"a")
        assert parse_ref(again.location_ref)[0] != parse_ref(kept.location_ref)[0]  # type: ignore[index]
    finally:
        await stop_service(svc)


@pytest_twisted.ensureDeferred
async def test_gc_removes_only_packs_nobody_references_or_writes(
    psvc: Any, pbucket: str, data_dir: str
) -> None:
    packer = psvc._pools.packer
    packer.rollover_bytes = 1  # every group starts a pack of its own
    doomed = await put(psvc, pbucket, "doomed", b"d")
    alive = await put(psvc, pbucket, "alive", b"a")
    current = await put(psvc, pbucket, "current", b"c")
    names = [parse_ref(i.location_ref)[0] for i in (doomed, alive, current)]  # type: ignore[index]
    assert len(set(names)) == 3
    await psvc.delete_object(pbucket, "doomed")
    await psvc.delete_object(pbucket, "current")
    # Too young: nothing goes.
    assert await psvc.collect_dead_packs(3600) == 0
    # The dead, unlocked pack goes; the live one and the one still being written stay.
    assert await psvc.collect_dead_packs(-1) == 1
    assert packs.pack_files(os.path.join(data_dir, "packs")) == sorted(names[1:])
    assert await read(psvc, pbucket, "alive") == b"a"
    counts = await psvc._pools.read(lambda conn: dict(conn.execute("SELECT name, live FROM packs")))
    assert counts == {names[1]: 1, names[2]: 0}
    await put(psvc, pbucket, "next", b"n")  # rolls over: the current pack is left for good
    assert await psvc.collect_dead_packs(-1) == 1
    assert names[2] not in packs.pack_files(os.path.join(data_dir, "packs"))


@pytest_twisted.ensureDeferred
async def test_a_punched_record_is_caught_at_startup(data_dir: str) -> None:
    """As after restoring a metadata backup older than a delete: the record is back, its
    blocks were given away. Startup must not serve zeros for it."""
    svc = await start_service(data_dir, pack_max_object_bytes=PACK_MAX)
    account = await svc.create_account("a")
    await svc.create_bucket("bkt", account.account_id)
    gone = await put(svc, "bkt", "gone", b"g" * 6000)
    await put(svc, "bkt", "kept", b"k" * 6000)
    await stop_service(svc)
    if not can_punch(data_dir):
        pytest.skip("this file system cannot punch holes")
    _, offset, length = parse_ref(gone.location_ref)  # type: ignore[misc]
    assert packs.punch(pack_path(data_dir, gone.location_ref), offset, length)

    svc = await start_service(data_dir, pack_max_object_bytes=PACK_MAX)
    try:
        with pytest.raises(NoSuchKey):
            await svc.get_object_info("bkt", "gone")
        assert await read(svc, "bkt", "kept", verify=True) == b"k" * 6000
        reasons = {q.info.key: q.reason for q in await svc.list_quarantined()}
        assert reasons == {"gone": "size mismatch at startup"}
    finally:
        await stop_service(svc)
