"""Objects: put/get/head/delete, attributes, ETags, odd keys, key limits, range reads, copies.

JAY_SPEC §6.1-6.4 and the contract in jay.storage.api.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from typing import Any

import pytest
import pytest_twisted
from twisted.internet.defer import CancelledError

from jay import checksums
from jay.errors import InvalidArgument, KeyTooLong, NoSuchBucket, NoSuchKey
from jay.storage.api import STATE_ACTIVE, ObjectAttributes, ObjectInfo

from .conftest import (
    EMPTY_MD5,
    CollectingConsumer,
    chunks_of,
    files_under,
    md5_hex,
    object_file_path,
    object_files,
    open_fd_targets,
    put,
    read,
    sha256_hex,
    stage,
    tmp_files,
    wait_until,
)

ODD_KEYS = [
    "../x",
    "a/../../etc/passwd",
    "../../../../../../tmp/jay-escape",
    "/leading-slash",
    "trailing/",
    "//double//slash//",
    ".",
    "..",
    " space ",
    "tab\there",
    "new\nline",
    "%2F",
    "a%2Fb%00c",
    "+plus+",
    "back\\slash\\..\\..\\x",
    "ünïcödé/ключ/鍵/😀",
    "\u202eright-to-left",
    "?query=1&x#frag",
    "*",
    "C:\\windows\\system32",
    "a" * 200 + "/" + "b" * 200,
]


def assert_object_tree_only(data_dir: str) -> None:
    """Every file under buckets/ sits at buckets/<id>/objects/<o0o1>/<o2o3>/<uuid>."""
    pattern = re.compile(
        r"^[^/]+/objects/([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-"
        r"[0-9a-f]{4}-[0-9a-f]{12})$"
    )
    for rel in object_files(data_dir):
        m = pattern.match(rel)
        assert m, f"unexpected file under buckets/: {rel!r}"
        assert m.group(3).startswith(m.group(1) + m.group(2))


# --- put / head / get ---------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_put_returns_info_and_reads_back(svc: Any, bucket: str, data_dir: str) -> None:
    before = time.time()
    body = b"hello"
    info = await put(svc, bucket, "greeting.txt", body)
    assert info.bucket == bucket
    assert info.bucket_id == (await svc.get_bucket(bucket)).bucket_id
    assert info.key == "greeting.txt"
    assert info.size == 5
    # JAY_SPEC §9.1 vectors.
    assert info.etag == "5d41402abc4b2a76b9719d911017c592"
    assert info.sha256_hex == "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    assert info.state == STATE_ACTIVE
    assert info.part_sizes == ()
    assert info.created_at == info.updated_at
    assert before - 5 <= info.created_at <= time.time() + 5
    uuid.UUID(info.object_id)  # object ids are UUIDs (JAY_SPEC §6.1)
    assert await svc.get_object_info(bucket, "greeting.txt") == info
    assert await read(svc, bucket, "greeting.txt") == body
    # The file is where §6.1 puts it, with mode 0600, and holds exactly the body.
    path = object_file_path(data_dir, info)
    with open(path, "rb") as f:
        assert f.read() == body
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert tmp_files(data_dir) == []


@pytest_twisted.ensureDeferred
async def test_empty_object(svc: Any, bucket: str) -> None:
    info = await put(svc, bucket, "empty", b"")
    assert info.size == 0
    assert info.etag == EMPTY_MD5
    assert info.sha256_hex == sha256_hex(b"")
    assert await read(svc, bucket, "empty") == b""


@pytest_twisted.ensureDeferred
async def test_multi_chunk_body(svc: Any, bucket: str) -> None:
    chunks = [bytes([i]) * (1000 + i) for i in range(50)]
    body = b"".join(chunks)
    info = await put(svc, bucket, "chunks", chunks)
    assert info.size == len(body)
    assert info.etag == md5_hex(body)
    assert info.sha256_hex == sha256_hex(body)
    assert await read(svc, bucket, "chunks") == body


@pytest_twisted.ensureDeferred
async def test_attributes_round_trip(svc: Any, bucket: str) -> None:
    attrs = ObjectAttributes(
        content_type="text/plain; charset=utf-8",
        content_encoding="gzip",
        content_disposition='attachment; filename="x.txt"',
        content_language="de-CH",
        cache_control="max-age=60",
        expires="Thu, 01 Dec 2094 16:00:00 GMT",
        metadata={"color": "blue", "Native-Key": "Verbatim Value", "empty": "", "ü": "ß"},
    )
    info = await put(svc, bucket, "k", b"x", attrs)
    assert info.attributes == attrs
    head = await svc.get_object_info(bucket, "k")
    assert head.attributes == attrs
    assert dict(head.attributes.metadata) == dict(attrs.metadata)
    opened = await svc.open_object(bucket, "k")
    assert opened.info.attributes == attrs
    opened.close()
    # Defaults.
    plain = await put(svc, bucket, "plain", b"y")
    assert plain.attributes == ObjectAttributes()
    assert plain.attributes.content_type == "application/octet-stream"


@pytest_twisted.ensureDeferred
async def test_flexible_checksums_are_staged_and_stored(svc: Any, bucket: str) -> None:
    body = b"hello world, checksummed" * 100
    algorithms = ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256")
    staged = await stage(svc, [body[:7], body[7:]], algorithms)
    expected = {a: checksums.checksum_of(a, body) for a in algorithms}
    assert dict(staged.checksums) == expected
    assert staged.size == len(body)
    assert staged.md5_hex == md5_hex(body)
    assert staged.sha256_hex == sha256_hex(body)
    info = await svc.put_object(
        bucket, "ck", staged, ObjectAttributes(), checksum_type="FULL_OBJECT"
    )
    assert dict(info.checksums) == expected
    assert info.checksum_type == "FULL_OBJECT"
    assert dict((await svc.get_object_info(bucket, "ck")).checksums) == expected
    # Without algorithms only MD5 and SHA-256 are computed.
    bare = await stage(svc, body)
    assert dict(bare.checksums) == {}
    await svc.discard(bare)


@pytest_twisted.ensureDeferred
async def test_explicit_etag_and_part_sizes(svc: Any, bucket: str) -> None:
    """The copy path stores the source's ETag and part sizes verbatim (JAY_SPEC §2.10)."""
    staged = await stage(svc, b"hello world")
    info = await svc.put_object(
        bucket,
        "copied",
        staged,
        ObjectAttributes(),
        etag="e09e4fd6265b36115fe3db32df945d84-2",
        part_sizes=(6, 5),
    )
    assert info.etag == "e09e4fd6265b36115fe3db32df945d84-2"
    assert info.part_sizes == (6, 5)
    assert info.sha256_hex == sha256_hex(b"hello world")
    head = await svc.get_object_info(bucket, "copied")
    assert head.etag == "e09e4fd6265b36115fe3db32df945d84-2"
    assert head.part_sizes == (6, 5)


@pytest_twisted.ensureDeferred
async def test_overwrite_replaces_and_removes_old_file(
    svc: Any, bucket: str, data_dir: str
) -> None:
    first = await put(svc, bucket, "k", b"first version")
    second = await put(svc, bucket, "k", b"second")
    assert second.object_id != first.object_id  # new id and file per version (§6.1)
    assert second.etag == md5_hex(b"second")
    assert second.updated_at >= first.updated_at
    assert await read(svc, bucket, "k") == b"second"
    # The replaced file is deleted after the commit, in the background.
    await wait_until(lambda: not os.path.exists(object_file_path(data_dir, first)))
    assert os.path.exists(object_file_path(data_dir, second))
    assert len(object_files(data_dir)) == 1


@pytest_twisted.ensureDeferred
async def test_missing_objects(svc: Any, bucket: str) -> None:
    with pytest.raises(NoSuchKey):
        await svc.get_object_info(bucket, "nope")
    with pytest.raises(NoSuchKey):
        await svc.open_object(bucket, "nope")
    assert await svc.delete_object(bucket, "nope") is False


@pytest_twisted.ensureDeferred
async def test_delete_object(svc: Any, bucket: str, data_dir: str) -> None:
    info = await put(svc, bucket, "doomed", b"bytes")
    assert await svc.delete_object(bucket, "doomed") is True
    with pytest.raises(NoSuchKey):
        await svc.get_object_info(bucket, "doomed")
    with pytest.raises(NoSuchKey):
        await svc.open_object(bucket, "doomed")
    assert (await svc.list_objects(bucket)).objects == ()
    # The answer comes after the commit; the file follows in the background.
    await wait_until(lambda: not os.path.exists(object_file_path(data_dir, info)))
    assert await svc.delete_object(bucket, "doomed") is False


@pytest_twisted.ensureDeferred
async def test_open_object_survives_overwrite_and_delete(svc: Any, bucket: str) -> None:
    body = os.urandom(300_000)
    await put(svc, bucket, "k", body)
    opened = await svc.open_object(bucket, "k")
    await put(svc, bucket, "k", b"replacement")
    assert await svc.delete_object(bucket, "k") is True
    consumer = CollectingConsumer()
    written = await opened.stream(consumer)
    assert written == len(body)
    assert bytes(consumer.data) == body
    assert opened.info.etag == md5_hex(body)


# --- keys ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ODD_KEYS)
@pytest_twisted.ensureDeferred
async def test_odd_keys_are_data_not_paths(
    svc: Any, bucket: str, key: str, data_dir: str, tmp_path: Any
) -> None:
    body = ("body of " + key).encode("utf-8")
    info = await put(svc, bucket, key, body)
    assert info.key == key
    assert (await svc.get_object_info(bucket, key)).key == key
    assert await read(svc, bucket, key) == body
    page = await svc.list_objects(bucket)
    assert [o.key for o in page.objects] == [key]
    # Nothing was created outside the data directory, nor outside the object tree.
    assert sorted(os.listdir(tmp_path)) == ["data"]
    assert_object_tree_only(data_dir)
    assert files_under(os.path.join(data_dir, "buckets")) == [
        os.path.relpath(object_file_path(data_dir, info), os.path.join(data_dir, "buckets"))
    ]
    assert tmp_files(data_dir) == []
    assert await svc.delete_object(bucket, key) is True
    # The record goes in the commit; the file right after, in the background.
    await wait_until(lambda: object_files(data_dir) == [])


@pytest_twisted.ensureDeferred
async def test_similar_keys_are_distinct(svc: Any, bucket: str) -> None:
    keys = ["a/b", "a//b", "a/./b", "a/../a/b", "a%2Fb", "A/b", "a/b/", "a/b "]
    for i, key in enumerate(keys):
        await put(svc, bucket, key, b"%d" % i)
    for i, key in enumerate(keys):
        assert await read(svc, bucket, key) == b"%d" % i
    listed = [o.key for o in (await svc.list_objects(bucket)).objects]
    assert listed == sorted(keys, key=lambda k: k.encode("utf-8"))


@pytest_twisted.ensureDeferred
async def test_key_length_limit_in_utf8_bytes(svc: Any, bucket: str, data_dir: str) -> None:
    ascii_max = "k" * 1024
    utf8_max = "é" * 512  # 512 characters, 1024 bytes
    emoji_max = "😀" * 256  # 256 characters, 1024 bytes
    for key in (ascii_max, utf8_max, emoji_max):
        assert len(key.encode("utf-8")) == 1024
        info = await put(svc, bucket, key, b"ok")
        assert info.key == key
        assert await read(svc, bucket, key) == b"ok"
    for key in ("k" * 1025, "é" * 512 + "x", "x" + "😀" * 256, "é" * 600):
        assert len(key.encode("utf-8")) > 1024
        with pytest.raises(KeyTooLong):
            await put(svc, bucket, key, b"too long")
    # The staged blobs of the failed puts were consumed.
    assert tmp_files(data_dir) == []
    assert len((await svc.list_objects(bucket)).objects) == 3


@pytest.mark.parametrize(
    "key",
    ["", "nul\x00byte", "\x00", "lone-surrogate-\udc80", "\ud83d"],
    ids=["empty", "nul-inside", "nul", "lone-low-surrogate", "lone-high-surrogate"],
)
@pytest_twisted.ensureDeferred
async def test_invalid_keys(svc: Any, bucket: str, key: str, data_dir: str) -> None:
    # Empty keys: S3 requires at least one character (the contract does not say; S3 rule).
    with pytest.raises(InvalidArgument):
        await put(svc, bucket, key, b"body")
    assert tmp_files(data_dir) == []
    assert object_files(data_dir) == []
    assert (await svc.list_objects(bucket)).objects == ()


@pytest_twisted.ensureDeferred
async def test_multipart_create_validates_key(svc: Any, bucket: str, account: Any) -> None:
    with pytest.raises(KeyTooLong):
        await svc.create_multipart_upload(
            bucket, "k" * 1025, ObjectAttributes(), account.account_id
        )
    with pytest.raises(InvalidArgument):
        await svc.create_multipart_upload(bucket, "a\x00b", ObjectAttributes(), account.account_id)


# --- range reads --------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_range_reads(svc: Any, bucket: str) -> None:
    body = bytes(range(256)) * 1000  # 256000 bytes, every offset distinguishable-ish
    await put(svc, bucket, "r", body)
    cases = [
        (0, None),
        (0, 1),
        (1, 1),
        (0, len(body)),
        (10, 100),
        (len(body) - 1, 1),
        (len(body) - 1, None),
        (65535, 3),
        (100_000, 100_000),
        (123, None),
        (0, 0),
        (5000, 0),
    ]
    for start, length in cases:
        expected = body[start:] if length is None else body[start : start + length]
        assert await read(svc, bucket, "r", start, length) == expected, (start, length)


@pytest_twisted.ensureDeferred
async def test_open_object_info_matches(svc: Any, bucket: str) -> None:
    info = await put(svc, bucket, "k", b"content")
    opened = await svc.open_object(bucket, "k")
    assert isinstance(opened.info, ObjectInfo)
    assert opened.info == info
    opened.close()
    opened.close()  # closing twice is harmless


@pytest_twisted.ensureDeferred
async def test_close_and_stream_release_the_file(svc: Any, bucket: str, data_dir: str) -> None:
    info = await put(svc, bucket, "k", b"content")
    path = os.path.realpath(object_file_path(data_dir, info))
    opened = await svc.open_object(bucket, "k")
    opened.close()
    await wait_until(lambda: path not in open_fd_targets())
    opened = await svc.open_object(bucket, "k")
    await opened.stream(CollectingConsumer())
    await wait_until(lambda: path not in open_fd_targets())


@pytest_twisted.ensureDeferred
async def test_read_back_pressure(svc: Any, bucket: str) -> None:
    """A paused BlobProducer writes at most the chunk already in flight (one read at a time)."""
    body = os.urandom(8 * 1024 * 1024)
    await put(svc, bucket, "big", chunks_of(body))
    opened = await svc.open_object(bucket, "big")
    consumer = CollectingConsumer(pause_each_write=True)
    written = await opened.stream(consumer)
    assert written == len(body)
    assert bytes(consumer.data) == body
    assert consumer.streaming is True
    assert consumer.max_writes_while_paused <= 1
    assert consumer.write_count >= 2  # the body really came in several chunks


@pytest_twisted.ensureDeferred
async def test_cancel_stream_stops_and_closes(svc: Any, bucket: str, data_dir: str) -> None:
    body = os.urandom(16 * 1024 * 1024)
    info = await put(svc, bucket, "big", chunks_of(body))
    path = os.path.realpath(object_file_path(data_dir, info))
    opened = await svc.open_object(bucket, "big")
    consumer = CollectingConsumer()
    d = opened.stream(consumer)
    d.cancel()
    with pytest.raises(CancelledError):
        await d
    await wait_until(lambda: path not in open_fd_targets())
    received = consumer.byte_count
    assert received < len(body)
    # Nothing more arrives after cancellation.
    await put(svc, bucket, "other", b"x")  # give the pools a round trip
    assert consumer.byte_count == received


# --- copies and discards ------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_stage_copy_full_and_range(svc: Any, bucket: str, data_dir: str) -> None:
    body = os.urandom(200_000)
    await put(svc, bucket, "src", body)
    source = await svc.open_object(bucket, "src")
    staged = await svc.stage_copy(source)
    assert staged.size == len(body)
    assert staged.md5_hex == md5_hex(body)
    assert staged.sha256_hex == sha256_hex(body)
    dest = await svc.put_object(bucket, "dst", staged, source.info.attributes)
    assert await read(svc, bucket, "dst") == body
    assert dest.sha256_hex == sha256_hex(body)

    source = await svc.open_object(bucket, "src")
    part = await svc.stage_copy(source, 1000, 5000, checksum_algorithms=("CRC32",))
    piece = body[1000:6000]
    assert part.size == 5000
    assert part.md5_hex == md5_hex(piece)
    assert part.sha256_hex == sha256_hex(piece)
    assert dict(part.checksums) == {"CRC32": checksums.checksum_of("CRC32", piece)}
    await svc.put_object(bucket, "piece", part, ObjectAttributes())
    assert await read(svc, bucket, "piece") == piece
    assert tmp_files(data_dir) == []


@pytest_twisted.ensureDeferred
async def test_discard_removes_staged_file(svc: Any, data_dir: str) -> None:
    body = b"never stored" * 4096  # above DEFERRED_WRITE_BYTES: staged on disk
    staged = await stage(svc, body)
    assert staged.size == len(body)
    assert staged.pending is None
    assert tmp_files(data_dir) != []
    await svc.discard(staged)
    assert tmp_files(data_dir) == []


@pytest_twisted.ensureDeferred
async def test_small_body_stays_in_memory_until_placed(
    svc: Any, account: Any, data_dir: str
) -> None:
    """Below DEFERRED_WRITE_BYTES nothing touches tmp/ before put_object, and a discarded one
    leaves nothing behind; put_object writes it durably at its object path."""
    staged = await stage(svc, [b"small ", b"body"])
    assert staged.pending == (b"small ", b"body")
    assert tmp_files(data_dir) == []
    await svc.discard(staged)
    assert tmp_files(data_dir) == []
    await svc.create_bucket("small", account.account_id)
    staged = await stage(svc, b"small body")
    info = await svc.put_object("small", "k", staged, ObjectAttributes())
    assert info.etag == md5_hex(b"small body")
    assert await read(svc, "small", "k") == b"small body"
    assert tmp_files(data_dir) == []


@pytest_twisted.ensureDeferred
async def test_objects_in_different_buckets_are_independent(svc: Any, account: Any) -> None:
    await svc.create_bucket("one", account.account_id)
    await svc.create_bucket("two", account.account_id)
    await put(svc, "one", "k", b"in one")
    await put(svc, "two", "k", b"in two")
    assert await read(svc, "one", "k") == b"in one"
    assert await read(svc, "two", "k") == b"in two"
    await svc.delete_object("one", "k")
    assert await read(svc, "two", "k") == b"in two"
    with pytest.raises(NoSuchKey):
        await svc.get_object_info("one", "k")
    with pytest.raises(NoSuchBucket):
        await svc.get_object_info("three", "k")


def test_object_ids_share_shard_directories_in_runs() -> None:
    from jay.storage.blobs import ObjectIds

    ids = ObjectIds(run_objects=3)
    a = [ids.new("bucket-a") for _ in range(7)]
    b = ids.new("bucket-b")
    assert len(set(a)) == 7
    for object_id in a + [b]:
        assert uuid.UUID(object_id).version == 4 and str(uuid.UUID(object_id)) == object_id
    prefixes = [x[:4] for x in a]
    assert prefixes[0] == prefixes[1] == prefixes[2]
    assert prefixes[3] == prefixes[4] == prefixes[5]
    # Runs restart with the prefix of a fresh random id (equal to the last one 1 in 65536).
    assert ids._runs["bucket-a"] == [prefixes[6], 1]


@pytest_twisted.ensureDeferred
async def test_new_objects_of_a_bucket_fill_one_shard_directory(
    svc: Any, account: Any, data_dir: str
) -> None:
    await svc.create_bucket("runs", account.account_id)
    for i in range(20):
        await put(svc, "runs", f"k{i}", b"x")
    files = object_files(data_dir)
    assert len(files) == 20
    assert len({os.path.dirname(f) for f in files}) == 1
