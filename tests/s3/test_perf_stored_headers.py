"""The response headers of an object record, formed once per record (``_StoredHeaders``)."""

from __future__ import annotations

from dataclasses import replace

from jay.s3 import app
from jay.s3 import headers as h
from jay.s3.app import _S3ResponseHeaders, _StoredHeaders, stored_object_headers
from jay.storage.api import ObjectAttributes, ObjectInfo

INFO = ObjectInfo(
    bucket="b",
    bucket_id="id",
    key="k",
    object_id="o",
    size=3,
    etag="0123456789abcdef0123456789abcdef",
    sha256_hex="0" * 64,
    attributes=ObjectAttributes(
        content_type="text/plain; charset=utf-8",
        content_encoding="gzip",
        cache_control="max-age=60",
        expires="Thu, 01 Dec 2094 16:00:00 GMT",
        metadata={"author": "Zoë", "Project-Name": "x\r\ny"},
    ),
    created_at=1.0,
    updated_at=1704164645.75,
)


def set_one_by_one(info: ObjectInfo) -> list[tuple[bytes, list[bytes]]]:
    """What ``request.setHeader`` per header (the code before the cache) leaves."""
    headers = _S3ResponseHeaders()
    attrs = info.attributes
    headers.setRawHeaders(b"ETag", [f'"{info.etag}"'.encode()])
    headers.setRawHeaders(b"Last-Modified", [b"Tue, 02 Jan 2024 03:04:05 GMT"])
    headers.setRawHeaders(b"Accept-Ranges", [b"bytes"])
    headers.setRawHeaders(b"Content-Type", [attrs.content_type.encode()])
    headers.setRawHeaders(b"Content-Encoding", [b"gzip"])
    headers.setRawHeaders(b"Cache-Control", [b"max-age=60"])
    headers.setRawHeaders(b"Expires", [attrs.expires.encode()])  # type: ignore[union-attr]
    for name, value in h.metadata_response_headers(attrs.metadata):
        headers.setRawHeaders(name.encode(), [value.encode("utf-8", "replace")])
    return list(headers.getAllRawHeaders())


def test_stored_headers_are_what_setting_each_header_gives() -> None:
    stored = _S3ResponseHeaders()
    for name, values in stored_object_headers(INFO):
        stored._rawHeaders[name] = list(values)
    expected = set_one_by_one(INFO)
    assert list(stored.getAllRawHeaders()) == expected
    # Beyond US-ASCII a value goes out as an RFC 2047 encoded-word, as S3 sends it.
    assert (b"x-amz-meta-author", [b"=?UTF-8?B?Wm/Dqw==?="]) in expected


def test_a_record_is_formatted_once_and_a_changed_one_again() -> None:
    cache = _StoredHeaders()
    first = cache.of(INFO)
    assert cache.of(INFO) is first
    newer = replace(INFO, etag="f" * 32)
    assert dict(cache.of(newer))[b"ETag"] == (b'"' + b"f" * 32 + b'"',)
    equal_but_distinct = replace(INFO)
    assert cache.of(equal_but_distinct) == first


def test_the_table_is_bounded(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(_StoredHeaders, "MAX_ENTRIES", 3)
    cache = _StoredHeaders()
    infos = [replace(INFO, key=f"k{i}") for i in range(10)]
    for info in infos:
        cache.of(info)
        assert len(cache._entries) <= 3
    assert app._StoredHeaders is _StoredHeaders


def test_every_record_the_storage_caches_keeps_its_headers() -> None:
    """The table holds as many records as the storage's record cache: a rotation over more keys
    than an older, smaller table held (10,000 HEADs over 5,000 keys) formats each record once."""
    from jay.storage.service import OBJECT_CACHE_ENTRIES

    assert _StoredHeaders.MAX_ENTRIES >= OBJECT_CACHE_ENTRIES
    cache = _StoredHeaders()
    infos = [replace(INFO, key=f"k{i}") for i in range(5000)]
    first = [cache.of(info) for info in infos]
    assert all(cache.of(info) is headers for info, headers in zip(infos, first, strict=True))
