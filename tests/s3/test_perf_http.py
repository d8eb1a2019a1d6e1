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
    assert set(ours) - set(theirs) == {"body", "_is_dispatched"}

    def comparable(value: Any) -> Any:
        return value._rawHeaders if isinstance(value, Headers) else value

    for name, value in theirs.items():
        assert type(ours[name]) is type(value), name
        assert comparable(ours[name]) == comparable(value), name
