"""A PUT's head and body that arrive in one read never pause the transport.

The channel stops reading the socket while a handler has not asked for the body yet; doing so
means two epoll_ctl calls per request, each dropping the GIL. A pause asked for during
``dataReceived`` is applied only when it returns, and dropped if the body was wanted again
(or fully received) meanwhile.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from jay.s3.http import StreamingSite


class CountingTransport(StringTransport):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def pauseProducing(self) -> None:
        self.calls.append("pause")
        super().pauseProducing()

    def resumeProducing(self) -> None:
        self.calls.append("resume")
        super().resumeProducing()


class Echo(Resource):
    """Answers with the request body; with ``hold`` set, waits until the test asks for it."""

    isLeaf = True

    def __init__(self, hold: bool = False) -> None:
        super().__init__()
        self.hold = hold
        self.held: list[Any] = []

    def render(self, request: Any) -> Any:
        if self.hold:
            self.held.append(request)
        else:
            self.echo(request)
        return NOT_DONE_YET

    @staticmethod
    def echo(request: Any) -> None:
        def answer(body: bytes) -> None:
            request.setHeader(b"Content-Length", b"%d" % len(body))
            request.write(body)
            request.finish()

        request.body.read_all(1 << 20).addCallback(answer)


def connect(resource: Resource) -> tuple[Any, CountingTransport]:
    site = StreamingSite(resource, idle_timeout_seconds=None)
    site.log = lambda request: None  # type: ignore[method-assign]
    protocol = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1))
    transport = CountingTransport()
    protocol.makeConnection(transport)
    return protocol, transport


HEAD = b"PUT /k HTTP/1.1\r\nHost: h\r\nContent-Length: 4096\r\n\r\n"
BODY = b"b" * 4096


def test_head_and_body_in_one_read_never_pause() -> None:
    protocol, transport = connect(Echo())
    protocol.dataReceived(HEAD + BODY)
    # (twisted's requestDone resumes the transport after every request: a no-op when it was
    # never paused, as the reactor skips a reader it already has.)
    assert "pause" not in transport.calls
    assert transport.producerState == "producing"
    assert transport.value().startswith(b"HTTP/1.1 200 ")
    assert transport.value().endswith(b"\r\n\r\n" + BODY)


def test_a_body_not_yet_wanted_pauses_after_the_read_and_resumes_when_asked() -> None:
    resource = Echo(hold=True)
    protocol, transport = connect(resource)
    protocol.dataReceived(HEAD)
    assert transport.calls == ["pause"]
    assert transport.producerState == "paused"
    Echo.echo(resource.held.pop())
    assert transport.calls == ["pause", "resume"]
    assert transport.producerState == "producing"
    protocol.dataReceived(BODY[:1000])
    assert transport.calls == ["pause", "resume"]
    protocol.dataReceived(BODY[1000:])
    assert transport.value().endswith(b"\r\n\r\n" + BODY)
    assert transport.producerState == "producing"


def test_a_whole_request_whose_handler_waits_is_not_paused() -> None:
    """The body was received completely in the same read: nothing more to hold back."""
    resource = Echo(hold=True)
    protocol, transport = connect(resource)
    protocol.dataReceived(HEAD + BODY)
    assert transport.producerState == "producing"
    assert transport.calls == []
    Echo.echo(resource.held.pop())
    assert transport.value().endswith(b"\r\n\r\n" + BODY)
    assert "pause" not in transport.calls
