"""StreamingChannel parses a request head that arrived whole in one pass.

It must end exactly where twisted's line-by-line parsing ends: the same request (method, URI,
headers in order, body), the same response bytes, the same errors for anything malformed or
over a limit (those it leaves to twisted), and pipelined requests after it handled in order.
Every case runs twice over the same bytes, with the one-pass parser and without it.
"""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from jay.s3.http import StreamingChannel, StreamingSite


class Recorder(Resource):
    """Answers with what it saw of the request, body included; ``is_later``: only when
    ``answer_later`` runs (the requests after it arrive while it is being handled)."""

    isLeaf = True

    def __init__(self, *, is_later: bool = False) -> None:
        super().__init__()
        self.is_later = is_later
        self.later: list[Any] = []

    def answer_later(self) -> None:
        while self.later:
            self.later.pop(0)()

    def render(self, request: Any) -> Any:
        seen = [
            request.method,
            request.uri,
            request.path,
            sorted(request.args.items()),
            request.clientproto,
            list(request.requestHeaders.getAllRawHeaders()),
        ]

        def answer(body: bytes) -> None:
            text = repr([*seen, body]).encode()
            request.setHeader(b"Content-Length", b"%d" % len(text))
            request.write(text)
            request.finish()

        def read() -> None:
            request.body.read_all(1 << 20).addCallback(answer)

        if self.is_later:
            self.later.append(read)
        else:
            read()
        return NOT_DONE_YET


pytestmark = pytest.mark.usefixtures("frozen_clock")


def exchange(chunks: list[bytes], *, is_later: bool) -> tuple[bytes, bool]:
    """(the bytes written back, whether the connection is closing)."""
    recorder = Recorder(is_later=is_later)
    site = StreamingSite(recorder, idle_timeout_seconds=None, linger_seconds=0)
    site.log = lambda request: None  # type: ignore[method-assign]
    protocol = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1))
    assert protocol is not None
    transport = StringTransport()
    protocol.makeConnection(transport)
    for chunk in chunks:
        protocol.dataReceived(chunk)
    recorder.answer_later()
    return transport.value(), transport.disconnecting


def both_ways(
    monkeypatch: pytest.MonkeyPatch, chunks: list[bytes], *, is_later: bool = False
) -> tuple[tuple[bytes, bool], tuple[bytes, bool], int]:
    """(with the one-pass parser, without it, how often it took a head)."""
    taken: list[bool] = []
    real = StreamingChannel._receive_whole_head

    def counting(self: StreamingChannel, data: bytes, end: int) -> bool:
        result = real(self, data, end)
        taken.append(result)
        return result

    monkeypatch.setattr(StreamingChannel, "_receive_whole_head", counting)
    fast = exchange(chunks, is_later=is_later)
    monkeypatch.setattr(StreamingChannel, "_receive_whole_head", lambda *args: False)
    slow = exchange(chunks, is_later=is_later)
    return fast, slow, sum(taken)


GET = b"GET /b/k?x=1&y HTTP/1.1\r\nHost: h\r\nX-Amz-Date: 1\r\nx-amz-date: 2\r\n\r\n"
PUT = b"PUT /b/k HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"

TAKEN = {
    "get": [GET],
    "head": [b"HEAD /b/k HTTP/1.1\r\nHost: h\r\n\r\n"],
    "http/1.0": [b"GET /b/k HTTP/1.0\r\n\r\n"],
    "blanks around values": [b"GET / HTTP/1.1\r\nHost:  h \t\r\nEmpty:\r\n\r\n"],
    "odd name case": [b"GET / HTTP/1.1\r\ncontent-md5: x\r\nETAG: y\r\nhost: h\r\n\r\n"],
    "put with body": [PUT],
    "body in a later read": [PUT[:-5], PUT[-5:]],
    "body split": [PUT[:-2], PUT[-2:]],
    "pipelined": [GET + PUT + GET],
    "pipelined, second head split": [GET + PUT[:20], PUT[20:]],
    "zero length": [b"PUT /b/k HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"],
    "connection close": [b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n" + GET],
}

LEFT_TO_TWISTED = {
    "folded header": [b"GET / HTTP/1.1\r\nX-A: a\r\n b\r\nHost: h\r\n\r\n"],
    "no colon": [b"GET / HTTP/1.1\r\nHost h\r\n\r\n"],
    "bad name": [b"GET / HTTP/1.1\r\nHo st: h\r\n\r\n"],
    "nul in value": [b"GET / HTTP/1.1\r\nHost: h\x00\r\n\r\n"],
    "bare cr in value": [b"GET / HTTP/1.1\r\nHost: h\rx\r\n\r\n"],
    "bad request line": [b"GET  / HTTP/1.1\r\nHost: h\r\n\r\n"],
    "leading blank line": [b"\r\n" + GET],
    "chunked": [
        b"PUT /b/k HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    ],
    "two lengths": [b"PUT / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx"],
    "bad length": [b"PUT / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"],
    "too many headers": [b"GET / HTTP/1.1\r\n" + b"X-A: a\r\n" * 501 + b"\r\n"],
    "head too large": [b"GET / HTTP/1.1\r\nX-A: " + b"a" * 16000 + b"\r\nX-B: b\r\n\r\n"],
    "line too long": [b"GET / HTTP/1.1\r\nX-A: " + b"a" * 17000 + b"\r\n\r\n"],
}


@pytest.mark.parametrize("is_later", [False, True], ids=["answered at once", "answered later"])
@pytest.mark.parametrize("chunks", TAKEN.values(), ids=TAKEN.keys())
def test_whole_heads_are_parsed_in_one_pass_to_the_same_result(
    monkeypatch: pytest.MonkeyPatch, chunks: list[bytes], is_later: bool
) -> None:
    fast, slow, taken = both_ways(monkeypatch, chunks, is_later=is_later)
    assert fast == slow
    assert fast[0].startswith(b"HTTP/1.")
    assert taken >= 1


@pytest.mark.parametrize("is_later", [False, True], ids=["answered at once", "answered later"])
@pytest.mark.parametrize("chunks", LEFT_TO_TWISTED.values(), ids=LEFT_TO_TWISTED.keys())
def test_unusual_heads_are_left_to_twisted(
    monkeypatch: pytest.MonkeyPatch, chunks: list[bytes], is_later: bool
) -> None:
    fast, slow, _ = both_ways(monkeypatch, chunks, is_later=is_later)
    assert fast == slow


def test_pipelined_requests_are_answered_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    (out, _), _, taken = both_ways(monkeypatch, [GET + PUT + GET])
    assert out.count(b"HTTP/1.1 200 OK") == 3
    assert out.index(b"'GET'") < out.index(b"'PUT'") < out.rindex(b"'GET'")
    assert b"b'hello'" in out
    assert taken == 1  # the later heads came while the first was handled: twisted's path


def test_headers_keep_arrival_order_and_repeats(monkeypatch: pytest.MonkeyPatch) -> None:
    (out, _), _, _ = both_ways(monkeypatch, [GET])
    assert b"(b'X-Amz-Date', [b'1', b'2'])" in out
    assert b"(b'Host', [b'h'])" in out
