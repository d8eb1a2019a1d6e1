"""StreamingChannel's idle timer re-arms one DelayedCall instead of a new one per request.

The behaviour is TimeoutMixin's: the timer runs between requests and is reset by traffic,
stops while a request is handled, restarts for a full period after the response, drops an
idle connection, and leaves nothing scheduled once the connection is gone.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from jay.s3.http import StreamingSite

TIMEOUT = 60.0
GET = b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n"


class Answering(Resource):
    """Answers at once, or (``is_held``) only when ``release`` is called."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.is_held = False
        self.held: list[Any] = []

    def render(self, request: Any) -> Any:
        if self.is_held:
            self.held.append(request)
            return NOT_DONE_YET
        request.setHeader(b"Content-Length", b"2")
        return b"ok"

    def release(self) -> None:
        for request in self.held:
            request.setHeader(b"Content-Length", b"2")
            request.write(b"ok")
            request.finish()
        self.held.clear()


def connect(resource: Resource) -> tuple[Clock, Any, StringTransport]:
    clock = Clock()
    site = StreamingSite(resource, idle_timeout_seconds=TIMEOUT, reactor=clock)
    site.log = lambda request: None  # type: ignore[method-assign]
    protocol = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1))
    assert protocol is not None
    transport = StringTransport()
    protocol.makeConnection(transport)
    return clock, protocol, transport


def test_requests_reuse_one_delayed_call() -> None:
    clock, protocol, transport = connect(Answering())
    (first,) = clock.getDelayedCalls()
    for _ in range(5):
        clock.advance(10)
        protocol.dataReceived(GET)
    assert transport.value().count(b"HTTP/1.1 200 OK") == 5
    assert clock.getDelayedCalls() == [first]
    assert first.getTime() == clock.seconds() + TIMEOUT  # restarted by the last response


def test_an_idle_connection_is_dropped_after_the_timeout() -> None:
    clock, protocol, transport = connect(Answering())
    protocol.dataReceived(GET)
    clock.advance(TIMEOUT - 1)
    assert not transport.disconnecting
    clock.advance(1)
    assert transport.disconnecting


def test_traffic_resets_the_timer() -> None:
    clock, protocol, transport = connect(Answering())
    clock.advance(TIMEOUT - 1)
    protocol.dataReceived(b"GET /x HTTP/1.1\r\n")  # part of a request
    clock.advance(TIMEOUT - 1)
    assert not transport.disconnecting
    clock.advance(1)
    assert transport.disconnecting


def test_a_slow_handler_is_not_timed_out_and_the_timer_restarts_after_it() -> None:
    resource = Answering()
    resource.is_held = True
    clock, protocol, transport = connect(resource)
    protocol.dataReceived(GET)
    clock.advance(TIMEOUT * 3)  # the stopped timer's call fires and does nothing
    assert not transport.disconnecting
    resource.release()
    assert transport.value().startswith(b"HTTP/1.1 200 OK")
    clock.advance(TIMEOUT - 1)
    assert not transport.disconnecting
    clock.advance(1)
    assert transport.disconnecting


def test_nothing_stays_scheduled_after_the_connection_is_lost() -> None:
    clock, protocol, _ = connect(Answering())
    protocol.dataReceived(GET)
    assert clock.getDelayedCalls()
    protocol.connectionLost(Failure(ConnectionDone()))
    assert clock.getDelayedCalls() == []
