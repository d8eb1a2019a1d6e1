"""The codec's per-request shortcuts give the same bytes and the same errors as the general
``MetaWriter`` path they stand in for."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from jay.native import codec
from jay.native.codec import CodecError, Op


def written(
    content_type: str,
    size: int,
    etag: str,
    checksum_sha256: str,
    last_modified: str,
    metadata: Mapping[str, str],
) -> bytes:
    w = codec.MetaWriter()
    w.text(content_type)
    w.i64(size)
    w.text(etag)
    w.text(checksum_sha256)
    w.text(last_modified)
    w.mapping(metadata)
    return w.getvalue()


OBJECT_INFOS = [
    ("application/octet-stream", 1024, "d41d8cd98f00b204e9800998ecf8427e", "a" * 64, "2024-01-02T03:04:05Z", {}),
    ("text/plain; charset=ü", 0, "abc-3", "", "", {"k": "v", "ü": "x"}),
    ("", (1 << 63) - 1, "", "", "", {}),
    ("", -(1 << 63), "e", "s", "t", {}),
    (codec.decode_text(b"\xff\xfe"), 5, "x" * 65535, "", "", {}),
]  # fmt: skip


@pytest.mark.parametrize("fields", OBJECT_INFOS)
def test_encode_object_info_is_the_writer_layout(fields: tuple) -> None:  # type: ignore[type-arg]
    encoded = codec.encode_object_info(*fields)
    assert encoded == written(*fields)
    content_type, size, etag, checksum, last_modified, metadata = fields
    info = codec.ObjectInfo(
        content_type=content_type,
        size=size,
        etag=etag,
        checksum_sha256=checksum,
        last_modified=last_modified,
        metadata=metadata,
    )
    assert info.encode() == encoded
    assert codec.ObjectInfo.decode(encoded) == info


REFUSED = [
    ("\ud800", 1, "", "", "", {}),  # a surrogate that is not an escaped byte
    ("a" * 65536, 1, "", "", "", {}),
    ("", 1 << 63, "", "", "", {}),
    ("", 1, "\ud800", "a" * 65536, "", {}),  # the first bad field is the one named
    ("", 1, "", "", "a" * 65536, {}),
    ("", 1, "", "", "", {"k": "\ud800"}),
]


@pytest.mark.parametrize("fields", REFUSED)
def test_encode_object_info_refuses_as_the_writer_does(fields: tuple) -> None:  # type: ignore[type-arg]
    with pytest.raises(CodecError) as fast:
        codec.encode_object_info(*fields)
    with pytest.raises(CodecError) as general:
        written(*fields)
    assert (fast.value.status, fast.value.message, fast.value.code, str(fast.value)) == (
        general.value.status,
        general.value.message,
        general.value.code,
        str(general.value),
    )


def test_unpack_header_matches_decode_header() -> None:
    raw = codec.encode_header(Op.GET_OBJECT, 0xFFFFFFFF, 12, (1 << 63) - 1)
    header = codec.decode_header(raw)
    assert codec.unpack_header(raw) == (
        header.code,
        header.stream_id,
        header.meta_len,
        header.data_len,
    )
    with pytest.raises(CodecError):
        codec.unpack_header(raw[:-1])


def test_known_op_is_the_enum_member_or_none() -> None:
    for op in Op:
        assert codec.known_op(int(op)) is op
    assert codec.known_op(0x7E) is None and codec.known_op(-1) is None


def test_text_writer_refuses_like_blob() -> None:
    w = codec.MetaWriter()
    w.text(codec.decode_text(b"\xff"))
    assert w.getvalue() == b"\x00\x01\xff"
    with pytest.raises(CodecError, match="exceeds 65535"):
        w.text("a" * 65536)
    with pytest.raises(CodecError, match="surrogate"):
        w.text("\ud800")
