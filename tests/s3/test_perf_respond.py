"""``StreamingRequest.respond_now``: ``write(body)`` plus ``finish()`` in one step.

Whatever the response (a length or none, HEAD, 204, 304, HTTP/1.0, a body left unread, a
body too large to share a send with its head, pipelined requests), the bytes on the wire and
the state left behind must be what ``write`` and ``finish`` produce, which
``test_perf_send.py`` pins against twisted's own Site.
"""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.testing import StringTransport
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site

from jay.s3 import http as jay_http
from jay.s3.http import MAX_COMBINED_BODY_BYTES, StreamingSite
from tests.s3.wire import exchange

LARGE = b"L" * (MAX_COMBINED_BODY_BYTES + 1)


class Answer(Resource):
    """``/<case>``: sets a response up, then answers with ``respond_now`` when ``fast``."""

    isLeaf = True

    def __init__(self, fast: bool) -> None:
        super().__init__()
        self.fast = fast
        self.finished: list[Any] = []

    def render(self, request: Any) -> Any:
        case = request.postpath[0]
        body = b"small body"
        if case == b"length":
            request.setHeader(b"Content-Length", b"%d" % len(body))
        elif case == b"large":
            body = LARGE
            request.setHeader(b"Content-Length", b"%d" % len(body))
        elif case == b"typed":
            request.setHeader(b"Content-Type", b"application/xml")
            request.setHeader(b"Content-Length", b"%d" % len(body))
        elif case == b"zero":
            body = b""
            request.setHeader(b"Content-Length", b"0")
        elif case == b"empty":
            body = b""
            request.setResponseCode(204)
        elif case == b"unchanged":
            body = b""
            request.setResponseCode(304)
            request.setHeader(b"ETag", b'"abc"')
        elif case == b"meta":
            request.setHeader(b"X-Amz-Meta-Author", b"someone")
            request.setHeader(b"Content-Length", b"%d" % len(body))
        elif case == b"nolength":
            pass  # HTTP/1.1: chunked (respond_now hands it to write); HTTP/1.0: raw, then close
        self.finished.append(request.notifyFinish())
        if self.fast:
            request.respond_now(body)
        else:
            if body:
                request.write(body)
            request.finish()
        return NOT_DONE_YET


pytestmark = pytest.mark.usefixtures("frozen_clock")


def respond(site: Site, raw: bytes) -> tuple[bytes, Any, StringTransport]:
    value, protocol, transport = exchange(site, raw)
    return value, protocol._channel, transport


def request(method: bytes, case: bytes, version: bytes = b"HTTP/1.1", extra: bytes = b"") -> bytes:
    host = b"Host: h\r\n" if version == b"HTTP/1.1" else b""
    return method + b" /r/" + case + b" " + version + b"\r\n" + host + extra + b"\r\n"


CASES = [
    request(b"GET", b"length"),
    request(b"GET", b"large"),
    request(b"GET", b"typed"),
    request(b"GET", b"zero"),
    request(b"GET", b"empty"),
    request(b"GET", b"unchanged"),
    request(b"GET", b"meta"),
    request(b"GET", b"nolength"),
    request(b"GET", b"nolength", b"HTTP/1.0"),
    request(b"GET", b"length", b"HTTP/1.0"),
    request(b"GET", b"length", b"HTTP/1.0", b"Connection: keep-alive\r\n"),
    request(b"GET", b"length", extra=b"Connection: close\r\n"),
    request(b"HEAD", b"length"),
    request(b"HEAD", b"nolength"),
    # A body the handler never reads: small ones are drained (the connection stays), a large
    # one closes it (``Connection: close``).
    request(b"PUT", b"length", extra=b"Content-Length: 5\r\n") + b"12345",
    request(b"PUT", b"length", extra=b"Content-Length: 999999999\r\n") + b"12345",
    # Pipelined: both answered, in order.
    request(b"GET", b"length") + request(b"HEAD", b"typed"),
    request(b"GET", b"empty") + request(b"GET", b"large"),
]


def site(fast: bool) -> tuple[StreamingSite, Answer]:
    root = Resource()
    answer = Answer(fast)
    root.putChild(b"r", answer)
    return StreamingSite(root, idle_timeout_seconds=None), answer


@pytest.mark.parametrize("raw", CASES)
def test_respond_now_sends_what_write_and_finish_send(raw: bytes) -> None:
    fast_site, fast = site(True)
    slow_site, slow = site(False)
    ours, our_channel, our_transport = respond(fast_site, raw)
    theirs, their_channel, their_transport = respond(slow_site, raw)
    assert ours == theirs
    assert ours.startswith(b"HTTP/1.")
    # The same state afterwards: finished (notifyFinish fired), the connection kept or closed
    # alike, nothing left queued on the channel.
    assert [d.called for d in fast.finished] == [d.called for d in slow.finished]
    assert all(d.called for d in fast.finished)
    assert our_transport.disconnecting == their_transport.disconnecting
    assert our_channel.persistent == their_channel.persistent
    assert our_channel.requests == their_channel.requests == []


def test_a_small_response_leaves_in_one_send(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[bytes] = []
    monkeypatch.setattr(jay_http, "send_now", lambda transport, data: sent.append(data))
    respond(site(True)[0], request(b"GET", b"length"))
    assert len(sent) == 1
    assert sent[0].startswith(b"HTTP/1.1 200 OK\r\n") and sent[0].endswith(b"\r\n\r\nsmall body")


def test_a_large_body_is_queued_after_its_head(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[bytes] = []
    monkeypatch.setattr(jay_http, "send_now", lambda transport, data: sent.append(data))
    out, _, _ = respond(site(True)[0], request(b"GET", b"large"))
    assert len(sent) == 1 and sent[0].endswith(b"\r\n\r\n")  # the head alone
    assert out == LARGE  # the body went through transport.write


def test_respond_now_after_writing_falls_back_to_write_and_finish() -> None:
    class Streams(Resource):
        isLeaf = True

        def render(self, request: Any) -> Any:
            request.write(b"first")
            request.respond_now(b"second")
            return NOT_DONE_YET

    out, _, _ = respond(StreamingSite(Streams(), idle_timeout_seconds=None), request(b"GET", b"x"))
    assert out.endswith(b"5\r\nfirst\r\n6\r\nsecond\r\n0\r\n\r\n")
