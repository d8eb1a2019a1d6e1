"""The segmented AEAD format of jay.storage.encryption, without sockets or a reactor."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jay.errors import AccessDenied, InvalidArgument, InvalidRequest
from jay.storage import encryption as enc

KEY = bytes(range(32))
SEG = enc.SEGMENT_BYTES


def _stored(plaintext: bytes, part_number: int = 0, pieces: int = 1) -> bytes:
    encryptor = enc.StreamEncryptor(KEY, part_number)
    out = bytearray()
    step = max(1, len(plaintext) // pieces)
    for i in range(0, len(plaintext), step):
        out += encryptor.feed(plaintext[i : i + step])
    return bytes(out + encryptor.finish())


def _read(
    path_fd: int, size: int, parts: tuple[int, ...], numbers: tuple[int, ...], s: int, n: int
) -> bytes:
    return b"".join(enc.read_plaintext(path_fd, size, parts, numbers, KEY, s, n))


def _file(tmp_path, data: bytes) -> int:  # type: ignore[no-untyped-def]
    path = tmp_path / f"f{os.urandom(4).hex()}"
    path.write_bytes(data)
    return os.open(path, os.O_RDONLY)


@pytest.mark.parametrize("size", [0, 1, SEG - 1, SEG, SEG + 1, 3 * SEG, 3 * SEG + 17])
def test_round_trip_and_size(tmp_path, size: int) -> None:  # type: ignore[no-untyped-def]
    plaintext = os.urandom(size)
    stored = _stored(plaintext, pieces=7)
    assert len(stored) == enc.stored_size(size)
    assert size < 16 or plaintext not in stored
    fd = _file(tmp_path, stored)
    try:
        assert _read(fd, size, (), (), 0, size) == plaintext
    finally:
        os.close(fd)


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 3 * SEG + 5), min_size=1, max_size=4),
    start=st.integers(0, 12 * SEG),
    length=st.integers(0, 4 * SEG),
)
def test_ranges_of_multipart_objects(tmp_path_factory, sizes, start, length) -> None:  # type: ignore[no-untyped-def]
    numbers = tuple(range(3, 3 + 2 * len(sizes), 2))  # upload part numbers, not 1..N
    parts = [os.urandom(n) for n in sizes]
    stored = b"".join(_stored(p, number) for p, number in zip(parts, numbers, strict=True))
    whole = b"".join(parts)
    assert len(stored) == enc.stored_size_of(len(whole), tuple(sizes))
    start = min(start, len(whole))
    length = min(length, len(whole) - start)
    fd = _file(tmp_path_factory.mktemp("r"), stored)
    try:
        got = _read(fd, len(whole), tuple(sizes), numbers, start, length)
    finally:
        os.close(fd)
    assert got == whole[start : start + length]


def test_ranged_read_touches_only_needed_segments() -> None:
    plan = list(enc.plan_segments(10 * SEG, (), (), 3 * SEG + 10, SEG))
    assert [r.index for r in plan] == [3, 4]
    assert plan[0].offset == enc.HEADER_BYTES + 3 * (SEG + enc.TAG_BYTES)
    assert (plan[0].skip, plan[0].take, plan[1].skip, plan[1].take) == (10, SEG - 10, 0, 10)


@pytest.mark.parametrize("where", ["header", "segment", "tag"])
def test_tamper_is_detected(tmp_path, where: str) -> None:  # type: ignore[no-untyped-def]
    plaintext = os.urandom(2 * SEG + 3)
    stored = bytearray(_stored(plaintext))
    position = {"header": 2, "segment": enc.HEADER_BYTES + SEG + 40, "tag": len(stored) - 1}
    stored[position[where]] ^= 1
    fd = _file(tmp_path, bytes(stored))
    try:
        with pytest.raises(enc.SegmentCorrupt):
            _read(fd, len(plaintext), (), (), 0, len(plaintext))
    finally:
        os.close(fd)


def test_reordered_segments_and_swapped_parts_fail(tmp_path) -> None:  # type: ignore[no-untyped-def]
    plaintext = os.urandom(3 * SEG)
    stored = _stored(plaintext)
    unit = SEG + enc.TAG_BYTES
    h = enc.HEADER_BYTES
    swapped = (
        stored[:h] + stored[h + unit : h + 2 * unit] + stored[h : h + unit] + stored[h + 2 * unit :]
    )
    fd = _file(tmp_path, swapped)
    try:
        with pytest.raises(enc.SegmentCorrupt):
            _read(fd, len(plaintext), (), (), 0, SEG)
    finally:
        os.close(fd)
    # Two parts stored in each other's place: each part's number is bound into its key.
    a, b = os.urandom(100), os.urandom(100)
    fd = _file(tmp_path, _stored(b, 2) + _stored(a, 1))
    try:
        with pytest.raises(enc.SegmentCorrupt):
            _read(fd, 200, (100, 100), (1, 2), 0, 200)
    finally:
        os.close(fd)


def test_truncation_at_a_segment_boundary_fails(tmp_path) -> None:  # type: ignore[no-untyped-def]
    plaintext = os.urandom(2 * SEG)
    stored = _stored(plaintext)
    # Claim the object is one segment long: that segment was not sealed as final.
    fd = _file(tmp_path, stored[: enc.stored_size(SEG)])
    try:
        with pytest.raises(enc.SegmentCorrupt):
            _read(fd, SEG, (), (), 0, SEG)
    finally:
        os.close(fd)


def test_another_objects_key_fails(tmp_path) -> None:  # type: ignore[no-untyped-def]
    stored = _stored(b"secret")
    fd = _file(tmp_path, stored)
    try:
        with pytest.raises(enc.SegmentCorrupt):
            b"".join(enc.read_plaintext(fd, 6, (), (), bytes(32), 0, 6))
    finally:
        os.close(fd)


def test_same_plaintext_encrypts_differently() -> None:
    assert _stored(b"x" * 100) != _stored(b"x" * 100)


def _customer(key: bytes) -> enc.CustomerKey:
    md5 = base64.b64encode(hashlib.md5(key).digest()).decode()
    parsed = enc.parse_customer_key("AES256", base64.b64encode(key).decode(), md5)
    assert parsed is not None
    return parsed


def test_customer_key_verifier_and_record_hold_no_key() -> None:
    key = os.urandom(32)
    sealing = enc.seal_with_customer_key(_customer(key))
    text = sealing.record.to_json()
    assert base64.b64encode(key).decode() not in text and key.hex() not in text
    record = enc.parse_record(text)
    assert enc.key_for_record(record, _customer(key), None) == sealing.data_key
    with pytest.raises(AccessDenied):
        enc.key_for_record(record, _customer(os.urandom(32)), None)
    with pytest.raises(InvalidRequest):
        enc.key_for_record(record, None, None)
    assert "key=" not in repr(_customer(key)) and key.hex() not in repr(_customer(key))


def test_customer_key_header_errors() -> None:
    key = base64.b64encode(os.urandom(32)).decode()
    md5 = base64.b64encode(hashlib.md5(base64.b64decode(key)).digest()).decode()
    assert enc.parse_customer_key(None, None, None) is None
    for args in [
        (None, key, md5),
        ("AES128", key, md5),
        ("AES256", None, md5),
        ("AES256", key, None),
        ("AES256", base64.b64encode(b"short").decode(), md5),
        ("AES256", key, base64.b64encode(b"0" * 16).decode()),
    ]:
        with pytest.raises(InvalidArgument) as raised:
            enc.parse_customer_key(*args)
        assert key not in str(raised.value.message)


def test_master_key_wraps_and_file_is_private(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = str(tmp_path / "k" / "master.key")
    master = enc.load_or_create_master_key(path)
    assert os.stat(path).st_mode & 0o777 == 0o600
    again = enc.load_or_create_master_key(path)
    sealing = master.seal()
    record = enc.parse_record(sealing.record.to_json())
    assert again.unwrap(record) == sealing.data_key
    other = enc.MasterKey(os.urandom(32))
    with pytest.raises(enc.SegmentCorrupt):
        other.unwrap(record)
    with pytest.raises(InvalidRequest):
        enc.key_for_record(record, _customer(os.urandom(32)), master)


def test_kms_keys_wrap_under_their_own_key_and_bind_the_context() -> None:
    master = enc.MasterKey(os.urandom(32))
    context = base64.b64encode(b'{"project": "x"}').decode()
    sealing = master.seal("backups", context)
    record = enc.parse_record(sealing.record.to_json())
    assert (record.mode, record.kms_key_id, record.kms_context) == ("SSE-KMS", "backups", context)
    assert master.unwrap(record) == sealing.data_key
    for changed in (
        dataclasses.replace(record, kms_key_id="other"),
        dataclasses.replace(record, kms_context=""),
        dataclasses.replace(record, mode="SSE-S3"),
    ):
        with pytest.raises(enc.SegmentCorrupt):
            master.unwrap(changed)
    with pytest.raises(InvalidArgument):
        enc.parse_kms_context("bm90IGpzb24=")  # "not json"
    assert enc.parse_kms_context(None) == ""
