"""Range, conditionals, copy source, metadata, overrides, dates, ETags, digests."""

from __future__ import annotations

import base64
import hashlib

import pytest

from jay import errors
from jay.s3.headers import (
    ByteRange,
    Condition,
    CopySource,
    RequestedEncryption,
    check_read_features,
    check_write_features,
    copy_source_customer_key,
    decode_metadata_value,
    encode_metadata_value,
    etag_list_matches,
    evaluate_conditionals,
    evaluate_copy_source_conditionals,
    extract_user_metadata,
    format_http_date,
    if_range_allows,
    metadata_response_headers,
    parse_attribute_parts_paging,
    parse_checksum_headers,
    parse_complete_checksum_headers,
    parse_content_md5,
    parse_copy_source,
    parse_copy_source_range,
    parse_delete_condition,
    parse_http_date,
    parse_object_attributes,
    parse_range,
    parse_write_condition,
    quote_etag,
    response_overrides,
    unquote_etag,
    unsatisfiable_content_range,
)
from jay.storage.api import DeleteCondition, WriteCondition

# --- Range (JAY_SPEC §2.7 + §8.2 item 9) ------------------------------------------------------

SSE_C_KEY = bytes(range(32))
SSE_C = {
    "x-amz-server-side-encryption-customer-algorithm": "AES256",
    "x-amz-server-side-encryption-customer-key": base64.b64encode(SSE_C_KEY).decode(),
    "x-amz-server-side-encryption-customer-key-md5": base64.b64encode(
        hashlib.md5(SSE_C_KEY).digest()
    ).decode(),
}


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        ("bytes=0-4", 10, ByteRange(0, 5)),
        ("bytes=2-2", 10, ByteRange(2, 1)),
        ("bytes=5-100", 10, ByteRange(5, 5)),
        ("bytes=9-9", 10, ByteRange(9, 1)),
        ("bytes=3-", 10, ByteRange(3, 7)),
        ("bytes=0-", 10, ByteRange(0, 10)),
        ("bytes=-3", 10, ByteRange(7, 3)),
        ("bytes=-10", 10, ByteRange(0, 10)),
        ("bytes=-100", 10, ByteRange(0, 10)),
        ("Bytes=0-1", 10, ByteRange(0, 2)),
        (" bytes = 1-2 ", 10, ByteRange(1, 2)),
        ("bytes=0-99999999999999999999999", 10, ByteRange(0, 10)),
        # ignored → whole object, 200
        (None, 10, None),
        ("", 10, None),
        ("bytes=0-1,3-4", 10, None),  # multi-range: 200 full, not 416
        ("bytes=0-1, 20-30", 10, None),
        ("bytes=5-2", 10, None),  # last < first: syntactically invalid
        ("bytes=a-b", 10, None),
        ("bytes=-", 10, None),
        ("bytes=1", 10, None),
        ("bytes 0-1", 10, None),
        ("items=0-1", 10, None),
        ("bytes=--1", 10, None),
        ("bytes=-5", 0, None),  # suffix on an empty object: 200 with empty body
    ],
)
def test_parse_range(header: str | None, size: int, expected: ByteRange | None) -> None:
    assert parse_range(header, size) == expected


@pytest.mark.parametrize(
    ("header", "size"),
    [
        ("bytes=10-", 10),
        ("bytes=10-20", 10),
        ("bytes=0-", 0),
        ("bytes=0-0", 0),
        ("bytes=-0", 10),
        ("bytes=-0", 0),
    ],
)
def test_parse_range_unsatisfiable(header: str, size: int) -> None:
    with pytest.raises(errors.InvalidRange) as info:
        parse_range(header, size)
    assert info.value.details["size"] == size


def test_byte_range_helpers() -> None:
    r = ByteRange(5, 5)
    assert r.end == 9
    assert r.content_range(10) == "bytes 5-9/10"
    assert unsatisfiable_content_range(10) == "bytes */10"


LM = 1704164645.25  # 2024-01-02T03:04:05.25Z
LM_DATE = "Tue, 02 Jan 2024 03:04:05 GMT"
EARLIER = "Mon, 01 Jan 2024 00:00:00 GMT"
LATER = "Wed, 03 Jan 2024 00:00:00 GMT"
ETAG = "5d41402abc4b2a76b9719d911017c592"


@pytest.mark.parametrize(
    ("if_range", "expected"),
    [
        (None, True),
        (f'"{ETAG}"', True),
        ('"other"', False),
        (f'W/"{ETAG}"', False),  # weak tags never match If-Range
        (LM_DATE, True),
        (EARLIER, False),
        (LATER, False),
        ("garbage", False),
    ],
)
def test_if_range(if_range: str | None, expected: bool) -> None:
    assert if_range_allows(if_range, ETAG, LM) is expected


# --- conditionals ----------------------------------------------------------------------------

P, N, F = Condition.PROCEED, Condition.NOT_MODIFIED, Condition.PRECONDITION_FAILED


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, P),
        ({"if-match": f'"{ETAG}"'}, P),
        ({"if-match": ETAG}, P),  # unquoted, as some clients send
        ({"if-match": "*"}, P),
        ({"if-match": f'"x", "{ETAG}"'}, P),
        ({"if-match": '"x"'}, F),
        ({"if-match": f'W/"{ETAG}"'}, F),  # strong comparison
        ({"if-none-match": f'"{ETAG}"'}, N),
        ({"if-none-match": f'W/"{ETAG}"'}, N),  # weak comparison
        ({"if-none-match": "*"}, N),
        ({"if-none-match": '"x"'}, P),
        ({"if-modified-since": EARLIER}, P),
        ({"if-modified-since": LM_DATE}, N),  # same second: not modified
        ({"if-modified-since": LATER}, N),
        ({"if-modified-since": "not a date"}, P),
        ({"if-unmodified-since": LATER}, P),
        ({"if-unmodified-since": LM_DATE}, P),
        ({"if-unmodified-since": EARLIER}, F),
        ({"if-unmodified-since": "nope"}, P),
        # S3: If-Match true + If-Unmodified-Since false → proceed
        ({"if-match": f'"{ETAG}"', "if-unmodified-since": EARLIER}, P),
        ({"if-match": '"x"', "if-unmodified-since": LATER}, F),
        # S3: If-None-Match false + If-Modified-Since true → 304
        ({"if-none-match": f'"{ETAG}"', "if-modified-since": EARLIER}, N),
        # If-None-Match true wins over If-Modified-Since false (RFC 7232 §6 step 4)
        ({"if-none-match": '"x"', "if-modified-since": LATER}, P),
        # 412 beats 304
        ({"if-match": '"x"', "if-none-match": f'"{ETAG}"'}, F),
        ({"if-unmodified-since": EARLIER, "if-modified-since": LATER}, F),
    ],
)
def test_evaluate_conditionals(headers: dict[str, str], expected: Condition) -> None:
    assert evaluate_conditionals(headers, ETAG, LM) is expected


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, P),
        ({"x-amz-copy-source-if-match": f'"{ETAG}"'}, P),
        ({"x-amz-copy-source-if-match": '"x"'}, F),
        ({"x-amz-copy-source-if-none-match": f'"{ETAG}"'}, F),
        ({"x-amz-copy-source-if-none-match": '"x"'}, P),
        ({"x-amz-copy-source-if-modified-since": LATER}, F),
        ({"x-amz-copy-source-if-modified-since": EARLIER}, P),
        ({"x-amz-copy-source-if-unmodified-since": EARLIER}, F),
        (
            {
                "x-amz-copy-source-if-match": f'"{ETAG}"',
                "x-amz-copy-source-if-unmodified-since": EARLIER,
            },
            P,
        ),
        (
            {
                "x-amz-copy-source-if-none-match": '"x"',
                "x-amz-copy-source-if-modified-since": LATER,
            },
            P,
        ),
        # plain If-* headers do not apply to the copy source
        ({"if-match": '"x"'}, P),
    ],
)
def test_copy_source_conditionals(headers: dict[str, str], expected: Condition) -> None:
    assert evaluate_copy_source_conditionals(headers, ETAG, LM) is expected


def test_write_condition() -> None:
    assert parse_write_condition({}) is None
    assert parse_write_condition({"if-none-match": "*"}) == WriteCondition(if_none_match_star=True)
    assert parse_write_condition({"if-match": f'"{ETAG}"'}) == WriteCondition(if_match=ETAG)
    assert parse_write_condition({"if-none-match": '"abc", W/"def"'}) == WriteCondition(
        if_none_match=("abc", "def")
    )


@pytest.mark.parametrize(
    ("headers", "error"),
    [
        ({}, None),
        ({"x-amz-server-side-encryption": "AES256"}, None),
        ({"x-amz-server-side-encryption": "aws:kms"}, None),
        (
            {
                "x-amz-server-side-encryption": "aws:kms",
                "x-amz-server-side-encryption-context": "e30",
            },
            errors.InvalidArgument,
        ),
        ({**SSE_C, "x-amz-server-side-encryption": "aws:kms"}, errors.InvalidArgument),
        ({"x-amz-server-side-encryption": "aws:kms:dsse"}, errors.NotImplementedOperation),
        ({"x-amz-server-side-encryption": "rot13"}, errors.InvalidArgument),
        ({"x-amz-server-side-encryption-aws-kms-key-id": "k"}, errors.InvalidArgument),
        # SSE-C: all three headers or S3's InvalidArgument (the source's are the copy's).
        (
            {"x-amz-server-side-encryption-customer-algorithm": "AES256"},
            errors.InvalidArgument,
        ),
        ({"x-amz-copy-source-server-side-encryption-customer-key": "a2V5"}, None),
        ({**SSE_C, "x-amz-server-side-encryption": "AES256"}, errors.InvalidArgument),
        ({"x-amz-object-lock-mode": "COMPLIANCE"}, errors.InvalidRequest),
        ({"x-amz-object-lock-legal-hold": "ON"}, errors.InvalidRequest),
        ({"x-amz-acl": "private", "x-amz-storage-class": "STANDARD"}, None),
    ],
)
def test_write_features(headers: dict[str, str], error: type[Exception] | None) -> None:
    if error is None:
        check_write_features(headers)
    else:
        with pytest.raises(error):
            check_write_features(headers)


def test_write_features_name_the_encryption() -> None:
    assert check_write_features({}) is None
    assert check_write_features({"x-amz-server-side-encryption": "AES256"}) == (
        RequestedEncryption("SSE-S3")
    )
    kms = check_write_features(
        {
            "x-amz-server-side-encryption": "aws:kms",
            "x-amz-server-side-encryption-aws-kms-key-id": "backups",
            "x-amz-server-side-encryption-context": base64.b64encode(b'{"a": "b"}').decode(),
        }
    )
    assert kms is not None and (kms.mode, kms.kms_key_id) == ("SSE-KMS", "backups")
    assert base64.b64decode(kms.kms_context) == b'{"a": "b"}'
    requested = check_write_features(SSE_C)
    assert requested is not None and requested.mode == "SSE-C"
    assert requested.customer is not None and requested.customer.key == SSE_C_KEY


def test_read_features() -> None:
    assert check_read_features({"range": "bytes=0-1"}) is None
    with pytest.raises(errors.InvalidArgument):
        check_read_features({"x-amz-server-side-encryption-customer-key": "a2V5"})
    customer = check_read_features(SSE_C)
    assert customer is not None and customer.key == SSE_C_KEY
    assert copy_source_customer_key(SSE_C) is None
    source = {k.replace("x-amz-", "x-amz-copy-source-", 1): v for k, v in SSE_C.items()}
    assert copy_source_customer_key(source) == customer


def test_delete_condition() -> None:
    assert parse_delete_condition({"if-none-match": "*"}) is None  # not a delete precondition
    assert parse_delete_condition({"if-match": f'"{ETAG}"'}) == DeleteCondition(if_match=ETAG)
    assert parse_delete_condition({"if-match": "*"}) == DeleteCondition(if_match="*")
    both = parse_delete_condition(
        {
            "x-amz-if-match-last-modified-time": "Tue, 02 Jan 2024 03:04:05 GMT",
            "x-amz-if-match-size": "12",
        }
    )
    assert both == DeleteCondition(last_modified=1704164645.0, size=12)
    for bad in (
        {"x-amz-if-match-size": "-1"},
        {"x-amz-if-match-size": "twelve"},
        {"x-amz-if-match-last-modified-time": "yesterday"},
    ):
        with pytest.raises(errors.InvalidArgument):
            parse_delete_condition(bad)


def test_etag_helpers() -> None:
    assert quote_etag(ETAG) == f'"{ETAG}"'
    assert unquote_etag(f'"{ETAG}"') == ETAG
    assert unquote_etag(f'W/"{ETAG}"') == ETAG
    assert unquote_etag(" abc-2 ") == "abc-2"
    assert etag_list_matches('"a", "b-3"', "b-3", weak=False)
    assert not etag_list_matches('"a", "b-3"', "b", weak=False)
    assert not etag_list_matches("", "b", weak=True)


# --- dates -----------------------------------------------------------------------------------


def test_http_dates() -> None:
    assert format_http_date(LM) == LM_DATE
    assert parse_http_date(LM_DATE) == 1704164645.0
    # RFC 850 and asctime forms are accepted too (RFC 7231 §7.1.1.1)
    assert parse_http_date("Tuesday, 02-Jan-24 03:04:05 GMT") == 1704164645.0
    assert parse_http_date("Tue Jan  2 03:04:05 2024") == 1704164645.0
    assert parse_http_date("Tue, 02 Jan 2024 04:04:05 +0100") == 1704164645.0
    assert parse_http_date("") is None
    assert parse_http_date("yesterday") is None
    assert parse_http_date("Tue, 99 Foo 2024 03:04:05 GMT") is None


# --- copy source (JAY_SPEC §2.10) -----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/src/key", CopySource("src", "key")),
        ("src/key", CopySource("src", "key")),
        ("src/a/b//c", CopySource("src", "a/b//c")),
        ("src/a%2Fb", CopySource("src", "a/b")),
        ("src/a+b", CopySource("src", "a+b")),
        ("src/a%20b%2Bc", CopySource("src", "a b+c")),
        ("src/caf%C3%A9", CopySource("src", "café")),
        ("src/k%3Fx", CopySource("src", "k?x")),
        ("src/key?versionId=null", CopySource("src", "key", "null")),
        (
            "src/key?versionId=0b5a7c3e-1111-4222-8333-444455556666",
            CopySource("src", "key", "0b5a7c3e-1111-4222-8333-444455556666"),
        ),
        ("/src/../x", CopySource("src", "../x")),
    ],
)
def test_parse_copy_source(value: str, expected: CopySource) -> None:
    assert parse_copy_source(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "/",
        "src",
        "/src",
        "src/",
        "/src/",
        "/src/%zz",
        "src/%C3",
        "%2Fsrc/k/",
        "/k",
    ],
)
def test_parse_copy_source_invalid(value: str) -> None:
    with pytest.raises(errors.InvalidArgument) as info:
        parse_copy_source(value)
    assert info.value.resource == value


def test_parse_copy_source_version() -> None:
    with pytest.raises(errors.InvalidArgument) as info:
        parse_copy_source("src/key?versionId=abc")
    assert info.value.details["argument_name"] == "versionId"


@pytest.mark.parametrize(
    ("value", "size", "expected"),
    [
        ("bytes=0-0", 10, ByteRange(0, 1)),
        ("bytes=0-9", 10, ByteRange(0, 10)),
        ("bytes=3-5", 10, ByteRange(3, 3)),
    ],
)
def test_copy_source_range(value: str, size: int, expected: ByteRange) -> None:
    assert parse_copy_source_range(value, size) == expected


@pytest.mark.parametrize(
    ("value", "size"),
    [
        ("bytes=0-10", 10),
        ("bytes=5-4", 10),
        ("bytes=0-0", 0),
        ("bytes=3-", 10),
        ("bytes=-3", 10),
        ("bytes=0-1,2-3", 10),
        ("0-1", 10),
    ],
)
def test_copy_source_range_invalid(value: str, size: int) -> None:
    with pytest.raises(errors.InvalidArgument):
        parse_copy_source_range(value, size)


def test_copy_source_range_messages() -> None:
    with pytest.raises(errors.InvalidArgument, match="source object of size: 10"):
        parse_copy_source_range("bytes=0-10", 10)
    with pytest.raises(errors.InvalidArgument, match="bytes=first-last") as info:
        parse_copy_source_range("0-1", 10)
    assert info.value.details["argument_name"] == "x-amz-copy-source-range"


# --- metadata ----------------------------------------------------------------------------------


def test_extract_user_metadata() -> None:
    headers = [
        ("X-Amz-Meta-Author", "alice"),
        ("x-amz-meta-author", "second value ignored"),
        ("x-amz-meta-Multi", "a\r\nb"),
        ("content-type", "text/plain"),
        ("x-amz-meta-", "nameless"),
        ("x-amz-metadata-directive", "REPLACE"),
    ]
    assert extract_user_metadata(headers) == {
        "x-amz-meta-author": "alice",
        "x-amz-meta-multi": "ab",
    }
    assert extract_user_metadata({"x-amz-meta-a": "1"}) == {"x-amz-meta-a": "1"}


def test_metadata_size_limit() -> None:
    # exactly 2048 bytes of name + value is allowed; one more is not
    ok = {"x-amz-meta-k": "v" * 2047}
    assert extract_user_metadata(ok) == ok
    with pytest.raises(errors.MetadataTooLarge):
        extract_user_metadata({"x-amz-meta-k": "v" * 2048})
    with pytest.raises(errors.MetadataTooLarge):
        extract_user_metadata({f"x-amz-meta-{i}": "é" * 60 for i in range(20)})


def test_metadata_response_headers() -> None:
    stored = {
        "x-amz-meta-foo": "bar",
        "author": "native",
        "content-type": "text/evil",
        "Bad Name": "x",
        "inj\r\nx": "y",
        "v": "line\r\nbreak",
    }
    assert metadata_response_headers(stored) == [
        ("x-amz-meta-foo", "bar"),
        ("x-amz-meta-author", "native"),
        ("x-amz-meta-content-type", "text/evil"),
        ("x-amz-meta-v", "linebreak"),
        ("x-amz-missing-meta", "2"),
    ]
    assert metadata_response_headers({}) == []


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("plain", "plain"),
        ("=?UTF-8?B?SGVsbG8gV29ybGTDqQ==?=", "Hello World\u00e9"),
        ("=?utf-8?q?caf=C3=A9_au_lait?=", "caf\u00e9 au lait"),
        ("x =?ISO-8859-1?Q?caf=E9?= y", "x caf\u00e9 y"),
        ("=?UTF-8?B?w6k=?= =?UTF-8?B?w6k=?=", "\u00e9\u00e9"),  # space between words goes
        ("=?UTF-8?B?YWJj?=", "abc"),
        ("raw \u00e9 =?UTF-8?B?w6k=?=", "raw \u00e9 \u00e9"),
        # Kept exactly as sent: not an encoded-word, or one that does not decode.
        ("a=?UTF-8?B?w6k=?=b", "a=?UTF-8?B?w6k=?=b"),
        ("plain =? x", "plain =? x"),
        ("=?UTF-8?B?###?=", "=?UTF-8?B?###?="),
        ("=?no-such-charset?B?w6k=?=", "=?no-such-charset?B?w6k=?="),
        ("=?zlib_codec?B?w6k=?=", "=?zlib_codec?B?w6k=?="),
        ("=?UTF-8?B?/w==?=", "=?UTF-8?B?/w==?="),
    ],
)
def test_metadata_encoded_words_are_decoded(sent: str, stored: str) -> None:
    assert decode_metadata_value(sent) == stored
    assert extract_user_metadata({"x-amz-meta-v": sent}) == {"x-amz-meta-v": stored}


def test_metadata_beyond_ascii_goes_out_as_an_encoded_word() -> None:
    assert encode_metadata_value("ascii only") == "ascii only"
    assert encode_metadata_value("Hello World\u00e9") == "=?UTF-8?B?SGVsbG8gV29ybGTDqQ==?="
    assert metadata_response_headers({"x-amz-meta-v": "\u4e2d\u6587"}) == [
        ("x-amz-meta-v", "=?UTF-8?B?5Lit5paH?=")
    ]
    # A round trip keeps the value: what goes out decodes to what was stored.
    for value in ("\u00e9t\u00e9", "\U0001f4c8 chart", "a b  c \u00e9"):
        assert decode_metadata_value(encode_metadata_value(value)) == value


def test_response_overrides() -> None:
    params = {
        "response-content-type": "text/html",
        "response-content-disposition": 'attachment; filename="a.txt"',
        "response-cache-control": "no-cache\r\nSet-Cookie: x",
        "prefix": "ignored",
    }
    assert sorted(response_overrides(params)) == [
        ("Cache-Control", "no-cacheSet-Cookie: x"),
        ("Content-Disposition", 'attachment; filename="a.txt"'),
        ("Content-Type", "text/html"),
    ]


# --- digests -----------------------------------------------------------------------------------


def test_content_md5() -> None:
    digest = hashlib.md5(b"hello").digest()
    assert parse_content_md5(base64.b64encode(digest).decode()) == digest
    for bad in ("", "!!!", base64.b64encode(b"short").decode(), digest.hex()):
        with pytest.raises(errors.InvalidDigest):
            parse_content_md5(bad)


def test_checksum_headers() -> None:
    sha = base64.b64encode(hashlib.sha256(b"x").digest()).decode()
    crc = base64.b64encode(b"\x00\x01\x02\x03").decode()
    assert parse_checksum_headers({"x-amz-checksum-sha256": sha}) == {"SHA256": sha}
    assert parse_checksum_headers({"x-amz-checksum-crc32": crc}) == {"CRC32": crc}
    assert parse_checksum_headers({}) == {}
    with pytest.raises(errors.InvalidRequest):
        parse_checksum_headers({"x-amz-checksum-sha256": crc})
    with pytest.raises(errors.InvalidRequest):
        parse_checksum_headers({"x-amz-checksum-sha256": hashlib.sha256(b"x").hexdigest()})
    with pytest.raises(errors.InvalidRequest):
        parse_checksum_headers({"x-amz-checksum-sha256": sha, "x-amz-checksum-crc32": crc})


# --- GetObjectAttributes and CompleteMultipartUpload headers ----------------------------------


def test_parse_object_attributes() -> None:
    assert parse_object_attributes({"x-amz-object-attributes": "ETag,ObjectSize"}) == {
        "ETag",
        "ObjectSize",
    }
    assert parse_object_attributes({"x-amz-object-attributes": " Checksum , ,ObjectParts,"}) == {
        "Checksum",
        "ObjectParts",
    }


@pytest.mark.parametrize("value", [None, "", " , "])
def test_parse_object_attributes_missing_is_invalid_request(value: str | None) -> None:
    headers = {} if value is None else {"x-amz-object-attributes": value}
    with pytest.raises(errors.InvalidRequest) as err:
        parse_object_attributes(headers)
    assert "x-amz-object-attributes" in err.value.message


@pytest.mark.parametrize("value", ["ETag,etag", "Size", "ETag,StorageClass,Owner"])
def test_parse_object_attributes_unknown_name_is_invalid_argument(value: str) -> None:
    with pytest.raises(errors.InvalidArgument) as err:
        parse_object_attributes({"x-amz-object-attributes": value})
    assert err.value.details["argument_name"] == "x-amz-object-attributes"
    assert err.value.details["argument_value"] == value.split(",")[-1]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, (1000, 0)),
        ({"x-amz-max-parts": "2", "x-amz-part-number-marker": "3"}, (2, 3)),
        ({"x-amz-max-parts": "0"}, (0, 0)),
        ({"x-amz-max-parts": "5000"}, (1000, 0)),
        # S3 ignores values that are not non-negative integers.
        ({"x-amz-max-parts": "-1", "x-amz-part-number-marker": "abc"}, (1000, 0)),
        ({"x-amz-max-parts": "\u00b2"}, (1000, 0)),
    ],
)
def test_parse_attribute_parts_paging(headers: dict[str, str], expected: tuple[int, int]) -> None:
    assert parse_attribute_parts_paging(headers) == expected


def test_parse_complete_checksum_headers() -> None:
    assert parse_complete_checksum_headers({}) == ({}, "")
    assert parse_complete_checksum_headers(
        {"x-amz-checksum-crc32": " AAAAAA==-3 ", "x-amz-checksum-type": "composite"}
    ) == ({"CRC32": "AAAAAA==-3"}, "COMPOSITE")
    assert parse_complete_checksum_headers({"x-amz-checksum-crc32": "AAAAAA=="}) == (
        {"CRC32": "AAAAAA=="},
        "",
    )
    # Neither a digest nor a digest and "-N": InvalidRequest, as S3 answers (not BadDigest).
    for bad in ("bad", "AAAAAA", "AAAAAAAA", "AAAAAA==-", "AAAAAA==-0", "AAAAAA==-x", "-3"):
        with pytest.raises(errors.InvalidRequest):
            parse_complete_checksum_headers({"x-amz-checksum-crc32": bad})
    with pytest.raises(errors.InvalidRequest):
        parse_complete_checksum_headers(
            {"x-amz-checksum-crc32": "AAAAAA==", "x-amz-checksum-sha1": "x"}
        )
    with pytest.raises(errors.InvalidRequest):
        parse_complete_checksum_headers({"x-amz-checksum-type": "PARTIAL"})
