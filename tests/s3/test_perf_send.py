"""StreamingChannel holds the response head back and sends it with the body's first bytes.

The bytes on the wire must be what twisted's own Site writes, in the same order; a small
response leaves in one ``send_now`` (straight to an idle socket), a large first write sends
the head alone and queues the body as before, and a head with no body follows at the end of
the write that produced it.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from twisted.internet import reactor, tcp
from twisted.internet.address import IPv4Address
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site

from jay.s3 import http as jay_http
from jay.s3.http import MAX_COMBINED_BODY_BYTES, StreamingSite
from tests.s3.wire import exchange

LARGE = b"L" * (MAX_COMBINED_BODY_BYTES + 1)


class Body(Resource):
    """``/small``, ``/large``: a body with a length; ``/chunked``: two writes without one;
    ``/empty``: 204; ``/finish``: finished without writing."""

    isLeaf = True

    def render(self, request: Any) -> Any:
        name = request.postpath[0]
        if name == b"chunked":
            request.write(b"first")
            request.write(b"second")
            request.finish()
            return NOT_DONE_YET
        if name == b"empty":
            request.setResponseCode(204)
            return b""
        if name == b"finish":
            request.setHeader(b"Content-Length", b"0")
            request.finish()
            return NOT_DONE_YET
        body = LARGE if name == b"large" else b"small body"
        request.setHeader(b"Content-Length", b"%d" % len(body))
        request.write(body)
        request.write(b"")
        request.finish()
        return NOT_DONE_YET


def tree() -> Resource:
    root = Resource()
    root.putChild(b"r", Body())
    return root


pytestmark = pytest.mark.usefixtures("frozen_clock")


@pytest.fixture
def sends(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every ``send_now`` the channel makes, recorded (and then performed)."""
    recorded: list[bytes] = []
    real = jay_http.send_now

    def recording(transport: Any, data: bytes) -> None:
        recorded.append(data)
        real(transport, data)

    monkeypatch.setattr(jay_http, "send_now", recording)
    return recorded


def respond(site: Site, raw: bytes) -> bytes:
    return exchange(site, raw)[0]


REQUESTS = [
    b"GET /r/small HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET /r/large HTTP/1.1\r\nHost: h\r\n\r\n",
    b"HEAD /r/small HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET /r/chunked HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET /r/empty HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET /r/finish HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET /r/small HTTP/1.0\r\n\r\n",
    # Pipelined: the second response follows the first.
    b"GET /r/small HTTP/1.1\r\nHost: h\r\n\r\nGET /r/chunked HTTP/1.1\r\nHost: h\r\n\r\n",
]


@pytest.mark.parametrize("raw", REQUESTS)
def test_the_bytes_are_what_twisted_writes(raw: bytes) -> None:
    ours = respond(StreamingSite(tree(), idle_timeout_seconds=None), raw)
    theirs = respond(Site(tree(), timeout=None), raw)
    assert ours == theirs
    assert ours.startswith(b"HTTP/1.")


def test_a_small_response_is_one_send(sends: list[bytes]) -> None:
    out = respond(StreamingSite(tree(), idle_timeout_seconds=None), REQUESTS[0])
    assert sends == [out]
    assert out.endswith(b"\r\n\r\nsmall body")


def test_a_large_first_write_sends_the_head_alone(sends: list[bytes]) -> None:
    out = respond(StreamingSite(tree(), idle_timeout_seconds=None), REQUESTS[1])
    head, _, body = out.partition(b"\r\n\r\n")
    assert sends == [head + b"\r\n\r\n"]
    assert body == LARGE


@pytest.mark.parametrize("raw", [REQUESTS[2], REQUESTS[4], REQUESTS[5]])
def test_a_head_without_body_is_sent_by_the_same_write(raw: bytes, sends: list[bytes]) -> None:
    out = respond(StreamingSite(tree(), idle_timeout_seconds=None), raw)
    assert sends == [out]
    assert out.endswith(b"\r\n\r\n")


def test_chunked_bodies_follow_their_head(sends: list[bytes]) -> None:
    out = respond(StreamingSite(tree(), idle_timeout_seconds=None), REQUESTS[3])
    assert len(sends) == 1 and b"Transfer-Encoding: chunked" in sends[0]
    assert out == sends[0] + b"5\r\nfirst\r\n6\r\nsecond\r\n0\r\n\r\n"


@pytest.fixture
def socket_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    theirs.setblocking(False)
    try:
        yield ours, theirs
    finally:
        ours.close()
        theirs.close()


def test_on_a_tcp_connection_the_response_is_on_the_socket_at_once(
    socket_pair: tuple[socket.socket, socket.socket],
) -> None:
    """Without a reactor turn: the transport never queued it."""
    ours, theirs = socket_pair
    site = StreamingSite(tree(), idle_timeout_seconds=None)
    site.log = lambda request: None  # type: ignore[method-assign]
    protocol = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1))
    assert protocol is not None
    conn = tcp.Connection(ours, protocol, reactor)
    conn.connected = True
    conn.getHost = lambda: IPv4Address("TCP", "127.0.0.1", 2)  # type: ignore[method-assign]
    conn.getPeer = lambda: IPv4Address("TCP", "127.0.0.1", 1)  # type: ignore[method-assign]
    try:
        protocol.makeConnection(conn)
        protocol.dataReceived(REQUESTS[0])
        expected = respond(StreamingSite(tree(), idle_timeout_seconds=None), REQUESTS[0])
        assert theirs.recv(1 << 16) == expected
        assert conn.dataBuffer == b"" and conn._tempDataBuffer == []
    finally:
        conn.stopReading()
        conn.stopWriting()
