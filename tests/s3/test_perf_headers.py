"""Response header set-up without per-header encoding work, and the cached HTTP date."""

from __future__ import annotations

import email.utils

from twisted.web.http_headers import Headers

from jay.s3.app import SECURITY_HEADERS, _S3ResponseHeaders
from jay.s3.headers import format_http_date


def test_replacing_keeps_existing_headers_and_adds_the_constants() -> None:
    current = Headers()
    current.setRawHeaders(b"date", [b"Tue, 02 Jan 2024 03:04:05 GMT"])
    current.setRawHeaders(b"server", [b"TwistedWeb/26"])
    current.setRawHeaders(b"x-jay-worker", [b"123"])
    headers = _S3ResponseHeaders.replacing(current, b"00ff00ff00ff00ff")
    # Read back through the public API, under any spelling of the name.
    assert headers.getRawHeaders(b"Date") == [b"Tue, 02 Jan 2024 03:04:05 GMT"]
    assert headers.getRawHeaders(b"x-jay-worker") == [b"123"]
    assert headers.getRawHeaders(b"server") == [b"jay"]
    assert headers.getRawHeaders(b"x-amz-request-id") == [b"00ff00ff00ff00ff"]
    for name, value in SECURITY_HEADERS:
        assert headers.getRawHeaders(name.lower()) == [value]
    # Canonical names only, as twisted.web would have stored them: no duplicates on the wire.
    names = [name for name, _ in headers.getAllRawHeaders()]
    assert len(names) == len(set(names)) == 7
    # The copy is independent of the original.
    headers.addRawHeader(b"x-jay-worker", b"456")
    assert current.getRawHeaders(b"x-jay-worker") == [b"123"]


def test_metadata_names_go_out_in_lower_case_and_others_unchanged() -> None:
    headers = _S3ResponseHeaders.replacing(Headers(), b"1")
    headers.setRawHeaders(b"x-amz-meta-Author", [b"me"])
    headers.setRawHeaders(b"etag", [b'"abc"'])
    out = dict(headers.getAllRawHeaders())
    assert out[b"x-amz-meta-author"] == [b"me"]
    assert out[b"ETag"] == [b'"abc"']
    plain = dict(_S3ResponseHeaders.replacing(Headers(), b"1").getAllRawHeaders())
    assert b"X-Content-Type-Options" in plain


def test_cached_http_date_matches_email_utils() -> None:
    for ts in (0.0, 1704164645.9, 1704164645.0, 2e9):
        expected = email.utils.formatdate(int(ts), usegmt=True)
        assert format_http_date(ts) == expected
        assert format_http_date(ts) == expected  # from the cache
