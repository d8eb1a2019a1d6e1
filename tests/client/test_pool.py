"""ConnectionPool and Client against the fake server over real loopback sockets."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor as global_reactor
from twisted.internet.defer import DeferredList
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.interfaces import IConsumer, IListeningPort, IProducer
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock, deferLater
from zope.interface import implementer

from jay.client import (
    AuthenticationFailed,
    Client,
    Conflict,
    ConnectFailed,
    ConnectionClosed,
    ConnectionPool,
    HandshakeFailed,
    NotFound,
    PoolClosed,
    ResponseTooLarge,
    connect,
    parse_endpoint,
)
from jay.native.codec import Op
from tests.client.fakeserver import SECRET, TOKEN_ID, FakeServerFactory, FakeState

reactor = global_reactor


class Server:
    def __init__(self, port: IListeningPort, state: FakeState) -> None:
        self.port = port
        self.state = state

    @property
    def number(self) -> int:
        return int(self.port.getHost().port)  # type: ignore[attr-defined]

    def pool(self, size: int = 4, depth: int = 8, secret: str = SECRET) -> ConnectionPool:
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", self.number)
        return ConnectionPool(endpoint, TOKEN_ID, secret, size=size, pipeline_depth=depth)


@pytest_twisted.async_yield_fixture
async def server() -> AsyncIterator[Server]:
    state = FakeState()
    port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(
        FakeServerFactory(state)
    )
    yield Server(port, state)
    for proto in list(state.live):
        proto.transport.abortConnection()  # type: ignore[union-attr]
    await port.stopListening()


async def wait_for(predicate, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    """Poll the reactor (not sleep) until predicate() holds."""
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return
        await deferLater(reactor, 0.01, lambda: None)
    raise AssertionError("condition not met in time")


@pytest_twisted.ensureDeferred
async def test_connect_fails_on_bad_credentials(server: Server) -> None:
    with pytest.raises(AuthenticationFailed):
        await connect(f"127.0.0.1:{server.number}", TOKEN_ID, "wrong", reactor=reactor)


@pytest_twisted.ensureDeferred
async def test_every_op_round_trip_over_loopback(server: Server, tmp_path: Path) -> None:
    client = await connect(f"127.0.0.1:{server.number}", TOKEN_ID, SECRET, reactor=reactor)
    try:
        info = await client.create_bucket("photos")
        assert info.name == "photos"
        with pytest.raises(Conflict) as conflict:
            await client.create_bucket("photos")
        assert conflict.value.code == "BucketAlreadyExists"
        assert (await client.head_bucket("photos")).bucket_id == "id-photos"
        assert [b.name for b in await client.list_buckets()] == ["photos"]
        put = await client.put_object(
            "photos", "a.txt", b"hello", content_type="text/plain", metadata={"author": "ann"}
        )
        assert put.etag == hashlib.md5(b"hello").hexdigest()
        got = await client.get_object("photos", "a.txt")
        assert got.data == b"hello"
        assert got.info.metadata == {"author": "ann"}
        assert got.info.content_type == "text/plain"
        head = await client.head_object("photos", "a.txt")
        assert head.size == 5 and head.etag == put.etag
        # File path upload and download into a path.
        source = tmp_path / "src.bin"
        payload = bytes(range(256)) * 1000
        source.write_bytes(payload)
        await client.put_object("photos", "dir/file.bin", source)
        target = tmp_path / "out.bin"
        result = await client.get_object("photos", "dir/file.bin", target)
        assert result.data is None
        assert target.read_bytes() == payload
        assert not (tmp_path / "out.bin.part").exists()
        with pytest.raises(ResponseTooLarge):
            await client.get_object("photos", "dir/file.bin", max_bytes=10)
        await client.ping()  # the connection survived the refused download
        page = await client.list_objects("photos", delimiter="/")
        assert [o.key for o in page.objects] == ["a.txt"]
        assert page.common_prefixes == ("dir/",)
        await client.delete_object("photos", "a.txt")
        with pytest.raises(NotFound) as missing:
            await client.get_object("photos", "a.txt")
        assert missing.value.code == "NoSuchKey"
        with pytest.raises(NotFound):
            await client.get_object("photos", "a.txt", tmp_path / "never.bin")
        assert not (tmp_path / "never.bin").exists()
        assert not (tmp_path / "never.bin.part").exists()
        await client.delete_object("photos", "dir/file.bin")
        await client.delete_bucket("photos")
        assert await client.list_buckets() == ()
    finally:
        await client.close()


@pytest_twisted.ensureDeferred
async def test_iter_pages_walks_every_page_and_skips_past_prefixes(server: Server) -> None:
    client = await connect(f"127.0.0.1:{server.number}", TOKEN_ID, SECRET, reactor=reactor)
    try:
        await client.create_bucket("b")
        keys = [f"k{i:02d}" for i in range(7)] + ["p/1", "p/2", "q/1", "z"]
        for key in keys:
            await client.put_object("b", key, key.encode())
        pages = [page async for page in client.iter_pages("b", delimiter="/", max_keys=3)]
        listed = [o.key for p in pages for o in p.objects]
        prefixes = [cp for p in pages for cp in p.common_prefixes]
        assert listed == [k for k in keys if "/" not in k]
        assert prefixes == ["p/", "q/"]
        assert all(p.is_truncated for p in pages[:-1]) and not pages[-1].is_truncated
        objects, cps = await client.list_all_objects("b", max_keys=2)
        assert [o.key for o in objects] == sorted(keys) and cps == []
    finally:
        await client.close()


@pytest_twisted.ensureDeferred
async def test_pool_pipelines_then_grows_up_to_size(server: Server) -> None:
    pool = server.pool(size=2, depth=3)
    await pool.start()
    client = Client(pool)
    server.state.is_stalled = True
    pings = [client.ping() for _ in range(10)]
    # 2 connections × depth 3 are in flight; the rest queue (pool exhaustion).
    await wait_for(lambda: pool.connection_count == 2 and len(server.state.ops) == 6)
    assert pool.queued_count == 4
    assert server.state.connections == 2
    server.state.is_stalled = False
    for proto in list(server.state.live):
        proto.release()
    results = await DeferredList(pings, consumeErrors=True)
    assert all(ok for ok, _ in results)
    assert server.state.ops.count(Op.PING) == 10
    assert pool.queued_count == 0
    await pool.close()


@pytest_twisted.ensureDeferred
async def test_bulky_requests_take_an_idle_connection(server: Server) -> None:
    pool = server.pool(size=2, depth=8)
    await pool.start()
    client = Client(pool)
    await client.create_bucket("b")
    server.state.is_stalled = True
    put = client.put_object("b", "k", b"x" * 100)  # not bulky: bytes body
    put2 = client.put_object("b", "k2", b"y" * 100)
    await wait_for(lambda: server.state.ops.count(Op.PUT_OBJECT) == 2)
    server.state.is_stalled = False
    for proto in list(server.state.live):
        proto.release()
    await put
    await put2

    @implementer(IConsumer)
    class Sink:
        def __init__(self) -> None:
            self.data = b""

        def registerProducer(self, producer: IProducer, streaming: bool) -> None:
            pass

        def unregisterProducer(self) -> None:
            pass

        def write(self, data: bytes) -> None:
            self.data += data

    sinks = [Sink() for _ in range(3)]
    gets = [client.get_object("b", "k", sink) for sink in sinks]
    await DeferredList(gets, fireOnOneErrback=True)
    assert [s.data for s in sinks] == [b"x" * 100] * 3
    assert pool.connection_count <= 2
    await pool.close()


@pytest_twisted.ensureDeferred
async def test_idempotent_request_is_retried_once_on_a_fresh_connection(server: Server) -> None:
    pool = server.pool(size=2)
    await pool.start()
    client = Client(pool)
    await client.create_bucket("b")
    server.state.drop_on.append(Op.HEAD_BUCKET)
    info = await client.head_bucket("b")  # first connection is dropped; the retry answers
    assert info.name == "b"
    assert server.state.ops.count(Op.HEAD_BUCKET) == 2
    assert server.state.connections == 2


@pytest_twisted.ensureDeferred
async def test_non_idempotent_request_is_not_retried(server: Server) -> None:
    pool = server.pool(size=2)
    await pool.start()
    client = Client(pool)
    server.state.drop_on.append(Op.CREATE_BUCKET)
    with pytest.raises(ConnectionClosed) as closed:
        await client.create_bucket("b")
    assert closed.value.is_sent and not closed.value.is_response_started
    assert server.state.ops.count(Op.CREATE_BUCKET) == 1
    await pool.close()


@pytest_twisted.ensureDeferred
async def test_retry_happens_only_once(server: Server) -> None:
    pool = server.pool(size=2)
    await pool.start()
    client = Client(pool)
    server.state.drop_on.extend([Op.PING, Op.PING])
    with pytest.raises(ConnectionClosed):
        await client.ping()
    assert server.state.ops.count(Op.PING) == 2
    await client.ping()  # and the pool still works afterwards
    await pool.close()


@pytest_twisted.ensureDeferred
async def test_broken_idle_connection_is_replaced(server: Server) -> None:
    pool = server.pool(size=1)
    await pool.start()
    client = Client(pool)
    await client.ping()
    # The server closes the idle connection (its idle timeout, §1.10).
    for proto in list(server.state.live):
        proto.transport.loseConnection()  # type: ignore[union-attr]
    await wait_for(lambda: pool.connection_count == 0)
    await client.ping()
    assert server.state.connections == 2
    await pool.close()


@pytest_twisted.ensureDeferred
async def test_closed_pool_fails_queued_and_new_requests(server: Server) -> None:
    pool = server.pool(size=1, depth=1)
    await pool.start()
    client = Client(pool)
    server.state.is_stalled = True
    first = client.ping()
    queued = client.ping()
    await wait_for(lambda: len(server.state.ops) == 1)
    await pool.close()
    with pytest.raises(PoolClosed):
        await queued
    with pytest.raises(ConnectionClosed):
        await first
    with pytest.raises(PoolClosed):
        await client.ping()


@pytest_twisted.ensureDeferred
async def test_unreachable_endpoint_fails_queued_requests() -> None:
    port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(FakeServerFactory())
    number = port.getHost().port  # type: ignore[attr-defined]
    await port.stopListening()
    pool = ConnectionPool(TCP4ClientEndpoint(reactor, "127.0.0.1", number), TOKEN_ID, SECRET)
    with pytest.raises(ConnectFailed) as failed:
        await Client(pool).ping()
    assert isinstance(failed.value.reason, ConnectionRefusedError)


def test_parse_endpoint_forms() -> None:
    assert parse_endpoint("127.0.0.1:4444") == "tcp:host=127.0.0.1:port=4444"
    assert parse_endpoint("localhost:1", tls=True) == "tls:host=localhost:port=1"
    assert parse_endpoint("[::1]:4444") == "tcp:host=\\:\\:1:port=4444"
    assert parse_endpoint("tcp:host=h:port=2") == "tcp:host=h:port=2"
    with pytest.raises(ValueError):
        parse_endpoint("nohostport")


@pytest_twisted.ensureDeferred
async def test_silent_server_fails_the_handshake_on_the_clock() -> None:
    accepted: list[Protocol] = []

    class Silent(Protocol):
        def connectionMade(self) -> None:
            accepted.append(self)

    port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(
        Factory.forProtocol(Silent)
    )
    clock = Clock()
    endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port)  # type: ignore[attr-defined]
    pool = ConnectionPool(endpoint, TOKEN_ID, SECRET, clock=clock, handshake_timeout_seconds=10)
    started = pool.start()
    await wait_for(lambda: bool(accepted))
    clock.advance(9)
    assert not started.called
    clock.advance(1)
    with pytest.raises(HandshakeFailed):
        await started
    await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_nothing_is_pipelined_behind_a_streaming_download(server: Server) -> None:
    pool = server.pool(size=2, depth=8)
    await pool.start()
    client = Client(pool)
    await client.create_bucket("b")
    await client.put_object("b", "k", b"z" * 10)
    server.state.is_stalled = True

    @implementer(IConsumer)
    class Sink:
        def registerProducer(self, producer: IProducer, streaming: bool) -> None:
            pass

        def unregisterProducer(self) -> None:
            pass

        def write(self, data: bytes) -> None:
            pass

    download = client.get_object("b", "k", Sink())
    await wait_for(lambda: server.state.ops.count(Op.GET_OBJECT) == 1)
    ping = client.ping()
    await wait_for(lambda: server.state.ops.count(Op.PING) == 1)
    busy = [p for p in server.state.live if p.held]
    assert len(busy) == 2  # the ping went to a second connection, not behind the download
    server.state.is_stalled = False
    for proto in busy:
        proto.release()
    await download
    await ping
    await pool.close()


@pytest_twisted.ensureDeferred
async def test_large_rejected_upload_is_explained_not_retried(server: Server) -> None:
    pool = server.pool(size=2)
    await pool.start()
    client = Client(pool)
    with pytest.raises(NotFound) as missing:
        await client.put_object("nobucket", "k", b"q" * (11 * 1024 * 1024))
    assert missing.value.code == "NoSuchBucket"
    assert isinstance(missing.value.__cause__, ConnectionClosed)
    assert server.state.ops.count(Op.PUT_OBJECT) == 1
    # A small one is answered with its error frame as usual.
    with pytest.raises(NotFound):
        await client.put_object("nobucket", "k", b"q")
    await pool.close()
