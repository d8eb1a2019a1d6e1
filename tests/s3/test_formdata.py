"""The sans-IO multipart/form-data parser of POST Object: framing, splits, limits."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jay import errors
from jay.s3.formdata import (
    Field,
    FileData,
    FileEnd,
    FileStart,
    FormDataParser,
    FormEnd,
    boundary_from_content_type,
)

BOUNDARY = b"----jayBoundary7MA4YWxkTrZu0gW"


def encode(
    fields: list[tuple[str, bytes]],
    *,
    file: bytes | None = b"hello",
    filename: str = "a.txt",
    after: list[tuple[str, bytes]] = (),  # type: ignore[assignment]
    boundary: bytes = BOUNDARY,
    preamble: bytes = b"",
    epilogue: bytes = b"",
) -> bytes:
    out = [preamble]
    for name, value in fields:
        out.append(b"--" + boundary + b"\r\n")
        out.append(f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode())
        out.append(value + b"\r\n")
    if file is not None:
        out.append(b"--" + boundary + b"\r\n")
        out.append(
            f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'.encode()
        )
        out.append(b"Content-Type: text/plain\r\n\r\n")
        out.append(file + b"\r\n")
    for name, value in after:
        out.append(b"--" + boundary + b"\r\n")
        out.append(f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode())
        out.append(value + b"\r\n")
    out.append(b"--" + boundary + b"--\r\n" + epilogue)
    return b"".join(out)


def parse(body: bytes, sizes: list[int] | None = None, **kw: int) -> list[object]:
    """Feed ``body`` in pieces of ``sizes`` (cycled), then merge FileData for comparison."""
    parser = FormDataParser(BOUNDARY, **kw)
    events: list[object] = []
    i = 0
    step = 0
    while i < len(body):
        n = sizes[step % len(sizes)] if sizes else len(body)
        events.extend(parser.feed(body[i : i + n]))
        i += n
        step += 1
    parser.finish()
    merged: list[object] = []
    for event in events:
        if isinstance(event, FileData) and merged and isinstance(merged[-1], FileData):
            merged[-1] = FileData(merged[-1].data + event.data)
        else:
            merged.append(event)
    return merged


def test_fields_then_file_then_end() -> None:
    body = encode([("key", b"k/${filename}"), ("policy", b"abc==")], file=b"bytes\r\nmore")
    assert parse(body) == [
        Field("key", "k/${filename}"),
        Field("policy", "abc=="),
        FileStart("a.txt", "text/plain"),
        FileData(b"bytes\r\nmore"),
        FileEnd(),
        FormEnd(),
    ]


def test_fields_after_the_file_are_not_reported() -> None:
    body = encode([("key", b"k")], after=[("acl", b"public-read"), ("x", b"y" * 100_000)])
    assert parse(body) == [
        Field("key", "k"),
        FileStart("a.txt", "text/plain"),
        FileData(b"hello"),
        FileEnd(),
        FormEnd(),
    ]


def test_form_without_file_ends_without_file_events() -> None:
    assert parse(encode([("key", b"k")], file=None)) == [Field("key", "k"), FormEnd()]


def test_preamble_and_epilogue_are_ignored() -> None:
    body = encode([("key", b"k")], preamble=b"ignore me\r\n", epilogue=b"trailing junk")
    assert parse(body)[0] == Field("key", "k")


def test_empty_file_and_empty_value() -> None:
    events = parse(encode([("x-amz-meta-a", b"")], file=b""))
    assert events == [
        Field("x-amz-meta-a", ""),
        FileStart("a.txt", "text/plain"),
        FileEnd(),
        FormEnd(),
    ]


def test_file_field_name_is_case_insensitive_and_filename_optional() -> None:
    body = (
        b"--" + BOUNDARY + b"\r\n"
        b'Content-Disposition: form-data; name="FILE"\r\n\r\n'
        b"data\r\n--" + BOUNDARY + b"--"
    )
    assert parse(body) == [FileStart("", ""), FileData(b"data"), FileEnd(), FormEnd()]


def test_quoted_parameters() -> None:
    body = (
        b"--" + BOUNDARY + b"\r\n"
        b'content-disposition: form-data; filename="we \\"said\\" hi.txt"; name=file\r\n\r\n'
        b"x\r\n--" + BOUNDARY + b"--"
    )
    assert parse(body)[0] == FileStart('we "said" hi.txt', "")


def test_utf8_values() -> None:
    body = encode([("x-amz-meta-name", "café ✓".encode())])
    assert parse(body)[0] == Field("x-amz-meta-name", "café ✓")


@given(
    file=st.binary(max_size=3000),
    sizes=st.lists(st.integers(min_value=1, max_value=97), min_size=1, max_size=8),
)
@settings(max_examples=150, deadline=None)
def test_any_split_gives_the_same_events(file: bytes, sizes: list[int]) -> None:
    # Content that nearly contains the delimiter must come through unchanged.
    tricky = file + b"\r\n--" + BOUNDARY[:-1] + b"\r\n-" + file[:10]
    body = encode([("key", b"k"), ("policy", b"p" * 50)], file=tricky)
    assert parse(body, sizes) == parse(body)
    assert parse(body, sizes)[3] == FileData(tricky)


def test_file_bytes_come_out_before_the_end_is_seen() -> None:
    """Streaming: most of a file is handed on as it arrives, not held until its end."""
    parser = FormDataParser(BOUNDARY)
    head = encode([("key", b"k")], file=b"")[: -len(b"\r\n--" + BOUNDARY + b"--\r\n")]
    events = parser.feed(head)
    assert isinstance(events[-1], FileStart)
    out = parser.feed(b"z" * 100_000)
    assert sum(len(e.data) for e in out if isinstance(e, FileData)) >= 100_000 - len(BOUNDARY) - 4


def test_fields_before_the_file_are_limited() -> None:
    body = encode([("key", b"k"), ("x-amz-meta-big", b"v" * 25_000)])
    with pytest.raises(errors.MaxPostPreDataLengthExceeded) as raised:
        parse(body, [1000])
    assert raised.value.details["max_bytes"] == 20 * 1024


def test_limit_holds_without_any_delimiter() -> None:
    parser = FormDataParser(BOUNDARY, max_pre_file_bytes=1000)
    parser.feed(b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="a"\r\n\r\n')
    with pytest.raises(errors.MaxPostPreDataLengthExceeded):
        for _ in range(10):
            parser.feed(b"v" * 200)


def test_large_file_is_not_limited() -> None:
    events = parse(encode([("key", b"k")], file=b"f" * 200_000), [4096])
    assert FileData(b"f" * 200_000) in events


@pytest.mark.parametrize(
    "body",
    [
        b"no boundary at all",
        b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="a"\r\n\r\nvalue',
        b"--" + BOUNDARY + b"\r\nno-colon-header\r\n\r\nv\r\n--" + BOUNDARY + b"--",
        b"--" + BOUNDARY + b"\r\nContent-Type: text/plain\r\n\r\nv\r\n--" + BOUNDARY + b"--",
        b"--"
        + BOUNDARY
        + b'\r\nContent-Disposition: attachment; name="a"\r\n\r\nv\r\n--'
        + BOUNDARY
        + b"--",
        b"--" + BOUNDARY + b"XX\r\n",
        b"--"
        + BOUNDARY
        + b'\r\nContent-Disposition: form-data; name="a"\r\n\r\n\xff\r\n--'
        + BOUNDARY
        + b"--",
    ],
)
def test_malformed_forms(body: bytes) -> None:
    with pytest.raises(errors.MalformedPOSTRequest):
        parse(body)


def test_crlf_is_required_after_a_delimiter_but_padding_is_allowed() -> None:
    body = encode([("key", b"k")]).replace(
        b"--" + BOUNDARY + b"\r\n", b"--" + BOUNDARY + b"  \r\n", 1
    )
    assert parse(body)[0] == Field("key", "k")


def test_data_after_the_close_delimiter_is_ignored() -> None:
    parser = FormDataParser(BOUNDARY)
    events = parser.feed(encode([("key", b"k")], file=None))
    assert events[-1] == FormEnd()
    assert parser.feed(b"--" + BOUNDARY + b"\r\nanything") == []
    assert parser.is_complete


@pytest.mark.parametrize(
    ("content_type", "boundary"),
    [
        ("multipart/form-data; boundary=abc", b"abc"),
        ('Multipart/Form-Data; charset=utf-8; boundary="a b:c"', b"a b:c"),
        ("multipart/form-data;boundary=----WebKitFormBoundaryx", b"----WebKitFormBoundaryx"),
    ],
)
def test_boundary_from_content_type(content_type: str, boundary: bytes) -> None:
    assert boundary_from_content_type(content_type) == boundary


@pytest.mark.parametrize("content_type", ["", "application/x-www-form-urlencoded", "text/plain"])
def test_not_a_form_is_precondition_failed(content_type: str) -> None:
    with pytest.raises(errors.PreconditionFailed) as raised:
        boundary_from_content_type(content_type)
    assert raised.value.details["condition"] == (
        "Bucket POST must be of the enclosure-type multipart/form-data"
    )


@pytest.mark.parametrize(
    "content_type",
    [
        "multipart/form-data",
        "multipart/form-data; boundary=",
        "multipart/form-data; boundary=" + "x" * 71,
    ],
)
def test_form_without_usable_boundary_is_malformed(content_type: str) -> None:
    with pytest.raises(errors.MalformedPOSTRequest):
        boundary_from_content_type(content_type)
