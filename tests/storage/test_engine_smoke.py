"""Engine-level smoke tests for jay.storage.service: multipart, quarantine, recovery, memory.

The contract suite lives in the sibling modules; these cover the engine's own promises
(JAY_SPEC §2.9, §6.2, §7.5, §8.2 items 6, 23–25, 29).
"""

from __future__ import annotations

import base64
import os
import tracemalloc
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer

from jay import errors
from jay.checksums import checksum_of, new_hasher
from jay.storage.api import CompletedPart, ObjectAttributes
from jay.storage.listing import SENTINEL, PageBuilder
from jay.storage.names import validate_bucket_name, validate_key

from .conftest import (
    CollectingConsumer,
    object_file_path,
    put,
    read,
    stage,
    start_service,
    stop_service,
    tmp_files,
    wait_until,
)

# --- pure pieces ------------------------------------------------------------------------------


def test_names() -> None:
    validate_bucket_name("my-bucket.01")
    for bad in ("ab", "a--b", "a..b", "192.168.1.1", "Upper", "-ab", "_stats"):
        with pytest.raises(errors.InvalidBucketName):
            validate_bucket_name(bad)
    validate_key("../etc/passwd with spaces ü")
    with pytest.raises(errors.KeyTooLong):
        validate_key("é" * 513)  # 1026 bytes
    validate_key("é" * 512)
    for bad in ("", "a\x00b", "\ud800"):
        with pytest.raises(errors.InvalidArgument):
            validate_key(bad)


def _model_pages(keys: list[str], delimiter: str, max_keys: int) -> list[list[str]]:
    pages, start = [], ""
    while True:
        builder: PageBuilder[str] = PageBuilder(prefix="", delimiter=delimiter, max_keys=max_keys)
        for key in sorted(k for k in keys if k > start):
            action = builder.offer(key, key)
            if builder.is_done:
                break
            del action
        pages.append(builder.objects + builder.common_prefixes)
        if not builder.is_truncated:
            return pages
        start = builder.next_start_after


def test_page_builder_skips_keys_past_the_sentinel() -> None:
    # A page that ends on a common prefix continues after *every* key under it, including a
    # key that continues with U+10FFFF itself.
    keys = ["a/1", "a/" + SENTINEL + "x", "b"]
    pages = _model_pages(keys, "/", 1)
    assert pages == [["a/"], ["b"]]


# --- multipart --------------------------------------------------------------------------------


async def _upload(svc: Any, bucket: str, key: str, parts: list[bytes], **kw: Any) -> Any:
    upload = await svc.create_multipart_upload(
        bucket, key, ObjectAttributes(content_type="text/plain", metadata={"a": "1"}), "acct", **kw
    )
    infos = []
    for number, data in enumerate(parts, 1):
        algorithms = [upload.checksum_algorithm] if upload.checksum_algorithm else []
        staged = await stage(svc, data, algorithms)
        infos.append(await svc.upload_part(bucket, key, upload.upload_id, number, staged))
    return upload, infos


@pytest_twisted.ensureDeferred
async def test_multipart_complete_vectors(svc: Any, bucket: str, data_dir: str) -> None:
    upload, infos = await _upload(svc, bucket, "mp", [b"hello ", b"world", b"unused"])
    assert [p.etag for p in infos] == [
        "f814893777bcc2295fff05f00e508da6",
        "7d793037a0760186574b0282f2f435e7",
        infos[2].etag,
    ]
    assert os.path.isfile(os.path.join(data_dir, "multipart", upload.upload_id, "part-00002"))
    info = await svc.complete_multipart_upload(
        bucket,
        "mp",
        upload.upload_id,
        [
            CompletedPart(part_number=1, etag='"f814893777bcc2295fff05f00e508da6"'),
            CompletedPart(part_number=2),
        ],
    )
    assert info.etag == "e09e4fd6265b36115fe3db32df945d84-2"
    assert info.sha256_hex == "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
    assert info.part_sizes == (6, 5)
    assert info.attributes.content_type == "text/plain"
    assert dict(info.attributes.metadata) == {"a": "1"}
    assert await read(svc, bucket, "mp") == b"hello world"
    assert not os.path.exists(os.path.join(data_dir, "multipart", upload.upload_id))
    stats = await svc.bucket_stats(bucket)
    assert (stats.object_count, stats.total_size_bytes) == (1, 11)
    with pytest.raises(errors.NoSuchUpload):
        await svc.get_multipart_upload(bucket, "mp", upload.upload_id)


@pytest_twisted.ensureDeferred
async def test_multipart_zero_parts(svc: Any, bucket: str) -> None:
    upload, _ = await _upload(svc, bucket, "empty", [])
    info = await svc.complete_multipart_upload(bucket, "empty", upload.upload_id, [])
    assert info.etag == "d41d8cd98f00b204e9800998ecf8427e-0"
    assert info.size == 0


@pytest_twisted.ensureDeferred
async def test_multipart_validation(svc: Any, bucket: str) -> None:
    upload, _ = await _upload(svc, bucket, "k", [b"a" * 10, b"b" * 3, b"c"])
    uid = upload.upload_id
    with pytest.raises(errors.InvalidPartOrder):
        await svc.complete_multipart_upload(
            bucket, "k", uid, [CompletedPart(part_number=2), CompletedPart(part_number=1)]
        )
    with pytest.raises(errors.InvalidPart):
        await svc.complete_multipart_upload(bucket, "k", uid, [CompletedPart(part_number=4)])
    with pytest.raises(errors.InvalidPart):
        await svc.complete_multipart_upload(
            bucket, "k", uid, [CompletedPart(part_number=1, etag="0" * 32)]
        )
    with pytest.raises(errors.EntityTooSmall):
        await svc.complete_multipart_upload(
            bucket,
            "k",
            uid,
            [CompletedPart(part_number=n) for n in (1, 2, 3)],
            min_part_size=5,
        )
    with pytest.raises(errors.InvalidArgument):
        await svc.upload_part(bucket, "k", uid, 10001, await stage(svc, b"x"))
    with pytest.raises(errors.NoSuchUpload):
        await svc.get_multipart_upload(bucket, "other-key", uid)
    # Still complete-able after all those failures; the last part may be small.
    info = await svc.complete_multipart_upload(
        bucket,
        "k",
        uid,
        [CompletedPart(part_number=1), CompletedPart(part_number=3)],
        min_part_size=5,
    )
    assert await read(svc, bucket, "k") == b"a" * 10 + b"c"
    assert info.part_sizes == (10, 1)


@pytest_twisted.ensureDeferred
async def test_multipart_replace_part_list_and_abort(svc: Any, bucket: str, data_dir: str) -> None:
    upload, _ = await _upload(svc, bucket, "k", [b"one", b"two", b"three"])
    uid = upload.upload_id
    replaced = await svc.upload_part(bucket, "k", uid, 2, await stage(svc, b"TWO!"))
    assert replaced.size == 4
    page = await svc.list_parts(bucket, "k", uid, max_parts=2)
    assert [p.part_number for p in page.parts] == [1, 2]
    assert page.is_truncated and page.next_part_number_marker == 2
    assert page.parts[1].etag == replaced.etag
    page = await svc.list_parts(bucket, "k", uid, part_number_marker=2, max_parts=2)
    assert [p.part_number for p in page.parts] == [3]
    assert not page.is_truncated
    await svc.abort_multipart_upload(bucket, "k", uid)
    assert not os.path.exists(os.path.join(data_dir, "multipart", uid))
    with pytest.raises(errors.NoSuchUpload):
        await svc.list_parts(bucket, "k", uid)
    with pytest.raises(errors.NoSuchUpload):
        await svc.upload_part(bucket, "k", uid, 1, await stage(svc, b"late"))
    assert tmp_files(data_dir) == []


@pytest_twisted.ensureDeferred
async def test_list_multipart_uploads_pages(svc: Any, bucket: str) -> None:
    made = []
    for key in ("a/1", "a/2", "b", "b", "c/x/y"):
        upload = await svc.create_multipart_upload(bucket, key, ObjectAttributes(), "acct")
        made.append((key, upload.upload_id))
    made.sort()
    seen = []
    key_marker = upload_marker = ""
    while True:
        page = await svc.list_multipart_uploads(
            bucket, key_marker=key_marker, upload_id_marker=upload_marker, max_uploads=2
        )
        seen.extend((u.key, u.upload_id) for u in page.uploads)
        if not page.is_truncated:
            break
        key_marker, upload_marker = page.next_key_marker, page.next_upload_id_marker
    assert seen == made
    page = await svc.list_multipart_uploads(bucket, delimiter="/", max_uploads=2)
    assert page.common_prefixes == ("a/",)
    assert [u.key for u in page.uploads] == ["b"]
    assert page.is_truncated
    page = await svc.list_multipart_uploads(
        bucket,
        delimiter="/",
        key_marker=page.next_key_marker,
        upload_id_marker=page.next_upload_id_marker,
    )
    assert [u.key for u in page.uploads] == ["b"]
    assert page.common_prefixes == ("c/",)
    assert not page.is_truncated


@pytest_twisted.ensureDeferred
async def test_multipart_checksums(svc: Any, bucket: str) -> None:
    upload, infos = await _upload(
        svc,
        bucket,
        "c",
        [b"hello ", b"world"],
        checksum_algorithm="CRC32C",
        checksum_type="COMPOSITE",
    )
    info = await svc.complete_multipart_upload(
        bucket, "c", upload.upload_id, [CompletedPart(part_number=1), CompletedPart(part_number=2)]
    )
    hasher = new_hasher("CRC32C")
    hasher.update(b"".join(base64.b64decode(p.checksums["CRC32C"]) for p in infos))
    expected = base64.b64encode(hasher.digest()).decode() + "-2"
    assert info.checksums == {"CRC32C": expected}
    assert info.checksum_type == "COMPOSITE"

    upload, _ = await _upload(
        svc, bucket, "f", [b"hello ", b"world"], checksum_algorithm="CRC64NVME"
    )
    info = await svc.complete_multipart_upload(
        bucket, "f", upload.upload_id, [CompletedPart(part_number=1), CompletedPart(part_number=2)]
    )
    assert info.checksums == {"CRC64NVME": checksum_of("CRC64NVME", b"hello world")}
    assert info.checksum_type == "FULL_OBJECT"


# --- quarantine -------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_verify_quarantines_before_last_chunk(svc: Any, bucket: str, data_dir: str) -> None:
    data = os.urandom(600_000)
    info = await put(svc, bucket, "rot", data)
    path = object_file_path(data_dir, info)
    with open(path, "r+b") as f:
        f.seek(599_999)
        f.write(bytes([data[-1] ^ 1]))
    opened = await svc.open_object(bucket, "rot")
    consumer = CollectingConsumer()
    with pytest.raises(errors.ChecksumMismatch):
        await opened.stream(consumer, verify=True)
    assert len(consumer.data) < len(data)  # the last chunk was held back
    with pytest.raises(errors.NoSuchKey):
        await svc.get_object_info(bucket, "rot")
    assert not os.path.exists(path)
    assert os.path.exists(os.path.join(data_dir, "quarantine", info.object_id))
    stats = await svc.bucket_stats(bucket)
    assert (stats.object_count, stats.total_size_bytes) == (0, 0)
    quarantined = await svc.list_quarantined()
    assert [(q.info.key, q.reason) for q in quarantined] == [("rot", "checksum mismatch on read")]
    with pytest.raises(errors.BucketNotEmpty):
        await svc.delete_bucket(bucket)
    # Overwriting a quarantined key makes a fresh active object and counts it.
    await put(svc, bucket, "rot", b"fresh")
    assert await read(svc, bucket, "rot", verify=True) == b"fresh"
    assert (await svc.bucket_stats(bucket)).object_count == 1
    assert await svc.list_quarantined() == []


@pytest_twisted.ensureDeferred
async def test_short_file_fails_the_stream(svc: Any, bucket: str, data_dir: str) -> None:
    info = await put(svc, bucket, "short", b"x" * 1000)
    os.truncate(object_file_path(data_dir, info), 10)
    opened = await svc.open_object(bucket, "short")
    with pytest.raises(errors.StorageIOError):
        await opened.stream(CollectingConsumer())


@pytest_twisted.ensureDeferred
async def test_quarantine_object_api(svc: Any, bucket: str, data_dir: str) -> None:
    info = await put(svc, bucket, "q", b"data")
    result = await svc.quarantine_object(info.bucket_id, "q", "scrub says so")
    assert result is not None and result.state == "quarantined"
    assert await svc.quarantine_object(info.bucket_id, "q", "again") is None
    assert not await svc.delete_object(bucket, "q")  # quarantined is "not found", left in place
    assert [q.reason for q in await svc.list_quarantined()] == ["scrub says so"]


# --- recovery ---------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_startup_recovery(data_dir: str) -> None:
    svc = await start_service(data_dir)
    try:
        account = await svc.create_account("a")
        await svc.create_bucket("bkt", account.account_id)
        keep = await put(svc, "bkt", "keep", b"keep")
        lost = await put(svc, "bkt", "lost", b"lost")
        upload = await svc.create_multipart_upload("bkt", "mp", ObjectAttributes(), "a")
        await svc.upload_part("bkt", "mp", upload.upload_id, 1, await stage(svc, b"part"))
    finally:
        await stop_service(svc)
    # Crash leftovers: a temp file, a record whose file vanished, an orphan file (rename done,
    # commit never happened), a multipart dir and a bucket dir that no record knows.
    open(os.path.join(data_dir, "tmp", "jay-upload-x.writing"), "wb").close()
    os.unlink(object_file_path(data_dir, lost))
    orphan_id = "abcdef00-0000-4000-8000-000000000000"
    orphan_dir = os.path.join(data_dir, "buckets", keep.bucket_id, "objects", "ab", "cd")
    os.makedirs(orphan_dir)
    with open(os.path.join(orphan_dir, orphan_id), "wb") as f:
        f.write(b"orphan")
    os.makedirs(os.path.join(data_dir, "multipart", "no-such-upload"))
    os.makedirs(os.path.join(data_dir, "buckets", "no-such-bucket", "objects"))

    svc = await start_service(data_dir)
    try:
        assert tmp_files(data_dir) == []
        assert await read(svc, "bkt", "keep") == b"keep"
        with pytest.raises(errors.NoSuchKey):
            await svc.get_object_info("bkt", "lost")
        assert [q.info.key for q in await svc.list_quarantined()] == ["lost"]
        assert os.path.exists(os.path.join(data_dir, "quarantine", orphan_id))
        assert not os.path.exists(os.path.join(orphan_dir, orphan_id))
        assert not os.path.exists(os.path.join(data_dir, "multipart", "no-such-upload"))
        assert os.path.exists(os.path.join(data_dir, "multipart", upload.upload_id))
        assert not os.path.exists(os.path.join(data_dir, "buckets", "no-such-bucket"))
        stats = await svc.bucket_stats("bkt")
        assert (stats.object_count, stats.total_size_bytes) == (1, 4)
        assert os.stat(os.path.join(data_dir, "meta", "jay.db")).st_mode & 0o777 == 0o600
    finally:
        await stop_service(svc)


# --- memory -----------------------------------------------------------------------------------


@implementer(IPushProducer)
class _FastProducer:
    """Writes 64 KiB chunks on every reactor turn while not paused, like a fast socket."""

    def __init__(self, writer: Any, total: int) -> None:
        self.writer = writer
        self.remaining = total
        self.paused = False
        self.pauses = 0
        self.chunk = b"\xab" * 65536
        self.max_pending = 0

    def start(self) -> None:
        self.writer.registerProducer(self, True)
        reactor.callLater(0, self._pump)

    def _pump(self) -> None:
        while not self.paused and self.remaining:
            size = min(len(self.chunk), self.remaining)
            self.writer.write(self.chunk[:size] if size < len(self.chunk) else bytes(self.chunk))
            self.remaining -= size
            self.max_pending = max(self.max_pending, self.writer._queued_bytes)
        if self.remaining and not self.paused:
            reactor.callLater(0, self._pump)

    def pauseProducing(self) -> None:
        self.paused = True
        self.pauses += 1

    def resumeProducing(self) -> None:
        if self.paused:
            self.paused = False
            reactor.callLater(0, self._pump)

    def stopProducing(self) -> None:
        self.remaining = 0


@pytest_twisted.ensureDeferred
async def test_staging_memory_is_bounded(svc: Any, bucket: str) -> None:
    total = 256 * 1024 * 1024
    writer = svc.begin_write(["CRC32"])
    producer = _FastProducer(writer, total)
    tracemalloc.start()
    try:
        producer.start()
        await wait_until(lambda: producer.remaining == 0, timeout=120)
        staged = await writer.finish()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert staged.size == total
    assert producer.pauses > 0
    assert producer.max_pending <= 4 * 1024 * 1024 + 65536
    assert peak < 16 * 1024 * 1024, peak
    info = await svc.put_object(bucket, "big", staged, ObjectAttributes())
    assert info.size == total


# --- disk errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "expected"),
    [(28, errors.StorageFull), (122, errors.StorageFull), (5, errors.StorageIOError)],
)
@pytest_twisted.ensureDeferred
async def test_disk_errors_map_and_clean_up(
    svc: Any, data_dir: str, monkeypatch: Any, code: int, expected: type[Exception]
) -> None:
    import jay.storage.blobs as blobs_module
    import jay.storage.staging as staging_module

    calls = []

    def failing_write_all(fd: int, data: bytes) -> None:
        calls.append(len(data))
        if len(calls) > 1:
            raise OSError(code, os.strerror(code))
        os.write(fd, data)

    monkeypatch.setattr(blobs_module, "write_all", failing_write_all)  # FileAppender's
    writer = svc.begin_write()
    # Enough to start a write job at once (smaller bodies wait for finish() to write and seal
    # in one job); the second write then fails inside that final job.
    writer.write(b"a" * staging_module.EAGER_WRITE_BYTES)
    await wait_until(lambda: len(calls) == 1)
    writer.write(b"b" * 10)
    with pytest.raises(expected):
        await writer.finish()
    assert tmp_files(data_dir) == []
