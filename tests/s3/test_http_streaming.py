"""Real-socket tests for jay.s3.http: header-time dispatch and streamed request bodies."""

from __future__ import annotations

import hashlib
import io
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import pytest_twisted
from klein import Klein
from twisted.internet import reactor, task
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IConsumer, IPushProducer
from twisted.internet.threads import deferToThread
from twisted.web.client import Agent, FileBodyProducer, readBody
from twisted.web.http_headers import Headers
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET
from zope.interface import implementer

from jay.errors import EntityTooLarge, IncompleteBody
from jay.s3.http import StreamingSite

MiB = 1024 * 1024


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll the predicate on the reactor until it holds, failing after ``timeout`` seconds."""
    deadline = reactor.seconds() + timeout
    while not predicate():
        if reactor.seconds() > deadline:
            raise AssertionError("condition not met before the deadline")
        await task.deferLater(reactor, 0.01, lambda: None)


def vm_rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@implementer(IConsumer)
class HashingConsumer:
    """Hashes what it is given. ``slow`` processes a little per reactor turn and pauses its
    producer above a high water mark, like the storage StagingWriter."""

    high_water = 1 * MiB
    low_water = 256 * 1024
    per_turn = 16 * 1024

    def __init__(self, *, slow: bool = False) -> None:
        self.sha = hashlib.sha256()
        self.size = 0
        self.producer: Any = None
        self.slow = slow
        self.queue: list[bytes] = []
        self.queued = 0
        self.pauses = 0
        self.peak_rss = 0
        self.closed = False
        self.writes: list[int] = []
        self._scheduled = False
        self._drained: list[Deferred[None]] = []

    def drained(self) -> Deferred[None]:
        """Fires once everything written so far has been hashed."""
        if not self.queue:
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._drained.append(d)
        return d

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        assert streaming
        self.producer = producer

    def unregisterProducer(self) -> None:
        self.producer = None

    def write(self, data: bytes) -> None:
        self.writes.append(len(data))
        if not self.slow:
            self.sha.update(data)
            self.size += len(data)
            return
        self.queue.append(data)
        self.queued += len(data)
        self.peak_rss = max(self.peak_rss, vm_rss_bytes())
        if self.queued > self.high_water and self.producer is not None:
            self.pauses += 1
            self.producer.pauseProducing()
        if not self._scheduled:
            self._scheduled = True
            reactor.callLater(0, self._work)

    def _work(self) -> None:
        self._scheduled = False
        budget = self.per_turn
        while self.queue and budget > 0:
            chunk = self.queue.pop(0)
            if len(chunk) > budget:
                chunk, rest = chunk[:budget], chunk[budget:]
                self.queue.insert(0, rest)
            self.sha.update(chunk)
            self.size += len(chunk)
            self.queued -= len(chunk)
            budget -= len(chunk)
        if self.queued < self.low_water and self.producer is not None:
            self.producer.resumeProducing()
        if self.queue:
            if not self._scheduled:
                self._scheduled = True
                reactor.callLater(0, self._work)
        else:
            waiting, self._drained = self._drained, []
            for d in waiting:
                d.callback(None)


class Probe(Resource):
    """Test handlers; records what happened so tests can assert on it."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[str, Any]] = []
        self.consumers: list[HashingConsumer] = []
        self.transports: list[Any] = []

    def render_GET(self, request: Any) -> bytes:
        request.setHeader(b"Content-Length", b"2")
        return b"ok"

    def render_PUT(self, request: Any) -> Any:
        path = request.path
        self.events.append(("dispatched", path))
        if path == b"/reject":
            request.setResponseCode(403)
            request.setHeader(b"Content-Length", b"6")
            return b"denied"
        if path == b"/discard":
            request.body.discard().addCallback(lambda _: respond(request, 200, b"dropped"))
            return NOT_DONE_YET
        if path == b"/xml":
            d = request.body.read_all(1024)

            def got(data: bytes) -> None:
                respond(request, 200, b"%d" % len(data))

            def too_big(failure: Any) -> None:
                failure.trap(EntityTooLarge)
                self.events.append(("too-large", None))
                respond(request, 400, b"too large")

            d.addCallbacks(got, too_big)
            return NOT_DONE_YET
        consumer = HashingConsumer(slow=path == b"/slow")
        self.consumers.append(consumer)
        self.transports.append(request.channel.transport)
        d = request.body.deliver_to(consumer)

        async def delivered(count: int) -> None:
            await consumer.drained()
            self.events.append(("delivered", count))
            respond(request, 200, b"%d %s" % (count, consumer.sha.hexdigest().encode()))

        def failed(failure: Any) -> None:
            consumer.closed = True  # the handler's cleanup (delete the staging file)
            self.events.append(("failed", failure.value))
            if not request._disconnected:
                respond(request, 400, b"incomplete")

        d.addCallbacks(lambda n: Deferred.fromCoroutine(delivered(n)), failed)
        return NOT_DONE_YET


def respond(request: Any, code: int, body: bytes) -> None:
    request.setResponseCode(code)
    request.setHeader(b"Content-Length", b"%d" % len(body))
    request.write(body)
    request.finish()


@pytest.fixture
def probe() -> Probe:
    return Probe()


@pytest.fixture
def server(probe: Probe) -> Iterator[tuple[int, StreamingSite]]:
    site = StreamingSite(probe, idle_timeout_seconds=30, linger_seconds=0.5)
    port = reactor.listenTCP(0, site, interface="127.0.0.1")
    yield port.getHost().port, site
    pytest_twisted.blockon(port.stopListening())


# --- blocking socket clients, run in a thread ---------------------------------------------


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    _readers.pop(sock.fileno(), None)
    return sock


_readers: dict[int, Any] = {}


def read_response(sock: socket.socket, method: str = "PUT") -> tuple[int, dict[str, str], bytes]:
    """Read one Content-Length response; one buffered reader per socket keeps pipelined
    responses that arrive together."""
    reader = _readers.setdefault(sock.fileno(), sock.makefile("rb"))
    status = int(reader.readline().split(b" ", 2)[1])
    headers: dict[str, str] = {}
    while (line := reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    body = reader.read(int(headers.get("content-length", "0"))) if method != "HEAD" else b""
    return status, headers, body


def read_until_closed(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


LARGE_UPLOAD_CLIENT = b"""
import hashlib, http.client, socket, sys
total, block = %(total)d, bytes(range(256)) * 4096
sha = hashlib.sha256()
sock = socket.create_connection(("127.0.0.1", %(port)d), timeout=60)
sock.sendall(b"PUT /slow HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: %%d\\r\\n\\r\\n" %% total)
for i in range(total // len(block)):
    chunk = i.to_bytes(8, "big") + block[8:]
    sha.update(chunk)
    sock.sendall(chunk)
response = http.client.HTTPResponse(sock, method="PUT")
response.begin()
sys.stdout.buffer.write(b"%%s\\n%%d\\n%%s" %% (sha.hexdigest().encode(), response.status, response.read()))
"""

# --- tests --------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_large_body_streams_with_backpressure_and_bounded_memory(server, probe) -> None:
    port, _ = server
    total = 200 * MiB

    # A separate process, so the sender neither shares our GIL nor counts towards our RSS.
    script = LARGE_UPLOAD_CLIENT % {b"port": port, b"total": total}

    def client() -> tuple[str, int, bytes]:
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, check=True, timeout=120
        )
        digest, status, body = done.stdout.split(b"\n", 2)
        return digest.decode(), int(status), body

    rss_before = vm_rss_bytes()
    digest, status, body = await deferToThread(client)
    consumer = probe.consumers[0]
    assert status == 200
    assert body == b"%d %s" % (total, digest.encode())
    assert consumer.pauses > 0
    assert consumer.peak_rss - rss_before < 50 * MiB


@pytest_twisted.ensureDeferred
async def test_large_body_is_read_in_large_socket_reads(server, probe) -> None:
    """At least LARGE_BODY_BYTES: 1 MiB socket reads while the body streams, Twisted's own
    read size again for whatever the connection carries next."""
    from jay.s3.http import BODY_READ_BYTES, LARGE_BODY_BYTES

    port, _ = server
    body = bytes(range(256)) * (LARGE_BODY_BYTES * 8 // 256)

    def client() -> list[tuple[int, dict[str, str], bytes]]:
        with connect(port) as sock:
            sock.sendall(b"PUT /big HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body))
            sock.sendall(body)
            first = read_response(sock)
            sock.sendall(b"PUT /small HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
            return [first, read_response(sock)]

    (status, _, answer), (small_status, _, _) = await deferToThread(client)
    assert status == small_status == 200
    assert answer == b"%d %s" % (len(body), hashlib.sha256(body).hexdigest().encode())
    big = probe.consumers[0]
    assert 64 * 1024 < max(big.writes) <= BODY_READ_BYTES
    assert probe.transports[0].bufferSize == 64 * 1024  # restored once the body was in


@pytest_twisted.ensureDeferred
async def test_content_length_body_via_agent(server) -> None:
    port, _ = server
    payload = b"x" * 300_000 + b"end"
    agent = Agent(reactor)
    response = await agent.request(
        b"PUT",
        b"http://127.0.0.1:%d/sha" % port,
        Headers(),
        FileBodyProducer(io.BytesIO(payload)),
    )
    body = await readBody(response)
    assert response.code == 200
    assert body == b"%d %s" % (len(payload), hashlib.sha256(payload).hexdigest().encode())


@pytest_twisted.ensureDeferred
async def test_chunked_body(server) -> None:
    port, _ = server
    parts = [b"a" * 10, b"b" * 70_000, b"c"]

    def client() -> tuple[int, bytes]:
        with connect(port) as sock:
            sock.sendall(b"PUT /sha HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
            for part in parts:
                sock.sendall(b"%x\r\n%s\r\n" % (len(part), part))
            sock.sendall(b"0\r\n\r\n")
            status, _, body = read_response(sock)
        return status, body

    status, body = await deferToThread(client)
    whole = b"".join(parts)
    assert status == 200
    assert body == b"%d %s" % (len(whole), hashlib.sha256(whole).hexdigest().encode())


@pytest_twisted.ensureDeferred
async def test_expect_continue_sent_when_body_is_asked_for(server) -> None:
    port, _ = server
    payload = b"p" * 5000

    def client() -> tuple[bytes, int, bytes]:
        with connect(port) as sock:
            sock.sendall(
                b"PUT /sha HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                b"Content-Length: %d\r\n\r\n" % len(payload)
            )
            interim = b""
            while not interim.endswith(b"\r\n\r\n"):
                interim += sock.recv(1)
            sock.sendall(payload)
            status, _, body = read_response(sock)
        return interim, status, body

    interim, status, body = await deferToThread(client)
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert status == 200
    assert body == b"%d %s" % (len(payload), hashlib.sha256(payload).hexdigest().encode())


@pytest_twisted.ensureDeferred
async def test_expect_continue_rejected_on_headers_without_body(server) -> None:
    port, _ = server

    def client() -> bytes:
        with connect(port) as sock:
            sock.sendall(
                b"PUT /reject HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                b"Content-Length: 50000000\r\n\r\n"
            )
            return read_until_closed(sock)  # never sends the body

    raw = await deferToThread(client)
    assert raw.startswith(b"HTTP/1.1 403 ")
    assert b"100 Continue" not in raw
    assert b"\r\nConnection: close\r\n" in raw
    assert raw.endswith(b"\r\n\r\ndenied")


@pytest_twisted.ensureDeferred
async def test_early_error_then_next_request_on_same_connection(server, probe) -> None:
    port, _ = server

    def client() -> list[tuple[int, dict[str, str], bytes]]:
        results = []
        with connect(port) as sock:
            sock.sendall(b"PUT /reject HTTP/1.1\r\nHost: x\r\nContent-Length: 3000\r\n\r\n")
            sock.sendall(b"z" * 3000)
            results.append(read_response(sock))
            sock.sendall(b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
            results.append(read_response(sock, "GET"))
            # Pipelined: a full body, then a GET, in one write.
            sock.sendall(
                b"PUT /sha HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
                b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n"
            )
            results.append(read_response(sock))
            results.append(read_response(sock, "GET"))
        return results

    (s1, h1, b1), (s2, _, b2), (s3, _, b3), (s4, _, b4) = await deferToThread(client)
    assert (s1, b1) == (403, b"denied")
    assert "connection" not in h1
    assert (s2, b2) == (200, b"ok")
    assert (s3, b3) == (200, b"3 " + hashlib.sha256(b"abc").hexdigest().encode())
    assert (s4, b4) == (200, b"ok")
    assert [e for e in probe.events if e[0] == "dispatched"] == [
        ("dispatched", b"/reject"),
        ("dispatched", b"/sha"),
    ]


@pytest_twisted.ensureDeferred
async def test_early_error_with_large_body_closes_connection(server) -> None:
    port, _ = server

    def client() -> bytes:
        with connect(port) as sock:
            sock.sendall(b"PUT /reject HTTP/1.1\r\nHost: x\r\nContent-Length: 900000000\r\n\r\n")
            sock.sendall(b"z" * 200_000)
            return read_until_closed(sock)

    raw = await deferToThread(client)
    assert raw.startswith(b"HTTP/1.1 403 ")
    assert b"\r\nConnection: close\r\n" in raw


@pytest_twisted.ensureDeferred
async def test_read_all_limit(server, probe) -> None:
    port, _ = server

    def client(body: bytes, chunked: bool) -> tuple[int, bytes]:
        with connect(port) as sock:
            if chunked:
                sock.sendall(b"PUT /xml HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
                sock.sendall(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
            else:
                head = b"PUT /xml HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
                sock.sendall(head + body)
            status, _, data = read_response(sock)
        return status, data

    assert await deferToThread(client, b"<a/>" * 10, False) == (200, b"40")
    assert await deferToThread(client, b"x" * 5000, False) == (400, b"too large")
    assert await deferToThread(client, b"x" * 5000, True) == (400, b"too large")
    assert probe.events.count(("too-large", None)) == 2


@pytest_twisted.ensureDeferred
async def test_connection_dropped_mid_body(server, probe) -> None:
    port, _ = server

    def client() -> None:
        sock = connect(port)
        sock.sendall(b"PUT /sha HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % MiB)
        sock.sendall(b"q" * 100_000)
        sock.close()

    await deferToThread(client)
    await wait_until(lambda: any(e[0] == "failed" for e in probe.events))
    [(_, error)] = [e for e in probe.events if e[0] == "failed"]
    assert isinstance(error, IncompleteBody)
    assert probe.consumers[0].closed
    assert probe.consumers[0].producer is None  # unregistered


@pytest_twisted.ensureDeferred
async def test_oversized_header_gets_431_and_server_keeps_serving(server) -> None:
    port, _ = server

    def client(headers: bytes) -> tuple[bytes, tuple[int, dict[str, str], bytes]]:
        with connect(port) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
            raw = read_until_closed(sock)
        with connect(port) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            return raw, read_response(sock, "GET")

    one_long_line = b"X-Big: " + b"v" * 20_000 + b"\r\n"
    many_lines = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 1000) for i in range(20))
    for headers in (one_long_line, many_lines):
        raw, (status, _, body) = await deferToThread(client, headers)
        assert raw.startswith(b"HTTP/1.1 431 ")
        assert (status, body) == (200, b"ok")


@pytest_twisted.ensureDeferred
async def test_idle_timeout_is_progress_based(probe) -> None:
    clock = task.Clock()
    site = StreamingSite(probe, idle_timeout_seconds=10, reactor=clock)
    channels: list[Any] = []
    build = site.buildProtocol

    def recording_build(addr: Any) -> Any:
        protocol = build(addr)
        channels.append(protocol._channel)
        return protocol

    site.buildProtocol = recording_build  # type: ignore[method-assign]
    port = reactor.listenTCP(0, site, interface="127.0.0.1")
    try:
        idle = connect(port.getHost().port)
        busy = connect(port.getHost().port)
        await wait_until(lambda: len(channels) == 2)
        busy.sendall(b"PUT /sha HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
        for _ in range(5):  # bytes keep moving: 5 x 8 s is past the timeout, no close
            busy.sendall(b"y" * 10)
            before = probe.consumers[0].size if probe.consumers else 0
            await wait_until(lambda b=before: probe.consumers and probe.consumers[0].size > b)
            clock.advance(8)
        assert await deferToThread(idle.recv, 10) == b""  # idle for 40 s: closed
        busy.setblocking(False)
        with pytest.raises(BlockingIOError):  # still open, nothing to read
            busy.recv(10)
        busy.setblocking(True)
        clock.advance(11)  # the body stalls: closed too
        assert await deferToThread(busy.recv, 10) == b""
        assert [e for e in probe.events if e[0] == "failed"]
    finally:
        idle.close()
        busy.close()
        await port.stopListening()


@implementer(IPushProducer)
class PiecesProducer:
    """Writes ``data`` in pieces while not paused; ``done`` fires after the last piece."""

    def __init__(self, request: Any, data: bytes, piece: int = 1000) -> None:
        self.request = request
        self.data = data
        self.piece = piece
        self.offset = 0
        self.paused = False
        self.done: Deferred[None] = Deferred()

    def start(self) -> Deferred[None]:
        self.request.registerProducer(self, True)
        reactor.callLater(0, self.resumeProducing)
        return self.done

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        while not self.paused and self.offset < len(self.data):
            self.request.write(self.data[self.offset : self.offset + self.piece])
            self.offset += self.piece
        if self.offset >= len(self.data) and not self.done.called:
            self.request.unregisterProducer()
            self.done.callback(None)

    def stopProducing(self) -> None:
        self.paused = True


class KleinEcho:
    app = Klein()

    @app.route("/echo/<name>", methods=["PUT"])
    async def echo(self, request: Any, name: str) -> None:
        data = await request.body.read_all(MiB)
        request.setHeader(b"X-Name", name.encode())
        await PiecesProducer(request, data[::-1]).start()


@pytest_twisted.ensureDeferred
async def test_klein_app_streams_body_and_response() -> None:
    site = StreamingSite(KleinEcho().app.resource())
    port = reactor.listenTCP(0, site, interface="127.0.0.1")
    try:
        payload = bytes(range(256)) * 300
        response = await Agent(reactor).request(
            b"PUT",
            b"http://127.0.0.1:%d/echo/abc" % port.getHost().port,
            Headers(),
            FileBodyProducer(io.BytesIO(payload)),
        )
        body = await readBody(response)
        assert response.code == 200
        assert response.headers.getRawHeaders(b"X-Name") == [b"abc"]
        assert body == payload[::-1]
    finally:
        await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_discard_small_body_keeps_connection(server) -> None:
    port, _ = server

    def client() -> list[tuple[int, dict[str, str], bytes]]:
        with connect(port) as sock:
            sock.sendall(b"PUT /discard HTTP/1.1\r\nHost: x\r\nContent-Length: 70000\r\n\r\n")
            sock.sendall(b"d" * 70000)
            first = read_response(sock)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            return [first, read_response(sock, "GET")]

    (s1, h1, b1), (s2, _, b2) = await deferToThread(client)
    assert (s1, b1, "connection" in h1) == (200, b"dropped", False)
    assert (s2, b2) == (200, b"ok")


@pytest_twisted.ensureDeferred
async def test_malformed_chunked_body_fails_delivery(server, probe) -> None:
    port, _ = server

    def client() -> bytes:
        with connect(port) as sock:
            sock.sendall(b"PUT /sha HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
            sock.sendall(b"5\r\nhello\r\nzz\r\n")
            return read_until_closed(sock)

    raw = await deferToThread(client)
    assert raw.startswith(b"HTTP/1.1 400 ")
    assert b"\r\nConnection: close\r\n" in raw
    [(_, error)] = [e for e in probe.events if e[0] == "failed"]
    assert isinstance(error, IncompleteBody)


@pytest_twisted.ensureDeferred
async def test_open_s3_connections_are_counted(probe: Probe) -> None:
    """jay_open_connections{protocol="s3"}: one per open connection, back to 0 once closed
    (whichever side closes)."""
    from jay.metrics.registry import Metrics

    metrics = Metrics(task.Clock())
    site = StreamingSite(probe, idle_timeout_seconds=30, linger_seconds=0.5)
    site.metrics = metrics
    port = reactor.listenTCP(0, site, interface="127.0.0.1")
    try:
        first = connect(port.getHost().port)
        second = connect(port.getHost().port)
        await wait_until(lambda: metrics.open_connections.get("s3") == 2)
        first.close()
        await wait_until(lambda: metrics.open_connections.get("s3") == 1)
        # The server closes this one: a malformed request line.
        second.sendall(b"NOT HTTP\r\n\r\n")
        await deferToThread(second.recv, 1000)
        await wait_until(lambda: metrics.open_connections.get("s3") == 0)
        second.close()
        assert b'jay_open_connections{protocol="s3"} 0.0' in metrics.prometheus_text()
    finally:
        await port.stopListening()
