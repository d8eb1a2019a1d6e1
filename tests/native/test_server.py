"""NativeServerProtocol over StringTransport with a task.Clock for its timeouts and a real
StorageService (SQLite and files in tmp_path, real pools and reactor) behind it (JAY_SPEC §1)."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor, task
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, fail
from twisted.internet.testing import StringTransport
from twisted.python.threadpool import ThreadPool

from jay import errors
from jay.auth.secrets import derive_kek, encrypt_secret, hash_secret
from jay.auth.tokens import TokenVerifier
from jay.core.access import AccessControl
from jay.lifecycle import Readiness
from jay.native import codec
from jay.native.codec import (
    HEADER_SIZE,
    MAX_META_BYTES,
    BucketRequest,
    CompleteMultipartUploadRequest,
    CreateMultipartUploadRequest,
    ListObjectsRequest,
    ObjectRequest,
    Op,
    PutObjectRequest,
    UploadPartRequest,
    UploadRequest,
)
from jay.native.parser import (
    ClientFrameParser,
    DataChunk,
    HandshakeReply,
    ProtocolError,
    ResponseEnd,
    ResponseHead,
)
from jay.native.server import (
    READ_HIGH_WATER_BYTES,
    NativeServerFactory,
    NativeServerProtocol,
    list_objects_response,
)
from jay.storage.api import Account, ListedObject, TokenRecord
from jay.storage.api import ObjectInfo as StoredObject
from jay.storage.packs import parse_ref
from tests.native import vectors as v

SIGNING_SECRET = "0123456789abcdef0123456789abcdef"
KEK = derive_kek(SIGNING_SECRET)
TOKEN_ID = "tok-1"
SECRET = "s3cr3t"
MiB = 1024 * 1024


# --- harness ---------------------------------------------------------------------------------


async def wait_until(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    """Poll on the reactor (storage work runs in its pools) until ``predicate`` holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached within {timeout} s")
        await task.deferLater(reactor, 0.002, lambda: None)


@dataclass
class Env:
    storage: Any
    verifier: TokenVerifier
    access: AccessControl
    clock: task.Clock
    readiness: Readiness
    account: Account
    data_dir: str

    def factory(self, **kwargs: Any) -> NativeServerFactory:
        options: dict[str, Any] = {
            "storage": self.storage,
            "verifier": self.verifier,
            "access": self.access,
            "clock": self.clock,
            "readiness": self.readiness,
            "read_verify_rate": 0.0,
        }
        options.update(kwargs)
        return NativeServerFactory(**options)

    async def add_token(
        self,
        token_id: str,
        secret: str = SECRET,
        *,
        actions: tuple[str, ...] = ("*",),
        bucket_scope: tuple[str, ...] = (),
        account_id: str | None = None,
    ) -> TokenRecord:
        return await self.storage.create_token(
            TokenRecord(
                token_id=token_id,
                account_id=account_id or self.account.account_id,
                name=token_id,
                secret_hash=hash_secret(secret, cost=4),
                secret_key=encrypt_secret(KEK, secret),
                allowed_actions=actions,
                bucket_scope=bucket_scope,
                created_at=0.0,
            )
        )


@pytest_twisted.async_yield_fixture
async def env(tmp_path: Any) -> Any:
    from jay.storage.service import StorageService

    data_dir = str(tmp_path / "data")
    storage = StorageService(data_dir, reactor=reactor)
    storage.startService()
    await storage.when_ready()
    pool = ThreadPool(minthreads=0, maxthreads=2, name="test-bcrypt")
    pool.start()
    clock = task.Clock()
    verifier = TokenVerifier(storage, kek=KEK, clock=clock, reactor=reactor, pool=pool)
    readiness = Readiness()
    readiness.mark_ready()
    account = await storage.create_account("alice")
    environment = Env(
        storage=storage,
        verifier=verifier,
        access=AccessControl(storage),
        clock=clock,
        readiness=readiness,
        account=account,
        data_dir=data_dir,
    )
    await environment.add_token(TOKEN_ID)
    try:
        yield environment
    finally:
        pool.stop()
        result = storage.stopService()
        if isinstance(result, Deferred):
            await result


@dataclass
class Response:
    status: int
    stream_id: int
    meta: bytes
    data: bytes

    def error(self) -> codec.ErrorInfo:
        assert self.status != 0, self
        return codec.ErrorInfo.decode(self.meta)

    def ok(self, op: Op) -> Any:
        assert self.status == 0, (self.status, self.meta)
        return codec.decode_response(op, self.meta)


class RecordingTransport(StringTransport):
    """Remembers every pause and resume of reading, with whether an upload was streaming."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.history: list[tuple[str, bool]] = []
        self.protocol: Any = None

    def _is_streaming_upload(self) -> bool:
        exchange = self.protocol._exchange if self.protocol is not None else None
        return exchange is not None and exchange.sink is not None

    def pauseProducing(self) -> None:
        super().pauseProducing()
        self.history.append(("pause", self._is_streaming_upload()))

    def resumeProducing(self) -> None:
        super().resumeProducing()
        self.history.append(("resume", self._is_streaming_upload()))


class Client:
    """One server connection over a StringTransport, read back with the client parser."""

    def __init__(self, factory: NativeServerFactory) -> None:
        self.factory = factory
        self.transport = RecordingTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 40000))
        protocol = factory.buildProtocol(self.transport.getPeer())
        assert protocol is not None
        self.protocol: NativeServerProtocol = protocol
        self.transport.protocol = protocol
        self.protocol.makeConnection(self.transport)
        self.parser = ClientFrameParser()
        self._read = 0
        self._events: list[object] = []

    def send(self, data: bytes) -> None:
        self.protocol.dataReceived(data)

    def written(self) -> bytes:
        return self.transport.value()

    def _parse(self) -> None:
        value = self.transport.value()
        if len(value) > self._read:
            self._events.extend(self.parser.feed(value[self._read :]))
            self._read = len(value)

    async def handshake(self, token_id: str = TOKEN_ID, secret: str = SECRET) -> int:
        self.send(codec.encode_client_handshake(token_id, secret))
        await wait_until(lambda: len(self.transport.value()) >= 8)
        self._parse()
        event = self._events.pop(0)
        assert isinstance(event, HandshakeReply)
        return event.status

    def _complete_response(self) -> Response | None:
        self._parse()
        for index, event in enumerate(self._events):
            if isinstance(event, ProtocolError):
                raise AssertionError(f"bad response bytes: {event}")
            if isinstance(event, ResponseEnd):
                head = self._events[0]
                assert isinstance(head, ResponseHead)
                data = b"".join(e.data for e in self._events[1:index] if isinstance(e, DataChunk))
                del self._events[: index + 1]
                return Response(head.status, head.stream_id, head.meta, data)
        return None

    async def response(self, timeout: float = 20.0) -> Response:
        found: list[Response] = []

        def ready() -> bool:
            result = self._complete_response()
            if result is not None:
                found.append(result)
            return bool(found)

        await wait_until(ready, timeout)
        return found[0]

    async def call(
        self, op: int, meta: Any = None, data: bytes = b"", stream_id: int = 1
    ) -> Response:
        self.send(request(op, meta, data, stream_id))
        return await self.response()

    @property
    def is_closed(self) -> bool:
        return bool(self.transport.disconnecting)

    @property
    def is_aborted(self) -> bool:
        return bool(self.transport.disconnected)


def request(op: int, meta: Any = None, data: bytes = b"", stream_id: int = 1) -> bytes:
    payload = b"" if meta is None else (meta if isinstance(meta, bytes) else meta.encode())
    return codec.encode_frame(op, stream_id, payload, len(data)) + data


async def connect(env: Env, **factory_kwargs: Any) -> Client:
    client = Client(env.factory(**factory_kwargs))
    assert await client.handshake() == 0
    return client


async def make_bucket(client: Client, name: str = "photos") -> None:
    response = await client.call(Op.CREATE_BUCKET, BucketRequest(name))
    assert response.status == 0, response


async def put(client: Client, bucket: str, key: str, data: bytes, **kw: Any) -> Response:
    return await client.call(Op.PUT_OBJECT, PutObjectRequest(bucket=bucket, key=key, **kw), data)


# --- handshake -------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_handshake_ok_then_ping_vector(env: Env) -> None:
    client = Client(env.factory())
    client.send(codec.encode_client_handshake(TOKEN_ID, SECRET))
    await wait_until(lambda: len(client.written()) >= 8)
    assert client.written() == v.HANDSHAKE_OK
    assert client.transport.producer is not None  # our send-buffer watcher
    client.send(v.h("FF 00000001 00000000 0000000000000000"))
    await wait_until(lambda: len(client.written()) == 8 + HEADER_SIZE)
    assert client.written()[8:] == v.h("00 00000001 00000000 0000000000000000")
    assert not client.is_closed


@pytest_twisted.ensureDeferred
async def test_handshake_and_pipelined_ping_in_one_packet(env: Env) -> None:
    client = Client(env.factory())
    client.send(codec.encode_client_handshake(TOKEN_ID, SECRET) + request(Op.PING, stream_id=5))
    await wait_until(lambda: len(client.written()) == 8 + HEADER_SIZE)
    assert client.written() == v.HANDSHAKE_OK + codec.encode_frame(0, 5)


@pytest.mark.parametrize(
    "credentials",
    [f"{TOKEN_ID}:wrong", "nobody:" + SECRET, TOKEN_ID + SECRET, f"{TOKEN_ID}:{SECRET}:x"],
)
@pytest_twisted.ensureDeferred
async def test_bad_credentials_answer_01_and_close(env: Env, credentials: str) -> None:
    client = Client(env.factory())
    raw = credentials.encode()
    client.send(codec.MAGIC + bytes([1, 0]) + len(raw).to_bytes(2, "big") + raw)
    await wait_until(lambda: len(client.written()) >= 8)
    assert client.written() == v.HANDSHAKE_AUTH_FAILED
    assert client.is_closed


@pytest.mark.parametrize(
    "preamble",
    [
        b"JAX\x00\x01\x00\x00\x01a",  # wrong magic
        b"JAY\x00\x02\x00\x00\x01a",  # version 2
        b"JAY\x00\x01\x00\x00\x00",  # auth_len 0
    ],
)
@pytest_twisted.ensureDeferred
async def test_bad_preamble_answers_02_and_closes(env: Env, preamble: bytes) -> None:
    client = Client(env.factory())
    client.send(preamble)
    assert client.written() == v.HANDSHAKE_BAD_PREAMBLE
    assert client.is_closed


@pytest_twisted.ensureDeferred
async def test_handshake_timeout(env: Env) -> None:
    client = Client(env.factory())
    client.send(codec.MAGIC + b"\x01")
    env.clock.advance(9.9)
    assert not client.is_closed
    env.clock.advance(0.2)
    assert client.written() == v.HANDSHAKE_BAD_PREAMBLE
    assert client.is_closed


@pytest_twisted.ensureDeferred
async def test_revoked_token_fails_handshake_and_closes_open_connections(env: Env) -> None:
    client = await connect(env)
    assert (await client.call(Op.PING)).status == 0
    await env.storage.set_token_status(TOKEN_ID, "revoked")
    env.verifier.invalidate(TOKEN_ID)
    response = await client.call(Op.PING, stream_id=2)
    assert (response.status, response.error().code) == (4, "AccessDenied")
    assert client.is_closed
    other = Client(env.factory())
    assert await other.handshake() == 1
    assert other.is_closed


# --- framing, limits and timeouts ------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_oversize_meta_closes_without_a_frame(env: Env) -> None:
    client = await connect(env)
    client.send(codec.encode_header(Op.PUT_OBJECT, 1, MAX_META_BYTES + 1, 0))
    assert client.written() == v.HANDSHAKE_OK
    assert client.is_closed


@pytest_twisted.ensureDeferred
async def test_data_len_with_top_bit_closes(env: Env) -> None:
    client = await connect(env)
    client.send(bytes([Op.PING]) + b"\x00" * 8 + b"\x80" + b"\x00" * 7)
    assert client.written() == v.HANDSHAKE_OK
    assert client.is_closed


@pytest_twisted.ensureDeferred
async def test_truncated_frame_hits_the_frame_deadline(env: Env) -> None:
    client = await connect(env, frame_timeout_seconds=30)
    frame = request(Op.CREATE_BUCKET, BucketRequest("photos"))
    client.send(frame[:20])  # header and 3 bytes of meta: slow-loris
    env.clock.advance(29)
    assert not client.is_closed
    env.clock.advance(2)
    assert client.is_aborted
    assert client.written() == v.HANDSHAKE_OK


@pytest_twisted.ensureDeferred
async def test_idle_timeout_is_configurable_and_reset_by_requests(env: Env) -> None:
    client = await connect(env, idle_timeout_seconds=120)
    env.clock.advance(100)
    assert (await client.call(Op.PING)).status == 0
    env.clock.advance(100)
    assert not client.is_closed  # the ping restarted the idle clock
    env.clock.advance(21)
    assert client.is_closed


@pytest_twisted.ensureDeferred
async def test_default_idle_timeout_is_300_seconds(env: Env) -> None:
    client = await connect(env)
    env.clock.advance(299)
    assert not client.is_closed
    env.clock.advance(2)
    assert client.is_closed


@pytest_twisted.ensureDeferred
async def test_unknown_op_with_data_is_drained(env: Env) -> None:
    client = await connect(env)
    client.send(
        request(0x7E, b"\x00\x01x", b"z" * 5000, stream_id=3) + request(Op.PING, None, b"", 4)
    )
    first = await client.response()
    assert (first.status, first.stream_id) == (3, 3)
    assert (first.error().message, first.error().code) == ("unknown operation", "UnknownOp")
    second = await client.response()
    assert (second.status, second.stream_id, second.meta) == (0, 4, b"")


@pytest_twisted.ensureDeferred
async def test_unknown_op_with_data_over_the_drain_limit_closes(env: Env) -> None:
    client = await connect(env)
    client.send(codec.encode_frame(0x7E, 3, b"", 10 * MiB + 1) + b"z" * 1000)
    await wait_until(lambda: client.is_closed)
    assert client.written() == v.HANDSHAKE_OK


@pytest_twisted.ensureDeferred
async def test_data_on_an_op_without_data_is_drained_and_refused(env: Env) -> None:
    client = await connect(env)
    client.send(request(Op.PING, None, b"junk" * 10, 8) + request(Op.PING, None, b"", 9))
    first = await client.response()
    assert (first.status, first.stream_id, first.error().code) == (3, 8, "InvalidArgument")
    second = await client.response()
    assert (second.status, second.stream_id) == (0, 9)


@pytest_twisted.ensureDeferred
async def test_undecodable_meta_is_invalid_request_and_put_body_drained(env: Env) -> None:
    client = await connect(env)
    client.send(
        request(Op.PUT_OBJECT, b"\x00\x09pho", b"hello", 2) + request(Op.PING, None, b"", 3)
    )
    first = await client.response()
    assert first.error() == codec.ErrorInfo("invalid request", "InvalidArgument")
    assert first.status == 3
    assert (await client.response()).stream_id == 3


class DenySecond:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def allow(self, key: str) -> bool:
        self.calls.append(key)
        return len(self.calls) != 2


@pytest_twisted.ensureDeferred
async def test_rate_limited_frame_is_drained_and_answered(env: Env) -> None:
    limiter = DenySecond()
    client = await connect(env, rate_limiter=limiter)
    await make_bucket(client)
    # The second frame is refused: its meta and 5000 data bytes are skipped (§1.13, vector j).
    put_frame = request(Op.PUT_OBJECT, PutObjectRequest(bucket="photos", key="k"), b"x" * 5000, 0)
    client.send(put_frame + request(Op.PING, None, b"", 6))
    refused = await client.response()
    assert (
        codec.encode_frame(refused.status, refused.stream_id, refused.meta)
        == v.h("03 00000000 00000028 0000000000000000")
        + codec.ErrorInfo("rate limit exceeded", "RateLimitExceeded").encode()
    )
    assert (await client.response()).stream_id == 6
    assert limiter.calls == [TOKEN_ID] * 3
    with pytest.raises(errors.NoSuchKey):
        await env.storage.get_object_info("photos", "k")


@pytest_twisted.ensureDeferred
async def test_pipelined_requests_are_answered_in_order(env: Env) -> None:
    client = await connect(env)
    frames = [
        request(Op.CREATE_BUCKET, BucketRequest("photos"), b"", 1),
        request(Op.PUT_OBJECT, PutObjectRequest(bucket="photos", key="a"), b"alpha", 2),
        request(Op.GET_OBJECT, ObjectRequest("photos", "a"), b"", 3),
        request(Op.HEAD_OBJECT, ObjectRequest("photos", "missing"), b"", 4),
        request(Op.PUT_OBJECT, PutObjectRequest(bucket="photos", key="b"), b"beta", 5),
        request(Op.LIST_OBJECTS, ListObjectsRequest(bucket="photos"), b"", 6),
        request(Op.PING, None, b"", 7),
    ]
    client.send(b"".join(frames))
    responses = [await client.response() for _ in frames]
    assert [r.stream_id for r in responses] == [1, 2, 3, 4, 5, 6, 7]
    assert [r.status for r in responses] == [0, 0, 0, 1, 0, 0, 0]
    assert responses[2].data == b"alpha"
    listing = responses[5].ok(Op.LIST_OBJECTS)
    assert [o.key for o in listing.objects] == ["a", "b"]


@pytest_twisted.ensureDeferred
async def test_pipelined_backlog_pauses_reading_while_a_request_is_in_flight(env: Env) -> None:
    client = await connect(env)
    await make_bucket(client)
    body = b"q" * (2 * MiB)
    # The first PUT is still waiting for its commit when the second arrives behind it: the
    # second must wait in the parser with the transport paused, not be pulled in elsewhere.
    first = request(Op.PUT_OBJECT, PutObjectRequest(bucket="photos", key="small"), b"s", 2)
    second = request(Op.PUT_OBJECT, PutObjectRequest(bucket="photos", key="big"), body, 3)
    client.send(first + second)
    assert client.transport.producerState == "paused"
    assert client.protocol._parser.buffered_bytes <= READ_HIGH_WATER_BYTES + len(body) + 100
    assert (await client.response()).ok(Op.PUT_OBJECT).etag == hashlib.md5(b"s").hexdigest()
    response = await client.response()
    assert response.ok(Op.PUT_OBJECT).etag == hashlib.md5(body).hexdigest()
    assert client.transport.producerState == "producing"


# --- buckets ---------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_bucket_operations(env: Env) -> None:
    client = await connect(env)
    created = (await client.call(Op.CREATE_BUCKET, BucketRequest("photos"))).ok(Op.CREATE_BUCKET)
    assert (created.name, created.visibility) == ("photos", "private")
    assert created.created_at.endswith("Z") and len(created.bucket_id) == 36
    again = await client.call(Op.CREATE_BUCKET, BucketRequest("photos"))
    assert (again.status, again.error().code) == (2, "BucketAlreadyExists")
    bad = await client.call(Op.CREATE_BUCKET, BucketRequest("No_Such"))
    assert (bad.status, bad.error()) == (
        3,
        codec.ErrorInfo("invalid bucket name", "InvalidBucketName"),
    )
    head = (await client.call(Op.HEAD_BUCKET, BucketRequest("photos"))).ok(Op.HEAD_BUCKET)
    assert head == created
    missing = await client.call(Op.HEAD_BUCKET, BucketRequest("nothere"))
    assert (missing.status, missing.error()) == (
        1,
        codec.ErrorInfo("bucket not found", "NoSuchBucket"),
    )
    await make_bucket(client, "alpha")
    listed = (await client.call(Op.LIST_BUCKETS)).ok(Op.LIST_BUCKETS)
    assert [b.name for b in listed.buckets] == ["alpha", "photos"]
    assert (await put(client, "photos", "k", b"v")).status == 0
    not_empty = await client.call(Op.DELETE_BUCKET, BucketRequest("photos"))
    assert (not_empty.status, not_empty.error().code) == (2, "BucketNotEmpty")
    deleted = await client.call(Op.DELETE_BUCKET, BucketRequest("alpha"), stream_id=77)
    assert codec.encode_frame(
        deleted.status, deleted.stream_id, deleted.meta
    ) == codec.encode_frame(0, 77)
    gone = await client.call(Op.DELETE_BUCKET, BucketRequest("alpha"))
    assert (gone.status, gone.error().code) == (1, "NoSuchBucket")


@pytest_twisted.ensureDeferred
async def test_scopes_and_ownership_are_enforced(env: Env) -> None:
    owner = await connect(env)
    await make_bucket(owner)
    await env.add_token("reader", actions=("object:get",))
    reader = Client(env.factory())
    assert await reader.handshake("reader") == 0
    denied = await put(reader, "photos", "k", b"data")
    assert (denied.status, denied.error()) == (4, codec.ErrorInfo("access denied", "AccessDenied"))
    await env.add_token("scoped", bucket_scope=("photos",))
    scoped = Client(env.factory())
    assert await scoped.handshake("scoped") == 0
    assert (await scoped.call(Op.LIST_BUCKETS)).status == 4  # bucket "" is outside the scope
    stranger_account = await env.storage.create_account("mallory")
    await env.add_token("stranger", account_id=stranger_account.account_id)
    stranger = Client(env.factory())
    assert await stranger.handshake("stranger") == 0
    assert (await put(owner, "photos", "secret", b"s")).status == 0
    # Another account's token learns nothing about the key (authorize before lookup).
    for op in (Op.GET_OBJECT, Op.HEAD_OBJECT, Op.DELETE_OBJECT):
        response = await stranger.call(op, ObjectRequest("photos", "secret"))
        assert response.status == 4, op
        response = await stranger.call(op, ObjectRequest("photos", "nothing"))
        assert response.status == 4, op
    assert (await stranger.call(Op.DELETE_BUCKET, BucketRequest("photos"))).status == 4


@pytest_twisted.ensureDeferred
async def test_policy_conditions_see_the_native_request(env: Env) -> None:
    """Listing keys come from the request; the connection is not TLS; headers do not exist."""
    owner = await connect(env)
    await make_bucket(owner)
    for key in ("home/a", "etc/b"):
        assert (await put(owner, "photos", key, b"x")).status == 0
    stranger_account = await env.storage.create_account("mallory")
    await env.add_token("stranger", account_id=stranger_account.account_id)
    stranger = Client(env.factory())
    assert await stranger.handshake("stranger") == 0
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": [stranger_account.account_id]},
                "Action": "s3:ListBucket",
                "Resource": "arn:aws:s3:::photos",
                "Condition": {"StringLike": {"s3:prefix": "home/*"}},
            },
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:DeleteObject",
                "Resource": "arn:aws:s3:::photos/*",
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": "arn:aws:s3:::photos/*",
                "Condition": {"StringLike": {"aws:UserAgent": "*"}},
            },
        ],
    }
    await env.storage.set_bucket_policy("photos", json.dumps(policy))
    home = await stranger.call(Op.LIST_OBJECTS, ListObjectsRequest(bucket="photos", prefix="home/"))
    assert [o.key for o in home.ok(Op.LIST_OBJECTS).objects] == ["home/a"]
    etc = await stranger.call(Op.LIST_OBJECTS, ListObjectsRequest(bucket="photos", prefix="etc/"))
    assert etc.status == 4
    deleted = await owner.call(Op.DELETE_OBJECT, ObjectRequest("photos", "home/a"))
    assert deleted.status == 4  # plain TCP: the deny applies to the owner too
    read = await stranger.call(Op.GET_OBJECT, ObjectRequest("photos", "home/a"))
    assert read.status == 4  # no User-Agent on the native protocol: the allow does not apply


# --- objects ---------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_put_object_vector_and_metadata_stored_verbatim(env: Env) -> None:
    client = await connect(env)
    await make_bucket(client)
    client.send(v.PUT_REQUEST)
    await client.response()
    assert client.written()[-len(v.PUT_RESPONSE) :] == v.PUT_RESPONSE
    info = await env.storage.get_object_info("photos", "a.txt")
    assert info.attributes.content_type == "text/plain"
    assert dict(info.attributes.metadata) == {"author": "ann"}  # no x-amz-meta- prefix (§2.3)


@pytest_twisted.ensureDeferred
async def test_get_head_delete_object(env: Env) -> None:
    client = await connect(env)
    await make_bucket(client)
    meta = {"author": "ann", "x-amz-meta-foo": "bar"}
    put_result = (await put(client, "photos", "a.txt", b"hello", metadata=meta)).ok(Op.PUT_OBJECT)
    assert put_result == codec.PutResult(v.HELLO_MD5, v.HELLO_SHA256)
    got = await client.call(Op.GET_OBJECT, ObjectRequest("photos", "a.txt"), stream_id=9)
    info = got.ok(Op.GET_OBJECT)
    assert got.data == b"hello" and got.stream_id == 9
    assert (info.content_type, info.size, info.etag) == ("application/octet-stream", 5, v.HELLO_MD5)
    assert info.checksum_sha256 == v.HELLO_SHA256 and dict(info.metadata) == meta
    head = await client.call(Op.HEAD_OBJECT, ObjectRequest("photos", "a.txt"))
    assert head.ok(Op.HEAD_OBJECT) == info and head.data == b""
    empty = (await put(client, "photos", "empty", b"")).ok(Op.PUT_OBJECT)
    assert empty.etag == hashlib.md5(b"").hexdigest()
    got_empty = await client.call(Op.GET_OBJECT, ObjectRequest("photos", "empty"))
    assert got_empty.ok(Op.GET_OBJECT).size == 0 and got_empty.data == b""
    assert (await client.call(Op.DELETE_OBJECT, ObjectRequest("photos", "a.txt"))).status == 0
    assert (await client.call(Op.DELETE_OBJECT, ObjectRequest("photos", "a.txt"))).status == 0
    client.send(v.GET_REQUEST)
    await client.response()
    assert client.written().endswith(v.NO_SUCH_KEY_RESPONSE)
    no_bucket = await put(client, "nothere", "k", b"body")
    assert (no_bucket.status, no_bucket.error().code) == (1, "NoSuchBucket")
    assert (await client.call(Op.PING, stream_id=3)).stream_id == 3  # the body was drained


@pytest_twisted.ensureDeferred
async def test_get_object_streams_a_large_object_before_the_next_response(env: Env) -> None:
    client = await connect(env)
    await make_bucket(client)
    body = os.urandom(9 * MiB + 123)
    assert (await put(client, "photos", "big", body)).status == 0
    client.send(
        request(Op.GET_OBJECT, ObjectRequest("photos", "big"), b"", 1)
        + request(Op.PING, None, b"", 2)
    )
    got = await client.response()
    assert got.ok(Op.GET_OBJECT).size == len(body)
    assert hashlib.sha256(got.data).digest() == hashlib.sha256(body).digest()
    ping = await client.response()
    assert (ping.status, ping.stream_id) == (0, 2)
    assert isinstance(client.transport.producer, object) and client.transport.producer is not None
    assert type(client.transport.producer).__name__ == "_WriteFlow"


@pytest_twisted.ensureDeferred
async def test_get_object_with_a_short_file_closes_the_connection(env: Env) -> None:
    client = await connect(env)
    await make_bucket(client)
    body = os.urandom(3 * MiB)
    assert (await put(client, "photos", "big", body)).status == 0
    info: StoredObject = await env.storage.get_object_info("photos", "big")
    path = os.path.join(
        env.data_dir, "buckets", info.bucket_id, "objects",
        info.object_id[0:2], info.object_id[2:4], info.object_id,
    )  # fmt: skip
    assert os.path.getsize(path) == len(body)
    os.truncate(path, MiB)
    before = len(client.written())
    client.send(request(Op.GET_OBJECT, ObjectRequest("photos", "big"), b"", 1))
    await wait_until(lambda: client.is_aborted)
    sent = client.written()[before:]
    assert sent[0] == 0 and len(sent) < HEADER_SIZE + 200 + len(body)


@pytest_twisted.ensureDeferred
async def test_put_body_streams_with_backpressure(env: Env) -> None:
    client = await connect(env)
    await make_bucket(client)
    body = os.urandom(12 * MiB)
    frame = request(Op.PUT_OBJECT, PutObjectRequest(bucket="photos", key="big"), body, 4)
    head_size = len(frame) - len(body)
    client.send(frame[:head_size])
    await wait_until(lambda: client.protocol._exchange is not None
                     and client.protocol._exchange.sink is not None)  # fmt: skip
    assert client.transport.history == []
    # 6 MiB at once overflow the staging writer's 4 MiB water mark: reading pauses until the
    # blob pool has written them.
    client.send(frame[head_size : head_size + 6 * MiB])
    assert client.transport.history == [("pause", True)]
    assert client.transport.producerState == "paused"
    await wait_until(lambda: ("resume", True) in client.transport.history)
    client.send(frame[head_size + 6 * MiB :])
    response = await client.response()
    assert response.ok(Op.PUT_OBJECT).checksum_sha256 == hashlib.sha256(body).hexdigest()
    got = await client.call(Op.GET_OBJECT, ObjectRequest("photos", "big"))
    assert got.data == body


@pytest_twisted.ensureDeferred
async def test_failure_after_the_body_answers_05_and_keeps_the_connection(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await connect(env)
    await make_bucket(client)
    real_put = env.storage.put_object

    def failing_put(bucket: str, key: str, staged: Any, *args: Any, **kw: Any) -> Any:
        return env.storage.discard(staged).addCallback(
            lambda _: fail(errors.StorageFull(bucket=bucket, key=key))
        )

    monkeypatch.setattr(env.storage, "put_object", failing_put)
    response = await put(client, "photos", "k", b"x" * 200_000)
    assert response.status == 5
    assert response.error() == codec.ErrorInfo("failed to store object", "InternalError")
    monkeypatch.setattr(env.storage, "put_object", real_put)
    assert (await put(client, "photos", "k", b"ok")).status == 0
    assert not client.is_closed


@pytest_twisted.ensureDeferred
async def test_list_objects_pages_never_repeat(env: Env) -> None:
    client = await connect(env)
    await make_bucket(client)
    for key in ("a.txt", "docs/1", "docs/2", "docs/sub/3", "e.txt", "z/1"):
        assert (await put(client, "photos", key, b"x")).status == 0
    seen: list[str] = []
    start_after = ""
    pages = 0
    while True:
        page = (
            await client.call(
                Op.LIST_OBJECTS,
                ListObjectsRequest(
                    bucket="photos", delimiter="/", start_after=start_after, max_keys=1
                ),
            )
        ).ok(Op.LIST_OBJECTS)
        pages += 1
        seen += [o.key for o in page.objects] + list(page.common_prefixes)
        if not page.is_truncated:
            break
        start_after = page.next_start_after
        assert pages < 10
    assert seen == ["a.txt", "docs/", "e.txt", "z/"]
    missing = await client.call(Op.LIST_OBJECTS, ListObjectsRequest(bucket="nothere"))
    assert (missing.status, missing.error().code) == (1, "NoSuchBucket")
    default = await client.call(Op.LIST_OBJECTS, ListObjectsRequest(bucket="photos", max_keys=0))
    assert len(default.ok(Op.LIST_OBJECTS).objects) == 6


def _stored(key: str, content_type: str = "application/octet-stream") -> ListedObject:
    return ListedObject(
        key=key, size=1, etag="e" * 32, sha256_hex="f" * 64, updated_at=1704164645.0,
        content_type=content_type,
    )  # fmt: skip


def test_list_objects_response_is_cut_below_one_mebibyte() -> None:
    long = "k" * 900
    objects = tuple(_stored(f"{long}{i:05d}") for i in range(2000))
    prepared = list_objects_response(objects, (), False, "")
    encoded = prepared.encode()
    response = prepared.decoded()
    assert len(encoded) <= MAX_META_BYTES
    assert response.is_truncated
    assert 0 < len(response.objects) < 2000
    assert response.next_start_after == response.objects[-1].key
    untouched = list_objects_response(objects[:3], ("p/",), False, "").decoded()
    assert (untouched.is_truncated, untouched.next_start_after) == (False, "")
    assert [o.key for o in untouched.objects] == [o.key for o in objects[:3]]


def test_list_objects_response_cut_on_a_common_prefix_continues_after_it() -> None:
    objects = (_stored("a"), _stored("c"))
    response = list_objects_response(
        objects, ("b/",), True, "c", max_meta_bytes=codec.ListObjectsResponse.BASE_SIZE + 4096 + 200
    ).decoded()
    assert [o.key for o in response.objects] == ["a"] and response.common_prefixes == ("b/",)
    assert response.is_truncated
    assert "b/zzzz" < response.next_start_after < "c"


# --- multipart -------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_multipart_upload(env: Env) -> None:
    client = await connect(env)
    await make_bucket(client)
    created = await client.call(
        Op.CREATE_MULTIPART_UPLOAD,
        CreateMultipartUploadRequest(bucket="photos", key="big.bin", content_type=""),
    )
    upload_id = created.ok(Op.CREATE_MULTIPART_UPLOAD).upload_id
    assert len(upload_id) == 36

    def part(number: int, data: bytes) -> bytes:
        meta = UploadPartRequest(
            bucket="photos", key="big.bin", upload_id=upload_id, part_number=number
        )
        return request(Op.UPLOAD_PART, meta, data, number)

    client.send(part(2, b"world") + part(1, b"hello "))
    second, first = await client.response(), await client.response()
    assert second.ok(Op.UPLOAD_PART) == codec.PutResult(
        hashlib.md5(b"world").hexdigest(), hashlib.sha256(b"world").hexdigest()
    )
    assert first.ok(Op.UPLOAD_PART).etag == hashlib.md5(b"hello ").hexdigest()
    parts = (
        await client.call(
            Op.LIST_PARTS, UploadRequest(bucket="photos", key="big.bin", upload_id=upload_id)
        )
    ).ok(Op.LIST_PARTS)
    assert [(p.part_number, p.size) for p in parts.parts] == [(1, 6), (2, 5)]
    undecodable = await client.call(Op.UPLOAD_PART, None, b"x")
    assert (undecodable.status, undecodable.error().code) == (3, "InvalidArgument")
    client.send(part(10001, b"zz"))
    out_of_range = await client.response()
    assert out_of_range.error() == codec.ErrorInfo(
        "part number must be between 1 and 10000", "InvalidArgument"
    )
    complete = CompleteMultipartUploadRequest(
        bucket="photos", key="big.bin", upload_id=upload_id, part_numbers=(2, 1, 2)
    )
    done = (await client.call(Op.COMPLETE_MULTIPART_UPLOAD, complete)).ok(
        Op.COMPLETE_MULTIPART_UPLOAD
    )
    assert done == codec.CompleteMultipartUploadResponse(
        etag="e09e4fd6265b36115fe3db32df945d84-2",
        checksum_sha256=hashlib.sha256(b"hello world").hexdigest(),
        size=11,
    )
    got = await client.call(Op.GET_OBJECT, ObjectRequest("photos", "big.bin"))
    assert got.data == b"hello world"
    again = await client.call(Op.COMPLETE_MULTIPART_UPLOAD, complete)
    assert (again.status, again.error().code) == (1, "NoSuchUpload")


@pytest_twisted.ensureDeferred
async def test_multipart_errors_and_abort(env: Env) -> None:
    client = await connect(env)
    await make_bucket(client)
    unknown = UploadPartRequest(
        bucket="photos", key="k", upload_id="00000000-0000-4000-8000-000000000000", part_number=1
    )
    client.send(request(Op.UPLOAD_PART, unknown, b"p" * 3000, 1) + request(Op.PING, None, b"", 2))
    refused = await client.response()
    assert refused.error() == codec.ErrorInfo("upload not found", "NoSuchUpload")
    assert (await client.response()).stream_id == 2  # the part's bytes were drained
    upload_id = (
        (
            await client.call(
                Op.CREATE_MULTIPART_UPLOAD, CreateMultipartUploadRequest(bucket="photos", key="k")
            )
        )
        .ok(Op.CREATE_MULTIPART_UPLOAD)
        .upload_id
    )
    stranger_account = await env.storage.create_account("mallory")
    await env.add_token("stranger", account_id=stranger_account.account_id)
    stranger = Client(env.factory())
    assert await stranger.handshake("stranger") == 0
    abort = UploadRequest(bucket="photos", key="k", upload_id=upload_id)
    assert (await stranger.call(Op.ABORT_MULTIPART_UPLOAD, abort)).status == 4
    missing_part = CompleteMultipartUploadRequest(
        bucket="photos", key="k", upload_id=upload_id, part_numbers=(1,)
    )
    failed = await client.call(Op.COMPLETE_MULTIPART_UPLOAD, missing_part)
    assert failed.status in (3, 5) and failed.status != 0
    aborted = await client.call(Op.ABORT_MULTIPART_UPLOAD, abort)
    assert (aborted.status, aborted.meta) == (0, b"")
    after = await client.call(Op.LIST_PARTS, abort)
    assert (after.status, after.error().code) == (1, "NoSuchUpload")


# --- connection management -------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_connection_cap_and_readiness(env: Env) -> None:
    factory = env.factory(max_connections=1)
    address = IPv4Address("TCP", "127.0.0.1", 1)
    first = Client(factory)
    assert factory.connection_count == 1
    assert factory.buildProtocol(address) is None
    first.protocol.connectionLost()
    assert factory.connection_count == 0
    assert factory.buildProtocol(address) is not None
    second = Client(factory)
    assert await second.handshake() == 0
    env.readiness.mark_stopping()
    assert factory.buildProtocol(address) is None
    second.send(request(Op.PING))
    assert second.is_closed  # shutdown is checked between requests


@pytest_twisted.ensureDeferred
async def test_connection_lost_during_upload_discards_staging(env: Env) -> None:
    client = await connect(env)
    await make_bucket(client)
    frame = request(Op.PUT_OBJECT, PutObjectRequest(bucket="photos", key="k"), b"x" * MiB)
    client.send(frame[: HEADER_SIZE + 200_000])
    await wait_until(lambda: client.protocol._exchange is not None
                     and client.protocol._exchange.sink is not None)  # fmt: skip
    client.protocol.connectionLost()
    tmp_dir = os.path.join(env.data_dir, "tmp")
    await wait_until(lambda: not any(os.scandir(tmp_dir)))
    with pytest.raises(errors.NoSuchKey):
        await env.storage.get_object_info("photos", "k")


@pytest_twisted.ensureDeferred
async def test_stalled_data_section_hits_the_data_deadline(env: Env) -> None:
    client = await connect(env, data_timeout_seconds=60)
    await make_bucket(client)
    frame = request(Op.PUT_OBJECT, PutObjectRequest(bucket="photos", key="k"), b"x" * 1000)
    client.send(frame[:-500])
    await wait_until(lambda: client.protocol._exchange is not None
                     and client.protocol._exchange.sink is not None)  # fmt: skip
    env.clock.advance(59)
    client.send(b"x" * 100)  # progress restarts the deadline
    env.clock.advance(59)
    assert not client.is_closed
    env.clock.advance(2)
    assert client.is_aborted
    tmp_dir = os.path.join(env.data_dir, "tmp")
    client.protocol.connectionLost()
    await wait_until(lambda: not any(os.scandir(tmp_dir)))


@pytest_twisted.ensureDeferred
async def test_full_send_buffer_holds_further_requests(env: Env) -> None:
    client = await connect(env)
    flow = client.transport.producer
    assert flow is not None
    flow.pauseProducing()  # what the transport does when its send buffer is full
    client.send(request(Op.PING, None, b"", 1) + request(Op.PING, None, b"", 2))
    assert client.written() == v.HANDSHAKE_OK
    env.clock.advance(10_000)
    assert not client.is_closed  # a slow reader is not an idle client
    flow.resumeProducing()
    assert [(await client.response()).stream_id for _ in range(2)] == [1, 2]


@pytest_twisted.ensureDeferred
async def test_verified_read_of_a_corrupt_object_aborts_and_quarantines(env: Env) -> None:
    client = await connect(env, read_verify_rate=1.0, random=lambda: 0.0)
    await make_bucket(client)
    assert (await put(client, "photos", "a.txt", b"hello")).status == 0
    info: StoredObject = await env.storage.get_object_info("photos", "a.txt")
    packed = parse_ref(info.location_ref)  # a small object: in this process's pack file
    assert packed is not None
    path = os.path.join(env.data_dir, "packs", packed[0])
    with open(path, "r+b") as f:
        f.seek(packed[1])
        f.write(b"j")
    before = len(client.written())
    client.send(request(Op.GET_OBJECT, ObjectRequest("photos", "a.txt"), b"", 1))
    await wait_until(lambda: client.is_aborted)
    sent = client.written()[before:]
    header = codec.decode_header(sent[:HEADER_SIZE])
    assert (header.code, header.data_len) == (0, 5)
    assert len(sent) == HEADER_SIZE + header.meta_len  # not one byte of the corrupt body
    with pytest.raises(errors.NoSuchKey):
        await env.storage.get_object_info("photos", "a.txt")


@pytest_twisted.ensureDeferred
async def test_close_connections_waits_for_the_request_in_flight(env: Env) -> None:
    factory = env.factory()
    idle, busy = Client(factory), Client(factory)
    assert await idle.handshake() == 0 and await busy.handshake() == 0
    await make_bucket(busy)
    frame = request(Op.PUT_OBJECT, PutObjectRequest(bucket="photos", key="k"), b"x" * 1000)
    busy.send(frame[:-10])
    env.readiness.mark_stopping()
    all_closed = factory.close_connections()
    assert idle.is_closed and not busy.is_closed
    idle.protocol.connectionLost()
    assert not all_closed.called
    busy.send(frame[-10:])
    assert (await busy.response()).status == 0  # the upload in flight still completes
    assert busy.is_closed
    busy.protocol.connectionLost()
    assert all_closed.called


@pytest_twisted.ensureDeferred
async def test_start_after_ending_in_raw_ff_continues_after_the_prefix(env: Env) -> None:
    client = await connect(env)
    await make_bucket(client)
    for key in ("docs/1", "docs/2", "e.txt"):
        assert (await put(client, "photos", key, b"x")).status == 0
    after_docs = codec.decode_text(b"docs/\xff")
    page = (
        await client.call(
            Op.LIST_OBJECTS, ListObjectsRequest(bucket="photos", start_after=after_docs)
        )
    ).ok(Op.LIST_OBJECTS)
    assert [o.key for o in page.objects] == ["e.txt"]
    bad = codec.decode_text(b"do\xfecs")
    refused = await client.call(
        Op.LIST_OBJECTS, ListObjectsRequest(bucket="photos", start_after=bad)
    )
    assert (refused.status, refused.error().code) == (3, "InvalidArgument")


@pytest_twisted.ensureDeferred
async def test_large_body_is_read_in_bigger_socket_reads(env: Env) -> None:
    from jay.native.server import BODY_READ_BYTES, LARGE_BODY_BYTES

    client = await connect(env)
    await make_bucket(client)
    transport: Any = client.transport
    transport.bufferSize = 65536  # what a TCP transport reads per readable event
    body = b"L" * LARGE_BODY_BYTES
    frame = request(Op.PUT_OBJECT, PutObjectRequest(bucket="photos", key="big"), body, 2)
    client.send(frame[: len(frame) - len(body) + 1024])  # header, meta, the first KiB
    assert transport.bufferSize == BODY_READ_BYTES
    client.send(frame[len(frame) - len(body) + 1024 :])
    response = await client.response()
    assert response.ok(Op.PUT_OBJECT).etag == hashlib.md5(body).hexdigest()
    assert transport.bufferSize == 65536
