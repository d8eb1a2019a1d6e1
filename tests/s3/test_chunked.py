"""aws-chunked decoding: AWS's signed vectors, botocore's unsigned trailer body, every split."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jay.auth import sigv4
from jay.auth.sigv4 import PayloadMode, SigningContext
from jay.errors import IncompleteBody, InvalidRequest, SignatureDoesNotMatch
from jay.s3.chunked import MAX_CHUNK_LINE_BYTES, MAX_TRAILER_BYTES, AwsChunkedDecoder

# JAY_SPEC §3.3: what botocore sends over HTTPS for put_object(Body=b"hello").
UNSIGNED_TRAILER_BODY = b"5\r\nhello\r\n0\r\nx-amz-checksum-crc32:NhCmhg==\r\n\r\n"

# AWS's published example (sigv4-streaming): 65536 + 1024 bytes of 'a'.
AWS_KEY = sigv4.signing_key("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "20130524", "us-east-1")
AWS_CONTEXT = SigningContext(
    signing_key=AWS_KEY,
    seed_signature="4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
    scope="20130524/us-east-1/s3/aws4_request",
    amz_date="20130524T000000Z",
    payload_hash=PayloadMode.STREAMING_SIGNED.value,
    payload_mode=PayloadMode.STREAMING_SIGNED,
)
AWS_BODY = (
    b"10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648\r\n"
    + b"a" * 65536
    + b"\r\n400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n"
    + b"a" * 1024
    + b"\r\n0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n"
    + b"\r\n"
)
# AWS's trailing-header example: same chunks, seed 106e…, crc32c trailer.
AWS_TRAILER_CONTEXT = SigningContext(
    signing_key=AWS_KEY,
    seed_signature="106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e",
    scope="20130524/us-east-1/s3/aws4_request",
    amz_date="20130524T000000Z",
    payload_hash=PayloadMode.STREAMING_SIGNED_TRAILER.value,
    payload_mode=PayloadMode.STREAMING_SIGNED_TRAILER,
)
AWS_TRAILER_BODY = (
    b"10000;chunk-signature=b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2\r\n"
    + b"a" * 65536
    + b"\r\n400;chunk-signature=1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7\r\n"
    + b"a" * 1024
    + b"\r\n0;chunk-signature=2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992\r\n"
    + b"x-amz-checksum-crc32c:sOO8/Q==\r\n"
    + b"x-amz-trailer-signature:d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435\r\n"
    + b"\r\n"
)


def decode(
    body: bytes,
    mode: PayloadMode,
    context: SigningContext | None = None,
    decoded_length: int | None = None,
    splits: list[int] | None = None,
) -> tuple[bytes, AwsChunkedDecoder]:
    decoder = AwsChunkedDecoder(mode, context, mode.has_trailer, decoded_length)
    out: list[bytes] = []
    cuts = [0, *sorted(splits or []), len(body)]
    for start, end in zip(cuts, cuts[1:], strict=False):
        out.extend(decoder.feed(body[start:end]))
    decoder.finish()
    return b"".join(out), decoder


def sign_body(
    context: SigningContext, chunks: list[bytes], trailers: list[tuple[str, str]] | None = None
) -> bytes:
    """Build a signed aws-chunked body with jay's (vector-checked) signing functions."""
    parts: list[bytes] = []
    previous = context.seed_signature
    for chunk in [*chunks, b""]:
        previous = context.chunk_signature(previous, hashlib.sha256(chunk).hexdigest())
        parts.append(f"{len(chunk):x};chunk-signature={previous}\r\n".encode() + chunk)
        if chunk:
            parts.append(b"\r\n")
    if trailers is not None:
        canonical = "".join(f"{k}:{v}\n" for k, v in trailers).encode()
        signature = context.trailer_signature(previous, canonical)
        parts += [f"{k}:{v}\r\n".encode() for k, v in trailers]
        parts.append(f"x-amz-trailer-signature:{signature}\r\n".encode())
    parts.append(b"\r\n")
    return b"".join(parts)


SMALL_CONTEXT = SigningContext(
    signing_key=sigv4.signing_key("secret", "20240102", "us-east-1"),
    seed_signature="c" * 64,
    scope="20240102/us-east-1/s3/aws4_request",
    amz_date="20240102T030405Z",
    payload_hash=PayloadMode.STREAMING_SIGNED.value,
    payload_mode=PayloadMode.STREAMING_SIGNED,
)
SMALL_TRAILER_CONTEXT = SigningContext(
    signing_key=SMALL_CONTEXT.signing_key,
    seed_signature=SMALL_CONTEXT.seed_signature,
    scope=SMALL_CONTEXT.scope,
    amz_date=SMALL_CONTEXT.amz_date,
    payload_hash=PayloadMode.STREAMING_SIGNED_TRAILER.value,
    payload_mode=PayloadMode.STREAMING_SIGNED_TRAILER,
)
SMALL_CHUNKS = [b"hello ", b"wor\r\nld", b"!"]
SMALL_BODY = sign_body(SMALL_CONTEXT, SMALL_CHUNKS)
SMALL_TRAILER_BODY = sign_body(
    SMALL_TRAILER_CONTEXT, SMALL_CHUNKS, [("x-amz-checksum-crc32", "AAAAAA==")]
)


# --- vectors -----------------------------------------------------------------------------------


def test_unsigned_trailer_body_from_spec() -> None:
    payload, decoder = decode(
        UNSIGNED_TRAILER_BODY, PayloadMode.STREAMING_UNSIGNED_TRAILER, None, 5
    )
    assert payload == b"hello"
    assert decoder.trailers == {"x-amz-checksum-crc32": "NhCmhg=="}
    assert decoder.is_done and decoder.decoded_total == 5


def test_aws_signed_example() -> None:
    payload, _ = decode(AWS_BODY, PayloadMode.STREAMING_SIGNED, AWS_CONTEXT, 66560)
    assert payload == b"a" * 66560


def test_aws_signed_trailer_example() -> None:
    payload, decoder = decode(
        AWS_TRAILER_BODY, PayloadMode.STREAMING_SIGNED_TRAILER, AWS_TRAILER_CONTEXT, 66560
    )
    assert payload == b"a" * 66560
    assert decoder.trailers["x-amz-checksum-crc32c"] == "sOO8/Q=="


def test_pieces_are_released_before_the_chunk_ends() -> None:
    decoder = AwsChunkedDecoder(PayloadMode.STREAMING_SIGNED, AWS_CONTEXT, False, 66560)
    header_end = AWS_BODY.index(b"\r\n") + 2
    assert decoder.feed(AWS_BODY[: header_end + 1000]) == [b"a" * 1000]


# --- every split -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "mode", "context", "expected"),
    [
        (UNSIGNED_TRAILER_BODY, PayloadMode.STREAMING_UNSIGNED_TRAILER, None, b"hello"),
        (SMALL_BODY, PayloadMode.STREAMING_SIGNED, SMALL_CONTEXT, b"".join(SMALL_CHUNKS)),
        (
            SMALL_TRAILER_BODY,
            PayloadMode.STREAMING_SIGNED_TRAILER,
            SMALL_TRAILER_CONTEXT,
            b"".join(SMALL_CHUNKS),
        ),
    ],
)
def test_every_single_split_point(
    body: bytes, mode: PayloadMode, context: SigningContext | None, expected: bytes
) -> None:
    for cut in range(len(body) + 1):
        payload, _ = decode(body, mode, context, len(expected), [cut])
        assert payload == expected, cut
    one_byte_at_a_time = list(range(1, len(body)))
    assert decode(body, mode, context, len(expected), one_byte_at_a_time)[0] == expected


@settings(max_examples=150, deadline=None)
@given(
    chunks=st.lists(st.binary(min_size=1, max_size=300), max_size=5),
    data=st.data(),
)
def test_hypothesis_signed_any_split(chunks: list[bytes], data: st.DataObject) -> None:
    body = sign_body(SMALL_TRAILER_CONTEXT, chunks, [("x-amz-checksum-sha256", "abc=")])
    splits = data.draw(st.lists(st.integers(0, len(body)), max_size=12))
    payload, decoder = decode(
        body,
        PayloadMode.STREAMING_SIGNED_TRAILER,
        SMALL_TRAILER_CONTEXT,
        sum(map(len, chunks)),
        splits,
    )
    assert payload == b"".join(chunks)
    assert decoder.trailers["x-amz-checksum-sha256"] == "abc="


@settings(max_examples=100, deadline=None)
@given(chunks=st.lists(st.binary(min_size=1, max_size=200), max_size=4), data=st.data())
def test_hypothesis_unsigned_any_split(chunks: list[bytes], data: st.DataObject) -> None:
    body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks)
    body += b"0\r\nx-amz-checksum-crc32c:AAAAAA==\r\n\r\n"
    splits = data.draw(st.lists(st.integers(0, len(body)), max_size=12))
    payload, decoder = decode(body, PayloadMode.STREAMING_UNSIGNED_TRAILER, None, None, splits)
    assert payload == b"".join(chunks)
    assert decoder.trailers == {"x-amz-checksum-crc32c": "AAAAAA=="}


# --- signature failures --------------------------------------------------------------------------


def test_tampered_chunk_data_fails_at_end_of_chunk() -> None:
    body = bytearray(AWS_BODY)
    body[body.index(b"\r\n") + 2 + 100] = ord("b")
    decoder = AwsChunkedDecoder(PayloadMode.STREAMING_SIGNED, AWS_CONTEXT, False, 66560)
    with pytest.raises(SignatureDoesNotMatch, match="chunk signature"):
        decoder.feed(bytes(body))
    with pytest.raises(InvalidRequest, match="already failed"):
        decoder.feed(b"x")


def test_wrong_seed_fails() -> None:
    other = SigningContext(
        signing_key=AWS_CONTEXT.signing_key,
        seed_signature="0" * 64,
        scope=AWS_CONTEXT.scope,
        amz_date=AWS_CONTEXT.amz_date,
        payload_hash=AWS_CONTEXT.payload_hash,
        payload_mode=AWS_CONTEXT.payload_mode,
    )
    with pytest.raises(SignatureDoesNotMatch):
        decode(AWS_BODY, PayloadMode.STREAMING_SIGNED, other)


def test_reordered_chunks_fail() -> None:
    a = sign_body(SMALL_CONTEXT, [b"one", b"two"])
    b = sign_body(SMALL_CONTEXT, [b"two", b"one"])
    # Splice the second chunk of one body onto the other: the chain breaks.
    first_a = a[: a.index(b"one\r\n") + 5]
    second_b = b[b.index(b"two\r\n") + 5 :]
    with pytest.raises(SignatureDoesNotMatch):
        decode(first_a + second_b, PayloadMode.STREAMING_SIGNED, SMALL_CONTEXT)


def test_tampered_final_chunk_signature_fails() -> None:
    body = AWS_BODY.replace(b"b6c6ea8a", b"b6c6ea8b")
    with pytest.raises(SignatureDoesNotMatch):
        decode(body, PayloadMode.STREAMING_SIGNED, AWS_CONTEXT)


@pytest.mark.parametrize(
    "change",
    [
        (b"sOO8/Q==", b"sOO8/R=="),  # trailer value changed
        (b"d81f82fc", b"d81f82fd"),  # trailer signature changed
        (
            b"x-amz-trailer-signature:d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435\r\n",
            b"",
        ),
    ],
)
def test_tampered_trailer_fails(change: tuple[bytes, bytes]) -> None:
    body = AWS_TRAILER_BODY.replace(*change)
    with pytest.raises(SignatureDoesNotMatch, match="trailer"):
        decode(body, PayloadMode.STREAMING_SIGNED_TRAILER, AWS_TRAILER_CONTEXT)


def test_chunk_without_signature_in_signed_mode() -> None:
    with pytest.raises(InvalidRequest, match="chunk-signature"):
        decode(b"5\r\nhello\r\n0\r\n\r\n", PayloadMode.STREAMING_SIGNED, AWS_CONTEXT)


def test_signed_mode_needs_context() -> None:
    with pytest.raises(ValueError):
        AwsChunkedDecoder(PayloadMode.STREAMING_SIGNED, None, False, None)
    with pytest.raises(ValueError):
        AwsChunkedDecoder(PayloadMode.SHA256, None, False, None)


# --- framing and limits --------------------------------------------------------------------------

UNSIGNED = PayloadMode.STREAMING_UNSIGNED_TRAILER


@pytest.mark.parametrize(
    "body",
    [
        b"5\r\nhel",  # truncated data
        b"5\r\nhello\r\n",  # no final chunk
        b"5\r\nhello\r\n0\r\n",  # no end of trailers
        b"5\r\nhello\r\n0\r\nx-amz-checksum-crc32:NhCmhg==\r\n",
        b"",
    ],
)
def test_truncated_bodies_are_incomplete(body: bytes) -> None:
    with pytest.raises(IncompleteBody):
        decode(body, UNSIGNED)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"zz\r\nhello\r\n0\r\n\r\n", "hexadecimal"),
        (b"\r\nhello\r\n0\r\n\r\n", "hexadecimal"),
        (b"-5\r\nhello\r\n0\r\n\r\n", "hexadecimal"),
        (b"11111111111111111\r\n", "hexadecimal"),
        (b"5\r\nhelloXX0\r\n\r\n", "CRLF"),
        (b"5\r\nhello\r\n0\r\nno-colon\r\n\r\n", "name:value"),
        (b"5\r\nhello\r\n0\r\na:1\r\na:2\r\n\r\n", "repeated"),
        (b"5\r\nhello\r\n0\r\n\r\nextra", "after the end"),
    ],
)
def test_malformed_framing(body: bytes, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        decode(body, UNSIGNED)


def test_trailers_rejected_when_not_announced() -> None:
    decoder = AwsChunkedDecoder(PayloadMode.STREAMING_SIGNED, SMALL_CONTEXT, False, None)
    body = SMALL_BODY[:-2] + b"x-amz-checksum-crc32:AAAAAA==\r\n\r\n"
    with pytest.raises(InvalidRequest, match="trailers"):
        decoder.feed(body)


def test_chunk_line_limit_is_enforced_before_buffering() -> None:
    decoder = AwsChunkedDecoder(UNSIGNED, None, True, None)
    decoder.feed(b"5;" + b"x" * (MAX_CHUNK_LINE_BYTES - 2))
    with pytest.raises(InvalidRequest, match="too long"):
        decoder.feed(b"x" * 10)


def test_trailer_section_limit() -> None:
    decoder = AwsChunkedDecoder(UNSIGNED, None, True, None)
    decoder.feed(b"0\r\n")
    line = b"x-amz-meta-" + b"a" * 100 + b":v\r\n"
    with pytest.raises(InvalidRequest, match="too"):
        for i in range(MAX_TRAILER_BYTES // len(line) + 2):
            decoder.feed(line.replace(b"x-amz-meta-", b"x-amz-m%05d-" % i))


@pytest.mark.parametrize("decoded_length", [4, 6])
def test_decoded_length_mismatch(decoded_length: int) -> None:
    with pytest.raises(IncompleteBody, match="x-amz-decoded-content-length"):
        decode(UNSIGNED_TRAILER_BODY, UNSIGNED, None, decoded_length)


def test_oversized_chunk_is_refused_at_its_header() -> None:
    decoder = AwsChunkedDecoder(UNSIGNED, None, True, 10)
    with pytest.raises(IncompleteBody):
        decoder.feed(b"ffffffff\r\n")


def test_large_body_in_big_pieces_is_linear() -> None:
    chunk = b"z" * 65536
    body = b"".join(b"10000\r\n" + chunk + b"\r\n" for _ in range(64)) + b"0\r\n\r\n"
    decoder = AwsChunkedDecoder(UNSIGNED, None, True, 64 * 65536)
    total = 0
    for start in range(0, len(body), 10000):
        total += sum(len(piece) for piece in decoder.feed(body[start : start + 10000]))
    decoder.finish()
    assert total == 64 * 65536
