"""Byte pins for the LIST renderers: S3 ListObjectsV2 / V1 / ListObjectVersions XML and the native
ListObjects meta, for entries that exercise every escaping, rounding and paging rule.

The expected bytes were produced by the renderers as they were before the LIST fast paths
(per-field ``_el`` escaping, ``ObjectEntry`` per object, ``heapq.merge`` of tuples); the fast
paths must reproduce them exactly. Timestamps with .9995 / .9996 fractions round up into the next
second in S3's milliseconds; the native protocol truncates to whole seconds.
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from jay.native import codec
from jay.native.server import list_objects_response
from jay.s3 import xml as sx
from jay.storage.api import ListedObject, ListedVersion, ListPage, VersionsPage

ENTRIES = (
    ListedObject(
        "a&b<c>\"'\r.txt", 0, "d41d8cd98f00b204e9800998ecf8427e", "ab" * 32, 1704164645.9995,
        "text/plain",
    ),
    ListedObject(
        "caf\u00e9/\u00fc-\U0001f600", 5, "e09e4fd6265b36115fe3db32df945d84-2", "ab" * 32,
        1704164645.0005, "image/png; q=\u00e9",
    ),
    ListedObject(
        "ctl\x01key", 123456789012, "5d41402abc4b2a76b9719d911017c592", "ab" * 32,
        1704164645.4995, "application/octet-stream",
    ),
    ListedObject(
        "plain+key %20", 7, "5d41402abc4b2a76b9719d911017c592", "ab" * 32, 1704164645.9996, ""
    ),
    ListedObject("z\ufffe", 1, "5d41402abc4b2a76b9719d911017c592", "ab" * 32, 1704164699.5, "a&b"),
)  # fmt: skip
# Interleaved with the keys above in key order: "b/" and "d&e/" between them, "é/" after all.
PREFIXES = ("b/", "d&e/", "\u00e9/")
PAGE = ListPage(
    objects=ENTRIES, common_prefixes=PREFIXES, is_truncated=True, next_start_after="z\ufffe"
)

V2 = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
    "<Name>photos</Name><Prefix></Prefix><Delimiter>/</Delimiter><MaxKeys>8</MaxKeys>"
    "<IsTruncated>true</IsTruncated><Contents>"
    "<Key>a&amp;b&lt;c&gt;&#34;&#39;&#13;.txt</Key>"
    "<LastModified>2024-01-02T03:04:06.000Z</LastModified>"
    "<ETag>&#34;d41d8cd98f00b204e9800998ecf8427e&#34;</ETag><Size>0</Size>"
    "<StorageClass>STANDARD</StorageClass></Contents><Contents><Key>café/ü-😀</Key>"
    "<LastModified>2024-01-02T03:04:05.000Z</LastModified>"
    "<ETag>&#34;e09e4fd6265b36115fe3db32df945d84-2&#34;</ETag><Size>5</Size>"
    "<StorageClass>STANDARD</StorageClass></Contents><Contents><Key>ctl&#x1;key</Key>"
    "<LastModified>2024-01-02T03:04:05.500Z</LastModified>"
    "<ETag>&#34;5d41402abc4b2a76b9719d911017c592&#34;</ETag><Size>123456789012</Size>"
    "<StorageClass>STANDARD</StorageClass></Contents><Contents><Key>plain+key %20</Key>"
    "<LastModified>2024-01-02T03:04:06.000Z</LastModified>"
    "<ETag>&#34;5d41402abc4b2a76b9719d911017c592&#34;</ETag><Size>7</Size>"
    "<StorageClass>STANDARD</StorageClass></Contents><Contents><Key>z&#xfffe;</Key>"
    "<LastModified>2024-01-02T03:04:59.500Z</LastModified>"
    "<ETag>&#34;5d41402abc4b2a76b9719d911017c592&#34;</ETag><Size>1</Size>"
    "<StorageClass>STANDARD</StorageClass></Contents><CommonPrefixes>"
    "<Prefix>b/</Prefix></CommonPrefixes><CommonPrefixes><Prefix>d&amp;e/</Prefix>"
    "</CommonPrefixes><CommonPrefixes><Prefix>é/</Prefix></CommonPrefixes>"
    "<KeyCount>8</KeyCount><StartAfter>a</StartAfter>"
    "<ContinuationToken>tok</ContinuationToken>"
    "<NextContinuationToken>nxt</NextContinuationToken></ListBucketResult>"
).encode()

V2_URL = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
    b"<Name>photos</Name><Prefix></Prefix><Delimiter>/</Delimiter><MaxKeys>8</MaxKeys>"
    b"<IsTruncated>true</IsTruncated><Contents><Key>a%26b%3Cc%3E%22%27%0D.txt</Key>"
    b"<LastModified>2024-01-02T03:04:06.000Z</LastModified>"
    b"<ETag>&#34;d41d8cd98f00b204e9800998ecf8427e&#34;</ETag><Size>0</Size><Owner>"
    b"<ID>acct&amp;1</ID><DisplayName>acct&amp;1</DisplayName></Owner>"
    b"<StorageClass>STANDARD</StorageClass></Contents><Contents>"
    b"<Key>caf%C3%A9/%C3%BC-%F0%9F%98%80</Key>"
    b"<LastModified>2024-01-02T03:04:05.000Z</LastModified>"
    b"<ETag>&#34;e09e4fd6265b36115fe3db32df945d84-2&#34;</ETag><Size>5</Size><Owner>"
    b"<ID>acct&amp;1</ID><DisplayName>acct&amp;1</DisplayName></Owner>"
    b"<StorageClass>STANDARD</StorageClass></Contents><Contents><Key>ctl%01key</Key>"
    b"<LastModified>2024-01-02T03:04:05.500Z</LastModified>"
    b"<ETag>&#34;5d41402abc4b2a76b9719d911017c592&#34;</ETag><Size>123456789012</Size>"
    b"<Owner><ID>acct&amp;1</ID><DisplayName>acct&amp;1</DisplayName></Owner>"
    b"<StorageClass>STANDARD</StorageClass></Contents><Contents>"
    b"<Key>plain%2Bkey%20%2520</Key><LastModified>2024-01-02T03:04:06.000Z</LastModified>"
    b"<ETag>&#34;5d41402abc4b2a76b9719d911017c592&#34;</ETag><Size>7</Size><Owner>"
    b"<ID>acct&amp;1</ID><DisplayName>acct&amp;1</DisplayName></Owner>"
    b"<StorageClass>STANDARD</StorageClass></Contents><Contents><Key>z%EF%BF%BE</Key>"
    b"<LastModified>2024-01-02T03:04:59.500Z</LastModified>"
    b"<ETag>&#34;5d41402abc4b2a76b9719d911017c592&#34;</ETag><Size>1</Size><Owner>"
    b"<ID>acct&amp;1</ID><DisplayName>acct&amp;1</DisplayName></Owner>"
    b"<StorageClass>STANDARD</StorageClass></Contents><CommonPrefixes>"
    b"<Prefix>b/</Prefix></CommonPrefixes><CommonPrefixes><Prefix>d%26e/</Prefix>"
    b"</CommonPrefixes><CommonPrefixes><Prefix>%C3%A9/</Prefix></CommonPrefixes>"
    b"<KeyCount>8</KeyCount><EncodingType>url</EncodingType></ListBucketResult>"
)

V1 = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
    "<Name>photos</Name><Prefix></Prefix><Marker>m</Marker>"
    "<NextMarker>z&#xfffe;</NextMarker><MaxKeys>8</MaxKeys><Delimiter>/</Delimiter>"
    "<IsTruncated>true</IsTruncated><Contents>"
    "<Key>a&amp;b&lt;c&gt;&#34;&#39;&#13;.txt</Key>"
    "<LastModified>2024-01-02T03:04:06.000Z</LastModified>"
    "<ETag>&#34;d41d8cd98f00b204e9800998ecf8427e&#34;</ETag><Size>0</Size><Owner>"
    "<ID>acct</ID><DisplayName>acct</DisplayName></Owner>"
    "<StorageClass>STANDARD</StorageClass></Contents><Contents><Key>café/ü-😀</Key>"
    "<LastModified>2024-01-02T03:04:05.000Z</LastModified>"
    "<ETag>&#34;e09e4fd6265b36115fe3db32df945d84-2&#34;</ETag><Size>5</Size><Owner>"
    "<ID>acct</ID><DisplayName>acct</DisplayName></Owner>"
    "<StorageClass>STANDARD</StorageClass></Contents><Contents><Key>ctl&#x1;key</Key>"
    "<LastModified>2024-01-02T03:04:05.500Z</LastModified>"
    "<ETag>&#34;5d41402abc4b2a76b9719d911017c592&#34;</ETag><Size>123456789012</Size>"
    "<Owner><ID>acct</ID><DisplayName>acct</DisplayName></Owner>"
    "<StorageClass>STANDARD</StorageClass></Contents><Contents><Key>plain+key %20</Key>"
    "<LastModified>2024-01-02T03:04:06.000Z</LastModified>"
    "<ETag>&#34;5d41402abc4b2a76b9719d911017c592&#34;</ETag><Size>7</Size><Owner>"
    "<ID>acct</ID><DisplayName>acct</DisplayName></Owner>"
    "<StorageClass>STANDARD</StorageClass></Contents><Contents><Key>z&#xfffe;</Key>"
    "<LastModified>2024-01-02T03:04:59.500Z</LastModified>"
    "<ETag>&#34;5d41402abc4b2a76b9719d911017c592&#34;</ETag><Size>1</Size><Owner>"
    "<ID>acct</ID><DisplayName>acct</DisplayName></Owner>"
    "<StorageClass>STANDARD</StorageClass></Contents><CommonPrefixes>"
    "<Prefix>b/</Prefix></CommonPrefixes><CommonPrefixes><Prefix>d&amp;e/</Prefix>"
    "</CommonPrefixes><CommonPrefixes><Prefix>é/</Prefix></CommonPrefixes>"
    "</ListBucketResult>"
).encode()

VERSIONS = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<ListVersionsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
    "<Name>photos</Name><Prefix></Prefix><KeyMarker>k</KeyMarker><VersionIdMarker>"
    "</VersionIdMarker><NextKeyMarker>z&#xfffe;</NextKeyMarker>"
    "<NextVersionIdMarker>null</NextVersionIdMarker><MaxKeys>8</MaxKeys>"
    "<Delimiter>/</Delimiter><IsTruncated>true</IsTruncated><Version>"
    "<Key>a&amp;b&lt;c&gt;&#34;&#39;&#13;.txt</Key><VersionId>null</VersionId>"
    "<IsLatest>true</IsLatest><LastModified>2024-01-02T03:04:06.000Z</LastModified>"
    "<ETag>&#34;d41d8cd98f00b204e9800998ecf8427e&#34;</ETag><Size>0</Size><Owner>"
    "<ID>acct</ID><DisplayName>acct</DisplayName></Owner>"
    "<StorageClass>STANDARD</StorageClass></Version><Version><Key>café/ü-😀</Key>"
    "<VersionId>null</VersionId><IsLatest>true</IsLatest>"
    "<LastModified>2024-01-02T03:04:05.000Z</LastModified>"
    "<ETag>&#34;e09e4fd6265b36115fe3db32df945d84-2&#34;</ETag><Size>5</Size><Owner>"
    "<ID>acct</ID><DisplayName>acct</DisplayName></Owner>"
    "<StorageClass>STANDARD</StorageClass></Version><Version><Key>ctl&#x1;key</Key>"
    "<VersionId>null</VersionId><IsLatest>true</IsLatest>"
    "<LastModified>2024-01-02T03:04:05.500Z</LastModified>"
    "<ETag>&#34;5d41402abc4b2a76b9719d911017c592&#34;</ETag><Size>123456789012</Size>"
    "<Owner><ID>acct</ID><DisplayName>acct</DisplayName></Owner>"
    "<StorageClass>STANDARD</StorageClass></Version><Version><Key>plain+key %20</Key>"
    "<VersionId>null</VersionId><IsLatest>true</IsLatest>"
    "<LastModified>2024-01-02T03:04:06.000Z</LastModified>"
    "<ETag>&#34;5d41402abc4b2a76b9719d911017c592&#34;</ETag><Size>7</Size><Owner>"
    "<ID>acct</ID><DisplayName>acct</DisplayName></Owner>"
    "<StorageClass>STANDARD</StorageClass></Version><Version><Key>z&#xfffe;</Key>"
    "<VersionId>null</VersionId><IsLatest>true</IsLatest>"
    "<LastModified>2024-01-02T03:04:59.500Z</LastModified>"
    "<ETag>&#34;5d41402abc4b2a76b9719d911017c592&#34;</ETag><Size>1</Size><Owner>"
    "<ID>acct</ID><DisplayName>acct</DisplayName></Owner>"
    "<StorageClass>STANDARD</StorageClass></Version><CommonPrefixes><Prefix>b/</Prefix>"
    "</CommonPrefixes><CommonPrefixes><Prefix>d&amp;e/</Prefix></CommonPrefixes>"
    "<CommonPrefixes><Prefix>é/</Prefix></CommonPrefixes></ListVersionsResult>"
).encode()

META = (
    b"\x00\x05\x00\ra&b<c>\"'\r.txt\x00\x00\x00\x00\x00\x00\x00\x00\x00 d41d8cd98f00b204e9800998ecf8427e\x00"
    b"@abababababababababababababababababababababababababababababa"
    b"babab\x00\x142024-01-02T03:04:05Z\x00\ntext/plain\x00\rcaf\xc3\xa9/\xc3\xbc-\xf0\x9f\x98\x80\x00\x00\x00\x00\x00\x00"
    b'\x00\x05\x00"e09e4fd6265b36115fe3db32df945d84-2\x00@abababababababababab'
    b"abababababababababababababababababababababab\x00\x142024-01-02T03:"
    b"04:05Z\x00\x0fimage/png; q=\xc3\xa9\x00\x07ctl\x01key\x00\x00\x00\x1c\xbe\x99\x1a\x14\x00 5d41402abc4b2a76b9"
    b"719d911017c592\x00@abababababababababababababababababababababab"
    b"abababababababababab\x00\x142024-01-02T03:04:05Z\x00\x18application/octe"
    b"t-stream\x00\rplain+key %20\x00\x00\x00\x00\x00\x00\x00\x07\x00 5d41402abc4b2a76b9719d91101"
    b"7c592\x00@ababababababababababababababababababababababababababa"
    b"bababababab\x00\x142024-01-02T03:04:05Z\x00\x00\x00\x04z\xef\xbf\xbe\x00\x00\x00\x00\x00\x00\x00\x01\x00 5d41402ab"
    b"c4b2a76b9719d911017c592\x00@abababababababababababababababababa"
    b"babababababababababababababab\x00\x142024-01-02T03:04:59Z\x00\x03a&b\x00\x03\x00\x02"
    b"b/\x00\x04d&e/\x00\x03\xc3\xa9/\x01\x00\x04z\xef\xbf\xbe"
)


def test_v2_bytes() -> None:
    body = sx.render_list_objects_v2(
        PAGE,
        bucket="photos",
        delimiter="/",
        max_keys=8,
        start_after="a",
        continuation_token="tok",
        next_continuation_token="nxt",
    )
    assert body == V2


def test_v2_url_encoded_with_owner_bytes() -> None:
    body = sx.render_list_objects_v2(
        PAGE, bucket="photos", delimiter="/", max_keys=8, encoding_type="url", owner_id="acct&1"
    )
    assert body == V2_URL


def test_v1_bytes() -> None:
    body = sx.render_list_objects_v1(
        PAGE, bucket="photos", delimiter="/", marker="m", max_keys=8, owner_id="acct"
    )
    assert body == V1


def test_versions_bytes() -> None:
    """The listing of an unversioned bucket: each object its only ("null", latest) version."""
    page = VersionsPage(
        versions=tuple(
            ListedVersion(o.key, "null", True, False, o.size, o.etag, o.updated_at)
            for o in PAGE.objects
        ),
        common_prefixes=PAGE.common_prefixes,
        is_truncated=True,
        next_key_marker=PAGE.next_start_after,
        next_version_id_marker="null",
    )
    body = sx.render_list_object_versions(
        page, bucket="photos", delimiter="/", key_marker="k", max_keys=8, owner_id="acct"
    )
    assert body == VERSIONS


def test_each_special_character_is_escaped_alone() -> None:
    """Escaping is skipped for a page whose keys and ETags have nothing to escape; one entry
    with a single special character (in its key or its ETag) must still come out as ``_el``
    writes it."""
    plain = ListedObject("k", 1, "e" * 32, "ab" * 32, 1704164645.25, "t")
    for char in "&<>\"'\r\x01\x1f\ufffe\uffff":
        for odd in (plain._replace(key="k" + char), plain._replace(etag="e" + char)):
            for objects in ((plain, odd), (odd, plain)):
                page = ListPage(
                    objects=objects, common_prefixes=(), is_truncated=False, next_start_after=""
                )
                body = sx.render_list_objects_v2(page, bucket="b").decode()
                expected = "".join(
                    "<Contents>"
                    + sx._el("Key", entry.key)
                    + sx._el("LastModified", sx.format_timestamp(entry.updated_at))
                    + sx._el("ETag", f'"{entry.etag}"')
                    + sx._el("Size", str(entry.size))
                    + "<StorageClass>STANDARD</StorageClass></Contents>"
                    for entry in objects
                )
                assert expected in body, repr(char)


def test_native_meta_bytes() -> None:
    response = list_objects_response(ENTRIES, PREFIXES, True, "z\ufffe")
    assert response.encode() == META
    decoded = codec.ListObjectsResponse.decode(META)
    assert response.decoded() == decoded
    assert [o.key for o in decoded.objects] == [e.key for e in ENTRIES]
    assert decoded.objects[0].last_modified == "2024-01-02T03:04:05Z"  # truncated, not rounded


LONG = "k" * 900


def _long_entries() -> tuple[tuple[ListedObject, ...], tuple[str, ...]]:
    objects = tuple(
        ListedObject(
            f"{LONG}{i:05d}", i, "5d41402abc4b2a76b9719d911017c592", "ab" * 32,
            1704164645.0 + i * 0.37, "text/plain",
        )
        for i in range(1500)
    )  # fmt: skip
    prefixes = tuple(f"{LONG}{i:05d}x/" for i in range(1500) if i % 100 == 50)
    return objects, prefixes


def test_native_meta_cut_by_the_one_mebibyte_budget() -> None:
    objects, prefixes = _long_entries()
    response = list_objects_response(objects, prefixes, False, "")
    meta = response.encode()
    assert len(meta) == 1045365
    assert hashlib.sha256(meta).hexdigest() == (
        "ab4a309cbb11e13aa60cb3ece0644d7f686f264838d61526c66e096ab3fd5f1f"
    )
    assert len(response.object_records) == 987 and len(response.common_prefixes) == 10
    assert response.is_truncated and response.next_start_after == f"{LONG}00986"


def test_native_meta_cut_right_after_a_common_prefix() -> None:
    objects, _ = _long_entries()
    entry_size = 8 + 2 * 5 + 905 + 32 + 64 + 20 + 10
    response = list_objects_response(
        objects[:3],
        (f"{LONG}00000x/",),
        False,
        "",
        max_meta_bytes=codec.ListObjectsResponse.BASE_SIZE + 4096 + entry_size + 2 + 907,
    )
    meta = response.encode()
    assert len(meta) == 2992
    assert hashlib.sha256(meta).hexdigest() == (
        "da4c299862692787e83125245185bab38a1c9be2e9b6cbd74c66dba10c7c2ef7"
    )
    assert [o.key for o in response.decoded().objects] == [f"{LONG}00000"]
    assert response.next_start_after.startswith(f"{LONG}00000x/\U0010ffff")


def _reference_timestamp(timestamp: float) -> str:
    """S3 LastModified as it was formatted before the per-second and per-day caches."""
    whole = int(timestamp)
    millis = int(round((timestamp - whole) * 1000))
    if millis >= 1000:
        whole, millis = whole + 1, 0
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{millis:03d}Z"


def _reference_wire_time(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(int(epoch_seconds // 1), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@given(
    st.one_of(
        st.floats(min_value=-62135596800.0, max_value=253402300799.0),
        st.integers(-86400 * 3, 86400 * 3).map(lambda s: s + 0.9995),
        st.integers(1704067200 - 5, 1704067200 + 5).map(float),  # around midnight
    )
)
def test_cached_time_formats_match_the_reference(timestamp: float) -> None:
    assert sx.format_timestamp(timestamp) == _reference_timestamp(timestamp)
    assert codec.format_wire_time(timestamp) == _reference_wire_time(timestamp)
