"""jay.client against a real ``twistd -n jay`` process: every op, pipelining, 1 GiB streamed
with bounded client memory, and objects shared with the S3 front end.

Skipped while the process does not listen on its native port (the server is wired in
jay/service.py separately).
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.interfaces import IConsumer, IProducer
from twisted.internet.task import LoopingCall, cooperate
from zope.interface import implementer

from jay.client import (
    AuthenticationFailed,
    BadRequest,
    Client,
    Conflict,
    NotFound,
    connect,
)
from tests.integration.conftest import SEED_SECRET, SEED_TOKEN_ID, s3_client
from tests.integration.jayproc import JayProcess

MiB = 1024 * 1024
PART_SIZE = 5 * MiB  # conftest sets min_part_size to 5 MiB
BIG_SIZE = 1024 * MiB
RSS_BOUND_BYTES = 160 * MiB


def native_listening(jay: JayProcess) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", jay.native_port), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def native(jay: JayProcess) -> Iterator[JayProcess]:
    if not native_listening(jay):
        pytest.skip("the jay process does not serve the native port yet")
    yield jay


@pytest_twisted.async_yield_fixture
async def client(native: JayProcess) -> AsyncIterator[Client]:
    c = await connect(
        f"127.0.0.1:{native.native_port}", SEED_TOKEN_ID, SEED_SECRET, reactor=reactor
    )
    yield c
    await c.close()


def unique(name: str) -> str:
    return f"{name}-{os.urandom(4).hex()}"


def pattern(size: int, seed: int) -> bytes:
    block = hashlib.sha256(seed.to_bytes(8, "big")).digest() * 2048  # 64 KiB
    return (block * (size // len(block) + 1))[:size]


# --- streaming helpers -----------------------------------------------------------------------


class GeneratedBody:
    """A body producer generating ``length`` bytes on the fly, hashing what it sends."""

    CHUNK = 256 * 1024

    def __init__(self, length: int) -> None:
        self.length = length
        self.md5 = hashlib.md5()
        self._block = pattern(self.CHUNK, 7)
        self._task = None  # type: ignore[var-annotated]

    def _chunks(self, consumer: IConsumer) -> Iterator[None]:
        remaining = self.length
        while remaining:
            chunk = self._block[: min(self.CHUNK, remaining)]
            self.md5.update(chunk)
            consumer.write(chunk)
            remaining -= len(chunk)
            yield None

    def startProducing(self, consumer: IConsumer) -> Deferred[None]:
        self._task = cooperate(self._chunks(consumer))
        d: Deferred[None] = self._task.whenDone().addCallback(lambda _: None)
        return d

    def pauseProducing(self) -> None:
        self._task.pause()

    def resumeProducing(self) -> None:
        self._task.resume()

    def stopProducing(self) -> None:
        self._task.stop()


@implementer(IConsumer)
class HashingConsumer:
    """Hashes a download and keeps nothing; pauses now and then like a slow disk."""

    def __init__(self) -> None:
        self.md5 = hashlib.md5()
        self.size = 0
        self.producer: IProducer | None = None
        self.pauses = 0

    def registerProducer(self, producer: IProducer, streaming: bool) -> None:
        self.producer = producer

    def unregisterProducer(self) -> None:
        self.producer = None

    def write(self, data: bytes) -> None:
        self.md5.update(data)
        before = self.size
        self.size += len(data)
        if self.producer is not None and before // (64 * MiB) != self.size // (64 * MiB):
            self.pauses += 1
            producer = self.producer
            producer.pauseProducing()  # type: ignore[attr-defined]
            reactor.callLater(0.01, producer.resumeProducing)  # type: ignore[attr-defined]


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


# --- tests -----------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_bad_credentials_fail_at_connect(native: JayProcess) -> None:
    with pytest.raises(AuthenticationFailed):
        await connect(f"127.0.0.1:{native.native_port}", SEED_TOKEN_ID, "wrong", reactor=reactor)


@pytest_twisted.ensureDeferred
async def test_bucket_ops(client: Client) -> None:
    bucket = unique("nb")
    info = await client.create_bucket(bucket)
    assert info.name == bucket and info.visibility == "private"
    with pytest.raises(Conflict) as exists:
        await client.create_bucket(bucket)
    assert exists.value.code == "BucketAlreadyExists"
    assert (await client.head_bucket(bucket)).bucket_id == info.bucket_id
    assert bucket in [entry.name for entry in await client.list_buckets()]
    with pytest.raises(BadRequest) as invalid:
        await client.create_bucket("No_Such.Name!")
    assert invalid.value.code == "InvalidBucketName"
    await client.put_object(bucket, "k", b"v")
    with pytest.raises(Conflict) as not_empty:
        await client.delete_bucket(bucket)
    assert not_empty.value.code == "BucketNotEmpty"
    await client.delete_object(bucket, "k")
    await client.delete_bucket(bucket)
    with pytest.raises(NotFound) as gone:
        await client.head_bucket(bucket)
    assert gone.value.code == "NoSuchBucket"
    await client.ping()


@pytest_twisted.ensureDeferred
async def test_object_ops(client: Client, tmp_path: Path) -> None:
    bucket = unique("no")
    await client.create_bucket(bucket)
    put = await client.put_object(
        bucket, "a.txt", b"hello", content_type="text/plain", metadata={"author": "ann"}
    )
    assert put.etag == hashlib.md5(b"hello").hexdigest()
    assert put.checksum_sha256 == hashlib.sha256(b"hello").hexdigest()
    got = await client.get_object(bucket, "a.txt")
    assert got.data == b"hello"
    assert got.info.etag == put.etag and got.info.content_type == "text/plain"
    assert got.info.metadata == {"author": "ann"}
    head = await client.head_object(bucket, "a.txt")
    assert head.size == 5
    empty = await client.put_object(bucket, "empty", b"")
    assert empty.etag == hashlib.md5(b"").hexdigest()
    assert (await client.get_object(bucket, "empty")).data == b""
    source = tmp_path / "file.bin"
    source.write_bytes(pattern(3 * MiB + 17, 1))
    await client.put_object(bucket, "dir/file.bin", source)
    target = tmp_path / "back.bin"
    await client.get_object(bucket, "dir/file.bin", target)
    assert target.read_bytes() == source.read_bytes()
    with pytest.raises(NotFound) as missing:
        await client.get_object(bucket, "nope")
    assert missing.value.code == "NoSuchKey"
    await client.delete_object(bucket, "nope")  # idempotent
    await client.delete_object(bucket, "a.txt")
    with pytest.raises(NotFound):
        await client.head_object(bucket, "a.txt")


@pytest_twisted.ensureDeferred
async def test_listing_pages(client: Client) -> None:
    bucket = unique("nl")
    await client.create_bucket(bucket)
    keys = [f"k{i:02d}" for i in range(9)] + ["d1/a", "d1/b", "d2/a", "z"]
    await DeferredList(
        [client.put_object(bucket, k, k.encode()) for k in keys], fireOnOneErrback=True
    )
    page = await client.list_objects(bucket, delimiter="/", max_keys=100)
    assert [o.key for o in page.objects] == sorted(k for k in keys if "/" not in k)
    assert page.common_prefixes == ("d1/", "d2/") and not page.is_truncated
    pages = [p async for p in client.iter_pages(bucket, delimiter="/", max_keys=4)]
    assert [o.key for p in pages for o in p.objects] == [o.key for o in page.objects]
    assert [cp for p in pages for cp in p.common_prefixes] == ["d1/", "d2/"]
    objects, _ = await client.list_all_objects(bucket, "d1/", max_keys=1)
    assert [o.key for o in objects] == ["d1/a", "d1/b"]


@pytest_twisted.ensureDeferred
async def test_multipart(client: Client) -> None:
    bucket = unique("nm")
    await client.create_bucket(bucket)
    upload_id = await client.create_multipart_upload(bucket, "big", content_type="x/y")
    part1 = pattern(PART_SIZE, 2)
    part2 = b"tail"
    r2 = await client.upload_part(bucket, "big", upload_id, 2, part2)
    r1 = await client.upload_part(bucket, "big", upload_id, 1, part1)
    parts = await client.list_parts(bucket, "big", upload_id)
    assert [(p.part_number, p.size, p.etag) for p in parts] == [
        (1, PART_SIZE, r1.etag),
        (2, 4, r2.etag),
    ]
    done = await client.complete_multipart_upload(bucket, "big", upload_id, [1, 2])
    digests = hashlib.md5(part1).digest() + hashlib.md5(part2).digest()
    assert done.etag == f"{hashlib.md5(digests).hexdigest()}-2"
    assert done.size == PART_SIZE + 4
    got = await client.get_object(bucket, "big")
    assert got.data == part1 + part2 and got.info.content_type == "x/y"
    other = await client.create_multipart_upload(bucket, "gone")
    await client.abort_multipart_upload(bucket, "gone", other)
    with pytest.raises(NotFound) as no_upload:
        await client.list_parts(bucket, "gone", other)
    assert no_upload.value.code == "NoSuchUpload"


@pytest_twisted.ensureDeferred
async def test_pipelining_on_one_connection(native: JayProcess) -> None:
    client = await connect(
        f"127.0.0.1:{native.native_port}",
        SEED_TOKEN_ID,
        SEED_SECRET,
        reactor=reactor,
        pool_size=1,
        pipeline_depth=32,
    )
    try:
        bucket = unique("np")
        await client.create_bucket(bucket)
        keys = [f"key-{i:03d}" for i in range(40)]
        puts = [client.put_object(bucket, k, k.encode() * 10) for k in keys]
        await DeferredList(puts, fireOnOneErrback=True)
        gets = [client.get_object(bucket, k) for k in keys]
        results = await DeferredList(gets, fireOnOneErrback=True)
        assert [r.data for _, r in results] == [k.encode() * 10 for k in keys]
        assert client.pool.connection_count == 1
    finally:
        await client.close()


@pytest_twisted.ensureDeferred
async def test_one_gib_streams_both_ways_with_bounded_client_memory(client: Client) -> None:
    bucket = unique("nbig")
    await client.create_bucket(bucket)
    baseline = rss_bytes()
    peak = [baseline]
    sampler = LoopingCall(lambda: peak.__setitem__(0, max(peak[0], rss_bytes())))
    sampler.clock = reactor
    sampler.start(0.05)
    try:
        body = GeneratedBody(BIG_SIZE)
        put = await client.put_object(bucket, "huge", body)
        assert put.etag == body.md5.hexdigest()
        sink = HashingConsumer()
        got = await client.get_object(bucket, "huge", sink)
        assert got.info.size == BIG_SIZE and sink.size == BIG_SIZE
        assert sink.md5.hexdigest() == put.etag
        assert sink.pauses > 0
    finally:
        sampler.stop()
        await client.delete_object(bucket, "huge")
    assert peak[0] - baseline < RSS_BOUND_BYTES, (baseline, peak[0])


@pytest_twisted.ensureDeferred
async def test_cross_protocol_visibility(native: JayProcess, client: Client) -> None:
    s3 = s3_client(native)
    bucket = unique("nx")
    s3.create_bucket(Bucket=bucket)
    data = pattern(MiB + 3, 5)
    s3.put_object(Bucket=bucket, Key="from-s3", Body=data, ContentType="a/b")
    s3_etag = s3.head_object(Bucket=bucket, Key="from-s3")["ETag"].strip('"')
    got = await client.get_object(bucket, "from-s3")
    assert got.data == data and got.info.etag == s3_etag and got.info.content_type == "a/b"
    put = await client.put_object(
        bucket, "from-native", data, content_type="c/d", metadata={"x-amz-meta-who": "native"}
    )
    response = s3.get_object(Bucket=bucket, Key="from-native")
    assert response["Body"].read() == data
    assert response["ETag"].strip('"') == put.etag == s3_etag
    assert response["ContentType"] == "c/d"
    listed = s3.list_objects_v2(Bucket=bucket)["Contents"]
    assert sorted(o["Key"] for o in listed) == ["from-native", "from-s3"]
    page = await client.list_objects(bucket)
    assert {o.key: o.etag for o in page.objects} == {"from-native": put.etag, "from-s3": s3_etag}
