"""jay.native.parser: events independent of how bytes are split, limits before buffering."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jay.native import codec
from jay.native.codec import HandshakeStatus, Op, PutObjectRequest
from jay.native.parser import (
    ClientFrameParser,
    DataChunk,
    Handshake,
    HandshakeError,
    HandshakeReply,
    ProtocolError,
    RequestEnd,
    RequestHead,
    ResponseEnd,
    ResponseHead,
    ServerFrameParser,
)
from tests.native import vectors as v


def merge_chunks(events: list[object]) -> list[object]:
    """Join consecutive DataChunks of one stream: chunking depends on arrival, nothing else."""
    merged: list[object] = []
    for event in events:
        if isinstance(event, DataChunk):
            assert event.data, "a DataChunk is never empty"
            last = merged[-1] if merged else None
            if isinstance(last, DataChunk) and last.stream_id == event.stream_id:
                merged[-1] = DataChunk(last.stream_id, last.data + event.data)
                continue
        merged.append(event)
    return merged


def feed_in_pieces(parser: ServerFrameParser | ClientFrameParser, data: bytes, cuts: list[int]):  # type: ignore[no-untyped-def]
    events: list[object] = []
    start = 0
    for cut in [*sorted(set(cuts)), len(data)]:
        events.extend(parser.feed(data[start:cut]))
        start = cut
    return events


UNKNOWN_OP_FRAME = codec.encode_frame(0x77, 5, b"\x01\x02", 3) + b"xyz"
BIG_BODY = bytes(range(256)) * 40  # 10 KiB
BIG_PUT = (
    codec.encode_frame(
        Op.PUT_OBJECT, 11, PutObjectRequest(bucket="b", key="big").encode(), len(BIG_BODY)
    )
    + BIG_BODY
)
PIPELINED = (
    v.HANDSHAKE_CLIENT
    + v.PUT_REQUEST
    + v.GET_REQUEST
    + UNKNOWN_OP_FRAME
    + v.PING_REQUEST
    + BIG_PUT
    + v.UPLOAD_PART_REQUEST
    + v.LIST_REQUEST
)
PUT_META = v.PUT_REQUEST[17:59]
EXPECTED = [
    Handshake(token_id="tok-1", secret="s3cr3t"),
    RequestHead(op=0x10, stream_id=7, meta=PUT_META, data_len=5),
    DataChunk(stream_id=7, data=b"hello"),
    RequestEnd(stream_id=7),
    RequestHead(op=0x11, stream_id=9, meta=v.GET_REQUEST[17:], data_len=0),
    RequestEnd(stream_id=9),
    RequestHead(op=0x77, stream_id=5, meta=b"\x01\x02", data_len=3),
    DataChunk(stream_id=5, data=b"xyz"),
    RequestEnd(stream_id=5),
    RequestHead(op=0xFF, stream_id=1, meta=b"", data_len=0),
    RequestEnd(stream_id=1),
    RequestHead(op=0x10, stream_id=11, meta=BIG_PUT[17 : -len(BIG_BODY)], data_len=len(BIG_BODY)),
    DataChunk(stream_id=11, data=BIG_BODY),
    RequestEnd(stream_id=11),
    RequestHead(op=0x21, stream_id=0, meta=v.UPLOAD_PART_REQUEST[17:-5], data_len=5),
    DataChunk(stream_id=0, data=b"world"),
    RequestEnd(stream_id=0),
    RequestHead(op=0x14, stream_id=0, meta=v.LIST_REQUEST[17:], data_len=0),
    RequestEnd(stream_id=0),
]


def test_pipelined_stream_in_one_piece() -> None:
    parser = ServerFrameParser()
    assert parser.feed(PIPELINED) == EXPECTED
    assert parser.buffered_bytes == 0


def test_pipelined_stream_byte_by_byte() -> None:
    parser = ServerFrameParser()
    events = feed_in_pieces(parser, PIPELINED, list(range(1, len(PIPELINED))))
    # Data comes out as it arrives: one chunk per byte, never held back.
    assert sum(isinstance(e, DataChunk) for e in events) == 5 + 3 + len(BIG_BODY) + 5
    assert merge_chunks(events) == EXPECTED


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, len(PIPELINED)), max_size=40))
def test_same_events_however_the_stream_is_split(cuts: list[int]) -> None:
    parser = ServerFrameParser()
    assert merge_chunks(feed_in_pieces(parser, PIPELINED, cuts)) == EXPECTED
    assert parser.buffered_bytes == 0


def test_pull_mode_gives_the_same_events() -> None:
    parser = ServerFrameParser()
    parser.receive_data(PIPELINED)
    events = []
    while (event := parser.next_event()) is not None:
        events.append(event)
    assert events == EXPECTED


def test_handshake_secret_stays_out_of_repr() -> None:
    (event,) = ServerFrameParser().feed(v.HANDSHAKE_CLIENT)
    assert event == Handshake("tok-1", "s3cr3t")
    assert "s3cr3t" not in repr(event)


# --- truncation: need more data, no event ----------------------------------------------------


@pytest.mark.parametrize("cut", range(1, len(v.HANDSHAKE_CLIENT)))
def test_truncated_handshake_yields_nothing(cut: int) -> None:
    parser = ServerFrameParser()
    assert parser.feed(v.HANDSHAKE_CLIENT[:cut]) == []
    assert parser.feed(v.HANDSHAKE_CLIENT[cut:]) == [Handshake("tok-1", "s3cr3t")]


def test_truncated_frames_yield_nothing_until_complete() -> None:
    parser = ServerFrameParser()
    parser.feed(v.HANDSHAKE_CLIENT)
    assert parser.feed(v.GET_REQUEST[:16]) == []  # header incomplete
    assert parser.feed(v.GET_REQUEST[16:31]) == []  # meta incomplete
    assert parser.buffered_bytes == 31 - 17  # the header is parsed, the meta waits
    assert parser.feed(v.GET_REQUEST[31:]) == [
        RequestHead(op=0x11, stream_id=9, meta=v.GET_REQUEST[17:], data_len=0),
        RequestEnd(stream_id=9),
    ]
    # The head comes out with its meta; the data section may still be missing.
    events = parser.feed(v.PUT_REQUEST[:59])
    assert events == [RequestHead(op=0x10, stream_id=7, meta=PUT_META, data_len=5)]
    assert parser.is_in_data and parser.data_remaining == 5
    assert parser.feed(v.PUT_REQUEST[59:61]) == [DataChunk(7, b"he")]
    assert parser.feed(v.PUT_REQUEST[61:]) == [DataChunk(7, b"llo"), RequestEnd(7)]
    assert not parser.is_in_data


# --- handshake failures ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("preamble", "status"),
    [
        (b"JAX\x00\x01\x00\x00\x03a:b", HandshakeStatus.VERSION_MISMATCH),
        (b"HTTP/1.1 200 OK", HandshakeStatus.VERSION_MISMATCH),
        (b"JAY\x00\x02\x00\x00\x03a:b", HandshakeStatus.VERSION_MISMATCH),
        (b"JAY\x00\x01\x00\x00\x00", HandshakeStatus.VERSION_MISMATCH),  # auth_len 0
        (b"JAY\x00\x01\x00\x00\x03abc", HandshakeStatus.AUTH_FAILED),  # no ':'
    ],
)
def test_handshake_errors(preamble: bytes, status: HandshakeStatus) -> None:
    parser = ServerFrameParser()
    (error,) = parser.feed(preamble + v.PING_REQUEST)
    assert isinstance(error, HandshakeError)
    assert error.handshake_status == status
    assert error.status_hint is None and error.should_close
    assert parser.is_failed
    # A dead parser ignores everything that follows.
    assert parser.feed(v.PING_REQUEST) == []
    assert parser.next_event() is None


def test_secret_may_contain_colons() -> None:
    credentials = b"tok:se:cr:et"
    preamble = b"JAY\x00\x01\x00" + len(credentials).to_bytes(2, "big") + credentials
    assert ServerFrameParser().feed(preamble) == [Handshake("tok", "se:cr:et")]


def test_flags_byte_is_ignored() -> None:
    preamble = bytearray(v.HANDSHAKE_CLIENT)
    preamble[5] = 0xAB
    assert ServerFrameParser().feed(bytes(preamble)) == [Handshake("tok-1", "s3cr3t")]


# --- limits ----------------------------------------------------------------------------------


def authenticated() -> ServerFrameParser:
    parser = ServerFrameParser()
    assert parser.feed(v.HANDSHAKE_CLIENT) == [Handshake("tok-1", "s3cr3t")]
    return parser


def test_oversize_meta_fails_on_the_header_before_any_meta_is_buffered() -> None:
    parser = authenticated()
    header = codec.encode_header(Op.PUT_OBJECT, 3, codec.MAX_META_BYTES + 1, 0)
    (error,) = parser.feed(header)
    assert isinstance(error, ProtocolError) and not isinstance(error, HandshakeError)
    assert error.status_hint is None and error.should_close  # upstream closes silently
    assert parser.feed(b"\x00" * 4096) == []
    assert parser.buffered_bytes == 0


def test_meta_of_exactly_one_mebibyte_is_accepted() -> None:
    parser = authenticated()
    meta = b"\x00" * codec.MAX_META_BYTES
    assert parser.feed(codec.encode_header(Op.PING, 3, len(meta), 0)) == []
    assert parser.feed(meta) == [RequestHead(0xFF, 3, meta, 0), RequestEnd(3)]


def test_data_len_with_top_bit_set_is_a_protocol_error() -> None:
    parser = authenticated()
    header = (
        (0x10).to_bytes(1, "big") + (1).to_bytes(4, "big") + bytes(4) + (1 << 63).to_bytes(8, "big")
    )
    (error,) = parser.feed(header)
    assert isinstance(error, ProtocolError) and error.should_close
    assert parser.is_failed


def test_events_before_an_error_come_first() -> None:
    parser = authenticated()
    bad = codec.encode_header(Op.PING, 2, codec.MAX_META_BYTES + 1, 0)
    events = parser.feed(v.PING_REQUEST + bad + v.PING_REQUEST)
    assert events[:2] == [RequestHead(0xFF, 1, b"", 0), RequestEnd(1)]
    assert isinstance(events[2], ProtocolError) and len(events) == 3


def test_custom_meta_limit() -> None:
    parser = ServerFrameParser(max_meta_bytes=10)
    parser.feed(v.HANDSHAKE_CLIENT)
    (error,) = parser.feed(v.GET_REQUEST)  # meta is 15 bytes
    assert isinstance(error, ProtocolError)


# --- draining ----------------------------------------------------------------------------------


def test_skip_data_discards_the_rest_of_the_data_section() -> None:
    parser = authenticated()
    parser.receive_data(BIG_PUT[:1000])
    head = parser.next_event()
    assert isinstance(head, RequestHead) and head.data_len == len(BIG_BODY)
    parser.skip_data()  # e.g. bucket not found: drain, then answer (§1.10)
    assert parser.next_event() is None
    parser.receive_data(BIG_PUT[1000:] + v.PING_REQUEST)
    assert parser.next_event() == RequestEnd(11)
    assert parser.next_event() == RequestHead(0xFF, 1, b"", 0)
    assert parser.next_event() == RequestEnd(1)
    assert parser.next_event() is None
    assert parser.buffered_bytes == 0


def test_skip_data_after_some_chunks() -> None:
    parser = authenticated()
    events = parser.feed(BIG_PUT[:500])
    assert isinstance(events[-1], DataChunk)
    parser.skip_data()
    assert parser.feed(BIG_PUT[500:]) == [RequestEnd(11)]
    assert parser.feed(v.PING_REQUEST) == [RequestHead(0xFF, 1, b"", 0), RequestEnd(1)]


def test_skip_data_outside_a_data_section_is_a_local_error() -> None:
    parser = authenticated()
    with pytest.raises(RuntimeError):
        parser.skip_data()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, len(PIPELINED)), max_size=30))
def test_draining_every_put_is_split_independent(cuts: list[int]) -> None:
    """Skipping the data of every request leaves only heads and ends, in order."""
    parser = ServerFrameParser()
    events: list[object] = []
    start = 0
    for cut in [*sorted(set(cuts)), len(PIPELINED)]:
        parser.receive_data(PIPELINED[start:cut])
        start = cut
        while (event := parser.next_event()) is not None:
            events.append(event)
            if isinstance(event, RequestHead) and event.data_len:
                parser.skip_data()
    assert events == [e for e in EXPECTED if not isinstance(e, DataChunk)]


def test_large_data_section_is_never_buffered_whole() -> None:
    parser = authenticated()
    size = 8 * 1024 * 1024
    parser.feed(codec.encode_frame(Op.PUT_OBJECT, 1, b"\x00\x01b\x00\x01k\x00\x00\x00\x00", size))
    piece = b"\xab" * 65536
    received = 0
    ends = []
    for _ in range(size // len(piece)):
        for event in parser.feed(piece):
            if isinstance(event, DataChunk):
                received += len(event.data)
            else:
                ends.append(event)
        assert parser.buffered_bytes == 0
    assert received == size
    assert ends == [RequestEnd(1)]


# --- client side -------------------------------------------------------------------------------


CLIENT_STREAM = (
    v.HANDSHAKE_OK
    + v.PUT_RESPONSE
    + v.NO_SUCH_KEY_RESPONSE
    + v.GET_RESPONSE
    + v.PING_RESPONSE
    + v.LIST_RESPONSE
)
CLIENT_EXPECTED = [
    HandshakeReply(status=0),
    ResponseHead(status=0, stream_id=7, meta=v.PUT_RESPONSE[17:], data_len=0),
    ResponseEnd(7),
    ResponseHead(status=1, stream_id=9, meta=v.NO_SUCH_KEY_RESPONSE[17:], data_len=0),
    ResponseEnd(9),
    ResponseHead(status=0, stream_id=9, meta=v.GET_RESPONSE[17:-5], data_len=5),
    DataChunk(9, b"hello"),
    ResponseEnd(9),
    ResponseHead(status=0, stream_id=1, meta=b"", data_len=0),
    ResponseEnd(1),
    ResponseHead(status=0, stream_id=0, meta=v.LIST_RESPONSE[17:], data_len=0),
    ResponseEnd(0),
]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, len(CLIENT_STREAM)), max_size=30))
def test_client_parser_split_independent(cuts: list[int]) -> None:
    parser = ClientFrameParser()
    assert merge_chunks(feed_in_pieces(parser, CLIENT_STREAM, cuts)) == CLIENT_EXPECTED


def test_client_parser_stops_after_a_failed_handshake() -> None:
    parser = ClientFrameParser()
    assert parser.feed(v.HANDSHAKE_AUTH_FAILED + v.PING_RESPONSE) == [HandshakeReply(1)]
    assert parser.is_failed
    assert parser.feed(v.PING_RESPONSE) == []


def test_client_parser_rejects_a_bad_magic_and_oversize_meta() -> None:
    (error,) = ClientFrameParser().feed(b"HTTP/1.1 400 Bad Request\r\n")
    assert isinstance(error, HandshakeError)
    parser = ClientFrameParser()
    parser.feed(v.HANDSHAKE_OK)
    (error,) = parser.feed(codec.encode_header(0, 0, codec.MAX_META_BYTES + 1, 0))
    assert isinstance(error, ProtocolError) and error.should_close


def test_client_can_discard_a_data_section() -> None:
    parser = ClientFrameParser()
    parser.receive_data(v.HANDSHAKE_OK + v.GET_RESPONSE)
    assert parser.next_event() == HandshakeReply(0)
    assert isinstance(parser.next_event(), ResponseHead)
    parser.skip_data()
    assert parser.next_event() == ResponseEnd(9)
    assert parser.next_event() is None


def test_pulling_through_a_large_pipelined_backlog() -> None:
    """Compaction of the consumed prefix keeps events intact across the buffer's moves."""
    count = 20000  # 340 KB of pings, several compactions at the 64 KiB threshold
    frames = b"".join(codec.encode_frame(Op.PING, i) for i in range(count))
    parser = authenticated()
    parser.receive_data(frames)
    for i in range(count):
        assert parser.next_event() == RequestHead(0xFF, i, b"", 0)
        assert parser.next_event() == RequestEnd(i)
        assert parser.buffered_bytes == (count - i - 1) * 17
    assert parser.next_event() is None
