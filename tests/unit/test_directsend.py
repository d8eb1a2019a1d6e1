"""send_now: straight to the socket only when nothing is queued; otherwise the transport's queue."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from twisted.internet import reactor, tcp
from twisted.internet.protocol import Protocol
from twisted.test.proto_helpers import StringTransport

from jay.directsend import send_now


@pytest.fixture
def pair() -> Iterator[tuple[tcp.Connection, socket.socket]]:
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    theirs.setblocking(False)
    conn = tcp.Connection(ours, Protocol(), reactor)
    conn.connected = True
    try:
        yield conn, theirs
    finally:
        conn.stopWriting()
        ours.close()
        theirs.close()


def received(sock: socket.socket) -> bytes:
    try:
        return sock.recv(1 << 20)
    except BlockingIOError:
        return b""


def test_idle_transport_sends_at_once(pair: tuple[tcp.Connection, socket.socket]) -> None:
    conn, peer = pair
    send_now(conn, b"hello")
    assert received(peer) == b"hello"
    assert conn._tempDataBuffer == [] and conn.dataBuffer == b""


def test_queued_data_keeps_its_place(pair: tuple[tcp.Connection, socket.socket]) -> None:
    conn, peer = pair
    conn.write(b"first ")
    send_now(conn, b"second")
    assert received(peer) == b""  # nothing jumps the queue
    conn.doWrite()
    assert received(peer) == b"first second"


def test_full_socket_queues_the_rest(pair: tuple[tcp.Connection, socket.socket]) -> None:
    conn, peer = pair
    big = b"x" * (16 << 20)  # more than any socket buffer takes at once
    send_now(conn, big)
    queued = conn._tempDataLen
    assert 0 < queued < len(big)
    got = bytearray()
    while len(got) < len(big):
        got += received(peer)
        conn.doWrite()
    assert bytes(got) == big


def test_tls_transport_is_left_to_twisted(pair: tuple[tcp.Connection, socket.socket]) -> None:
    conn, peer = pair
    conn.TLS = True
    written: list[bytes] = []
    conn.write = written.append  # type: ignore[method-assign]  # the TLS layer's write
    send_now(conn, b"secret")
    assert received(peer) == b""
    assert written == [b"secret"]


def test_other_transports_use_write() -> None:
    transport = StringTransport()
    send_now(transport, b"abc")
    assert transport.value() == b"abc"
