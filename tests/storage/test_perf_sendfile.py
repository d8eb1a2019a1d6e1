"""GET of large objects without a Python-level copy: ``os.sendfile`` from the object file to a
plain TCP transport (jay.storage.reading), with back-pressure from the socket itself."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import protocol, reactor
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionLost

from jay.storage import reading

from .conftest import CollectingConsumer, put

MIB = 1024 * 1024


class Receiver(protocol.Protocol):
    """The client side: counts and hashes what arrives; may hold reading paused."""

    def __init__(self, expected: int, *, start_paused: bool = False) -> None:
        self.expected = expected
        self.received = 0
        self.sha = hashlib.sha256()
        self.start_paused = start_paused
        self.complete: Deferred[None] = Deferred()

    def connectionMade(self) -> None:
        if self.start_paused:
            self.transport.pauseProducing()  # type: ignore[union-attr]

    def dataReceived(self, data: bytes) -> None:
        self.received += len(data)
        self.sha.update(data)
        if self.received >= self.expected and not self.complete.called:
            self.complete.callback(None)


class Sender(protocol.Protocol):
    def connectionMade(self) -> None:
        self.factory.on_connect.callback(self)  # type: ignore[attr-defined]


@pytest_twisted.async_yield_fixture
async def link() -> Any:
    """(server-side transport, client-side protocol factory hook) over loopback TCP."""
    factory = protocol.Factory.forProtocol(Sender)
    factory.on_connect = Deferred()  # type: ignore[attr-defined]
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    connections: list[Any] = []

    async def connect(receiver: Receiver) -> Any:
        creator = protocol.ClientCreator(reactor, lambda: receiver)
        client = await creator.connectTCP("127.0.0.1", port.getHost().port)
        connections.append(client)
        server = await factory.on_connect
        factory.on_connect = Deferred()  # type: ignore[attr-defined]
        connections.append(server)
        return server

    yield connect
    for conn in connections:
        conn.transport.abortConnection()
    await port.stopListening()


@pytest.fixture
def sendfile_calls(monkeypatch: Any) -> list[int]:
    calls: list[int] = []
    real = os.sendfile

    def counting(out_fd: int, in_fd: int, offset: int, count: int) -> int:
        calls.append(count)
        return real(out_fd, in_fd, offset, count)

    monkeypatch.setattr(reading, "os_sendfile", counting)
    return calls


@pytest_twisted.ensureDeferred
async def test_large_get_goes_through_sendfile(
    svc: Any, bucket: str, link: Any, sendfile_calls: list[int]
) -> None:
    data = os.urandom(8 * MIB + 123)
    await put(svc, bucket, "big", [data[i : i + MIB] for i in range(0, len(data), MIB)])
    receiver = Receiver(len(data))
    server = await link(receiver)
    opened = await svc.open_object(bucket, "big")
    server.transport.write(b"HEADER")  # a response header still in the transport's buffer
    receiver.expected += 6
    sent = await opened.stream(server.transport, 0, None)
    await receiver.complete
    assert sent == len(data)
    assert receiver.received == len(data) + 6
    assert receiver.sha.hexdigest() == hashlib.sha256(b"HEADER" + data).hexdigest()
    assert sendfile_calls, "the zero-copy path was not taken"
    assert server.transport.producer is None  # unregistered at the end


@pytest_twisted.ensureDeferred
async def test_sendfile_reads_ahead_of_itself(
    svc: Any, bucket: str, link: Any, sendfile_calls: list[int], monkeypatch: Any
) -> None:
    """A large object not in the page cache (written with O_DIRECT) is read ahead: WILLNEED
    advice in READ_AHEAD_BYTES steps, in order, never twice, never past the range (a step may
    start past the last one's end: what was sent meanwhile needs no advice)."""
    advised: list[tuple[int, int]] = []
    real = os.posix_fadvise

    def recording(fd: int, offset: int, length: int, advice: int) -> None:
        assert advice == os.POSIX_FADV_WILLNEED
        advised.append((offset, length))
        real(fd, offset, length, advice)

    monkeypatch.setattr(reading, "os_fadvise", recording)
    monkeypatch.setattr(reading, "READ_AHEAD_BYTES", 2 * MIB)
    monkeypatch.setattr(reading, "READ_AHEAD_LOW_BYTES", 1 * MIB)
    data = os.urandom(9 * MIB + 5)
    await put(svc, bucket, "big", [data[i : i + MIB] for i in range(0, len(data), MIB)])
    start, length = 4096 + 3, 9 * MIB - 4096
    receiver = Receiver(length)
    server = await link(receiver)
    opened = await svc.open_object(bucket, "big")
    assert await opened.stream(server.transport, start, length) == length
    await receiver.complete
    assert receiver.sha.hexdigest() == hashlib.sha256(data[start : start + length]).hexdigest()
    assert sendfile_calls and advised
    assert advised[0][0] == start
    for (offset, size), (following, _) in zip(advised, advised[1:], strict=False):
        assert following >= offset + size
    assert advised[-1][0] + advised[-1][1] <= start + length
    assert all(size <= 2 * MIB for _, size in advised)


@pytest_twisted.ensureDeferred
async def test_range_through_sendfile(
    svc: Any, bucket: str, link: Any, sendfile_calls: list[int]
) -> None:
    data = os.urandom(3 * MIB)
    await put(svc, bucket, "k", data)
    start, length = 1000, 2 * MIB + 7
    receiver = Receiver(length)
    server = await link(receiver)
    opened = await svc.open_object(bucket, "k")
    assert await opened.stream(server.transport, start, length) == length
    await receiver.complete
    assert receiver.sha.hexdigest() == hashlib.sha256(data[start : start + length]).hexdigest()
    assert sendfile_calls


@pytest_twisted.ensureDeferred
async def test_verified_and_small_reads_use_the_copying_path(
    svc: Any, bucket: str, link: Any, sendfile_calls: list[int]
) -> None:
    big = os.urandom(2 * MIB)
    await put(svc, bucket, "big", big)
    await put(svc, bucket, "small", b"x" * 1000)
    receiver = Receiver(len(big) + 1000)
    server = await link(receiver)
    opened = await svc.open_object(bucket, "big")
    assert await opened.stream(server.transport, verify=True) == len(big)  # needs the bytes
    opened = await svc.open_object(bucket, "small")
    assert await opened.stream(server.transport) == 1000  # already in memory
    await receiver.complete
    assert sendfile_calls == []
    assert receiver.sha.hexdigest() == hashlib.sha256(big + b"x" * 1000).hexdigest()


@pytest_twisted.ensureDeferred
async def test_a_slow_reader_holds_the_transfer_without_buffering(
    svc: Any, bucket: str, link: Any, sendfile_calls: list[int]
) -> None:
    data = os.urandom(32 * MIB)
    await put(svc, bucket, "big", [data[i : i + MIB] for i in range(0, len(data), MIB)])
    receiver = Receiver(len(data), start_paused=True)
    server = await link(receiver)
    opened = await svc.open_object(bucket, "big")
    done = opened.stream(server.transport)
    # The client reads nothing: the socket buffers fill and the producer waits for writability.
    for _ in range(20):
        await deferLater(0.01)
    assert not done.called
    assert len(server.transport.dataBuffer) + server.transport._tempDataLen == 0
    receiver.transport.resumeProducing()
    assert await done == len(data)
    await receiver.complete
    assert receiver.sha.hexdigest() == hashlib.sha256(data).hexdigest()


@pytest_twisted.ensureDeferred
async def test_client_gone_mid_transfer_fails_and_closes(
    svc: Any, bucket: str, link: Any, sendfile_calls: list[int]
) -> None:
    data = os.urandom(32 * MIB)
    await put(svc, bucket, "big", [data[i : i + MIB] for i in range(0, len(data), MIB)])
    receiver = Receiver(len(data), start_paused=True)
    server = await link(receiver)
    opened = await svc.open_object(bucket, "big")
    done = opened.stream(server.transport)
    for _ in range(5):
        await deferLater(0.01)
    receiver.transport.abortConnection()
    with pytest.raises(ConnectionLost):
        await done
    for _ in range(5):  # a send job may still be running: the fds close after it
        await deferLater(0.01)
    with pytest.raises(OSError):
        os.fstat(opened.fd)


@pytest_twisted.ensureDeferred
async def test_non_tcp_consumers_get_the_copying_path(
    svc: Any, bucket: str, sendfile_calls: list[int]
) -> None:
    data = os.urandom(MIB)
    await put(svc, bucket, "k", data)
    consumer = CollectingConsumer()
    opened = await svc.open_object(bucket, "k")
    await opened.stream(consumer)
    assert sendfile_calls == []


def deferLater(seconds: float) -> Deferred[None]:
    from twisted.internet import task

    return task.deferLater(reactor, seconds, lambda: None)
