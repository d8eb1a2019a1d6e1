"""Response-side shortcuts that must leave every byte as twisted would write it.

StreamingRequest.process is twisted's ``server.Request.process`` with a cached ``Date``:
default headers, resource traversal (prepath, postpath, sitepath), ``*``, encoders and
processing failures stay the same. The S3 headers jay stores directly are stored under the
names twisted would have used.
"""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.web import http
from twisted.web.http_headers import Headers
from twisted.web.resource import EncodingResourceWrapper, Resource
from twisted.web.server import GzipEncoderFactory, Request, Site

from jay.s3 import http as jay_http
from jay.s3.app import PLAIN_HEADER_NAMES, _S3ResponseHeaders
from jay.s3.http import StreamingSite
from tests.s3.wire import NOW, exchange


class Echo(Resource):
    isLeaf = True

    def render(self, request: Any) -> bytes:
        return repr((request.prepath, request.postpath, request.sitepath)).encode()


class Boom(Resource):
    isLeaf = True

    def render(self, request: Any) -> bytes:
        raise RuntimeError("boom")


def tree() -> Resource:
    root = Resource()
    root.putChild(b"echo", Echo())
    root.putChild(b"boom", Boom())
    root.putChild(b"gzip", EncodingResourceWrapper(Echo(), [GzipEncoderFactory()]))
    return root


def respond(site: Site, raw: bytes) -> bytes:
    return exchange(site, raw)[0]


@pytest.mark.parametrize(
    "raw",
    [
        b"GET /echo/a%20b//c?x=1 HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET /echo HTTP/1.1\r\nHost: h\r\n\r\n",
        b"HEAD /echo/x HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET /missing/x HTTP/1.1\r\nHost: h\r\n\r\n",
        b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET /gzip/k HTTP/1.1\r\nHost: h\r\nAccept-Encoding: gzip\r\n\r\n",
        b"GET /boom HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET /echo/x HTTP/1.0\r\n\r\n",
    ],
)
@pytest.mark.usefixtures("frozen_clock")
def test_process_writes_what_twisted_writes(raw: bytes) -> None:
    ours = respond(StreamingSite(tree(), idle_timeout_seconds=None), raw)
    theirs = respond(Site(tree(), timeout=None), raw)
    assert ours == theirs
    assert b"Date: Tue, 02 Jan 2024 03:04:05 GMT\r\n" in ours


@pytest.mark.parametrize(
    "raw",
    [
        b"GET /a%20b//c?x=1 HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
        b"HEAD /x/y HTTP/1.1\r\nHost: h\r\n\r\n",
    ],
)
@pytest.mark.usefixtures("frozen_clock")
def test_a_leaf_root_sees_the_postpath_twisted_gives_it(raw: bytes) -> None:
    """``postpath`` is formed on first use; a leaf root that reads it gets twisted's list."""
    ours = respond(StreamingSite(Echo(), idle_timeout_seconds=None), raw)
    theirs = respond(Site(Echo(), timeout=None), raw)
    assert ours == theirs


class PostpathWatchingLeaf(Resource):
    """A leaf root that records, per request, whether the postpath had been formed."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.formed: list[bool] = []

    def render(self, request: Any) -> bytes:
        self.formed.append(request._postpath is not None)
        return b"ok"


def test_a_leaf_root_is_served_without_forming_the_postpath() -> None:
    leaf = PostpathWatchingLeaf()
    raw = b"GET /a/b/c HTTP/1.1\r\nHost: h\r\n\r\n"
    assert respond(StreamingSite(leaf, idle_timeout_seconds=None), raw).endswith(b"ok")
    assert leaf.formed == [False]


@pytest.mark.usefixtures("frozen_clock")
def test_fixed_headers_are_what_set_header_in_get_resource_for_gave() -> None:
    """A site's ``fixed_headers`` (the worker tag) reach every response as a ``Site`` that
    calls ``setHeader`` in ``getResourceFor`` would send them, and a leaf root is still served
    without ``getResourceFor`` (nor the postpath)."""

    class Tagging(Site):
        def getResourceFor(self, request: Any) -> Any:
            request.setHeader(b"x-jay-worker", b"4242")
            return super().getResourceFor(request)

    leaf = PostpathWatchingLeaf()
    for raw in (
        b"GET /a/b HTTP/1.1\r\nHost: h\r\n\r\n",
        b"HEAD /x HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET /a/b HTTP/1.0\r\n\r\n",
    ):
        site = StreamingSite(leaf, idle_timeout_seconds=None)
        site.fixed_headers = ((b"X-Jay-Worker", b"4242"),)
        site.getResourceFor = None  # type: ignore[assignment,method-assign]
        ours = respond(site, raw)
        theirs = respond(Tagging(Echo(), timeout=None), raw.replace(b"Leaf", b""))
        assert b"X-Jay-Worker: 4242\r\n" in ours
        heads = [line for line in ours.split(b"\r\n\r\n")[0].split(b"\r\n")]
        their_heads = [
            line for line in theirs.split(b"\r\n\r\n")[0].split(b"\r\n")
            if not line.startswith(b"Content-Length")
        ]  # fmt: skip
        assert [h for h in heads if not h.startswith(b"Content-Length")] == their_heads
    assert leaf.formed == [False, False, False]


def test_a_request_without_a_body_keeps_the_body_it_was_made_with() -> None:
    """A GET's body object is the one its request started with, bound to the channel; the
    next request on the connection gets its own."""
    site = StreamingSite(Echo(), idle_timeout_seconds=None)
    channel = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1234))
    transport = StringTransport()
    channel.makeConnection(transport)
    seen: list[Any] = []
    original = jay_http.StreamingRequest._begin_body

    def spy(request: Any, length: Any, *, expects_continue: bool) -> None:
        before = request.body
        original(request, length, expects_continue=expects_continue)
        seen.append((before, request.body))

    jay_http.StreamingRequest._begin_body = spy  # type: ignore[method-assign]
    try:
        channel.dataReceived(b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n")
        channel.dataReceived(b"PUT /b HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nok")
        channel.dataReceived(b"GET /c HTTP/1.1\r\nHost: h\r\n\r\n")
    finally:
        jay_http.StreamingRequest._begin_body = original  # type: ignore[method-assign]
    (get_before, get_body), (put_before, put_body), (again_before, again_body) = seen
    assert get_body is get_before
    assert isinstance(get_body._channel, jay_http.StreamingChannel)
    assert get_body.is_received and get_body.state == "complete"
    assert put_body is not put_before and put_body.length == 2
    assert again_body is again_before and again_body is not get_body
    assert transport.value().count(b"HTTP/1.1 200 OK") == 3


def test_the_date_follows_the_second(monkeypatch: pytest.MonkeyPatch) -> None:
    date = jay_http._DateHeader()
    for now in (NOW, NOW + 0.2, NOW + 0.25, NOW + 61.0, 0.5):
        monkeypatch.setattr(jay_http.time, "time", lambda now=now: now)
        assert date() == http.datetimeToString(now)


# --- S3 response headers -----------------------------------------------------------------------


def test_plain_header_names_are_stored_as_twisted_would_store_them() -> None:
    for name in PLAIN_HEADER_NAMES:
        via_twisted = Headers()
        via_twisted.setRawHeaders(name.lower(), [b"v"])
        plain = _S3ResponseHeaders()
        plain.set_plain(name, b"v")
        assert list(plain.getAllRawHeaders()) == list(via_twisted.getAllRawHeaders())


def test_response_headers_lower_case_metadata_names_in_place() -> None:
    headers = _S3ResponseHeaders.replacing(Headers({b"Server": [b"x"]}), b"abc")
    headers.set_plain(b"ETag", b'"e"')
    assert [name for name, _ in headers.getAllRawHeaders()] == [
        b"Server",
        b"X-Content-Type-Options",
        b"X-Frame-Options",
        b"Referrer-Policy",
        b"X-Amz-Request-Id",
        b"ETag",
    ]
    headers.setRawHeaders(b"x-amz-meta-Author", [b"me"])
    headers.set_plain(b"Content-Length", b"0")
    assert list(headers.getAllRawHeaders())[-3:] == [
        (b"ETag", [b'"e"']),
        (b"x-amz-meta-author", [b"me"]),
        (b"Content-Length", [b"0"]),
    ]


def test_a_new_request_has_what_twisted_gives_a_new_request() -> None:
    # StreamingRequest.__init__ sets server.Request's attributes itself (no super() chain):
    # the same names, with equal values, as twisted's own constructor leaves.
    site = StreamingSite(tree(), idle_timeout_seconds=None)
    channel = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1))._channel
    channel.makeConnection(StringTransport())
    ours = vars(jay_http.StreamingRequest(channel))
    theirs = vars(Request(channel, parsePOSTFormSubmission=False))
    assert set(ours) - set(theirs) == {"body", "_is_dispatched", "_postpath"}

    def comparable(value: Any) -> Any:
        return value._rawHeaders if isinstance(value, Headers) else value

    for name, value in theirs.items():
        assert type(ours[name]) is type(value), name
        assert comparable(ours[name]) == comparable(value), name
