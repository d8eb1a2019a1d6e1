"""twisted.web pieces that dispatch on headers and stream request bodies.

twisted.web's ``http.Request`` collects the whole body into a BytesIO or temp file before
``process()`` runs. jay needs the opposite: route and authenticate on the headers alone, then
stream the body into storage with back-pressure to the socket. ``StreamingSite`` does that:

- When the headers end, ``StreamingRequest`` parses method/uri/path/args and calls ``process()``
  at once. The body is ``request.body``, a ``RequestBody`` push producer. Socket reads stay
  paused until the handler asks for the body (``deliver_to``, ``read_all``, ``discard``), so at
  most one socket read (64 KiB) is held while the handler authenticates.
- ``deliver_to(consumer)`` registers the body as the consumer's streaming producer. When the
  consumer pauses the body, the body stops reading the socket; resuming starts it again.
- ``Expect: 100-continue`` is answered only when the handler first asks for the body, so a
  request rejected on its headers gets its error without the client sending the body.
- A response that starts before the body was read either drains a small remainder and keeps
  the connection (``max_drain_bytes``), or says ``Connection: close``, half-closes after the
  response and discards input for ``linger_seconds`` (so the client reads the response rather
  than a reset), then closes.
- ``timeOut`` is an idle timeout: it runs while we wait on the peer (between requests, while
  reading a body we asked for, while the peer is not reading our response) and is reset by
  bytes in either direction. It is suspended while the server itself is the slow side (the
  handler has not asked for the body yet, or the storage consumer paused it), so a multi-GiB
  transfer that keeps moving never times out.

The channel subclasses Twisted's ``HTTPChannel`` and overrides a few of its documented hooks
plus the private ``_respondToBadRequestAndDisconnect``/``_send100Continue`` (checked against
Twisted 26.x). The real-socket tests in ``tests/s3/test_http_streaming.py`` pin the behaviour.
"""

from __future__ import annotations

import enum
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IConsumer, IPushProducer
from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure
from twisted.web import resource as web_resource
from twisted.web.http import (
    NO_BODY_CODES,
    HTTPChannel,
    _GenericHTTPChannelProtocol,
    _IdentityTransferDecoder,
    _parseRequestLine,
    datetimeToString,
    parse_qs,
    unquote,
)
from twisted.web.http_headers import Headers, InvalidHeaderName, _nameEncoder
from twisted.web.iweb import INonQueuedRequestFactory
from twisted.web.server import Request, Site
from twisted.web.server import version as server_version
from zope.interface import implementer, provider

from jay.directsend import send_now
from jay.errors import EntityTooLarge, IncompleteBody
from jay.storage.reading import sendfile_socket

log = Logger()

# Small leftovers (an unread PUT after a 403) are cheaper to read than a new connection;
# anything larger is not worth the bandwidth, so the connection closes instead.
DEFAULT_MAX_DRAIN_BYTES = 1024 * 1024
# After an early response on a connection we close, keep reading (and dropping) for this long
# so the client sees the response instead of a TCP reset caused by unread data.
DEFAULT_LINGER_SECONDS = 2.0
DEFAULT_IDLE_TIMEOUT_SECONDS = 60.0
# A response body's first write up to this size leaves in one send with the headers; the
# copy that joins them costs less than a second system call.
MAX_COMBINED_BODY_BYTES = 64 * 1024
# A request body of at least LARGE_BODY_BYTES is read from the socket BODY_READ_BYTES at a time
# instead of Twisted's 64 KiB per readable event: a sixteenth of the reactor turns, chunks and
# staging-queue entries per MiB (the native server does the same for its data sections).
LARGE_BODY_BYTES = 1024 * 1024
BODY_READ_BYTES = 1024 * 1024
_CONNECTION_DONE = Failure(ConnectionDone())


class BodyDeliveryStopped(Exception):
    """The body stopped being delivered: the consumer stopped it, or the response ended."""


class BodyConsumer(Protocol):
    """What ``deliver_to`` needs: an ``IConsumer`` (``StagingWriter``, a hashing sink…)."""

    def registerProducer(self, producer: Any, streaming: bool) -> None: ...
    def unregisterProducer(self) -> None: ...
    def write(self, data: bytes) -> None: ...


class _BodyState(enum.Enum):
    IDLE = "idle"  # dispatched on headers; nobody has asked for the body yet
    STREAMING = "streaming"  # a consumer is attached
    COMPLETE = "complete"  # every byte was delivered (or drained)
    FAILED = "failed"  # connection lost or malformed framing before the end
    ABANDONED = "abandoned"  # nobody wants the rest; the connection closes after the response


@implementer(IPushProducer)
class RequestBody:
    """The request body as a push producer fed by the channel.

    ``_pending`` only holds bytes that arrived after reads were paused (one socket read),
    because the socket is paused whenever no consumer is ready for more.
    """

    def __init__(
        self,
        channel: Any,
        *,
        length: int | None,
        expects_continue: bool,
        max_drain_bytes: int = DEFAULT_MAX_DRAIN_BYTES,
    ) -> None:
        self._channel = channel
        self.length = length
        self.expects_continue = expects_continue
        self.is_continue_sent = False
        self._max_drain_bytes = max_drain_bytes
        self.received_bytes = 0
        self.delivered_bytes = 0
        self._pending: deque[bytes] = deque()
        self.is_received = length == 0  # every byte has come off the wire
        self._state = _BodyState.COMPLETE if length == 0 else _BodyState.IDLE
        self._consumer: Any = None
        self._done: Deferred[int] | None = None
        self._is_paused = False
        self._is_flushing = False
        self._failure: Failure | None = None
        self._on_drained: Callable[[], None] | None = None
        self._on_overflow: Callable[[], None] | None = None
        self._drain_budget = 0
        self._saved_read_size: int | None = None  # the transport's, while reads are widened

    # --- public API for handlers ---------------------------------------------------------

    @property
    def state(self) -> str:
        return self._state.value

    @property
    def is_fresh(self) -> bool:
        """Nothing has happened to this body yet: no bytes, no consumer, no failure."""
        return (
            self.received_bytes == 0
            and self._consumer is None
            and self._done is None
            and self._failure is None
            and not self._pending
            and self._state is (_BodyState.COMPLETE if self.length == 0 else _BodyState.IDLE)
        )

    def deliver_to(self, consumer: BodyConsumer) -> Deferred[int]:
        """Stream the body into ``consumer``; fires with the byte count once all is delivered.

        Errbacks with ``IncompleteBody`` if the connection is lost (or the chunked framing is
        broken) before the end. Cancelling detaches the consumer and abandons the body.
        """
        if self._state is _BodyState.FAILED:
            assert self._failure is not None
            return fail(self._failure)
        if self._state is not _BodyState.IDLE and not (
            self._state is _BodyState.COMPLETE and self.length == 0 and self.delivered_bytes == 0
        ):
            return fail(RuntimeError(f"request body already {self._state.value}"))
        self._consumer = consumer
        self._done = Deferred(self._cancel)
        done = self._done
        consumer.registerProducer(self, True)
        if self.length == 0:
            self._complete()
            return done
        self._state = _BodyState.STREAMING
        if self.length is not None and self.length - self.received_bytes >= LARGE_BODY_BYTES:
            self._widen_reads()
        self._send_continue()
        self._flush()
        self._update_reading()
        return done

    def read_all(
        self, max_bytes: int, too_large: Callable[[], Exception] = EntityTooLarge
    ) -> Deferred[bytes]:
        """Collect a small body (XML, JSON); more than ``max_bytes`` fails with ``too_large()``.

        A declared Content-Length over the limit fails at once, before ``100 Continue``.
        """
        if self.length is not None and self.length > max_bytes:
            return fail(too_large())
        sink = _CollectingSink(max_bytes)

        def overflowed(failure: Failure) -> Failure:
            if sink.is_overflowed:
                return Failure(too_large())
            return failure

        return self.deliver_to(sink).addCallbacks(lambda _: sink.collected(), overflowed)

    def discard(self) -> Deferred[None]:
        """Drop a body the handler does not want.

        Up to ``max_drain_bytes`` are read and dropped so the connection stays usable. A
        larger (or uninvited ``Expect: 100-continue``) body is abandoned instead: the
        Deferred fires at once and the connection closes after the response.
        """
        if self._state is not _BodyState.IDLE:
            return succeed(None)
        if not self._is_worth_draining():
            self._abandon()
            return succeed(None)
        sink = _DiscardSink(self._max_drain_bytes)
        return self.deliver_to(sink).addCallbacks(lambda _: None, lambda _: None)

    # --- IPushProducer (called by the consumer) -------------------------------------------

    def pauseProducing(self) -> None:
        self._is_paused = True
        self._update_reading()

    def resumeProducing(self) -> None:
        self._is_paused = False
        self._flush()
        self._update_reading()

    def stopProducing(self) -> None:
        """The consumer gave up: stop delivering, fail ``deliver_to``, close after the response."""
        if self._state is _BodyState.STREAMING:
            done = self._detach()
            self._abandon()
            if done is not None:
                done.errback(BodyDeliveryStopped("consumer stopped the request body"))

    # --- called by StreamingRequest / StreamingChannel ------------------------------------

    def _data_received(self, data: bytes) -> None:
        self.received_bytes += len(data)
        if self._state in (_BodyState.ABANDONED, _BodyState.FAILED, _BodyState.COMPLETE):
            return
        self._pending.append(data)
        if self._state is _BodyState.STREAMING:
            self._flush()

    def _end_of_body(self) -> None:
        self.is_received = True
        if self._state is _BodyState.STREAMING:
            self._flush()

    def _connection_lost(self, reason: Failure) -> None:
        self._fail(IncompleteBody(f"connection lost after {self.received_bytes} bytes"))

    def _fail(self, error: Exception) -> None:
        if self.is_received or self._state in (_BodyState.COMPLETE, _BodyState.FAILED):
            return
        self._pending.clear()
        failure = Failure(error)
        if self._state is _BodyState.ABANDONED:
            return
        self._failure = failure
        self._state = _BodyState.FAILED
        done = self._detach()
        if done is not None:
            done.errback(failure)

    def _keeps_alive_after_response(self) -> bool:
        """Decide, before response headers go out, whether the connection can be kept."""
        if self.is_received:
            return True
        if self._state in (_BodyState.ABANDONED, _BodyState.FAILED):
            return False
        return self._is_worth_draining()

    def _drain_after_response(
        self, on_drained: Callable[[], None], on_overflow: Callable[[], None]
    ) -> bool:
        """The response finished early: read and drop the rest, or return False to close."""
        if self.is_received and self._state is not _BodyState.STREAMING:
            self._pending.clear()
            self._state = _BodyState.COMPLETE
            on_drained()
            return True
        if not self._keeps_alive_after_response():
            self._abandon()
            return False
        stale = self._detach()
        if stale is not None:
            stale.errback(BodyDeliveryStopped("response finished before the body was read"))
        self._on_drained = on_drained
        self._on_overflow = on_overflow
        sink = _DiscardSink(self._max_drain_bytes)
        self._consumer = sink
        sink.registerProducer(self, True)
        self._state = _BodyState.STREAMING
        self._is_paused = False
        self._flush()
        self._update_reading()
        return True

    # --- internals -----------------------------------------------------------------------

    def _is_worth_draining(self) -> bool:
        if self.expects_continue and not self.is_continue_sent:
            return False  # the client may not send it at all; do not invite it
        if self.length is None:
            return True  # chunked: drain up to the budget, close if it runs out
        return self.length - self.received_bytes <= self._max_drain_bytes

    def _send_continue(self) -> None:
        if self.expects_continue and not self.is_continue_sent and not self.is_received:
            self.is_continue_sent = True
            self._channel._send100Continue()

    def _flush(self) -> None:
        if self._is_flushing:
            return
        self._is_flushing = True
        try:
            while self._pending and not self._is_paused and self._state is _BodyState.STREAMING:
                chunk = self._pending.popleft()
                self.delivered_bytes += len(chunk)
                self._consumer.write(chunk)
            if (
                self._state is _BodyState.STREAMING
                and self.is_received
                and not self._pending
                and not self._is_paused
            ):
                self._complete()
        finally:
            self._is_flushing = False

    def _complete(self) -> None:
        self._state = _BodyState.COMPLETE
        done = self._detach()
        on_drained, self._on_drained = self._on_drained, None
        self._on_overflow = None
        if done is not None:
            done.callback(self.delivered_bytes)
        if on_drained is not None:
            on_drained()

    def _overflowed(self) -> None:
        """A drain sink ran out of budget: give up on the body and close."""
        on_overflow, self._on_overflow = self._on_overflow, None
        self._on_drained = None
        self._detach()
        self._abandon()
        if on_overflow is not None:
            on_overflow()

    def _widen_reads(self) -> None:
        transport = getattr(self._channel, "transport", None)
        size = getattr(transport, "bufferSize", None)
        if isinstance(size, int) and size < BODY_READ_BYTES:
            self._saved_read_size = size
            transport.bufferSize = BODY_READ_BYTES  # type: ignore[union-attr]

    def _detach(self) -> Deferred[int] | None:
        consumer, self._consumer = self._consumer, None
        done, self._done = self._done, None
        self._is_paused = False
        saved, self._saved_read_size = self._saved_read_size, None
        if saved is not None:
            transport = getattr(self._channel, "transport", None)
            if transport is not None:
                transport.bufferSize = saved
        if consumer is not None:
            consumer.unregisterProducer()
        return done

    def _abandon(self) -> None:
        if self._state in (_BodyState.COMPLETE, _BodyState.FAILED):
            return
        self._state = _BodyState.ABANDONED
        self._pending.clear()
        self._update_reading()

    def _cancel(self, _: Deferred[int]) -> None:
        self._done = None
        self._detach()
        self._abandon()

    def _update_reading(self) -> None:
        is_wanted = self._state is _BodyState.STREAMING and not self._is_paused
        if self._channel is not None and not self.is_received:
            self._channel._set_body_reading(is_wanted)


@implementer(IConsumer)
class _SinkBase:
    producer: Any = None

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        self.producer = producer

    def unregisterProducer(self) -> None:
        self.producer = None

    def write(self, data: bytes) -> None:
        raise NotImplementedError


class _CollectingSink(_SinkBase):
    def __init__(self, max_bytes: int) -> None:
        self._chunks: list[bytes] = []
        self._size = 0
        self._max_bytes = max_bytes
        self.is_overflowed = False

    def write(self, data: bytes) -> None:
        self._size += len(data)
        if self._size > self._max_bytes:
            self.is_overflowed = True
            self._chunks.clear()
            if self.producer is not None:
                self.producer.stopProducing()
            return
        self._chunks.append(data)

    def collected(self) -> bytes:
        return b"".join(self._chunks)


class _DiscardSink(_SinkBase):
    def __init__(self, budget_bytes: int) -> None:
        self._budget_bytes = budget_bytes

    def write(self, data: bytes) -> None:
        self._budget_bytes -= len(data)
        if self._budget_bytes < 0 and self.producer is not None:
            producer = self.producer
            if producer._on_overflow is not None:
                producer._overflowed()
            else:
                producer.stopProducing()


class _NoBufferedContent:
    """Stands in for ``request.content``: jay never buffers bodies; use ``request.body``."""

    def read(self, *args: object) -> bytes:
        raise RuntimeError("request bodies are streamed: use request.body")

    def seek(self, *args: object) -> int:
        return 0

    def tell(self) -> int:
        return 0

    def close(self) -> None:
        pass


class _DateHeader:
    """The ``Date`` value twisted gives every response, formatted once per second.

    ``datetimeToString()`` (a ``gmtime`` and a %-format) costs about 2 µs per request; the
    text only changes when the second does.
    """

    __slots__ = ("_second", "_value")

    def __init__(self) -> None:
        self._second = -1
        self._value = b""

    def __call__(self) -> bytes:
        second = int(time.time())
        if second != self._second:
            self._value = datetimeToString(second)
            self._second = second
        return self._value


_date_header = _DateHeader()


_NON_QUEUED_FACTORIES: dict[Any, bool] = {}


_SITE_GET_RESOURCE = Site.getResourceFor


def _is_non_queued(factory: Any) -> bool:
    """``INonQueuedRequestFactory.providedBy(factory)``, remembered per factory (the zope
    check costs about 1.5 % of a HEAD; a site has one or two factories)."""
    try:
        known = _NON_QUEUED_FACTORIES.get(factory)
    except TypeError:  # unhashable: ask every time
        return bool(INonQueuedRequestFactory.providedBy(factory))
    if known is None:
        known = bool(INonQueuedRequestFactory.providedBy(factory))
        if len(_NON_QUEUED_FACTORIES) < 64:
            _NON_QUEUED_FACTORIES[factory] = known
    return known


@provider(INonQueuedRequestFactory)
class StreamingRequest(Request):
    """A ``server.Request`` that runs ``process()`` on headers and exposes ``body``."""

    body: RequestBody

    def __init__(self, channel: Any, *args: Any, **kwargs: Any) -> None:
        if args or kwargs:
            kwargs["parsePOSTFormSubmission"] = False
            super().__init__(channel, *args, **kwargs)
        else:
            # What ``server.Request.__init__(channel, parsePOSTFormSubmission=False)`` sets
            # (through ``http.Request.__init__`` and ``Componentized.__init__``), set here
            # without the three calls; ``tests/s3/test_perf_http.py`` pins the attributes.
            self.notifications = []
            self.channel = channel
            self.client = channel.getPeer()
            self.host = channel.getHost()
            self.requestHeaders = Headers()
            self.received_cookies = {}
            self.responseHeaders = Headers()
            self.cookies = []
            self.transport = channel.transport
            self.queued = False
            self._parsePOSTFormSubmission = False
            self._adapterCache = {}
        self.body = RequestBody(None, length=0, expects_continue=False)
        self._is_dispatched = False
        self._postpath: list[bytes] | None = None

    def gotLength(self, length: int | None) -> None:
        self._begin_body(length, expects_continue=False)

    def _begin_body(self, length: int | None, *, expects_continue: bool) -> None:
        site = getattr(self.channel, "site", None)
        self.content = _NoBufferedContent()  # type: ignore[assignment]
        max_drain_bytes = getattr(site, "max_drain_bytes", DEFAULT_MAX_DRAIN_BYTES)
        body = self.body
        if length == 0 and not expects_continue and body._channel is None and body.is_fresh:
            # No body (a GET, HEAD or DELETE): the one made with the request is exactly what a
            # new one would be but for the channel, so it is kept (one object less per request).
            body._channel = self.channel
            body._max_drain_bytes = max_drain_bytes
            return
        self.body = RequestBody(
            self.channel,
            length=length,
            expects_continue=expects_continue,
            max_drain_bytes=max_drain_bytes,
        )

    def handleContentChunk(self, data: bytes) -> None:
        self.body._data_received(data)

    def _dispatch_head(self, command: bytes, path: bytes, version: bytes) -> None:
        """Parse the request line like ``requestReceived`` does, then ``process()``."""
        self._is_dispatched = True
        self.args = {}  # type: ignore[assignment]
        self.method, self.uri, self.clientproto = command, path, version
        parts = self.uri.split(b"?", 1)
        if len(parts) == 1:
            self.path = self.uri
        else:
            self.path, query = parts
            self.args = parse_qs(query, 1)
        self.process()

    def process(self) -> None:
        """``twisted.web.server.Request.process``, step for step (checked against Twisted 26.x),
        except that the two default headers (and the site's ``fixed_headers``) are stored
        directly, as ``setHeader`` would store them (fixed ASCII needs no encoding or
        sanitising), and ``Date`` is formatted once per second. ``tests/s3/test_http_streaming.py`` pins the result against twisted's."""
        channel: Any = self.channel
        self.site = channel.site
        raw = self.responseHeaders._rawHeaders
        raw[b"Server"] = [server_version]
        raw[b"Date"] = [_date_header()]
        for name, value in getattr(channel.site, "fixed_headers", ()):
            raw[name] = [value]
        self.prepath = []
        self._postpath = None  # formed on first use (see ``postpath``)
        if self.path == b"*":
            self._handleStar()
            return
        try:
            site = self.site
            root = site.resource
            if getattr(root, "isLeaf", False) and type(site).getResourceFor is _SITE_GET_RESOURCE:
                # What ``Site.getResourceFor`` does for a leaf root (the S3 site's), without
                # its ``copy.copy`` and ``getChildForRequest``, whose loop would form the
                # postpath just to find that a leaf has no children.
                self.sitepath = list[bytes]()
                resrc = root
            else:
                resrc = site.getResourceFor(self)
            if web_resource._IEncodingResource.providedBy(resrc):
                encoder = resrc.getEncoder(self)
                if encoder is not None:
                    self._encoder = encoder
            self.render(resrc)
        except BaseException:
            self.processingFailed(Failure())

    @property  # type: ignore[override]
    def postpath(self) -> list[bytes] | None:
        """``server.Request.process`` sets ``postpath`` to the unquoted path segments for
        resource traversal; a leaf resource (the S3 site's) never looks at them, and forming
        them cost about 1 % of a HEAD. Here they are formed on first use, the same list."""
        postpath = self._postpath
        if postpath is None and self.path is not None:
            postpath = self._postpath = list(map(unquote, self.path[1:].split(b"/")))
        return postpath

    @postpath.setter
    def postpath(self, value: list[bytes] | None) -> None:
        self._postpath = value

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        """The channel saw the end of the body (or a request without one)."""
        self.body._end_of_body()
        if not self._is_dispatched:
            self._dispatch_head(command, path, version)

    def write(self, data: bytes) -> None:
        channel = getattr(self, "channel", None)  # deleted once the request is finished
        if not self.startedWriting and not self.finished and channel is not None:
            if not self.body._keeps_alive_after_response():
                self.responseHeaders.setRawHeaders(b"Connection", [b"close"])
                channel.persistent = False
        try:
            super().write(data)
        finally:
            # The head waits in the channel only within this call (see StreamingChannel).
            if channel is not None:
                channel.send_unsent_head()

    def respond_now(self, body: bytes) -> None:
        """``write(body)`` then ``finish()``, for a response whose every byte is known now.

        The usual answer to a small request (HEAD, a small GET, PUT, DELETE, an XML reply):
        twisted's ``write`` passes through three classes (``StreamingRequest``,
        ``server.Request``, ``http.Request``) and the channel's ``writeHeaders`` and ``write``,
        then ``finish`` through two more, each re-checking state, about a tenth of a HEAD's
        CPU. This does the same steps once, in their order, and sends the same bytes: the
        default ``Content-Type`` rule of ``server.Request.write``, ``Connection: close``
        when the body is not worth keeping the connection for, no body for HEAD, 204 and 304,
        head and a small body in one ``send``. Anything it does not cover (no
        ``Content-Length`` where twisted would chunk, an encoder, cookies, a producer, a
        request already writing) takes ``write`` and ``finish`` themselves.
        ``tests/s3/test_http_streaming.py`` pins the bytes against twisted's.
        """
        channel: Any = getattr(self, "channel", None)
        raw = self.responseHeaders._rawHeaders
        code = self.code
        no_body = self.method == b"HEAD" or code in NO_BODY_CODES
        if (
            self.startedWriting
            or self.finished
            or self._disconnected
            or self._encoder is not None
            or self._inFakeHead
            or self.lastModified is not None
            or self.etag is not None
            or self.cookies
            or self.producer is not None
            or self.queued
            or type(channel) is not StreamingChannel
            or channel._unsent_head is not None
            or (b"Content-Length" not in raw and self.clientproto == b"HTTP/1.1" and not no_body)
        ):
            if body:
                self.write(body)
            self.finish()
            return
        if not self.body._keeps_alive_after_response():
            raw[b"Connection"] = [b"close"]
            channel.persistent = False
        if code != 304 and code != 204 and b"Content-Type" not in raw:
            length = raw.get(b"Content-Length")
            if self.defaultContentType is not None and not (length and length[0] == b"0"):
                raw[b"Content-Type"] = [self.defaultContentType]
        self.startedWriting = 1
        parts = [self.clientproto, b" %d " % code, self.code_message, b"\r\n"]
        for name, values in self.responseHeaders.getAllRawHeaders():
            for value in values:
                parts.extend((name, b": ", value, b"\r\n"))
        parts.append(b"\r\n")
        transport: Any = channel.transport
        if no_body or not body:
            send_now(transport, b"".join(parts))
        else:
            self.sentLength = len(body)
            if len(body) <= MAX_COMBINED_BODY_BYTES:
                parts.append(body)
                send_now(transport, b"".join(parts))
            else:
                send_now(transport, b"".join(parts))
                transport.write(body)
        channel.resetTimeout()
        factory = getattr(channel, "factory", None)
        if factory is not None:
            factory.log(self)
        self.finished = 1
        self._cleanup()

    def connectionLost(self, reason: Failure) -> None:
        # Fail the body first, so a handler awaiting deliver_to sees IncompleteBody rather
        # than the CancelledError Klein sends when notifyFinish errbacks.
        self.body._connection_lost(reason)
        super().connectionLost(reason)


class StreamingChannel(HTTPChannel):
    """``HTTPChannel`` that hands the request to the site as soon as its headers end."""

    def __init__(self) -> None:
        super().__init__()
        self._head_to_dispatch: StreamingRequest | None = None
        self._body_request: StreamingRequest | None = None
        self._is_body_reading_wanted = True
        # Pausing the transport costs two epoll_ctl calls (pause, then resume), each of which
        # drops the GIL. A pause asked for while ``dataReceived`` runs is applied only when it
        # returns, and not at all if the body was wanted again meanwhile: a small PUT whose
        # head and body arrive in one read never touches the epoll set.
        self._in_data_received = False
        self._is_pause_deferred = False
        self._suspended_timeout: float | None = None
        self._is_discarding_input = False
        self._linger_call: Any = None
        self._host: Any = None
        self._peer: Any = None
        self._unsent_head: bytes | None = None
        self._idle_call: Any = None
        self._metrics: Any = None  # the site's Metrics while this connection is counted

    def getHost(self) -> Any:
        # Every Request asks for both; the transport's getHost is a getsockname syscall and
        # getPeer builds a new address object each time. Neither changes on a connection.
        if self._host is None:
            self._host = super().getHost()
        return self._host

    def getPeer(self) -> Any:
        if self._peer is None:
            self._peer = super().getPeer()
        return self._peer

    # --- request lifecycle ---------------------------------------------------------------

    def allHeadersReceived(self) -> None:
        request = self.requests[-1]
        request.parseCookies()
        self.persistent = self.checkPersistence(request, self._version)
        expect = request.requestHeaders.getRawHeaders(b"Expect")
        expects_continue = bool(
            expect and expect[0].lower() == b"100-continue" and self._version == b"HTTP/1.1"
        )
        request._begin_body(self.length, expects_continue=expects_continue)
        if self.length != 0:
            # No socket reads until the handler asks for the body.
            self._set_body_reading(False)
            self._head_to_dispatch = request
            self._body_request = request

    def lineReceived(self, line: bytes) -> None:
        if self._receivedHeaderSize + len(line) > self.totalHeadersSize:
            self._respond_and_close(b"431 Request Header Fields Too Large")
            return
        super().lineReceived(line)
        self._dispatch_waiting_head()

    def _dispatch_waiting_head(self) -> None:
        """The headers of a request with a body ended: hand the request to the site now."""
        request = self._head_to_dispatch
        if request is not None:
            self._head_to_dispatch = None
            request._dispatch_head(self._command, self._path, self._version)

    def lineLengthExceeded(self, line: bytes) -> None:
        self._respond_and_close(b"431 Request Header Fields Too Large")

    def allContentReceived(self) -> None:
        if self._is_discarding_input:
            return
        self._body_request = None
        if self._suspended_timeout is not None:
            self.setTimeout(self._suspended_timeout)
            self._suspended_timeout = None
        if not self._is_body_reading_wanted:
            self._is_body_reading_wanted = True
            self._resume_reading()
        super().allContentReceived()

    def _finishRequestBody(self, data: bytes) -> None:
        if self._is_discarding_input:
            return
        super()._finishRequestBody(data)

    def requestDone(self, request: Any) -> None:
        body: RequestBody = request.body
        if body.is_received:
            super().requestDone(request)
            return
        if self.persistent and body._drain_after_response(
            on_drained=lambda: HTTPChannel.requestDone(self, request),
            on_overflow=lambda: self._close_after_response(request),
        ):
            return
        self._close_after_response(request)

    def _close_after_response(self, request: Any) -> None:
        """Half-close after the response and drop input for a while, then close."""
        if request in self.requests:
            self.requests.remove(request)
        self.persistent = False
        self._is_discarding_input = True
        self._head_to_dispatch = None
        self.setTimeout(None)
        self._suspended_timeout = None
        transport: Any = self.transport
        if transport is None or not getattr(transport, "connected", True):
            return  # the peer is gone already: nothing to half-close or linger on
        half_close = getattr(transport, "loseWriteConnection", None)
        linger_seconds = getattr(
            getattr(self, "site", None), "linger_seconds", DEFAULT_LINGER_SECONDS
        )
        if half_close is None or not linger_seconds:
            self.loseConnection()
            return
        self._networkProducer.resumeProducing()
        half_close()
        self._linger_call = self.callLater(linger_seconds, transport.abortConnection)

    def connectionMade(self) -> None:
        super().connectionMade()
        metrics = getattr(getattr(self, "site", None), "metrics", None)
        if metrics is not None:
            self._metrics = metrics
            metrics.connection_opened("s3")

    def connectionLost(self, reason: Failure = _CONNECTION_DONE) -> None:
        if self._linger_call is not None and self._linger_call.active():
            self._linger_call.cancel()
        self._linger_call = None
        metrics, self._metrics = self._metrics, None
        if metrics is not None:
            metrics.connection_closed("s3")
        super().connectionLost(reason)
        idle_call, self._idle_call = self._idle_call, None
        if idle_call is not None and idle_call.active():
            idle_call.cancel()

    # --- reading and the idle timer --------------------------------------------------------
    #
    # TimeoutMixin's timer, except that stopping it (``setTimeout(None)``, as twisted does for
    # every request it handles) leaves the DelayedCall scheduled and ``timeOut`` None makes it
    # do nothing if it fires; starting it again re-arms the same call. Cancelling and
    # scheduling a new call per request (plus the reactor's heap work for both) cost about
    # 5 µs; re-arming costs about 1 µs. ``connectionLost`` cancels it.

    def setTimeout(self, period: float | None) -> float | None:
        previous = self.timeOut
        self.timeOut = period  # type: ignore[assignment]  # twisted says int; any seconds do
        if period is not None:
            call = self._idle_call
            if call is not None and call.active():
                call.reset(period)
            else:
                self._idle_call = self.callLater(period, self._idle_timed_out)
        return previous

    def resetTimeout(self) -> None:
        call = self._idle_call
        if call is not None and self.timeOut is not None and call.active():
            call.reset(self.timeOut)

    def _idle_timed_out(self) -> None:
        self._idle_call = None
        if self.timeOut is not None:
            self.timeoutConnection()

    def dataReceived(self, data: bytes) -> None:
        if self._is_discarding_input:
            return
        self._in_data_received = True
        try:
            if (
                self.line_mode
                and not self._busyReceiving
                and not self._buffer
                and self.persistent
                and self._HTTPChannel__first_line == 1  # type: ignore[attr-defined]
            ):
                end = data.find(b"\r\n\r\n")
                if end > 0 and self._receive_whole_head(data, end):
                    return
            super().dataReceived(data)
        finally:
            self._in_data_received = False
            if self._is_pause_deferred:
                self._is_pause_deferred = False
                if not self._is_body_reading_wanted and not self._is_discarding_input:
                    self._networkProducer.pauseProducing()

    def _receive_whole_head(self, data: bytes, end: int) -> bool:
        """A request whose head arrived whole (the usual case): parse it in one pass.

        Twisted parses line by line (``LineReceiver``, ``lineReceived``, ``headerReceived``,
        ``Headers.addRawHeader`` per header), about a tenth of a small GET's CPU. This ends in
        the same state, with the same request object and header values, then lets twisted
        handle whatever follows the head. Anything unusual (folded or malformed lines, limits
        reached, bad names or values, ``Transfer-Encoding``, a repeated or non-numeric
        ``Content-Length``) returns False before any state changes, and twisted's own path
        handles the data, answering errors as it always does.
        """
        head = data[:end]
        lines = head.split(b"\r\n")
        breaks = len(lines) - 1
        # A lone CR or LF (or a NUL) anywhere: twisted's line parser and header checks decide.
        if head.count(b"\n") != breaks or head.count(b"\r") != breaks or b"\x00" in head:
            return False
        size = len(head) - 2 * breaks
        if (
            size > self.totalHeadersSize
            or max(map(len, lines)) > self.MAX_LENGTH
            or breaks > self.maxHeaders
        ):
            return False
        try:
            command, path, version = _parseRequestLine(lines[0])
        except ValueError:
            return False
        headers: list[tuple[bytes, bytes]] = []
        length: int | None = None
        canonical = _nameEncoder._canonicalHeaderCache.get
        for i in range(1, len(lines)):
            line = lines[i]
            name, colon, value = line.partition(b":")
            if not colon or line[0] in b" \t":
                return False
            encoded = canonical(name)
            if encoded is None:
                try:
                    encoded = _nameEncoder.encode(name)
                except InvalidHeaderName:
                    return False
            name = encoded
            value = value.strip(b" \t")
            if name == b"Content-Length":
                if length is not None or not value.isdigit():
                    return False
                length = int(value)
            elif name == b"Transfer-Encoding":
                return False
            headers.append((name, value))

        # From here on, what twisted's lineReceived does for these lines, in its order.
        self.resetTimeout()
        self._busyReceiving = True
        try:
            self._receivedHeaderSize = size
            factory: Any = self.requestFactory
            if _is_non_queued(factory):
                request = factory(self)
            else:
                request = factory(self, len(self.requests))
            self.requests.append(request)
            self._HTTPChannel__first_line = 0
            self._command, self._path, self._version = command, path, version
            raw = request.requestHeaders._rawHeaders
            for name, value in headers:
                values = raw.get(name)
                if values is None:
                    raw[name] = [value]
                else:
                    values.append(value)
            self._receivedHeaderCount = len(headers)
            if length is not None:
                self.length = length
                self._transferDecoder = _IdentityTransferDecoder(
                    length, request.handleContentChunk, self._finishRequestBody
                )
            self.allHeadersReceived()
            if self.length == 0:
                self.allContentReceived()
            else:
                self.setRawMode()
            self._dispatch_waiting_head()
        finally:
            self._busyReceiving = False
        # Bytes after the head (a body, a pipelined request), then any that arrived meanwhile.
        rest = data[end + 4 :] + self.clearLineBuffer()
        if rest:
            transport: Any = self.transport
            if transport is not None and transport.disconnecting:
                self._buffer = rest  # where LineReceiver leaves them when it stops
            else:
                LineReceiver.dataReceived(self, rest)
        return True

    def rawDataReceived(self, data: bytes) -> None:
        if self._is_discarding_input:
            return
        super().rawDataReceived(data)

    def _set_body_reading(self, is_wanted: bool) -> None:
        """The body's consumer wants bytes (or not). Suspend the idle timer while we stall."""
        if is_wanted == self._is_body_reading_wanted or self._is_discarding_input:
            return
        self._is_body_reading_wanted = is_wanted
        if is_wanted:
            if self._suspended_timeout is not None:
                self.setTimeout(self._suspended_timeout)
                self._suspended_timeout = None
            self._resume_reading()
        else:
            if self._in_data_received:
                self._is_pause_deferred = True
            else:
                self._networkProducer.pauseProducing()
            previous = self.setTimeout(None)
            if previous is not None:
                self._suspended_timeout = previous

    def _resume_reading(self) -> None:
        if self._is_pause_deferred:
            self._is_pause_deferred = False  # the transport was never paused
        elif not self._waitingForTransport:
            self._networkProducer.resumeProducing()

    def pauseProducing(self) -> None:
        """The peer is not reading our output: run the idle timer even while handling."""
        super().pauseProducing()
        if self._handlingRequest and self.timeOut is None and self._savedTimeOut:
            self.setTimeout(self._savedTimeOut)

    def resumeProducing(self) -> None:
        self._waitingForTransport = False
        if self._requestProducer is not None:
            self._requestProducer.resumeProducing()
        if self._handlingRequest:
            if self.timeOut is not None:
                self.setTimeout(None)
        elif self._is_body_reading_wanted and not self._is_discarding_input:
            self._networkProducer.resumeProducing()

    # --- writing the response ----------------------------------------------------------------
    #
    # The status line and headers are held back until the body's first bytes (or the end of
    # the ``StreamingRequest.write`` that produced them), so head and a small body leave in one
    # ``send``, made at once by ``send_now`` when nothing is queued: no epoll registration and
    # no reactor turn per response. The bytes and their order are what twisted writes.

    def writeHeaders(self, version: bytes, code: bytes, reason: bytes, headers: Any) -> None:
        if not isinstance(headers, Headers):
            super().writeHeaders(version, code, reason, headers)
        else:
            parts = [version, b" ", code, b" ", reason, b"\r\n"]
            for name, values in headers.getAllRawHeaders():
                for value in values:
                    parts.extend((name, b": ", value, b"\r\n"))
            parts.append(b"\r\n")
            self._unsent_head = b"".join(parts)
        self.resetTimeout()

    def send_unsent_head(self) -> None:
        """Send the held-back status line and headers, if any (nothing else follows now)."""
        head = self._unsent_head
        if head is not None:
            self._unsent_head = None
            send_now(self.transport, head)

    def write(self, data: bytes) -> None:
        transport: Any = self.transport
        head = self._unsent_head
        if head is None:
            transport.write(data)
        elif len(data) <= MAX_COMBINED_BODY_BYTES:
            self._unsent_head = None
            send_now(transport, head + data)
        else:
            self.send_unsent_head()
            transport.write(data)
        self.resetTimeout()

    def writeSequence(self, iovec: list[bytes]) -> None:
        transport: Any = self.transport
        self.send_unsent_head()
        transport.writeSequence(iovec)
        self.resetTimeout()

    # --- zero-copy object bodies ------------------------------------------------------------

    def send_file_body(
        self, request: Any, opened: Any, start: int, length: int
    ) -> Deferred[int] | None:
        """Send ``request``'s headers, then ``length`` bytes of ``opened`` from ``start``
        straight from the file to the socket (``sendfile``: no Python copy of the bytes).

        None when the connection cannot do that (TLS, not TCP, already closing): the caller
        streams through ``request.write`` instead. The channel stops being the transport's
        producer meanwhile (the storage's producer takes its place, as on the native port)
        and the idle timer runs, reset whenever bytes go out, so a peer that stops reading
        is dropped after ``timeOut`` as with any other response.
        """
        transport: Any = self.transport
        if sendfile_socket(transport) is None:
            return None
        request.write(b"")  # status line and headers, into the transport's buffer
        transport.unregisterProducer()
        self.setTimeout(self._savedTimeOut)

        def restore(result: Any) -> Any:
            self.setTimeout(None)
            if not transport.disconnecting and not transport.disconnected:
                transport.registerProducer(self, True)
            if isinstance(result, int):
                request.sentLength += result
            return result

        d: Deferred[int] = opened.stream(transport, start, length, on_progress=self.resetTimeout)
        return d.addBoth(restore)

    # --- errors on the wire ----------------------------------------------------------------

    def _respondToBadRequestAndDisconnect(self) -> None:
        request = self._body_request
        if request is not None and not request.body.is_received:
            # Broken chunked framing after dispatch: the handler owns the response. Fail its
            # body and close once it has answered (at once if it already has).
            self._body_request = None
            if request.finished:
                self._close_after_response(request)
                return
            self.persistent = False
            self._set_body_reading(False)
            self._is_discarding_input = True
            request.body._fail(IncompleteBody("malformed chunked request body"))
            return
        self._respond_and_close(b"400 Bad Request")

    def _respond_and_close(self, status: bytes) -> None:
        self._is_discarding_input = True
        transport: Any = self.transport
        transport.write(
            b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        self.loseConnection()


def _streaming_channel_protocol(factory: Any) -> _GenericHTTPChannelProtocol:
    return _GenericHTTPChannelProtocol(StreamingChannel())


class StreamingSite(Site):
    """A ``Site`` whose requests stream their bodies (see the module docstring)."""

    protocol = _streaming_channel_protocol  # type: ignore[assignment]
    requestFactory = StreamingRequest
    noisy = False

    def __init__(
        self,
        resource: Any,
        *,
        idle_timeout_seconds: float | None = DEFAULT_IDLE_TIMEOUT_SECONDS,
        max_drain_bytes: int = DEFAULT_MAX_DRAIN_BYTES,
        linger_seconds: float = DEFAULT_LINGER_SECONDS,
        reactor: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            resource,
            requestFactory=StreamingRequest,
            parsePOSTFormSubmission=False,
            timeout=idle_timeout_seconds,
            reactor=reactor,
            **kwargs,
        )
        self.max_drain_bytes = max_drain_bytes
        self.linger_seconds = linger_seconds
        # jay.metrics.registry.Metrics: counts this site's open connections (protocol "s3").
        self.metrics: Any = None
        # Headers every response of this site carries, after Server and Date: (canonical
        # name, value) pairs, stored as ``setHeader`` would store them.
        self.fixed_headers: tuple[tuple[bytes, bytes], ...] = ()


__all__ = [
    "BodyDeliveryStopped",
    "RequestBody",
    "StreamingChannel",
    "StreamingRequest",
    "StreamingSite",
]
