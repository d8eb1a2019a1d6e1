"""NativeClientProtocol over StringTransport: exact bytes, ordering, errors, back-pressure."""

from __future__ import annotations

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IConsumer, IProducer, IPushProducer
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from zope.interface import implementer

from jay.client.protocol import (
    AuthenticationFailed,
    BadRequest,
    BodyError,
    ClientProtocolError,
    Conflict,
    ConnectionClosed,
    DownloadStopped,
    Forbidden,
    Internal,
    NativeClientProtocol,
    NativeError,
    NotFound,
    RateLimited,
    Response,
    VersionMismatch,
)
from jay.native import codec
from jay.native.codec import Op, Status
from jay.native.parser import ServerFrameParser
from tests.native import vectors as v

OK_REPLY = codec.encode_server_handshake(codec.HandshakeStatus.OK)


def connected(
    token_id: str = "tok-1", secret: str = "s3cr3t"
) -> tuple[NativeClientProtocol, StringTransport]:
    proto = NativeClientProtocol(token_id, secret)
    transport = StringTransport()
    proto.makeConnection(transport)
    return proto, transport


def ready() -> tuple[NativeClientProtocol, StringTransport]:
    proto, transport = connected()
    proto.dataReceived(OK_REPLY)
    transport.clear()
    return proto, transport


def result_of(d: Deferred[object]) -> object:
    box: list[object] = []
    d.addBoth(box.append)
    assert box, "Deferred has not fired"
    return box[0]


def failure_of(d: Deferred[object]) -> BaseException:
    outcome = result_of(d)
    assert isinstance(outcome, Failure), outcome
    return outcome.value


def requests_written(data: bytes) -> list[tuple[int, int, bytes, bytes]]:
    """(op, stream_id, meta, data) of every frame the client wrote after the handshake."""
    parser = ServerFrameParser()
    parser.receive_data(v.HANDSHAKE_CLIENT)
    assert parser.next_event() is not None
    frames: list[tuple[int, int, bytes, bytes]] = []
    body = b""
    head = None
    for event in parser.feed(data):
        name = type(event).__name__
        if name == "RequestHead":
            head = event
            body = b""
        elif name == "DataChunk":
            body += event.data  # type: ignore[union-attr]
        elif name == "RequestEnd":
            assert head is not None
            frames.append((head.op, head.stream_id, head.meta, body))  # type: ignore[attr-defined]
        else:
            raise AssertionError(event)
    return frames


# --- handshake -------------------------------------------------------------------------------


def test_handshake_bytes_are_the_spec_vector() -> None:
    proto, transport = connected()
    assert transport.value() == v.HANDSHAKE_CLIENT
    d = proto.when_ready()
    assert not d.called
    proto.dataReceived(OK_REPLY)
    assert result_of(d) is None
    assert proto.is_ready


def test_requests_wait_for_the_handshake() -> None:
    proto, transport = connected()
    transport.clear()
    d = proto.request(Op.PING)
    assert transport.value() == b""  # nothing before the reply
    proto.dataReceived(OK_REPLY)
    assert transport.value() == codec.encode_frame(Op.PING, 1)
    proto.dataReceived(codec.encode_response(1))
    assert result_of(d) == Response(1, b"", 0)


@pytest.mark.parametrize(
    ("status", "error_type"),
    [(1, AuthenticationFailed), (2, VersionMismatch)],
)
def test_handshake_refused(status: int, error_type: type[Exception]) -> None:
    proto, transport = connected()
    waiting = proto.request(Op.PING)
    d = proto.when_ready()
    proto.dataReceived(codec.encode_server_handshake(status))
    assert isinstance(failure_of(d), error_type)
    assert transport.disconnecting or transport.disconnected
    proto.connectionLost(Failure(ConnectionError("gone")))
    assert isinstance(failure_of(waiting), error_type)


def test_handshake_bad_magic_is_a_protocol_error() -> None:
    proto, transport = connected()
    d = proto.when_ready()
    proto.dataReceived(b"HTTP/1.1")
    assert transport.disconnected or transport.disconnecting
    proto.connectionLost(Failure(ConnectionError("gone")))
    assert isinstance(failure_of(d), ConnectionClosed)


# --- pipelining ------------------------------------------------------------------------------


def test_pipelined_requests_are_written_back_to_back_and_answered_in_order() -> None:
    proto, transport = ready()
    d1 = proto.request(Op.HEAD_BUCKET, codec.BucketRequest("a").encode())
    d2 = proto.request(Op.PING)
    d3 = proto.request(Op.HEAD_BUCKET, codec.BucketRequest("b").encode())
    frames = requests_written(transport.value())
    assert [(op, sid) for op, sid, _, _ in frames] == [
        (Op.HEAD_BUCKET, 1),
        (Op.PING, 2),
        (Op.HEAD_BUCKET, 3),
    ]
    assert proto.in_flight == 3
    info_a = codec.BucketInfo(bucket_id="1", name="a", created_at="2024-01-02T03:04:05Z")
    info_b = codec.BucketInfo(bucket_id="2", name="b", created_at="2024-01-02T03:04:05Z")
    order: list[int] = []
    for i, d in enumerate((d1, d2, d3)):
        d.addCallback(lambda r, i=i: order.append(i) or r)
    # All three answers in one read, split mid-frame afterwards too.
    wire = (
        codec.encode_response(1, info_a)
        + codec.encode_response(2)
        + codec.encode_response(3, info_b)
    )
    proto.dataReceived(wire[:20])
    assert order == []
    proto.dataReceived(wire[20:])
    assert order == [0, 1, 2]
    assert codec.BucketInfo.decode(result_of(d1).meta) == info_a  # type: ignore[attr-defined]
    assert codec.BucketInfo.decode(result_of(d3).meta) == info_b  # type: ignore[attr-defined]
    assert proto.in_flight == 0


def test_wrong_stream_id_fails_the_request_and_drops_the_connection() -> None:
    proto, transport = ready()
    d1 = proto.request(Op.PING)
    d2 = proto.request(Op.PING)
    proto.dataReceived(codec.encode_response(2))  # answer for the second first: not allowed
    assert transport.disconnected or transport.disconnecting
    proto.connectionLost(Failure(ConnectionError("aborted")))
    assert isinstance(failure_of(d1), ClientProtocolError)
    second = failure_of(d2)
    assert isinstance(second, ConnectionClosed)
    assert second.is_sent and not second.is_response_started


def test_unsolicited_response_is_a_protocol_error() -> None:
    proto, transport = ready()
    proto.dataReceived(codec.encode_response(1))
    assert transport.disconnected or transport.disconnecting


def test_stream_ids_wrap_past_u32_without_zero() -> None:
    proto, transport = ready()
    proto._next_stream_id = 0xFFFFFFFF
    proto.request(Op.PING)
    proto.request(Op.PING)
    assert [sid for _, sid, _, _ in requests_written(transport.value())] == [0xFFFFFFFF, 1]


# --- error frames ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "error_type"),
    [
        (Status.NOT_FOUND, "NoSuchKey", NotFound),
        (Status.CONFLICT, "BucketNotEmpty", Conflict),
        (Status.BAD_REQUEST, "InvalidArgument", BadRequest),
        (Status.BAD_REQUEST, "RateLimitExceeded", RateLimited),
        (Status.FORBIDDEN, "AccessDenied", Forbidden),
        (Status.INTERNAL, "InternalError", Internal),
        (0x42, "Weird", NativeError),
    ],
)
def test_error_frames_map_to_exceptions(status: int, code: str, error_type: type) -> None:
    proto, transport = ready()
    d = proto.request(Op.GET_OBJECT, codec.ObjectRequest("photos", "a.txt").encode())
    proto.dataReceived(codec.encode_error_frame(status, 1, "some message", code))
    error = failure_of(d)
    assert type(error) is error_type
    assert isinstance(error, NativeError)
    assert (error.status, error.message, error.code) == (status, "some message", code)
    # The connection survives an error frame.
    d2 = proto.request(Op.PING)
    proto.dataReceived(codec.encode_response(2))
    assert isinstance(result_of(d2), Response)
    assert not transport.disconnecting


def test_spec_error_vector_is_not_found() -> None:
    proto, _ = ready()
    proto._next_stream_id = 9
    d = proto.request(Op.GET_OBJECT, codec.ObjectRequest("photos", "a.txt").encode())
    assert proto.transport is not None
    proto.dataReceived(v.NO_SUCH_KEY_RESPONSE)
    error = failure_of(d)
    assert isinstance(error, NotFound) and error.code == "NoSuchKey"


def test_undecodable_error_meta_reads_unknown_error() -> None:
    proto, _ = ready()
    d = proto.request(Op.PING)
    proto.dataReceived(codec.encode_frame(Status.INTERNAL, 1, b"\x00"))
    error = failure_of(d)
    assert isinstance(error, Internal) and error.message == "unknown error"


def test_data_on_a_response_without_sink_is_skipped() -> None:
    proto, _ = ready()
    d1 = proto.request(Op.PING)
    d2 = proto.request(Op.PING)
    proto.dataReceived(codec.encode_frame(0, 1, b"", 5) + b"hello" + codec.encode_response(2))
    assert result_of(d1) == Response(1, b"", 5)
    assert result_of(d2) == Response(2, b"", 0)


# --- downloads -------------------------------------------------------------------------------


@implementer(IConsumer)
class PausingConsumer:
    """Pauses its producer after every write, as a slow disk would."""

    def __init__(self, pause_after_write: bool = True) -> None:
        self.chunks: list[bytes] = []
        self.producer: IPushProducer | None = None
        self.pause_after_write = pause_after_write
        self.events: list[str] = []

    def registerProducer(self, producer: IProducer, streaming: bool) -> None:
        assert streaming
        self.producer = producer  # type: ignore[assignment]
        self.events.append("register")

    def unregisterProducer(self) -> None:
        self.producer = None
        self.events.append("unregister")

    def write(self, data: bytes) -> None:
        self.chunks.append(data)
        if self.pause_after_write and self.producer is not None:
            self.producer.pauseProducing()


def object_info(size: int) -> codec.ObjectInfo:
    return codec.ObjectInfo(
        content_type="application/octet-stream",
        size=size,
        etag="e",
        checksum_sha256="c",
        last_modified="2024-01-02T03:04:05Z",
    )


def test_download_streams_into_a_consumer_with_pause_and_resume() -> None:
    proto, transport = ready()
    consumer = PausingConsumer()
    d = proto.request(Op.GET_OBJECT, codec.ObjectRequest("b", "k").encode(), sink=consumer)
    after = proto.request(Op.PING)
    body = b"x" * 100
    head = codec.encode_response(1, object_info(100), data_len=100)
    proto.dataReceived(head + body[:30])
    assert consumer.chunks == [body[:30]]
    assert transport.producerState == "paused"  # the socket stops while the consumer is busy
    # Bytes already in flight are held in the parser, not pushed at a paused consumer.
    proto.dataReceived(body[30:60])
    proto.dataReceived(body[60:] + codec.encode_response(2))
    assert consumer.chunks == [body[:30]]
    assert not d.called and not after.called
    assert consumer.producer is not None
    consumer.producer.resumeProducing()
    # The held bytes come out as one chunk, and the consumer pauses again before the end.
    assert consumer.chunks == [body[:30], body[30:]]
    assert transport.producerState == "paused"
    assert not d.called and not after.called
    consumer.pause_after_write = False
    consumer.producer.resumeProducing()
    assert b"".join(consumer.chunks) == body
    assert consumer.events == ["register", "unregister"]
    response = result_of(d)
    assert isinstance(response, Response)
    assert codec.ObjectInfo.decode(response.meta) == object_info(100)
    assert isinstance(result_of(after), Response)
    assert transport.producerState == "producing"


def test_refusing_head_skips_data_and_keeps_connection() -> None:
    proto, transport = ready()
    consumer = PausingConsumer(pause_after_write=False)

    def refuse(head: object) -> None:
        raise ValueError("too big")

    d = proto.request(Op.GET_OBJECT, b"", sink=consumer, on_head=refuse)
    proto.dataReceived(codec.encode_response(1, object_info(4), data_len=4) + b"abcd")
    assert isinstance(failure_of(d), ValueError)
    assert consumer.chunks == [] and consumer.events == []
    d2 = proto.request(Op.PING)
    proto.dataReceived(codec.encode_response(2))
    assert isinstance(result_of(d2), Response)


def test_consumer_stop_skips_rest_and_keeps_connection() -> None:
    proto, transport = ready()
    consumer = PausingConsumer(pause_after_write=False)
    d = proto.request(Op.GET_OBJECT, b"", sink=consumer)
    proto.dataReceived(codec.encode_response(1, object_info(8), data_len=8) + b"abcd")
    assert consumer.producer is not None
    consumer.producer.stopProducing()
    proto.dataReceived(b"efgh")
    assert consumer.chunks == [b"abcd"]
    assert isinstance(failure_of(d), DownloadStopped)
    d2 = proto.request(Op.PING)
    proto.dataReceived(codec.encode_response(2))
    assert isinstance(result_of(d2), Response)


def test_connection_lost_mid_download_fails_with_response_started() -> None:
    proto, _ = ready()
    consumer = PausingConsumer(pause_after_write=False)
    d = proto.request(Op.GET_OBJECT, b"", sink=consumer)
    proto.dataReceived(codec.encode_response(1, object_info(8), data_len=8) + b"abcd")
    proto.connectionLost(Failure(ConnectionError("reset")))
    error = failure_of(d)
    assert isinstance(error, ConnectionClosed) and error.is_response_started
    assert consumer.events == ["register", "unregister"]


# --- uploads ---------------------------------------------------------------------------------


@implementer(IPushProducer)
class ManualBody:
    """A body producer the test drives by hand."""

    def __init__(self, length: int) -> None:
        self.length = length
        self.consumer: IConsumer | None = None
        self.done: Deferred[None] = Deferred()
        self.is_paused = False
        self.is_stopped = False

    def startProducing(self, consumer: IConsumer) -> Deferred[None]:
        self.consumer = consumer
        return self.done

    def pauseProducing(self) -> None:
        self.is_paused = True

    def resumeProducing(self) -> None:
        self.is_paused = False

    def stopProducing(self) -> None:
        self.is_stopped = True


def test_upload_streams_from_a_producer_registered_with_the_transport() -> None:
    proto, transport = ready()
    body = ManualBody(10)
    meta = codec.PutObjectRequest(bucket="b", key="k").encode()
    d = proto.request(Op.PUT_OBJECT, meta, body=body)
    ping = proto.request(Op.PING)
    assert transport.producer is body and transport.streaming
    assert proto.is_streaming
    assert body.consumer is not None
    body.consumer.write(b"01234")
    # The transport's back-pressure reaches the body producer.
    transport.producer.pauseProducing()
    assert body.is_paused
    transport.producer.resumeProducing()
    frames_so_far = transport.value()
    assert codec.encode_frame(Op.PING, 2) not in frames_so_far  # waits behind the body
    body.consumer.write(b"56789")
    body.done.callback(None)
    assert transport.producer is None
    frames = requests_written(transport.value())
    assert frames == [
        (Op.PUT_OBJECT, 1, meta, b"0123456789"),
        (Op.PING, 2, b"", b""),
    ]
    result = codec.PutResult("etag", "sum")
    proto.dataReceived(codec.encode_response(1, result) + codec.encode_response(2))
    assert codec.PutResult.decode(result_of(d).meta) == result  # type: ignore[attr-defined]
    assert isinstance(result_of(ping), Response)


def test_bytes_body_is_written_with_its_frame() -> None:
    proto, transport = ready()
    meta = codec.PutObjectRequest(
        bucket="photos", key="a.txt", content_type="text/plain", metadata={"author": "ann"}
    ).encode()
    proto._next_stream_id = 7
    proto.request(Op.PUT_OBJECT, meta, body=b"hello")
    assert transport.value() == v.PUT_REQUEST


@pytest.mark.parametrize("written", [b"0123", b"0123456789AB"])
def test_body_of_the_wrong_length_aborts_the_connection(written: bytes) -> None:
    proto, transport = ready()
    body = ManualBody(10)
    d = proto.request(Op.PUT_OBJECT, b"", body=body)
    later = proto.request(Op.PING)
    assert body.consumer is not None
    body.consumer.write(written)
    if not transport.disconnecting:
        body.done.callback(None)
    assert transport.disconnecting or transport.disconnected
    assert b"AB" not in transport.value()
    proto.connectionLost(Failure(ConnectionError("aborted")))
    assert isinstance(failure_of(d), BodyError)
    error = failure_of(later)
    assert isinstance(error, ConnectionClosed) and not error.is_sent


def test_unknown_length_body_is_refused() -> None:
    proto, _ = ready()
    body = ManualBody(10)
    body.length = -1
    with pytest.raises(ValueError):
        proto.request(Op.PUT_OBJECT, b"", body=body)


def test_requests_after_close_fail_without_sending() -> None:
    proto, transport = ready()
    proto.connectionLost(Failure(ConnectionError("gone")))
    transport.clear()
    error = failure_of(proto.request(Op.PING))
    assert isinstance(error, ConnectionClosed) and not error.is_sent
    assert transport.value() == b""
