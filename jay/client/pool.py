"""A pool of native connections with pipelining, lazy dialing and one transparent retry.

Placement (JAY_SPEC §1.9: no multiplexing, answers in order, so a slow response delays every
request behind it on the same connection):

* A *small* request (no body, no streaming sink) goes to the ready connection with the fewest
  requests in flight, as long as that is below ``pipeline_depth`` and the connection is not
  streaming. If the best choice is already busy and the pool has room, another connection is
  dialed for the requests that come later; the current one does not wait for it.
* A *bulky* request (an upload body or a download into a sink) takes an otherwise idle
  connection, and nothing is pipelined behind it, so a 1 GiB transfer never holds up pings.
* When nothing fits, requests wait in a FIFO queue (pool exhaustion), served as soon as a
  response ends or a new connection is ready. A later request may overtake a queued bulky one
  when it fits where the bulky one does not.

Broken connections: the server closes idle connections (60 s upstream, §1.10), and a request
can race that close. A connection that is lost leaves the pool; the next request dials. A
request that failed with ConnectionClosed before any response byte arrived is retried once, on
another connection, when the caller marked it retryable (idempotent, with a body that can be
produced again).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from twisted.internet.defer import Deferred, TimeoutError
from twisted.internet.interfaces import IConsumer, IReactorTime, IStreamClientEndpoint
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.python.failure import Failure

from jay.client.protocol import (
    ConnectionClosed,
    HandshakeFailed,
    HeadHook,
    NativeClientProtocol,
    NativeConnectionError,
    RequestBody,
    Response,
)
from jay.native.codec import Op

log = Logger()

BodyFactory = Callable[[], RequestBody]
"""Makes the request body afresh, so that a retried upload can be sent a second time."""


class ConnectFailed(NativeConnectionError):
    """The endpoint could not be reached (refused, unreachable, DNS); ``reason`` says why."""

    def __init__(self, reason: BaseException) -> None:
        super().__init__(f"cannot connect: {reason}")
        self.reason = reason


class PoolClosed(NativeConnectionError):
    """The pool was closed; queued and later requests fail with this."""


@dataclass(slots=True, eq=False)
class _Job:
    op: Op | int
    meta: bytes
    body: RequestBody | BodyFactory | None
    sink: IConsumer | None
    on_head: HeadHook | None
    is_retryable: bool
    is_bulky: bool
    deferred: Deferred[Response]
    attempts: int = 0

    def make_body(self) -> RequestBody | None:
        body = self.body
        if body is None or isinstance(body, bytes) or not callable(body):
            return body
        return body()


class _NativeFactory(Factory):
    def __init__(self, token_id: str, secret: str) -> None:
        self._token_id = token_id
        self._secret = secret

    def buildProtocol(self, addr: object) -> NativeClientProtocol:
        return NativeClientProtocol(self._token_id, self._secret)


class ConnectionPool:
    """Up to ``size`` connections to one native endpoint, shared by all requests."""

    def __init__(
        self,
        endpoint: IStreamClientEndpoint,
        token_id: str,
        secret: str,
        *,
        size: int = 4,
        pipeline_depth: int = 8,
        clock: IReactorTime | None = None,
        handshake_timeout_seconds: float = 10.0,
    ) -> None:
        if size < 1:
            raise ValueError("pool size must be at least 1")
        if pipeline_depth < 1:
            raise ValueError("pipeline depth must be at least 1")
        self._endpoint = endpoint
        self._clock = clock
        # The server allows 10 s for the whole handshake (§1.2); waiting longer is pointless.
        self._handshake_timeout_seconds = handshake_timeout_seconds
        self._factory = _NativeFactory(token_id, secret)
        self._size = size
        self._depth = pipeline_depth
        self._ready: list[NativeClientProtocol] = []
        self._bulky: dict[NativeClientProtocol, int] = {}  # bulky requests in flight
        self._dialing = 0
        self._queue: deque[_Job] = deque()
        self._is_closed = False
        self._last_dial_error: BaseException | None = None

    # -- public --------------------------------------------------------------------------------

    @property
    def size(self) -> int:
        return self._size

    @property
    def connection_count(self) -> int:
        """Ready connections (dials in progress are not counted)."""
        return len(self._ready)

    @property
    def queued_count(self) -> int:
        return len(self._queue)

    def start(self) -> Deferred[None]:
        """Open and handshake one connection now, so bad credentials fail at connect time."""
        return Deferred.fromCoroutine(self._start())

    async def _start(self) -> None:
        self._dialing += 1
        try:
            proto = await self._dial()
        finally:
            self._dialing -= 1
        self._add_ready(proto)

    def submit(
        self,
        op: Op | int,
        meta: bytes = b"",
        *,
        body: RequestBody | BodyFactory | None = None,
        sink: IConsumer | None = None,
        on_head: HeadHook | None = None,
        is_retryable: bool = False,
        is_bulky: bool | None = None,
    ) -> Deferred[Response]:
        """Queue one request; it runs on the best connection as soon as one fits.

        ``is_retryable``: the op is idempotent and ``body`` is bytes or a factory, so it may be
        sent again on a fresh connection if its first connection died without answering.
        ``is_bulky`` (default: a streamed body or a sink) gives the request a connection of its
        own; pass False for a sink that only collects a small, capped response.
        """
        d: Deferred[Response] = Deferred()
        if self._is_closed:
            d.errback(PoolClosed("connection pool is closed"))
            return d
        if is_bulky is None:
            is_bulky = sink is not None or not isinstance(body, bytes | None)
        self._queue.append(_Job(op, meta, body, sink, on_head, is_retryable, is_bulky, d))
        self._dispatch()
        return d

    def close(self) -> Deferred[None]:
        """Fail queued requests and close every connection (their waiting requests fail)."""
        return Deferred.fromCoroutine(self._close())

    async def _close(self) -> None:
        self._is_closed = True
        queued, self._queue = list(self._queue), deque()
        for job in queued:
            job.deferred.errback(PoolClosed("connection pool is closed"))
        closing = [proto.close() for proto in list(self._ready)]
        for d in closing:
            await d

    # -- placement -----------------------------------------------------------------------------

    def _pick(self, job: _Job) -> NativeClientProtocol | None:
        best: NativeClientProtocol | None = None
        for proto in self._ready:
            if not proto.is_ready or proto.is_streaming or self._bulky.get(proto, 0):
                continue
            if job.is_bulky:
                if proto.in_flight:
                    continue
            elif proto.in_flight >= self._depth:
                continue
            if best is None or proto.in_flight < best.in_flight:
                best = proto
        return best

    def _dispatch(self) -> None:
        if self._is_closed:
            return
        waiting: deque[_Job] = deque()
        wants_connection = 0
        while self._queue:
            job = self._queue.popleft()
            proto = self._pick(job)
            if proto is None:
                waiting.append(job)
                wants_connection += 1
                continue
            if proto.in_flight:
                wants_connection += 1  # it has to pipeline: grow the pool for what follows
            self._send(job, proto)
        self._queue = waiting
        room = self._size - len(self._ready) - self._dialing
        for _ in range(min(room, wants_connection)):
            self._dial_in_background()

    def _send(self, job: _Job, proto: NativeClientProtocol) -> None:
        job.attempts += 1
        try:
            body = job.make_body()
            d = proto.request(job.op, job.meta, body=body, sink=job.sink, on_head=job.on_head)
        except Exception as e:
            job.deferred.errback(e)
            return
        if job.is_bulky:
            self._bulky[proto] = self._bulky.get(proto, 0) + 1

        def settle(result: object) -> object:
            if job.is_bulky:
                left = self._bulky.get(proto, 0) - 1
                if left > 0:
                    self._bulky[proto] = left
                else:
                    self._bulky.pop(proto, None)
            return result

        d.addBoth(settle)
        d.addCallbacks(
            lambda response: self._job_done(job, response),
            lambda failure: self._job_failed(job, failure),
        )

    def _job_done(self, job: _Job, response: Response) -> None:
        self._dispatch()  # capacity freed before the caller's callbacks run more requests
        job.deferred.callback(response)

    def _job_failed(self, job: _Job, failure: Failure) -> None:
        error = failure.value
        if (
            isinstance(error, ConnectionClosed)
            and not error.is_response_started
            and (job.is_retryable or not error.is_sent)
            and job.attempts < 2
            and not self._is_closed
        ):
            log.debug("Retrying native op {op} on another connection", op=job.op)
            self._queue.appendleft(job)
            self._dispatch()
            return
        self._dispatch()
        job.deferred.errback(failure)

    # -- connections ---------------------------------------------------------------------------

    async def _dial(self) -> NativeClientProtocol:
        try:
            proto = await self._endpoint.connect(self._factory)
        except Exception as e:
            raise ConnectFailed(e) from e
        assert isinstance(proto, NativeClientProtocol)
        ready = proto.when_ready()
        if self._clock is not None:
            ready.addTimeout(self._handshake_timeout_seconds, self._clock)
        try:
            await ready
        except TimeoutError:
            proto.close()
            raise HandshakeFailed("handshake timed out") from None
        return proto

    def _dial_in_background(self) -> None:
        self._dialing += 1
        d = Deferred.fromCoroutine(self._dial())
        d.addCallbacks(self._dialed, self._dial_failed)

    def _dialed(self, proto: NativeClientProtocol) -> None:
        self._dialing -= 1
        self._last_dial_error = None
        if self._is_closed:
            proto.close()
            return
        self._add_ready(proto)

    def _dial_failed(self, failure: Failure) -> None:
        self._dialing -= 1
        self._last_dial_error = failure.value
        log.debug("Native connect failed: {error}", error=failure.getErrorMessage())
        if self._ready or self._dialing:
            return  # queued requests go out as the live connections free up
        # Nothing can serve the queue: fail it rather than wait forever. Bad credentials fail
        # every queued request the same way.
        queued, self._queue = list(self._queue), deque()
        for job in queued:
            job.deferred.errback(failure.value)

    def _add_ready(self, proto: NativeClientProtocol) -> None:
        self._ready.append(proto)
        proto.on_connection_lost = self._lost
        self._dispatch()

    def _lost(self, proto: NativeClientProtocol) -> None:
        if proto in self._ready:
            self._ready.remove(proto)
        # Requests on it fail (and may be re-queued) through their own Deferreds right after.


__all__ = ["BodyFactory", "ConnectFailed", "ConnectionPool", "HandshakeFailed", "PoolClosed"]
