"""jay.native.codec against the §1.14 vectors, round trips and the decoder's tolerance rules."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jay.native import codec
from jay.native.codec import (
    BucketEntry,
    BucketInfo,
    BucketRequest,
    CodecError,
    CompleteMultipartUploadRequest,
    CompleteMultipartUploadResponse,
    CreateMultipartUploadRequest,
    CreateMultipartUploadResponse,
    Empty,
    ErrorInfo,
    HandshakeStatus,
    ListBucketsResponse,
    ListObjectsRequest,
    ListObjectsResponse,
    ListPartsResponse,
    ObjectEntry,
    ObjectInfo,
    ObjectRequest,
    Op,
    PartInfo,
    PutObjectRequest,
    PutResult,
    Status,
    UploadPartRequest,
    UploadRequest,
)
from tests.native import vectors as v

T = "2024-01-02T03:04:05Z"
HELLO_INFO = ObjectInfo(
    content_type="text/plain",
    size=5,
    etag=v.HELLO_MD5,
    checksum_sha256=v.HELLO_SHA256,
    last_modified=T,
    metadata={"author": "ann"},
)


def split_frame(frame: bytes) -> tuple[codec.FrameHeader, bytes, bytes]:
    header = codec.decode_header(frame[: codec.HEADER_SIZE])
    meta_end = codec.HEADER_SIZE + header.meta_len
    return header, frame[codec.HEADER_SIZE : meta_end], frame[meta_end:]


# --- §1.14 vectors ---------------------------------------------------------------------------


def test_vector_a_handshake() -> None:
    assert codec.encode_client_handshake("tok-1", "s3cr3t") == v.HANDSHAKE_CLIENT
    assert codec.encode_server_handshake(HandshakeStatus.OK) == v.HANDSHAKE_OK
    assert codec.encode_server_handshake(HandshakeStatus.AUTH_FAILED) == v.HANDSHAKE_AUTH_FAILED
    assert (
        codec.encode_server_handshake(HandshakeStatus.VERSION_MISMATCH) == v.HANDSHAKE_BAD_PREAMBLE
    )
    preamble = codec.decode_client_preamble(v.HANDSHAKE_CLIENT[:8])
    assert preamble == codec.ClientPreamble(version=1, flags=0, auth_len=12)
    assert codec.split_credentials(v.HANDSHAKE_CLIENT[8:]) == ("tok-1", "s3cr3t")
    assert codec.decode_server_handshake(v.HANDSHAKE_AUTH_FAILED) == 1


def test_vector_b_put_object() -> None:
    request = PutObjectRequest(
        bucket="photos", key="a.txt", content_type="text/plain", metadata={"author": "ann"}
    )
    assert codec.encode_frame(Op.PUT_OBJECT, 7, request.encode(), 5) + b"hello" == v.PUT_REQUEST
    header, meta, data = split_frame(v.PUT_REQUEST)
    assert header == codec.FrameHeader(code=0x10, stream_id=7, meta_len=42, data_len=5)
    assert codec.decode_request(Op.PUT_OBJECT, meta) == request
    assert data == b"hello"

    result = PutResult(etag=hashlib.md5(b"hello").hexdigest(), checksum_sha256=v.HELLO_SHA256)
    assert codec.encode_response(7, result) == v.PUT_RESPONSE
    _, meta, _ = split_frame(v.PUT_RESPONSE)
    assert codec.decode_response(Op.PUT_OBJECT, meta) == result


def test_vector_c_get_missing_key() -> None:
    request = ObjectRequest(bucket="photos", key="a.txt")
    assert codec.encode_frame(Op.GET_OBJECT, 9, request.encode()) == v.GET_REQUEST
    assert codec.decode_request(Op.GET_OBJECT, split_frame(v.GET_REQUEST)[1]) == request
    frame = codec.encode_error_frame(Status.NOT_FOUND, 9, "object not found", "NoSuchKey")
    assert frame == v.NO_SUCH_KEY_RESPONSE
    header, meta, data = split_frame(v.NO_SUCH_KEY_RESPONSE)
    assert (header.code, header.stream_id, header.data_len, data) == (1, 9, 0, b"")
    assert ErrorInfo.decode(meta) == ErrorInfo(message="object not found", code="NoSuchKey")


def test_vector_d_get_object_success() -> None:
    assert codec.encode_response(9, HELLO_INFO, data_len=5) + b"hello" == v.GET_RESPONSE
    header, meta, data = split_frame(v.GET_RESPONSE)
    assert (header.meta_len, header.data_len) == (157, 5)
    assert codec.decode_response(Op.GET_OBJECT, meta) == HELLO_INFO
    assert data == b"hello"


def test_vector_e_ping() -> None:
    assert codec.encode_frame(Op.PING, 1) == v.PING_REQUEST
    assert codec.encode_response(1) == v.PING_RESPONSE
    assert codec.encode_response(1, Empty()) == v.PING_RESPONSE


def test_vector_f_list_objects() -> None:
    request = ListObjectsRequest(
        bucket="photos", prefix="", delimiter="/", start_after="", max_keys=2
    )
    assert codec.encode_frame(Op.LIST_OBJECTS, 0, request.encode()) == v.LIST_REQUEST
    assert codec.decode_request(Op.LIST_OBJECTS, split_frame(v.LIST_REQUEST)[1]) == request

    entry = ObjectEntry(
        key="a.txt",
        size=5,
        etag=v.HELLO_MD5,
        checksum_sha256=v.HELLO_SHA256,
        last_modified=T,
        content_type="text/plain",
    )
    response = ListObjectsResponse(
        objects=(entry,), common_prefixes=("docs/",), is_truncated=True, next_start_after="a.txt"
    )
    assert codec.encode_response(0, response) == v.LIST_RESPONSE
    _, meta, _ = split_frame(v.LIST_RESPONSE)
    assert codec.decode_response(Op.LIST_OBJECTS, meta) == response
    # The page-size accounting (what the server measures per entry) adds up to the meta length.
    encoded_entry = codec.ObjectEntryEncoder().encode(
        "a.txt", 5, v.HELLO_MD5, v.HELLO_SHA256, T, "text/plain"
    )
    assert encoded_entry in meta
    assert ListObjectsResponse.BASE_SIZE + len(encoded_entry) + codec.common_prefix_size(
        "docs/"
    ) + len(b"a.txt") == len(meta)


def test_vector_g_upload_part() -> None:
    request = UploadPartRequest(
        bucket="photos", key="big.bin", upload_id=v.UPLOAD_ID, part_number=2
    )
    frame = codec.encode_frame(Op.UPLOAD_PART, 0, request.encode(), 5) + b"world"
    assert frame == v.UPLOAD_PART_REQUEST
    assert codec.decode_request(Op.UPLOAD_PART, split_frame(frame)[1]) == request


def test_vector_h_complete_multipart_upload() -> None:
    request = CompleteMultipartUploadRequest(
        bucket="photos", key="big.bin", upload_id=v.UPLOAD_ID, part_numbers=(1, 2)
    )
    assert codec.encode_frame(Op.COMPLETE_MULTIPART_UPLOAD, 0, request.encode()) == (
        v.COMPLETE_REQUEST
    )
    meta = split_frame(v.COMPLETE_REQUEST)[1]
    assert codec.decode_request(Op.COMPLETE_MULTIPART_UPLOAD, meta) == request

    response = CompleteMultipartUploadResponse(
        etag="e09e4fd6265b36115fe3db32df945d84-2",
        checksum_sha256=v.HELLO_WORLD_SHA256,
        size=11,
    )
    assert codec.encode_response(0, response) == v.COMPLETE_RESPONSE
    meta = split_frame(v.COMPLETE_RESPONSE)[1]
    assert codec.decode_response(Op.COMPLETE_MULTIPART_UPLOAD, meta) == response


def test_vector_i_create_bucket_response() -> None:
    info = BucketInfo(
        bucket_id="6ba7b810-9dad-41d1-80b4-00c04fd430c8",
        name="photos",
        created_at=codec.format_wire_time(1704164645.9),
        visibility="private",
    )
    assert codec.encode_response(0, info) == v.CREATE_BUCKET_RESPONSE
    meta = split_frame(v.CREATE_BUCKET_RESPONSE)[1]
    assert codec.decode_response(Op.CREATE_BUCKET, meta) == info
    assert codec.decode_response(Op.HEAD_BUCKET, meta) == info


def test_vector_j_rate_limited() -> None:
    frame = codec.encode_error_frame(
        Status.BAD_REQUEST, 0, codec.MESSAGE_RATE_LIMITED, codec.CODE_RATE_LIMITED
    )
    assert frame == v.RATE_LIMITED_RESPONSE


# --- handshake edge cases --------------------------------------------------------------------


@pytest.mark.parametrize(
    "preamble",
    [
        b"JAX\x00\x01\x00\x00\x01",  # wrong magic
        b"JAY\x00\x02\x00\x00\x01",  # version 2
        b"JAY\x00\x00\x00\x00\x01",  # version 0
        b"JAY\x00\x01\x00\x00\x00",  # auth_len 0
        b"JAY\x00\x01\x00\x00",  # short
    ],
)
def test_bad_preamble_is_rejected(preamble: bytes) -> None:
    with pytest.raises(CodecError):
        codec.decode_client_preamble(preamble)


def test_preamble_flags_are_ignored() -> None:
    assert codec.decode_client_preamble(b"JAY\x00\x01\x7f\x00\x03").flags == 0x7F


def test_credentials_split_at_first_colon() -> None:
    assert codec.split_credentials(b"id:a:b:") == ("id", "a:b:")
    assert codec.split_credentials(b":") == ("", "")
    assert codec.split_credentials(b"no-colon") is None


def test_client_checks_only_the_magic_of_the_reply() -> None:
    assert codec.decode_server_handshake(b"JAY\x00\x09\x00\x00\x00") == 0
    with pytest.raises(CodecError):
        codec.decode_server_handshake(b"JAZ\x00\x01\x00\x00\x00")


def test_credentials_too_long_are_refused() -> None:
    with pytest.raises(CodecError):
        codec.encode_client_handshake("t", "x" * 65534)
    assert len(codec.encode_client_handshake("t", "x" * 65533)) == 8 + 65535


# --- header ------------------------------------------------------------------------------------


def test_header_round_trip_and_bounds() -> None:
    raw = codec.encode_header(0x21, 0xFFFFFFFF, 0xFFFFFFFF, codec.MAX_DATA_LEN)
    assert len(raw) == 17
    assert codec.decode_header(raw) == codec.FrameHeader(
        code=0x21, stream_id=0xFFFFFFFF, meta_len=0xFFFFFFFF, data_len=(1 << 63) - 1
    )
    with pytest.raises(CodecError):
        codec.encode_header(0x21, 0, 0, 1 << 63)
    with pytest.raises(CodecError):
        codec.encode_header(0x100, 0, 0, 0)
    with pytest.raises(CodecError):
        codec.encode_header(1, 1 << 32, 0, 0)
    with pytest.raises(CodecError):
        codec.encode_error_frame(Status.OK, 0, "m", "c")


# --- primitives --------------------------------------------------------------------------------


def test_string_length_limit_is_enforced_not_wrapped() -> None:
    ok = BucketRequest("b" * 65535).encode()
    assert ok[:2] == b"\xff\xff" and len(ok) == 65537
    with pytest.raises(CodecError) as info:
        BucketRequest("b" * 65536).encode()
    assert info.value.status == Status.INTERNAL
    # Length counts UTF-8 bytes, not characters.
    with pytest.raises(CodecError):
        ObjectRequest(bucket="b", key="é" * 32768).encode()


def test_count_limit_is_enforced() -> None:
    assert len(ListObjectsResponse(common_prefixes=("",) * 65535).encode()) == 2 + 2 + 65535 * 2 + 3
    with pytest.raises(CodecError):
        ListObjectsResponse(common_prefixes=("",) * 65536).encode()


def test_numbers_out_of_range_are_refused() -> None:
    with pytest.raises(CodecError):
        ListObjectsRequest(bucket="b", max_keys=1 << 31).encode()
    with pytest.raises(CodecError):
        CompleteMultipartUploadRequest(
            bucket="b", key="k", upload_id="u", part_numbers=(-1,)
        ).encode()
    with pytest.raises(CodecError):
        CompleteMultipartUploadResponse(etag="", checksum_sha256="", size=1 << 63).encode()


def test_empty_map_and_lists_are_written_as_zero_counts() -> None:
    info = ObjectInfo(content_type="", size=0, etag="", checksum_sha256="", last_modified="")
    assert info.encode().endswith(b"\x00\x00")  # §1.15 item 4: the map is always present
    assert ListObjectsResponse().encode() == b"\x00\x00" + b"\x00\x00" + b"\x00" + b"\x00\x00"
    assert ListBucketsResponse().encode() == b"\x00\x00"
    assert Empty().encode() == b""


def test_decoder_tolerances() -> None:
    # Duplicate map keys: last wins. Any non-zero bool byte is true.
    meta = (
        b"\x00\x01b\x00\x01k\x00\x00" + b"\x00\x02" + b"\x00\x01x\x00\x011" + b"\x00\x01x\x00\x012"
    )
    assert PutObjectRequest.decode(meta).metadata == {"x": "2"}
    listing = b"\x00\x00" + b"\x00\x00" + b"\x7f" + b"\x00\x00"
    assert ListObjectsResponse.decode(listing).is_truncated is True
    # Signed reads: part number FFFFFFFF is -1, max_keys may be negative.
    part = UploadPartRequest.decode(b"\x00\x01b\x00\x01k\x00\x01u\xff\xff\xff\xff")
    assert part.part_number == -1
    # Unsigned reads for Complete's list.
    complete = CompleteMultipartUploadRequest.decode(
        b"\x00\x01b\x00\x01k\x00\x01u\x00\x01\xff\xff\xff\xff"
    )
    assert complete.part_numbers == (0xFFFFFFFF,)
    # ListBuckets and Ping ignore whatever meta they get.
    assert codec.decode_request(Op.LIST_BUCKETS, b"garbage") == Empty()
    assert codec.decode_request(Op.PING, b"\x01") == Empty()


VECTOR_METAS = [
    (Op.PUT_OBJECT, split_frame(v.PUT_REQUEST)[1], codec.decode_request),
    (Op.GET_OBJECT, split_frame(v.GET_REQUEST)[1], codec.decode_request),
    (Op.LIST_OBJECTS, split_frame(v.LIST_REQUEST)[1], codec.decode_request),
    (Op.UPLOAD_PART, split_frame(v.UPLOAD_PART_REQUEST)[1], codec.decode_request),
    (Op.COMPLETE_MULTIPART_UPLOAD, split_frame(v.COMPLETE_REQUEST)[1], codec.decode_request),
    (Op.PUT_OBJECT, split_frame(v.PUT_RESPONSE)[1], codec.decode_response),
    (Op.GET_OBJECT, split_frame(v.GET_RESPONSE)[1], codec.decode_response),
    (Op.LIST_OBJECTS, split_frame(v.LIST_RESPONSE)[1], codec.decode_response),
    (Op.COMPLETE_MULTIPART_UPLOAD, split_frame(v.COMPLETE_RESPONSE)[1], codec.decode_response),
    (Op.CREATE_BUCKET, split_frame(v.CREATE_BUCKET_RESPONSE)[1], codec.decode_response),
]


@pytest.mark.parametrize(("op", "meta", "decode"), VECTOR_METAS)
def test_every_truncation_fails_and_trailing_bytes_are_ignored(op, meta, decode) -> None:  # type: ignore[no-untyped-def]
    whole = decode(op, meta)
    for cut in range(len(meta)):
        with pytest.raises(CodecError) as info:
            decode(op, meta[:cut])
        assert (info.value.status, info.value.message, info.value.code) == (
            Status.BAD_REQUEST,
            "invalid request",
            "InvalidArgument",
        )
    assert decode(op, meta + b"\x00trailing") == whole


def test_error_info_lenient_decoding() -> None:
    assert codec.decode_error_info_lenient(b"\x00\x05") == ErrorInfo("unknown error", "")
    assert codec.decode_error_info_lenient(b"\x00\x01m\x00\x01c") == ErrorInfo("m", "c")


def test_raw_bytes_survive_as_escaped_strings() -> None:
    # §1.12: next_start_after may end in the byte FF, which is not UTF-8.
    response = ListObjectsResponse(next_start_after="docs/\udcff")
    assert response.encode().endswith(b"\x00\x06docs/\xff")
    assert ListObjectsResponse.decode(response.encode()) == response
    with pytest.raises(CodecError):
        BucketRequest("\ud800").encode()  # a surrogate that is not an escaped byte


@given(st.binary(max_size=300))
def test_any_string_bytes_round_trip(raw: bytes) -> None:
    meta = len(raw).to_bytes(2, "big") + raw
    assert BucketRequest.decode(meta).encode() == meta


def test_wire_time() -> None:
    assert codec.format_wire_time(1704164645) == T
    assert codec.format_wire_time(1704164645.999) == T
    # Cached per whole second: the next second and times before 1970 are their own.
    assert codec.format_wire_time(1704164646.0) == "2024-01-02T03:04:06Z"
    assert codec.format_wire_time(-0.5) == "1969-12-31T23:59:59Z"
    assert codec.parse_wire_time(T) == 1704164645.0
    with pytest.raises(CodecError):
        codec.parse_wire_time("2024-01-02 03:04:05")


def test_object_entry_encoder_keeps_the_writer_limits() -> None:
    encode = codec.ObjectEntryEncoder().encode
    fine = ("k", 1, "e", "s", T, "t")
    assert encode(*fine) == ListObjectsResponse(objects=(ObjectEntry(
        key="k", size=1, etag="e", checksum_sha256="s", last_modified=T, content_type="t"
    ),)).encode()[2:-5]  # fmt: skip
    assert encode("k", -(1 << 63), "e", "s", T, "t")[3:11] == b"\x80" + b"\x00" * 7
    for bad in (
        ("\ud800", 1, "e", "s", T, "t"),
        ("k" * 65536, 1, "e", "s", T, "t"),
        ("k", 1, "e" * 65536, "s", T, "t"),
        ("k", 1, "e", "s" * 65536, T, "t"),
        ("k", 1, "e", "s", T + "x" * 65536, "t"),
        ("k", 1, "e", "s", T, "é" * 32768),
        ("k", 1, "e", "s", T, "\ud800"),
        ("k", 1 << 63, "e", "s", T, "t"),
    ):
        with pytest.raises(CodecError) as info:
            encode(*bad)
        assert info.value.status == Status.INTERNAL


entry_fields = st.tuples(
    st.text(max_size=20),
    st.integers(-(1 << 63), (1 << 63) - 1),
    st.text(max_size=5),
    st.text(max_size=5),
    st.sampled_from([T, "2024-01-02T03:04:06Z", ""]),  # repeated, as the encoder caches them
    st.sampled_from(["text/plain", "", "é"]),
)


@given(
    st.lists(entry_fields, max_size=6),
    st.lists(st.text(max_size=5), max_size=3),
    st.booleans(),
    st.text(max_size=5),
)
def test_encoded_list_response_is_the_value_encoding(
    entries: list[tuple[str, int, str, str, str, str]],
    prefixes: list[str],
    is_truncated: bool,
    next_start_after: str,
) -> None:
    value = ListObjectsResponse(
        objects=tuple(
            ObjectEntry(
                key=key,
                size=size,
                etag=etag,
                checksum_sha256=sha256,
                last_modified=modified,
                content_type=content_type,
            )
            for key, size, etag, sha256, modified, content_type in entries
        ),
        common_prefixes=tuple(prefixes),
        is_truncated=is_truncated,
        next_start_after=next_start_after,
    )
    encoder = codec.ObjectEntryEncoder()
    prepared = codec.EncodedListObjectsResponse(
        object_records=tuple(encoder.encode(*entry) for entry in entries),
        common_prefixes=tuple(prefixes),
        is_truncated=is_truncated,
        next_start_after=next_start_after,
    )
    assert prepared.encode() == value.encode()
    assert prepared.decoded() == value


def test_op_tables_cover_every_op() -> None:
    assert set(codec.REQUEST_TYPES) == set(Op) == set(codec.RESPONSE_TYPES)
    assert codec.known_op(0x14) is Op.LIST_OBJECTS
    assert codec.known_op(0x99) is None


# --- hypothesis round trips for every op's request and response meta ------------------------

texts = st.text(max_size=40) | st.sampled_from(["", "photos", "a/b/c.txt", "ümlaut", "\udcff"])
u32 = st.integers(0, 0xFFFFFFFF)
i32 = st.integers(-(1 << 31), (1 << 31) - 1)
i64 = st.integers(-(1 << 63), (1 << 63) - 1)
maps = st.dictionaries(texts, texts, max_size=5)

META_VALUES = st.one_of(
    st.builds(Empty),
    st.builds(BucketRequest, bucket=texts),
    st.builds(ObjectRequest, bucket=texts, key=texts),
    st.builds(PutObjectRequest, bucket=texts, key=texts, content_type=texts, metadata=maps),
    st.builds(
        ListObjectsRequest,
        bucket=texts,
        prefix=texts,
        delimiter=texts,
        start_after=texts,
        max_keys=i32,
    ),
    st.builds(CreateMultipartUploadRequest, bucket=texts, key=texts, content_type=texts),
    st.builds(UploadPartRequest, bucket=texts, key=texts, upload_id=texts, part_number=i32),
    st.builds(
        CompleteMultipartUploadRequest,
        bucket=texts,
        key=texts,
        upload_id=texts,
        part_numbers=st.lists(u32, max_size=10).map(tuple),
    ),
    st.builds(UploadRequest, bucket=texts, key=texts, upload_id=texts),
    st.builds(BucketInfo, bucket_id=texts, name=texts, created_at=texts, visibility=texts),
    st.builds(
        ListBucketsResponse,
        st.lists(st.builds(BucketEntry, name=texts, created_at=texts), max_size=5).map(tuple),
    ),
    st.builds(PutResult, etag=texts, checksum_sha256=texts),
    st.builds(
        ObjectInfo,
        content_type=texts,
        size=i64,
        etag=texts,
        checksum_sha256=texts,
        last_modified=texts,
        metadata=maps,
    ),
    st.builds(
        ListObjectsResponse,
        objects=st.lists(
            st.builds(
                ObjectEntry,
                key=texts,
                size=i64,
                etag=texts,
                checksum_sha256=texts,
                last_modified=texts,
                content_type=texts,
            ),
            max_size=5,
        ).map(tuple),
        common_prefixes=st.lists(texts, max_size=5).map(tuple),
        is_truncated=st.booleans(),
        next_start_after=texts,
    ),
    st.builds(CreateMultipartUploadResponse, upload_id=texts),
    st.builds(CompleteMultipartUploadResponse, etag=texts, checksum_sha256=texts, size=i64),
    st.builds(
        ListPartsResponse,
        st.lists(
            st.builds(PartInfo, part_number=i32, size=i64, etag=texts, checksum_sha256=texts),
            max_size=5,
        ).map(tuple),
    ),
    st.builds(ErrorInfo, message=texts, code=texts),
)


@given(META_VALUES)
def test_decode_of_encode_is_identity(value: codec.MetaValue) -> None:
    meta = value.encode()
    assert type(value).decode(meta) == value  # type: ignore[attr-defined]
    # The generic per-op tables agree with the type's own decoder.
    for op, request_type in codec.REQUEST_TYPES.items():
        if request_type is type(value):
            assert codec.decode_request(op, meta) == value
    for op, response_type in codec.RESPONSE_TYPES.items():
        if response_type is type(value):
            assert codec.decode_response(op, meta) == value
