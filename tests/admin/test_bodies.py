"""Pure admin JSON helpers: Go-style encoding and decoding, timestamps, base URLs."""

from __future__ import annotations

import pytest

from jay.admin.bodies import (
    InvalidBody,
    decode_object,
    encode_json,
    field_int,
    parse_rfc3339,
    presign_base_url,
    rfc3339,
)


def test_encode_json_is_compact_with_newline_and_go_escapes() -> None:
    assert encode_json({"error": "unauthorized"}) == b'{"error":"unauthorized"}\n'
    assert encode_json({"a": "<&>é"}) == '{"a":"\\u003c\\u0026\\u003eé"}\n'.encode()
    assert encode_json(None) == b"null\n"


def test_rfc3339_trims_fraction() -> None:
    assert rfc3339(1704164645.123456) == "2024-01-02T03:04:05.123456Z"
    assert rfc3339(1704164645.5) == "2024-01-02T03:04:05.5Z"
    assert rfc3339(1704164645.0) == "2024-01-02T03:04:05Z"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-02T03:04:05Z", 1704164645.0),
        ("2024-01-02t03:04:05.250z", 1704164645.25),
        ("2024-01-02T04:04:05.123456789+01:00", 1704164645.123456),
    ],
)
def test_parse_rfc3339(text: str, expected: float) -> None:
    assert parse_rfc3339(text) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("text", ["2024-01-02", "2024-01-02T03:04:05", "2024-13-02T03:04:05Z", ""])
def test_parse_rfc3339_rejects(text: str) -> None:
    with pytest.raises(InvalidBody):
        parse_rfc3339(text)


def test_decode_object_like_go() -> None:
    assert decode_object(b' {"Name": "x"} trailing') == {"name": "x"}
    for raw in (b"", b"null", b"[1]", b"{", b"\xff"):
        with pytest.raises(InvalidBody):
            decode_object(raw)


def test_field_int_rejects_non_integers() -> None:
    assert field_int({"n": 5}, "n") == 5
    assert field_int({}, "n") == 0
    for value in (True, 1.0, "5"):
        with pytest.raises(InvalidBody):
            field_int({"n": value}, "n")


def test_presign_base_url() -> None:
    assert (
        presign_base_url(public_url="https://s3.example/", listen_addr=":9000", is_tls=False)
        == "https://s3.example"
    )
    assert (
        presign_base_url(public_url="", listen_addr=":9000", is_tls=False)
        == "http://localhost:9000"
    )
    assert (
        presign_base_url(public_url="", listen_addr="10.1.2.3:443", is_tls=True)
        == "https://10.1.2.3:443"
    )
    assert (
        presign_base_url(public_url="", listen_addr="[::1]:9000", is_tls=False)
        == "http://[::1]:9000"
    )
