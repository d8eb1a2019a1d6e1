"""Native protocol v1 server: the only native module with a transport (JAY_SPEC §1).

Design
------
A connection is a handshake followed by a strictly sequential request/response loop (§1.1,
§1.9). Bytes go into a :class:`ServerFrameParser`; ``_pump`` pulls events one at a time and only
as far as the current exchange allows, so whatever a pipelining client sends ahead stays in the
parser's buffer. While an exchange is in flight and that buffer passes ``READ_HIGH_WATER_BYTES``
the transport is paused, which bounds memory per connection by the meta limit plus one read.

Every request is one ``_Exchange`` handled by a coroutine. Its data section is in one of four
states: untouched (HOLD, the handler is still checking), streamed into a sink (STREAM, for
PutObject/UploadPart after authorization), skipped by the parser (DRAIN, a rejection, §1.10) or
finished (DONE, the ``RequestEnd`` was pulled). The next request starts only when the handler has
finished *and* the data section is DONE, so responses go out in request order and a GetObject
body is complete before the next response.

Back-pressure
-------------
* Uploads: the ``StagingWriter`` pauses the producer registered with it (``_BodyFlow``); that
  stops the pump from pulling data chunks and, once the parser holds more than the high-water
  mark, pauses the transport. Resuming pumps again.
* Responses: ``_WriteFlow`` is registered with the transport while no GetObject streams; when the
  transport's send buffer is full no new request is started, so a client that pipelines without
  reading cannot grow our send buffer. A GetObject swaps in the storage's push producer, which the
  transport pauses directly.

Timeouts (injected clock): handshake (10 s, §1.2); idle between frames (configurable, 300 s by
default, §8.2 item 27); a frame whose header and meta have not fully arrived within
``frame_timeout_seconds`` of its first byte (slow-loris, §8.2 item 17); no data-section progress
for ``data_timeout_seconds`` while we are not the ones pausing.
"""

from __future__ import annotations

import dataclasses
import heapq
import random as _random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum, auto
from typing import Any
from typing import Protocol as TypingProtocol

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.interfaces import (
    IAddress,
    IDelayedCall,
    IPushProducer,
    IReactorTime,
    ISSLTransport,
)
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure
from zope.interface import implementer

from jay import errors
from jay.auth.policy import StaticConditions
from jay.auth.tokens import Principal, bearer_cache_key
from jay.core.access import AccessControl
from jay.directsend import send_now
from jay.lifecycle import Readiness
from jay.logs import is_enabled
from jay.native import codec
from jay.native.codec import (
    DRAIN_LIMIT_BYTES,
    MAX_META_BYTES,
    OPS_WITH_REQUEST_DATA,
    CodecError,
    HandshakeStatus,
    MetaValue,
    Op,
    Status,
)
from jay.native.errors import (
    ACCESS_DENIED,
    INVALID_REQUEST,
    RATE_LIMITED,
    UNKNOWN_OP,
    NativeError,
    native_error_for,
)
from jay.native.parser import (
    DataChunk,
    Handshake,
    HandshakeError,
    ProtocolError,
    RequestEnd,
    RequestHead,
    ServerFrameParser,
)
from jay.storage import names
from jay.storage.api import (
    BucketInfo,
    CompletedPart,
    ListedObject,
    ObjectAttributes,
    StagingWriter,
    Storage,
)
from jay.storage.api import ObjectInfo as StoredObject
from jay.storage.encryption import MODE_SSE_C, Sealing, parse_record
from jay.storage.listing import position_after_prefix

# Bodies at least this large are read BODY_READ_BYTES per socket read (see _receive_body), as
# the S3 front end does (jay.s3.http).
LARGE_BODY_BYTES = 1024 * 1024
BODY_READ_BYTES = 1024 * 1024

log = Logger(namespace="jay.native")

DEFAULT_IDLE_TIMEOUT_SECONDS = 300.0  # upstream's 60 s strands the Go client's pool (§1.9)
DEFAULT_HANDSHAKE_TIMEOUT_SECONDS = 10.0  # §1.2
DEFAULT_FRAME_TIMEOUT_SECONDS = 30.0  # header + up to 1 MiB of meta; upstream has none (§1.10)
DEFAULT_DATA_TIMEOUT_SECONDS = 60.0  # silence inside a data section that we did not cause
DEFAULT_MAX_CONNECTIONS = 1000  # §1.1
# Pause reading once this much unparsed input waits behind a request in flight: one maximal
# meta plus a header always fits, so a pipelined frame is never cut off by our own pause.
READ_HIGH_WATER_BYTES = MAX_META_BYTES + 64 * 1024
# ListObjects pages are cut so the response meta stays within the Go client's 1 MiB limit
# (§1.12, §8.2 item 26); room is kept for next_start_after, at most ~1 KiB past a prefix.
_NEXT_START_AFTER_RESERVE = 4096
_OCTET_STREAM = "application/octet-stream"
MAX_LIST_KEYS = 10_000
DEFAULT_LIST_KEYS = 1000

# 05 messages upstream uses per op (§1.8); other ops say "internal error".
_INTERNAL_MESSAGES: dict[int, str] = {
    Op.PUT_OBJECT: "failed to store object",
    Op.GET_OBJECT: "failed to read object",
    Op.UPLOAD_PART: "failed to write part",
    Op.COMPLETE_MULTIPART_UPLOAD: "failed to complete",
}


class BearerVerifier(TypingProtocol):
    """What the server needs from ``jay.auth.tokens.TokenVerifier``."""

    def verify_bearer(self, token_id: str, secret: str) -> Deferred[Principal]: ...

    def cached_bearer(self, cache_key: str) -> Principal | None: ...


class RateLimiter(TypingProtocol):
    """A token bucket keyed by token id (JAY_SPEC §3.11); False means reject (§1.13)."""

    def allow(self, key: str) -> bool: ...


class _Reject(Exception):
    """An answer decided by the server itself, not by a domain exception."""

    def __init__(self, error: NativeError) -> None:
        super().__init__(error.message)
        self.error = error


class _ResponseTooLarge(Exception):
    """A response meta over 1 MiB would make the Go client drop the connection (§1.9)."""


class _State(Enum):
    HANDSHAKE = auto()  # waiting for the preamble and credentials
    AUTHENTICATING = auto()  # credentials are being verified
    READY = auto()  # request loop
    CLOSED = auto()  # closing or closed: nothing more is read or written


class _Body(Enum):
    HOLD = auto()  # data section untouched; the handler has not decided yet
    STREAM = auto()  # data chunks go to the exchange's sink
    DRAIN = auto()  # the parser discards the rest (§1.10)
    DONE = auto()  # RequestEnd pulled


class _Timer(Enum):
    IDLE = auto()
    FRAME = auto()
    DATA = auto()


def _metric_name(op: Op) -> str:
    """PUT_OBJECT → PutObject: the operation names the S3 side uses, so metrics line up."""
    return "".join(part.capitalize() for part in op.name.split("_"))


# Built once: every finished request is counted under its name.
_METRIC_NAMES: dict[int, str] = {int(op): _metric_name(op) for op in Op}


_OK = int(Status.OK)  # a plain int: exchange.status keys _HTTP_LIKE_STATUS once per request
# Native status bytes as HTTP-style codes for the per-status-class metrics (§1.4).
_HTTP_LIKE_STATUS = {0x00: 200, 0x01: 404, 0x02: 409, 0x03: 400, 0x04: 403, 0x05: 500, 0x06: 429}


@dataclass(slots=True, eq=False)
class _Exchange:
    head: RequestHead
    started: float
    body: _Body = _Body.HOLD
    sink: Any = None  # the StagingWriter while STREAM
    body_done: Deferred[None] | None = None
    task: Deferred[None] | None = None
    is_answered: bool = False  # a response header went out
    is_complete: bool = False  # the handler finished
    close_after: bool = False  # end the connection once answered (revoked token)
    status: int = -1
    bucket: str = ""
    key: str = ""
    bytes_in: int = 0
    bytes_out: int = 0
    op_name: str = field(default="")


@implementer(IPushProducer)
class _BodyFlow:
    """Registered with a StagingWriter: its water marks pause and resume our reading."""

    def __init__(self, protocol: NativeServerProtocol) -> None:
        self._protocol = protocol

    def pauseProducing(self) -> None:
        self._protocol._set_sink_paused(True)

    def resumeProducing(self) -> None:
        self._protocol._set_sink_paused(False)

    def stopProducing(self) -> None:
        self._protocol._abort("upload consumer stopped")


@implementer(IPushProducer)
class _WriteFlow:
    """Registered with the transport: a full send buffer stops new requests from starting."""

    def __init__(self, protocol: NativeServerProtocol) -> None:
        self._protocol = protocol

    def pauseProducing(self) -> None:
        self._protocol._set_write_paused(True)

    def resumeProducing(self) -> None:
        self._protocol._set_write_paused(False)

    def stopProducing(self) -> None:
        pass  # connectionLost does the cleanup


class NativeServerProtocol(Protocol):
    def __init__(self, factory: NativeServerFactory) -> None:
        self._factory = factory
        self._clock = factory.clock
        self._parser = ServerFrameParser()
        self._state = _State.HANDSHAKE
        self._token_id = ""
        self._secret = ""
        self._bearer_key = ""  # bearer_cache_key of the credentials, hashed once
        self._principal: Principal | None = None
        self._exchange: _Exchange | None = None
        self._is_pumping = False
        self._is_sink_paused = False
        self._is_write_paused = False
        self._is_reading_paused = False
        self._is_write_flow_registered = False
        self._body_flow = _BodyFlow(self)
        self._write_flow = _WriteFlow(self)
        self._handshake_timer: IDelayedCall | None = None
        self._timer: IDelayedCall | None = None
        self._timer_kind: _Timer | None = None
        self._peer_host = ""

    # --- Twisted callbacks ---------------------------------------------------------------------

    def connectionMade(self) -> None:
        self._factory._connections.add(self)
        if self._factory.metrics is not None:
            self._factory.metrics.connection_opened("native")
        transport: Any = self.transport
        # Small frames are flushed one at a time (§1.1); keep-alive finds dead peers.
        for name in ("setTcpNoDelay", "setTcpKeepAlive"):
            setter = getattr(transport, name, None)
            if setter is not None:
                try:
                    setter(True)
                except OSError:
                    pass
        peer: IAddress | None = transport.getPeer()
        self._peer_host = str(getattr(peer, "host", ""))
        transport.registerProducer(self._write_flow, True)
        self._is_write_flow_registered = True
        self._handshake_timer = self._clock.callLater(
            self._factory.handshake_timeout_seconds, self._handshake_expired
        )

    def dataReceived(self, data: bytes) -> None:
        if self._state is _State.CLOSED:
            return
        self._parser.receive_data(data)
        if self._timer_kind is _Timer.DATA and self._timer is not None:
            self._timer.reset(self._factory.data_timeout_seconds)
        self._pump()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self._factory.metrics is not None and self in self._factory._connections:
            self._factory.metrics.connection_closed("native")
        self._state = _State.CLOSED
        self._factory._connection_closed(self)
        self._cancel_handshake_timer()
        self._set_timer(None, cancel=True)
        self._secret = ""
        self._bearer_key = ""
        exchange, self._exchange = self._exchange, None
        if exchange is not None and exchange.task is not None and not exchange.is_complete:
            exchange.task.cancel()

    # --- connection state ----------------------------------------------------------------------

    def _is_closed(self) -> bool:
        return self._state is _State.CLOSED

    def _close(self) -> None:
        """Flush what was written (earlier responses, an error frame), then close."""
        if self._state is _State.CLOSED:
            return
        self._state = _State.CLOSED
        self._cancel_handshake_timer()
        self._set_timer(None, cancel=True)
        # A registered producer keeps a Twisted transport open after loseConnection().
        self._unregister_write_flow()
        assert self.transport is not None
        self.transport.loseConnection()

    def _abort(self, why: str) -> None:
        """Drop the connection at once: a response is half written and cannot be finished."""
        log.debug("Aborting native connection from {peer}: {why}", peer=self._peer_host, why=why)
        self._state = _State.CLOSED
        self._cancel_handshake_timer()
        self._set_timer(None, cancel=True)
        transport: Any = self.transport
        transport.abortConnection()

    def _write(self, data: bytes) -> None:
        """Every frame we write goes here: straight to the socket when nothing is queued before
        it (jay.directsend), so a small response costs no reactor turn; GetObject bodies go
        through the storage's producer, which writes after the header and so keeps the order."""
        if self._state is not _State.CLOSED:
            send_now(self.transport, data)

    # --- flow control --------------------------------------------------------------------------

    def _set_sink_paused(self, paused: bool) -> None:
        self._is_sink_paused = paused
        if paused:
            self._update_flow()
        else:
            self._pump()

    def _set_write_paused(self, paused: bool) -> None:
        self._is_write_paused = paused
        if not paused:
            self._pump()

    def _update_flow(self) -> None:
        """Pause reading while bytes pile up that nobody will take soon; resume otherwise."""
        if self._state is _State.CLOSED:
            return
        exchange = self._exchange
        # Busy: nobody pulls events now, so what arrives only piles up in the parser.
        is_busy = (
            exchange is not None or self._state is _State.AUTHENTICATING or self._is_write_paused
        )
        should_pause = (
            exchange is not None and exchange.body is _Body.STREAM and self._is_sink_paused
        ) or (is_busy and self._parser.buffered_bytes >= READ_HIGH_WATER_BYTES)
        transport: Any = self.transport
        if should_pause and not self._is_reading_paused:
            self._is_reading_paused = True
            transport.pauseProducing()
        elif not should_pause and self._is_reading_paused:
            self._is_reading_paused = False
            transport.resumeProducing()
        self._update_timer()

    # --- timers --------------------------------------------------------------------------------

    def _cancel_handshake_timer(self) -> None:
        timer, self._handshake_timer = self._handshake_timer, None
        if timer is not None and timer.active():
            timer.cancel()

    def _handshake_expired(self) -> None:
        self._handshake_timer = None
        if self._state is _State.HANDSHAKE:
            log.info("Native handshake from {peer} timed out", peer=self._peer_host)
            # §1.2: "a 02 may be attempted" before dropping the connection.
            self._write(codec.encode_server_handshake(HandshakeStatus.VERSION_MISMATCH))
            self._close()
        elif self._state is _State.AUTHENTICATING:
            self._abort("handshake timed out during authentication")

    def _set_timer(self, kind: _Timer | None, *, cancel: bool = False) -> None:
        """Arm the timer for ``kind``, or disarm it (None).

        Every request flips the connection between idle (a timer) and busy (none). Disarming
        therefore only forgets the kind: the DelayedCall stays scheduled and is ignored if it
        fires, and the next arming moves it with ``reset`` instead of a cancel and a new
        callLater per request. ``cancel=True`` really cancels it (the connection is closing)."""
        if kind is None:
            self._timer_kind = None
            if cancel:
                timer, self._timer = self._timer, None
                if timer is not None and timer.active():
                    timer.cancel()
            return
        if kind is self._timer_kind and self._timer is not None:
            return
        factory = self._factory
        if kind is _Timer.IDLE:
            seconds = factory.idle_timeout_seconds
        elif kind is _Timer.FRAME:
            seconds = factory.frame_timeout_seconds
        else:
            seconds = factory.data_timeout_seconds
        if seconds is None or seconds <= 0:
            self._set_timer(None, cancel=True)
            return
        self._timer_kind = kind
        timer = self._timer
        if timer is not None and timer.active():
            timer.reset(seconds)
        else:
            self._timer = self._clock.callLater(seconds, self._timer_expired)

    def _update_timer(self) -> None:
        if self._state is not _State.READY:
            self._set_timer(None)
            return
        exchange = self._exchange
        if exchange is None:
            if self._is_write_paused:
                self._set_timer(None)  # the client is slow to read, not slow to send
            elif self._parser.buffered_bytes == 0:
                self._set_timer(_Timer.IDLE)
            else:
                self._set_timer(_Timer.FRAME)
        elif exchange.body in (_Body.STREAM, _Body.DRAIN) and not self._is_reading_paused:
            self._set_timer(_Timer.DATA)
        else:
            self._set_timer(None)

    def _timer_expired(self) -> None:
        kind = self._timer_kind
        self._timer = None
        self._timer_kind = None
        if kind is None or self._state is _State.CLOSED:
            return  # disarmed meanwhile (see _set_timer)
        log.info(
            "Closing native connection from {peer}: {kind} timeout",
            peer=self._peer_host,
            kind=kind.name.lower(),
        )
        # Upstream closes without an error frame on every timeout (§1.1).
        if kind is _Timer.IDLE:
            self._close()
        else:
            self._abort(f"{kind.name.lower()} timeout")

    # --- the pump ------------------------------------------------------------------------------

    def _pump(self) -> None:
        """Pull parser events as far as the current state allows. Never re-entered."""
        if self._is_pumping or self._state is _State.CLOSED:
            return
        self._is_pumping = True
        try:
            while not self._is_closed():
                exchange = self._exchange
                if exchange is not None:
                    if exchange.body is _Body.HOLD or exchange.body is _Body.DONE:
                        break  # the handler decides what happens next
                    if exchange.body is _Body.STREAM and self._is_sink_paused:
                        break
                    event = self._parser.next_event()
                    if event is None:
                        break
                    if isinstance(event, DataChunk):
                        exchange.bytes_in += len(event.data)
                        if exchange.sink is not None:
                            exchange.sink.write(event.data)
                    elif isinstance(event, RequestEnd):
                        self._body_finished(exchange)
                    else:
                        self._unexpected(event)
                elif self._state is _State.READY:
                    if self._is_write_paused:
                        break
                    event = self._parser.next_event()
                    if event is None:
                        break
                    if isinstance(event, RequestHead):
                        if not self._factory.readiness.is_ready:
                            # Shutdown is checked between requests; upstream closes (§1.1).
                            self._close()
                            break
                        self._start_exchange(event)
                    else:
                        self._unexpected(event)
                elif self._state is _State.HANDSHAKE:
                    event = self._parser.next_event()
                    if event is None:
                        break
                    if isinstance(event, Handshake):
                        self._authenticate(event)
                    else:
                        self._unexpected(event)
                else:  # AUTHENTICATING
                    break
        finally:
            self._is_pumping = False
        self._update_flow()

    def _unexpected(self, event: object) -> None:
        if isinstance(event, HandshakeError) and event.handshake_status is not None:
            log.info(
                "Native handshake from {peer} refused: {reason}",
                peer=self._peer_host,
                reason=event.reason,
            )
            self._write(codec.encode_server_handshake(event.handshake_status))
        elif isinstance(event, ProtocolError):
            # Framing errors close without an error frame, as upstream does (§1.1, §1.10).
            log.info(
                "Native protocol error from {peer}: {reason}",
                peer=self._peer_host,
                reason=event.reason,
            )
        else:
            log.error("Unexpected native parser event {event!r}", event=type(event).__name__)
        self._close()

    # --- handshake -----------------------------------------------------------------------------

    def _authenticate(self, event: Handshake) -> None:
        self._state = _State.AUTHENTICATING
        self._token_id = event.token_id
        self._secret = event.secret
        self._bearer_key = bearer_cache_key(event.token_id, event.secret)
        failures = self._factory.auth_failures
        if failures is not None and failures.blocked(self._peer_host):
            # Too many failed logins from this address: refuse before any bcrypt work.
            self._secret = ""
            self._bearer_key = ""
            self._write(codec.encode_server_handshake(HandshakeStatus.AUTH_FAILED))
            self._close()
            return
        d = self._factory.verifier.verify_bearer(event.token_id, event.secret)
        d.addCallbacks(self._authenticated, self._authentication_failed)

    def _authenticated(self, principal: Principal) -> None:
        if self._state is not _State.AUTHENTICATING:
            return
        self._cancel_handshake_timer()
        self._principal = principal
        self._state = _State.READY
        self._write(codec.encode_server_handshake(HandshakeStatus.OK))
        log.debug(
            "Native connection from {peer} authenticated as {token_id}",
            peer=self._peer_host,
            token_id=self._token_id,
        )
        self._pump()

    def _authentication_failed(self, failure: Failure) -> None:
        if self._state is not _State.AUTHENTICATING:
            return
        if not isinstance(failure.value, errors.JayError):
            log.failure("Native authentication failed unexpectedly", failure)
        else:
            log.info(
                "Native authentication failed for {token_id} from {peer}",
                token_id=self._token_id,
                peer=self._peer_host,
            )
            if self._factory.auth_failures is not None:
                self._factory.auth_failures.record(self._peer_host)
            if self._factory.metrics is not None:
                self._factory.metrics.auth_failure()
        self._secret = ""
        self._bearer_key = ""
        self._write(codec.encode_server_handshake(HandshakeStatus.AUTH_FAILED))
        self._close()

    # --- exchanges -----------------------------------------------------------------------------

    def _start_exchange(self, head: RequestHead) -> None:
        op = codec.known_op(head.op)
        exchange = _Exchange(
            head=head,
            started=self._clock.seconds(),
            op_name=op.name if op is not None else f"0x{head.op:02X}",
        )
        self._exchange = exchange
        self._set_timer(None)  # the idle or frame clock restarts after this exchange
        if head.data_len == 0:
            # The parser yields the RequestEnd right behind a head without data.
            end = self._parser.next_event()
            assert isinstance(end, RequestEnd), end
            exchange.body = _Body.DONE
        # The coroutine runs here until it first waits for something that has not happened yet;
        # a request answered from caches and inline lookups (most HEADs and GETs) never does,
        # and then needs no Deferred or inlineCallbacks bookkeeping at all. One that does wait
        # is handed, suspended where it is, to Deferred.fromCoroutine, which resumes it by
        # sending None: the awaited Deferred's __await__ re-checks its own result.
        run = self._run_exchange(exchange, op)
        try:
            run.send(None)
        except StopIteration:
            return
        exchange.task = Deferred.fromCoroutine(run)

    def _body_finished(self, exchange: _Exchange) -> None:
        exchange.body = _Body.DONE
        exchange.sink = None
        done, exchange.body_done = exchange.body_done, None
        if done is not None:
            done.callback(None)
        self._maybe_end_exchange(exchange)

    def _maybe_end_exchange(self, exchange: _Exchange) -> None:
        if (
            self._exchange is not exchange
            or not exchange.is_complete
            or exchange.body is not _Body.DONE
        ):
            return
        self._exchange = None
        self._log_exchange(exchange)
        if exchange.close_after or not self._factory.readiness.is_ready:
            self._close()  # revoked token, or shutdown: checked between requests (§1.1)
            return
        self._pump()

    def _close_if_idle(self) -> None:
        """Shutdown: close now unless a request is in flight (that one closes when done)."""
        if self._exchange is None:
            self._close()

    def _log_exchange(self, exchange: _Exchange) -> None:
        metrics = self._factory.metrics
        if metrics is not None:
            metrics.observe_request(
                "native",
                _METRIC_NAMES.get(exchange.head.op, "Unknown"),
                _HTTP_LIKE_STATUS.get(exchange.status, 500),
                self._clock.seconds() - exchange.started,
                bytes_in=exchange.bytes_in,
                bytes_out=exchange.bytes_out,
            )
            if exchange.status == 0x04:
                metrics.auth_failure()
        if not is_enabled(log, LogLevel.debug):
            return
        log.debug(
            "native {op} {bucket}/{key} status={status} in={bytes_in} out={bytes_out} "
            "{duration_ms:.1f}ms token={token_id} stream={stream_id}",
            op=exchange.op_name,
            bucket=exchange.bucket,
            key=exchange.key,
            status=exchange.status,
            bytes_in=exchange.bytes_in,
            bytes_out=exchange.bytes_out,
            duration_ms=(self._clock.seconds() - exchange.started) * 1000,
            token_id=self._token_id,
            stream_id=exchange.head.stream_id,
        )

    async def _run_exchange(self, exchange: _Exchange, op: Op | None) -> None:
        try:
            await self._handle(exchange, op)
        except CancelledError:
            exchange.is_complete = True
            return
        except Exception as exc:  # noqa: BLE001 - every failure becomes an error frame
            self._fail(exchange, op, exc)
        exchange.is_complete = True
        self._maybe_end_exchange(exchange)
        self._pump()  # a rejection may have left a data section to drain

    def _fail(self, exchange: _Exchange, op: Op | None, exc: Exception) -> None:
        if self._state is _State.CLOSED:
            return
        if isinstance(exc, _Reject):
            error = exc.error
        elif isinstance(exc, CodecError):
            error = NativeError(Status(exc.status), exc.message, exc.code)
        else:
            if not isinstance(exc, errors.JayError):
                # Called inside the caller's ``except``: the failure is the current exception.
                log.failure(
                    "Native {op} failed for {bucket}/{key}",
                    op=exchange.op_name,
                    bucket=exchange.bucket,
                    key=exchange.key,
                )
            internal = _INTERNAL_MESSAGES.get(int(op), "internal error") if op else "internal error"
            error = native_error_for(exc, internal_message=internal)
        if exchange.is_answered:
            # Header and part of the data are out; a short body must not pass for a whole one
            # (§1.11, §8.2 item 21).
            exchange.status = Status.INTERNAL
            self._abort(f"{exchange.op_name} failed while streaming")
            return
        if exchange.body in (_Body.HOLD, _Body.STREAM):
            remaining = self._parser.data_remaining
            if remaining > DRAIN_LIMIT_BYTES:
                # §1.10: too much to discard; close without an error frame.
                exchange.status = error.status
                self._close()
                return
            self._parser.skip_data()
            exchange.body = _Body.DRAIN
            exchange.sink = None
        exchange.status = error.status
        exchange.is_answered = True
        self._write(error.frame(exchange.head.stream_id))
        if exchange.close_after:
            self._close()

    def _answer(
        self,
        exchange: _Exchange,
        meta: MetaValue | bytes | None,
        *,
        data_len: int = 0,
        data: bytes = b"",
    ) -> None:
        """An OK frame; ``meta`` as a value or already encoded; ``data`` is the whole data
        section when it is sent along with it."""
        if meta is None:
            payload = b""
        elif isinstance(meta, bytes):
            payload = meta
        else:
            payload = meta.encode()
        if len(payload) > MAX_META_BYTES:
            raise _ResponseTooLarge(f"{exchange.op_name} response meta of {len(payload)} bytes")
        frame = codec.encode_frame(_OK, exchange.head.stream_id, payload, data_len)
        self._write(frame + data if data else frame)
        exchange.status = _OK
        exchange.is_answered = True

    # --- the request handler -------------------------------------------------------------------

    async def _handle(self, exchange: _Exchange, op: Op | None) -> None:
        head = exchange.head
        limiter = self._factory.rate_limiter
        # §1.13: right after the header, every op (Ping too), keyed by the token id.
        if limiter is not None and not limiter.allow(self._token_id):
            raise _Reject(RATE_LIMITED)
        if op is None:
            raise _Reject(UNKNOWN_OP)  # §1.4: drained, then 03 UnknownOp
        if head.data_len and op not in OPS_WITH_REQUEST_DATA:
            # Upstream would read the data as the next header (§1.10 GAP); drain or close.
            raise _Reject(INVALID_REQUEST)
        request = codec.decode_request(op, head.meta)
        principal = await self._current_principal(exchange)
        handler = _HANDLERS[head.op]
        await handler(self, exchange, principal, request)

    async def _current_principal(self, exchange: _Exchange) -> Principal:
        """Re-verify per request so revocation and suspension reach open connections (§8.2
        item 15); the verifier's cache makes this a dictionary lookup almost every time."""
        verifier = self._factory.verifier
        try:
            principal = verifier.cached_bearer(self._bearer_key)
            if principal is None:
                principal = await verifier.verify_bearer(self._token_id, self._secret)
        except (errors.AccessDenied, errors.InvalidAccessKeyId, errors.ExpiredToken):
            log.info(
                "Token {token_id} is no longer valid; closing its native connection",
                token_id=self._token_id,
            )
            exchange.close_after = True
            raise _Reject(ACCESS_DENIED) from None
        self._principal = principal
        return principal

    async def _receive_body(self, exchange: _Exchange, writer: StagingWriter) -> None:
        """Stream the data section into ``writer``; fires once the RequestEnd is pulled."""
        if exchange.body is _Body.DONE:
            return
        done: Deferred[None] = Deferred()
        exchange.body_done = done
        exchange.sink = writer
        exchange.body = _Body.STREAM
        self._is_sink_paused = False
        writer.registerProducer(self._body_flow, True)
        # A large body is read in bigger socket reads: fewer, larger chunks through the parser
        # and the staging writer's queue (Twisted reads 64 KiB per readable event otherwise).
        transport: Any = self.transport
        read_size: int | None = getattr(transport, "bufferSize", None)
        is_large = read_size is not None and self._parser.data_remaining >= LARGE_BODY_BYTES
        if read_size is not None and is_large:
            transport.bufferSize = max(read_size, BODY_READ_BYTES)
        try:
            self._pump()
            await done
        finally:
            if is_large:
                transport.bufferSize = read_size
            writer.unregisterProducer()
            self._is_sink_paused = False

    async def _stage_body(
        self, exchange: _Exchange, sealing: Sealing | None = None, part_number: int = 0
    ) -> Any:
        storage = self._factory.storage
        size_hint = self._parser.data_remaining or None  # 0: not in a data section yet
        writer = (
            storage.begin_write(size_hint=size_hint)
            if sealing is None
            else storage.begin_write(sealing=sealing, part_number=part_number, size_hint=size_hint)
        )
        try:
            await self._receive_body(exchange, writer)
            return await writer.finish()
        except BaseException:
            writer.abort().addErrback(lambda f: log.failure("Discarding a staged upload failed", f))
            raise

    def _client_ip(self) -> str:
        return self._peer_host

    def _default_sealing(self, bucket: BucketInfo) -> Sealing | None:
        """The bucket's default encryption for a new object (the protocol has no field to ask
        for encryption itself)."""
        return self._factory.storage.default_sealing(bucket)

    def condition_values(self, keys: frozenset[str]) -> dict[str, tuple[str, ...]]:
        """jay.auth.policy.ConditionSource for a bucket policy's conditions: the protocol has no
        headers, so of the request's own keys only aws:SecureTransport is present here."""
        if "aws:securetransport" not in keys:
            return {}
        secure = ISSLTransport.providedBy(self.transport)
        return {"aws:securetransport": ("true" if secure else "false",)}

    # --- ops (§1.7; authorization before existence, §8.2 items 11-13) ----------------------------

    async def _op_create_bucket(
        self, exchange: _Exchange, principal: Principal, request: codec.BucketRequest
    ) -> None:
        bucket = request.bucket
        exchange.bucket = bucket
        access = self._factory.access
        access.authorize_service(principal, "bucket:write-meta", bucket)
        _check_text(bucket, errors.InvalidBucketName)
        info = await self._factory.storage.create_bucket(bucket, principal.account_id)
        self._answer(exchange, _bucket_info(info))

    async def _op_delete_bucket(
        self, exchange: _Exchange, principal: Principal, request: codec.BucketRequest
    ) -> None:
        await self._authorize(exchange, principal, "bucket:write-meta", request.bucket)
        await self._factory.storage.delete_bucket(request.bucket)
        self._answer(exchange, None)

    async def _op_head_bucket(
        self, exchange: _Exchange, principal: Principal, request: codec.BucketRequest
    ) -> None:
        info = await self._authorize(exchange, principal, "bucket:read-meta", request.bucket)
        self._answer(exchange, _bucket_info(info))

    async def _op_list_buckets(
        self, exchange: _Exchange, principal: Principal, request: codec.Empty
    ) -> None:
        self._factory.access.authorize_service(principal, "bucket:list")
        buckets = await self._factory.storage.list_buckets(principal.account_id)
        entries = tuple(
            codec.BucketEntry(name=b.name, created_at=codec.format_wire_time(b.created_at))
            for b in buckets
        )
        self._answer(exchange, codec.ListBucketsResponse(entries))

    async def _op_put_object(
        self, exchange: _Exchange, principal: Principal, request: codec.PutObjectRequest
    ) -> None:
        bucket, key = request.bucket, request.key
        bucket_info = await self._authorize(exchange, principal, "object:put", bucket, key)
        names.validate_key(key)
        max_size = self._factory.max_object_size
        if max_size is not None and exchange.head.data_len > max_size:
            raise errors.EntityTooLarge(max_size_allowed=max_size)
        attributes = ObjectAttributes(
            content_type=request.content_type or _OCTET_STREAM,
            metadata=dict(request.metadata),  # verbatim (§1.7, §2.3)
        )
        sealing = self._default_sealing(bucket_info) if bucket_info.configs else None
        if sealing is not None:
            attributes = dataclasses.replace(attributes, encryption=sealing.record.to_json())
        staged = await self._stage_body(exchange, sealing)
        info = await self._factory.storage.put_object(bucket, key, staged, attributes)
        self._answer(exchange, codec.PutResult(info.etag, info.sha256_hex))

    async def _op_get_object(
        self, exchange: _Exchange, principal: Principal, request: codec.ObjectRequest
    ) -> None:
        bucket, key = request.bucket, request.key
        await self._authorize(exchange, principal, "object:get", bucket, key)
        _check_key_for_lookup(key)
        storage = self._factory.storage
        opened = await storage.open_object(bucket, key)
        try:
            if opened.info.attributes.encryption is not None:
                # SSE-S3 decrypts; SSE-C needs a key this protocol has no field for.
                if parse_record(opened.info.attributes.encryption).mode == MODE_SSE_C:
                    raise errors.InvalidRequest(
                        "The object is encrypted with a customer-provided key (SSE-C); read it "
                        "over S3 with its key",
                        bucket=bucket,
                        key=key,
                    )
                opened = storage.decrypting(opened, storage.data_key(opened.info.attributes, None))
            info = opened.info
            if info.size == 0:
                self._answer(exchange, _object_info(info), data_len=0)
                return
            verify = self._factory.random() < self._factory.read_verify_rate
            # A small object was read with its lookup: header and body leave in one write, with
            # no producer to register (a verified read takes the producer, which checks it).
            body: bytes | None = opened.prefetched
            if not verify and body is not None and len(body) == info.size:
                self._answer(exchange, _object_info(info), data_len=info.size, data=body)
                exchange.bytes_out = info.size
                return
            self._answer(exchange, _object_info(info), data_len=info.size)
            transport: Any = self.transport
            # The transport takes the storage's push producer for the body; ours comes back
            # once the body is out so later responses are again held to the send buffer.
            self._unregister_write_flow()
            try:
                sent = await opened.stream(transport, 0, info.size, verify=verify)
            finally:
                self._register_write_flow()
            exchange.bytes_out = sent
            if sent != info.size:
                raise errors.StorageIOError("Object file is shorter than its record")
        finally:
            opened.close()

    def _unregister_write_flow(self) -> None:
        if self._is_write_flow_registered:
            self._is_write_flow_registered = False
            self._is_write_paused = False
            transport: Any = self.transport
            transport.unregisterProducer()

    def _register_write_flow(self) -> None:
        if not self._is_write_flow_registered and self._state is not _State.CLOSED:
            transport: Any = self.transport
            transport.registerProducer(self._write_flow, True)
            self._is_write_flow_registered = True

    async def _op_head_object(
        self, exchange: _Exchange, principal: Principal, request: codec.ObjectRequest
    ) -> None:
        bucket, key = request.bucket, request.key
        await self._authorize(exchange, principal, "object:get", bucket, key)
        _check_key_for_lookup(key)
        info = await self._factory.storage.get_object_info(bucket, key)
        self._answer(exchange, _object_info(info))

    async def _op_delete_object(
        self, exchange: _Exchange, principal: Principal, request: codec.ObjectRequest
    ) -> None:
        bucket, key = request.bucket, request.key
        await self._authorize(exchange, principal, "object:delete", bucket, key)
        names.validate_key(key)
        await self._factory.storage.delete_object(bucket, key)  # a missing key is success
        self._answer(exchange, None)

    async def _op_list_objects(
        self, exchange: _Exchange, principal: Principal, request: codec.ListObjectsRequest
    ) -> None:
        for text in (request.prefix, request.delimiter):
            _check_text(text, errors.InvalidArgument)
        start_after = _start_after_position(request.start_after)
        max_keys = request.max_keys
        if max_keys <= 0:
            max_keys = DEFAULT_LIST_KEYS
        max_keys = min(max_keys, MAX_LIST_KEYS)
        # A bucket policy's s3:prefix / s3:delimiter / s3:max-keys, as for ListObjectsV2.
        list_values: dict[str, tuple[str, ...]] = {"s3:prefix": (request.prefix,)}
        if request.max_keys > 0:
            list_values["s3:max-keys"] = (str(request.max_keys),)
        if request.delimiter:
            list_values["s3:delimiter"] = (request.delimiter,)
        await self._authorize(
            exchange,
            principal,
            "object:list",
            request.bucket,
            list_prefix=request.prefix,
            list_values=list_values,
        )
        page = await self._factory.storage.list_objects(
            request.bucket,
            prefix=request.prefix,
            delimiter=request.delimiter,
            start_after=start_after,
            max_keys=max_keys,
        )
        self._answer(
            exchange,
            list_objects_response(
                page.objects, page.common_prefixes, page.is_truncated, page.next_start_after
            ),
        )

    async def _op_create_multipart_upload(
        self,
        exchange: _Exchange,
        principal: Principal,
        request: codec.CreateMultipartUploadRequest,
    ) -> None:
        bucket, key = request.bucket, request.key
        bucket_info = await self._authorize(exchange, principal, "multipart:create", bucket, key)
        names.validate_key(key)
        attributes = ObjectAttributes(content_type=request.content_type or _OCTET_STREAM)
        sealing = self._default_sealing(bucket_info) if bucket_info.configs else None
        if sealing is not None:
            attributes = dataclasses.replace(attributes, encryption=sealing.record.to_json())
        upload = await self._factory.storage.create_multipart_upload(
            bucket, key, attributes, principal.account_id
        )
        self._answer(exchange, codec.CreateMultipartUploadResponse(upload.upload_id))

    async def _upload(
        self,
        exchange: _Exchange,
        principal: Principal,
        action: str,
        bucket: str,
        key: str,
        upload_id: str,
    ) -> Any:
        await self._authorize(exchange, principal, action, bucket, key)
        _check_key_for_lookup(key, errors.NoSuchUpload)
        _check_text(upload_id, errors.NoSuchUpload)
        upload = await self._factory.storage.get_multipart_upload(bucket, key, upload_id)
        if upload.initiated_by != principal.account_id:
            raise errors.AccessDenied(bucket=bucket, key=key)  # §1.7: initiator only
        return upload

    async def _op_upload_part(
        self, exchange: _Exchange, principal: Principal, request: codec.UploadPartRequest
    ) -> None:
        bucket, key = request.bucket, request.key
        upload = await self._upload(
            exchange, principal, "multipart:upload-part", bucket, key, request.upload_id
        )
        _check_part_number(request.part_number)
        max_size = self._factory.max_object_size
        if max_size is not None and exchange.head.data_len > max_size:
            raise errors.EntityTooLarge(max_size_allowed=max_size)
        sealing = None
        if upload.attributes.encryption is not None:
            # An upload made over S3 with SSE-C needs its key (InvalidRequest), SSE-S3 none.
            storage = self._factory.storage
            sealing = Sealing(
                record=parse_record(upload.attributes.encryption),
                data_key=storage.data_key(upload.attributes, None),
            )
        staged = await self._stage_body(exchange, sealing, request.part_number)
        part = await self._factory.storage.upload_part(
            bucket, key, upload.upload_id, request.part_number, staged
        )
        self._answer(exchange, codec.PutResult(part.etag, part.sha256_hex))

    async def _op_complete_multipart_upload(
        self,
        exchange: _Exchange,
        principal: Principal,
        request: codec.CompleteMultipartUploadRequest,
    ) -> None:
        bucket, key = request.bucket, request.key
        upload = await self._upload(
            exchange, principal, "multipart:complete", bucket, key, request.upload_id
        )
        # Order and duplicates do not matter on the native port (§1.7, §2.9).
        numbers = sorted(set(request.part_numbers))
        for number in numbers:
            _check_part_number(number)
        if not numbers:
            raise errors.InvalidArgument("at least one part is required")
        info = await self._factory.storage.complete_multipart_upload(
            bucket,
            key,
            upload.upload_id,
            [CompletedPart(part_number=n) for n in numbers],
            min_part_size=0,
        )
        self._answer(
            exchange,
            codec.CompleteMultipartUploadResponse(
                etag=info.etag, checksum_sha256=info.sha256_hex, size=info.size
            ),
        )

    async def _op_abort_multipart_upload(
        self, exchange: _Exchange, principal: Principal, request: codec.UploadRequest
    ) -> None:
        bucket, key = request.bucket, request.key
        upload = await self._upload(
            exchange, principal, "multipart:abort", bucket, key, request.upload_id
        )
        await self._factory.storage.abort_multipart_upload(bucket, key, upload.upload_id)
        self._answer(exchange, None)

    async def _op_list_parts(
        self, exchange: _Exchange, principal: Principal, request: codec.UploadRequest
    ) -> None:
        bucket, key = request.bucket, request.key
        upload = await self._upload(
            exchange, principal, "multipart:upload-part", bucket, key, request.upload_id
        )
        parts: list[codec.PartInfo] = []
        marker = 0
        while True:  # the native response lists every part (§1.7)
            page = await self._factory.storage.list_parts(
                bucket, key, upload.upload_id, part_number_marker=marker, max_parts=1000
            )
            parts.extend(
                codec.PartInfo(
                    part_number=p.part_number,
                    size=p.size,
                    etag=p.etag,
                    checksum_sha256=p.sha256_hex,
                )
                for p in page.parts
            )
            if not page.is_truncated or not page.parts:
                break
            marker = page.next_part_number_marker
        self._answer(exchange, codec.ListPartsResponse(tuple(parts)))

    async def _op_ping(self, exchange: _Exchange, principal: Principal, request: Any) -> None:
        self._answer(exchange, None)

    async def _authorize(
        self,
        exchange: _Exchange,
        principal: Principal,
        action: str,
        bucket: str,
        key: str = "",
        *,
        list_prefix: str | None = None,
        list_values: dict[str, tuple[str, ...]] | None = None,
    ) -> Any:
        exchange.bucket = bucket
        exchange.key = key
        _check_text(bucket, errors.NoSuchBucket)
        conditions: Any = self
        if list_values is not None:
            conditions = StaticConditions(list_values | self.condition_values(_SECURE_KEY))
        return await self._factory.access.authorized_bucket(
            principal,
            action,
            bucket,
            key,
            client_ip=self._client_ip(),
            list_prefix=list_prefix,
            conditions=conditions,
        )


_SECURE_KEY = frozenset({"aws:securetransport"})

_Handler = Callable[[NativeServerProtocol, _Exchange, Principal, Any], Any]

_OP_HANDLERS: dict[Op, _Handler] = {
    Op.CREATE_BUCKET: NativeServerProtocol._op_create_bucket,
    Op.DELETE_BUCKET: NativeServerProtocol._op_delete_bucket,
    Op.HEAD_BUCKET: NativeServerProtocol._op_head_bucket,
    Op.LIST_BUCKETS: NativeServerProtocol._op_list_buckets,
    Op.PUT_OBJECT: NativeServerProtocol._op_put_object,
    Op.GET_OBJECT: NativeServerProtocol._op_get_object,
    Op.HEAD_OBJECT: NativeServerProtocol._op_head_object,
    Op.DELETE_OBJECT: NativeServerProtocol._op_delete_object,
    Op.LIST_OBJECTS: NativeServerProtocol._op_list_objects,
    Op.CREATE_MULTIPART_UPLOAD: NativeServerProtocol._op_create_multipart_upload,
    Op.UPLOAD_PART: NativeServerProtocol._op_upload_part,
    Op.COMPLETE_MULTIPART_UPLOAD: NativeServerProtocol._op_complete_multipart_upload,
    Op.ABORT_MULTIPART_UPLOAD: NativeServerProtocol._op_abort_multipart_upload,
    Op.LIST_PARTS: NativeServerProtocol._op_list_parts,
    Op.PING: NativeServerProtocol._op_ping,
}
# Keyed by the op's plain int: an Op member's hash is Enum.__hash__, a Python-level call.
_HANDLERS: dict[int, _Handler] = {int(op): handler for op, handler in _OP_HANDLERS.items()}


# --- pure helpers ----------------------------------------------------------------------------


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # escaped raw bytes from the codec (surrogateescape)
        return False
    return True


def _check_text(text: str, error: type[errors.JayError]) -> None:
    """Names and keys must be valid UTF-8 before they reach storage (§6.4)."""
    if not _is_utf8(text):
        raise error()


def _check_key_for_lookup(key: str, error: type[errors.JayError] = errors.NoSuchKey) -> None:
    """A key no object can have is simply not found."""
    if not _is_utf8(key) or not key:
        raise error()


def _start_after_position(start_after: str) -> str:
    """JAY_SPEC §1.12 suggests continuing after a common prefix CP with CP plus the raw byte FF;
    a client that builds that value itself gets the same position as jay's own continuation."""
    if _is_utf8(start_after):
        return start_after
    head = start_after.removesuffix(codec.decode_text(b"\xff"))
    if head != start_after and _is_utf8(head):
        return position_after_prefix(head)
    raise errors.InvalidArgument("start_after is not valid UTF-8")


def _check_part_number(number: int) -> None:
    if not 1 <= number <= 10000:
        raise errors.InvalidArgument("part number must be between 1 and 10000")


def _bucket_info(info: Any) -> codec.BucketInfo:
    return codec.BucketInfo(
        bucket_id=info.bucket_id,
        name=info.name,
        created_at=codec.format_wire_time(info.created_at),
        visibility=info.visibility,
    )


def _object_info(info: StoredObject) -> bytes:
    """The encoded ObjectInfo meta of a GetObject or HeadObject answer."""
    attributes = info.attributes
    return codec.encode_object_info(
        attributes.content_type,
        info.size,
        info.etag,
        info.sha256_hex,
        codec.format_wire_time(info.updated_at),
        attributes.metadata,
    )


def _entry_key(entry: ListedObject | str) -> str:
    return entry if isinstance(entry, str) else entry.key


def list_objects_response(
    objects: Sequence[ListedObject],
    common_prefixes: Sequence[str],
    is_truncated: bool,
    next_start_after: str,
    *,
    max_meta_bytes: int = MAX_META_BYTES,
) -> codec.EncodedListObjectsResponse:
    """A ListObjects response whose meta fits in ``max_meta_bytes`` (§1.12, §8.2 item 26).

    Entries are taken in key order (objects and common prefixes interleaved) until the next one
    would not fit; a page cut short is truncated and continues after its last entry: after the
    key for an object, after every key under it for a common prefix (the storage's own rule).
    Each object is encoded once, and the bytes that were measured are the bytes sent.
    """
    budget = max_meta_bytes - codec.ListObjectsResponse.BASE_SIZE - _NEXT_START_AFTER_RESERVE
    entries: Iterable[ListedObject | str] = (
        heapq.merge(objects, common_prefixes, key=_entry_key) if common_prefixes else objects
    )
    encode_entry = codec.ObjectEntryEncoder().encode
    wire_time = codec.format_wire_time
    records: list[bytes] = []
    kept_prefixes: list[str] = []
    used = 0
    last: ListedObject | str | None = None
    is_cut = False
    for entry in entries:
        if isinstance(entry, str):
            cost = codec.common_prefix_size(entry)
            if used + cost > budget:
                is_cut = True
                break
            kept_prefixes.append(entry)
        else:
            key, size, etag, sha256_hex, updated_at, content_type = entry
            record = encode_entry(key, size, etag, sha256_hex, wire_time(updated_at), content_type)
            cost = len(record)
            if used + cost > budget:
                is_cut = True
                break
            records.append(record)
        used += cost
        last = entry
    if is_cut:
        is_truncated = True
        if isinstance(last, str):
            next_start_after = position_after_prefix(last)
        elif last is not None:
            next_start_after = last.key
    return codec.EncodedListObjectsResponse(
        object_records=tuple(records),
        common_prefixes=tuple(kept_prefixes),
        is_truncated=is_truncated,
        next_start_after=next_start_after,
    )


# --- factory ---------------------------------------------------------------------------------


class NativeServerFactory(Factory):
    """Builds one NativeServerProtocol per accepted connection; holds the shared collaborators."""

    protocol = NativeServerProtocol

    def __init__(
        self,
        *,
        storage: Storage,
        verifier: BearerVerifier,
        access: AccessControl,
        clock: IReactorTime,
        readiness: Readiness,
        idle_timeout_seconds: float = DEFAULT_IDLE_TIMEOUT_SECONDS,
        handshake_timeout_seconds: float = DEFAULT_HANDSHAKE_TIMEOUT_SECONDS,
        frame_timeout_seconds: float = DEFAULT_FRAME_TIMEOUT_SECONDS,
        data_timeout_seconds: float = DEFAULT_DATA_TIMEOUT_SECONDS,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        read_verify_rate: float = 0.05,
        max_object_size: int | None = None,
        rate_limiter: RateLimiter | None = None,
        auth_failures: Any = None,
        metrics: Any = None,
        random: Callable[[], float] | None = None,
    ) -> None:
        self.storage = storage
        self.verifier = verifier
        self.access = access
        self.clock = clock
        self.readiness = readiness
        self.idle_timeout_seconds = idle_timeout_seconds
        self.handshake_timeout_seconds = handshake_timeout_seconds
        self.frame_timeout_seconds = frame_timeout_seconds
        self.data_timeout_seconds = data_timeout_seconds
        self.max_connections = max_connections
        self.read_verify_rate = read_verify_rate
        self.max_object_size = max_object_size
        self.rate_limiter = rate_limiter
        # Shared with the S3 front end: failed logins per client IP (jay.auth.ratelimit).
        self.auth_failures = auth_failures
        self.metrics = metrics  # jay.metrics.registry.Metrics, or None
        self.random = random or _random.Random().random
        self._connections: set[NativeServerProtocol] = set()
        self._all_closed: list[Deferred[None]] = []

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    def close_connections(self) -> Deferred[None]:
        """For graceful shutdown, after readiness went to stopping: idle connections close now,
        busy ones after their current request. Fires once every connection is gone."""
        done: Deferred[None] = Deferred()
        if not self._connections:
            done.callback(None)
            return done
        self._all_closed.append(done)
        for connection in list(self._connections):
            connection._close_if_idle()
        return done

    def _connection_closed(self, connection: NativeServerProtocol) -> None:
        self._connections.discard(connection)
        if not self._connections:
            waiters, self._all_closed = self._all_closed, []
            for waiter in waiters:
                waiter.callback(None)

    def buildProtocol(self, addr: IAddress) -> NativeServerProtocol | None:  # type: ignore[override]
        # §1.1: over the cap (or before startup finished), close before any handshake byte.
        if len(self._connections) >= self.max_connections:
            log.warn(
                "Refusing native connection from {peer}: {count} connections open",
                peer=getattr(addr, "host", ""),
                count=len(self._connections),
            )
            return None
        if not self.readiness.is_ready:
            return None
        return NativeServerProtocol(self)
