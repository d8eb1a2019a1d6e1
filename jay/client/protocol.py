"""NativeClientProtocol: one native connection, pipelined requests answered in order (§1.9).

Design (write it down before the code, as ``_dilation/outbound.py`` does):

* **Writes.** Requests are written in the order they are made. A request is its 17-byte header,
  its meta, then ``data_len`` body bytes. A body is either ``bytes`` (written at once) or a
  :class:`BodyProducer` (twisted.web's ``IBodyProducer`` shape). A producer is registered with the
  transport as a streaming producer, so the transport pauses it when its send buffer fills: an
  upload never holds more than the transport's buffer plus one producer chunk. While a body
  streams, later requests wait in ``_outbox``; their frames cannot interleave with the data.
  A producer that writes more or fewer bytes than it announced corrupts the stream, so the
  connection is aborted.
* **Reads.** The server answers strictly in request order (§1.9), so ``_awaiting`` is a FIFO and
  the response at its head must echo the head request's stream id; anything else is a protocol
  error that ends the connection. A response's data section goes into the request's ``sink``,
  an ``IConsumer``. The connection registers itself (as ``_ReadThrottle``) as the sink's push
  producer: when the sink pauses, the connection stops pulling parser events and pauses the
  transport, so a slow disk slows the socket instead of filling memory. Data on responses that
  have no sink (the Go client discards them too) is skipped inside the parser.
* **Errors.** An error frame fails only its own request (:class:`NativeError` subclasses keyed by
  status). A lost connection fails every request still waiting with :class:`ConnectionClosed`,
  which says whether the request was sent and whether any response byte arrived: the pool
  retries an idempotent request once when neither response bytes nor side effects can have
  been observed.

This module imports the sans-IO codec and parser only (never the server or storage).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, auto
from typing import Any
from typing import Protocol as TypingProtocol

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IConsumer, IProducer, IPushProducer
from twisted.internet.protocol import Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from jay.native.codec import (
    CODE_RATE_LIMITED,
    HandshakeStatus,
    Op,
    Status,
    decode_error_info_lenient,
    encode_client_handshake,
    encode_frame,
)
from jay.native.parser import (
    ClientFrameParser,
    DataChunk,
    HandshakeReply,
    ProtocolError,
    ResponseEnd,
    ResponseHead,
)

log = Logger()

# --- exceptions ------------------------------------------------------------------------------


class NativeError(Exception):
    """An error frame from the server (§1.8): non-zero ``status``, ``message`` and ``code``."""

    def __init__(self, status: int, message: str, code: str) -> None:
        super().__init__(f"{message} ({code})" if code else message)
        self.status = status
        self.message = message
        self.code = code


class NotFound(NativeError):
    """Status 01: NoSuchBucket, NoSuchKey, NoSuchUpload."""


class Conflict(NativeError):
    """Status 02: BucketAlreadyExists, BucketNotEmpty."""


class BadRequest(NativeError):
    """Status 03: invalid arguments, unknown op."""


class RateLimited(BadRequest):
    """Status 03 with code RateLimitExceeded (§1.13); a BadRequest to code that only checks 03."""


class Forbidden(NativeError):
    """Status 04: AccessDenied."""


class Internal(NativeError):
    """Status 05: the server failed."""


_STATUS_ERRORS: dict[int, type[NativeError]] = {
    Status.NOT_FOUND: NotFound,
    Status.CONFLICT: Conflict,
    Status.BAD_REQUEST: BadRequest,
    Status.FORBIDDEN: Forbidden,
    Status.INTERNAL: Internal,
}


def error_from_frame(status: int, meta: bytes) -> NativeError:
    """The exception for an error frame; undecodable meta reads "unknown error" as in Go."""
    info = decode_error_info_lenient(meta)
    if status == Status.BAD_REQUEST and info.code == CODE_RATE_LIMITED:
        return RateLimited(status, info.message, info.code)
    return _STATUS_ERRORS.get(status, NativeError)(status, info.message, info.code)


class NativeConnectionError(Exception):
    """The connection (not the server's answer) failed."""


class ConnectionClosed(NativeConnectionError):
    """The connection ended before the request's response was complete.

    ``is_sent``: the request's first byte reached the transport. ``is_response_started``: some
    of its response arrived. A request that was never sent, or got no response byte from a
    connection that died, may be retried when it is idempotent.
    """

    def __init__(self, reason: str, *, is_sent: bool, is_response_started: bool) -> None:
        super().__init__(reason)
        self.is_sent = is_sent
        self.is_response_started = is_response_started


class ClientProtocolError(NativeConnectionError):
    """The server's bytes broke the framing (bad stream id, unsolicited frame, bad header)."""


class HandshakeFailed(NativeConnectionError):
    """The handshake reply was not OK (§1.2)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AuthenticationFailed(HandshakeFailed):
    """Handshake status 01: unknown, revoked or expired token, or a wrong secret."""


class VersionMismatch(HandshakeFailed):
    """Handshake status 02: the server could not parse our preamble."""


class BodyError(NativeConnectionError):
    """An upload body produced more or fewer bytes than announced, or failed."""


class DownloadStopped(NativeConnectionError):
    """The sink stopped the response's data section (``stopProducing``); the rest was skipped."""


# --- request pieces --------------------------------------------------------------------------


class BodyProducer(TypingProtocol):
    """twisted.web's ``IBodyProducer`` shape: a known ``length`` and a push producer."""

    length: Any  # int; twisted's FileBodyProducer declares it loosely

    def startProducing(self, consumer: IConsumer) -> Deferred[None]: ...

    def pauseProducing(self) -> None: ...

    def resumeProducing(self) -> None: ...

    def stopProducing(self) -> None: ...


RequestBody = bytes | BodyProducer


@dataclass(frozen=True, slots=True)
class Response:
    """A success response: its meta (decoded by the caller per op) and data length."""

    stream_id: int
    meta: bytes
    data_len: int


HeadHook = Callable[[ResponseHead], None]


class _Pending:
    """One request from ``request()`` until its response ends or the connection dies."""

    __slots__ = (
        "stream_id",
        "frame",
        "body",
        "sink",
        "on_head",
        "deferred",
        "is_sent",
        "is_response_started",
        "error",
        "head",
        "is_sink_registered",
    )

    def __init__(
        self,
        stream_id: int,
        frame: bytes,
        body: RequestBody | None,
        sink: IConsumer | None,
        on_head: HeadHook | None,
    ) -> None:
        self.stream_id = stream_id
        self.frame = frame
        self.body = body
        self.sink = sink
        self.on_head = on_head
        self.deferred: Deferred[Response] = Deferred()
        self.is_sent = False
        self.is_response_started = False
        self.error: BaseException | None = None
        self.head: ResponseHead | None = None
        self.is_sink_registered = False


@implementer(IConsumer)
class _BodyWriter:
    """The consumer a body producer writes into: the transport, held to the announced length."""

    def __init__(self, protocol: NativeClientProtocol, length: int) -> None:
        self._protocol = protocol
        self.remaining = length
        self.is_overrun = False

    def registerProducer(self, producer: IProducer, streaming: bool) -> None:
        pass  # the protocol already registered the producer with the transport

    def unregisterProducer(self) -> None:
        pass

    def write(self, data: bytes) -> None:
        if self.is_overrun:
            return
        if len(data) > self.remaining:
            self.is_overrun = True
            self._protocol._abort_upload(BodyError("upload body longer than its length"))
            return
        self.remaining -= len(data)
        transport = self._protocol.transport
        if transport is not None:
            transport.write(data)


@implementer(IPushProducer)
class _ReadThrottle:
    """What a sink sees as its producer: pausing it pauses reading from the socket."""

    def __init__(self, protocol: NativeClientProtocol) -> None:
        self._protocol = protocol

    def pauseProducing(self) -> None:
        self._protocol._pause_reading()

    def resumeProducing(self) -> None:
        self._protocol._resume_reading()

    def stopProducing(self) -> None:
        self._protocol._stop_download()


class _State(Enum):
    CONNECTING = auto()  # no transport yet
    HANDSHAKE = auto()  # preamble written, waiting for the 8-byte reply
    READY = auto()  # requests flow
    CLOSED = auto()  # connectionLost ran (or a fatal error is closing the transport)


class NativeClientProtocol(Protocol):
    """One authenticated native connection with pipelined requests (§1.2, §1.9)."""

    def __init__(self, token_id: str, secret: str) -> None:
        self._credentials = encode_client_handshake(token_id, secret)
        self._parser = ClientFrameParser()
        self._state = _State.CONNECTING
        self._next_stream_id = 1
        self._outbox: deque[_Pending] = deque()  # not yet written
        self._awaiting: deque[_Pending] = deque()  # every unanswered request, in order
        self._uploading: _Pending | None = None
        self._is_read_paused = False
        self._is_processing = False
        self._throttle = _ReadThrottle(self)
        self._handshake = _Outcome()
        self._closed = _Outcome()
        self._close_reason = "connection closed"
        # Called once when the connection ends, before its waiting requests fail (so a retry
        # never lands on it); the pool drops the connection then.
        self.on_connection_lost: Callable[[NativeClientProtocol], None] | None = None

    # -- public --------------------------------------------------------------------------------

    def when_ready(self) -> Deferred[None]:
        """Fires when the handshake succeeded; fails with HandshakeFailed/ConnectionClosed."""
        return self._handshake.waiter()

    def when_closed(self) -> Deferred[None]:
        return self._closed.waiter()

    @property
    def is_ready(self) -> bool:
        return self._state is _State.READY

    @property
    def in_flight(self) -> int:
        """Requests made on this connection whose response has not ended."""
        return len(self._awaiting)

    @property
    def is_streaming(self) -> bool:
        """A body is being uploaded or a response's data is going into a sink."""
        if self._uploading is not None:
            return True
        return bool(self._awaiting) and self._awaiting[0].is_sink_registered

    def request(
        self,
        op: Op | int,
        meta: bytes = b"",
        *,
        body: RequestBody | None = None,
        sink: IConsumer | None = None,
        on_head: HeadHook | None = None,
    ) -> Deferred[Response]:
        """Send one request; the Deferred fires with its Response or a NativeError.

        ``sink`` receives a success response's data section (GetObject) with this connection
        registered as its streaming producer. ``on_head`` sees the response head before any data
        and may raise to refuse it: the data is then skipped and the request fails with that
        exception.
        """
        if self._state is _State.CLOSED:
            return _failed(
                ConnectionClosed(self._close_reason, is_sent=False, is_response_started=False)
            )
        data_len = _body_length(body)
        stream_id = self._next_stream_id
        self._next_stream_id = (stream_id % 0xFFFFFFFF) + 1  # u32, skipping 0 after the wrap
        frame = encode_frame(int(op), stream_id, meta, data_len)
        pending = _Pending(stream_id, frame, body, sink, on_head)
        self._awaiting.append(pending)
        self._outbox.append(pending)
        self._pump_writes()
        return pending.deferred

    def close(self) -> Deferred[None]:
        """Close the connection; waiting requests fail with ConnectionClosed."""
        d = self.when_closed()
        if self.transport is not None and self._state is not _State.CLOSED:
            self._close_reason = "connection closed by the client"
            self.transport.loseConnection()
        elif self.transport is None:
            self._closed.succeed()
        return d

    # -- twisted callbacks ---------------------------------------------------------------------

    def connectionMade(self) -> None:
        transport = self.transport
        assert transport is not None
        set_no_delay = getattr(transport, "setTcpNoDelay", None)
        if set_no_delay is not None:
            set_no_delay(True)  # small frames go out one at a time (§1.1)
        self._state = _State.HANDSHAKE
        transport.write(self._credentials)

    def dataReceived(self, data: bytes) -> None:
        self._parser.receive_data(data)
        self._process_events()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self._closed.is_done:
            return
        self._state = _State.CLOSED
        why = self._close_reason
        if reason is not None and why == "connection closed":
            why = f"connection closed: {reason.getErrorMessage()}"
        if not self._handshake.is_done:
            self._handshake.fail(ConnectionClosed(why, is_sent=False, is_response_started=False))
        uploading = self._uploading
        if uploading is not None and not isinstance(uploading.body, bytes | None):
            self._uploading = None
            _stop_quietly(uploading.body)
        if self.on_connection_lost is not None:
            self.on_connection_lost(self)  # first, so retries never pick this connection
        waiting = list(self._awaiting)
        self._awaiting.clear()
        self._outbox.clear()
        for pending in waiting:
            if pending.is_sink_registered and pending.sink is not None:
                pending.is_sink_registered = False
                pending.sink.unregisterProducer()
            error = pending.error or ConnectionClosed(
                why, is_sent=pending.is_sent, is_response_started=pending.is_response_started
            )
            pending.deferred.errback(error)
        self._closed.succeed()

    # -- writing -------------------------------------------------------------------------------

    def _pump_writes(self) -> None:
        transport = self.transport
        while self._state is _State.READY and self._uploading is None and self._outbox:
            assert transport is not None
            pending = self._outbox.popleft()
            pending.is_sent = True
            body = pending.body
            if body is None or isinstance(body, bytes):
                transport.write(pending.frame + body if body else pending.frame)
                continue
            transport.write(pending.frame)
            self._start_upload(pending, body)

    def _start_upload(self, pending: _Pending, producer: BodyProducer) -> None:
        transport = self.transport
        assert transport is not None
        self._uploading = pending
        writer = _BodyWriter(self, int(producer.length))
        # The transport pauses the producer while its send buffer is full (back-pressure).
        IConsumer(transport).registerProducer(producer, True)  # type: ignore[arg-type]
        try:
            done = producer.startProducing(writer)
        except Exception as e:
            self._abort_upload(BodyError(f"upload body failed: {e}"))
            return
        done.addCallbacks(
            lambda _: self._upload_finished(pending, writer),
            lambda f: self._upload_failed(pending, f),
        )

    def _upload_finished(self, pending: _Pending, writer: _BodyWriter) -> None:
        if self._uploading is not pending or writer.is_overrun:
            return
        if writer.remaining:
            self._abort_upload(BodyError("upload body shorter than its length"))
            return
        self._uploading = None
        if self.transport is not None:
            IConsumer(self.transport).unregisterProducer()
        self._pump_writes()

    def _upload_failed(self, pending: _Pending, failure: Failure) -> None:
        if self._uploading is pending:
            self._abort_upload(BodyError(f"upload body failed: {failure.getErrorMessage()}"))

    def _abort_upload(self, error: BodyError) -> None:
        """Half a body cannot be taken back: fail the request and drop the connection."""
        pending = self._uploading
        if pending is None:
            return
        pending.error = error
        if not isinstance(pending.body, bytes | None):
            self._uploading = None
            if self.transport is not None:
                IConsumer(self.transport).unregisterProducer()
            _stop_quietly(pending.body)
        self._fatal(str(error))

    # -- reading -------------------------------------------------------------------------------

    def _process_events(self) -> None:
        if self._is_processing:
            return  # re-entered from a sink or a callback; the outer loop continues
        self._is_processing = True
        try:
            while not self._is_read_paused and self._state is not _State.CLOSED:
                event = self._parser.next_event()
                if event is None:
                    return
                if isinstance(event, DataChunk):
                    self._on_data(event)
                elif isinstance(event, ResponseHead):
                    self._on_head(event)
                elif isinstance(event, ResponseEnd):
                    self._on_end()
                elif isinstance(event, HandshakeReply):
                    self._on_handshake(event.status)
                else:
                    assert isinstance(event, ProtocolError)
                    self._fatal(f"protocol error: {event.reason}", is_head_at_fault=True)
        finally:
            self._is_processing = False

    def _on_handshake(self, status: int) -> None:
        if status == HandshakeStatus.OK:
            self._state = _State.READY
            self._handshake.succeed()
            self._pump_writes()
            return
        error: HandshakeFailed
        if status == HandshakeStatus.AUTH_FAILED:
            error = AuthenticationFailed("authentication failed", status)
        elif status == HandshakeStatus.VERSION_MISMATCH:
            error = VersionMismatch("protocol version mismatch", status)
        else:
            error = HandshakeFailed(f"handshake failed with status {status}", status)
        self._handshake.fail(error)
        for pending in self._awaiting:
            pending.error = error
        self._fatal(str(error))

    def _on_head(self, head: ResponseHead) -> None:
        if not self._awaiting or not self._awaiting[0].is_sent:
            self._fatal("response without a request", is_head_at_fault=True)
            return
        pending = self._awaiting[0]
        if head.stream_id != pending.stream_id:
            self._fatal(
                f"response stream id {head.stream_id}, expected {pending.stream_id}",
                is_head_at_fault=True,
            )
            return
        pending.is_response_started = True
        pending.head = head
        if head.status != Status.OK:
            pending.error = error_from_frame(head.status, head.meta)
        elif pending.on_head is not None:
            try:
                pending.on_head(head)
            except Exception as e:
                pending.error = e
        if head.data_len == 0:
            return
        if pending.error is not None or pending.sink is None:
            self._parser.skip_data()
            return
        pending.is_sink_registered = True
        pending.sink.registerProducer(self._throttle, True)

    def _on_data(self, chunk: DataChunk) -> None:
        pending = self._awaiting[0]
        if not pending.is_sink_registered or pending.sink is None:
            return
        try:
            pending.sink.write(chunk.data)
        except Exception as e:
            pending.error = e
            self._unregister_sink(pending)
            if self._parser.is_in_data:
                self._parser.skip_data()

    def _on_end(self) -> None:
        pending = self._awaiting.popleft()
        self._unregister_sink(pending)
        if self._is_read_paused:
            self._resume_reading()  # a pause belongs to the sink that has just finished
        if pending.error is not None:
            pending.deferred.errback(pending.error)
            return
        head = pending.head
        assert head is not None
        pending.deferred.callback(Response(head.stream_id, head.meta, head.data_len))

    def _unregister_sink(self, pending: _Pending) -> None:
        if pending.is_sink_registered and pending.sink is not None:
            pending.is_sink_registered = False
            pending.sink.unregisterProducer()

    # -- the sink's producer side ----------------------------------------------------------------

    def _pause_reading(self) -> None:
        if self._is_read_paused or self._state is _State.CLOSED:
            return
        self._is_read_paused = True
        if self.transport is not None:
            self.transport.pauseProducing()  # type: ignore[attr-defined]

    def _resume_reading(self) -> None:
        if not self._is_read_paused:
            return
        self._is_read_paused = False
        if self._state is _State.CLOSED:
            return
        if self.transport is not None:
            self.transport.resumeProducing()  # type: ignore[attr-defined]
        self._process_events()

    def _stop_download(self) -> None:
        """The sink wants no more: skip the rest of the data, keep the connection usable."""
        if not self._awaiting or not self._awaiting[0].is_sink_registered:
            return
        pending = self._awaiting[0]
        pending.error = pending.error or DownloadStopped("download stopped by its consumer")
        self._unregister_sink(pending)
        if self._parser.is_in_data:
            self._parser.skip_data()
        self._resume_reading()

    # -- failure -------------------------------------------------------------------------------

    def _fatal(self, reason: str, *, is_head_at_fault: bool = False) -> None:
        """End the connection now; connectionLost fails every waiting request.

        ``is_head_at_fault``: the server's bytes for the oldest request were bad, so that
        request fails with ClientProtocolError; the rest see ConnectionClosed (retryable).
        """
        if self._state is _State.CLOSED:
            return
        log.debug("Native connection dropped: {reason}", reason=reason)
        self._close_reason = reason
        self._state = _State.CLOSED
        if is_head_at_fault and self._awaiting and self._awaiting[0].error is None:
            self._awaiting[0].error = ClientProtocolError(reason)
        transport = self.transport
        if transport is not None:
            abort = getattr(transport, "abortConnection", None)
            if abort is not None:
                abort()
            else:
                transport.loseConnection()


def _body_length(body: RequestBody | None) -> int:
    if body is None:
        return 0
    if isinstance(body, bytes):
        return len(body)
    length = body.length
    if not isinstance(length, int) or length < 0:
        raise ValueError("a native request body needs a known length (data_len, §1.3)")
    return length


def _stop_quietly(producer: BodyProducer) -> None:
    try:
        producer.stopProducing()
    except Exception:
        # twisted's FileBodyProducer raises TaskDone/TaskStopped when already finished.
        pass


def _failed(error: BaseException) -> Deferred[Response]:
    d: Deferred[Response] = Deferred()
    d.errback(error)
    return d


class _Outcome:
    """A one-shot event many may wait on; an unobserved failure is not an unhandled error."""

    __slots__ = ("_error", "_is_done", "_waiters")

    def __init__(self) -> None:
        self._is_done = False
        self._error: BaseException | None = None
        self._waiters: list[Deferred[None]] = []

    @property
    def is_done(self) -> bool:
        return self._is_done

    def waiter(self) -> Deferred[None]:
        d: Deferred[None] = Deferred()
        if not self._is_done:
            self._waiters.append(d)
        elif self._error is None:
            d.callback(None)
        else:
            d.errback(self._error)
        return d

    def succeed(self) -> None:
        self._finish(None)

    def fail(self, error: BaseException) -> None:
        self._finish(error)

    def _finish(self, error: BaseException | None) -> None:
        if self._is_done:
            return
        self._is_done = True
        self._error = error
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            if error is None:
                d.callback(None)
            else:
                d.errback(error)
