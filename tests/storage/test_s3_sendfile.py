"""S3 GET bodies by sendfile: StreamingChannel.send_file_body over a real loopback socket.

The channel writes the headers through twisted.web, hands the socket to the storage's
sendfile producer and takes it back afterwards, so a keep-alive connection serves the next
request normally.
"""

from __future__ import annotations

import hashlib
import socket
from typing import Any

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.threads import deferToThread
from twisted.web import resource, server

from jay.s3.http import StreamingSite
from jay.storage import reading

from .conftest import put

MIB = 1024 * 1024


class _ObjectResource(resource.Resource):
    isLeaf = True

    def __init__(self, svc: Any, bucket: str) -> None:
        super().__init__()
        self.svc = svc
        self.bucket = bucket
        self.used_sendfile: list[bool] = []

    def render_GET(self, request: Any) -> Any:
        key = request.path.decode().lstrip("/")
        start = int(request.args.get(b"start", [b"0"])[0])

        def serve(opened: Any) -> None:
            length = opened.info.size - start
            request.setHeader(b"Content-Length", str(length).encode())
            sending = request.channel.send_file_body(request, opened, start, length)
            self.used_sendfile.append(sending is not None)
            if sending is None:
                sending = opened.stream(request, start, length)

            def done(_: Any) -> None:
                opened.close()
                request.finish()

            sending.addBoth(done)

        self.svc.open_object(self.bucket, key).addCallback(serve)
        return server.NOT_DONE_YET


def _get(sock: socket.socket, path: str) -> bytes:
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(65536)
    head, _, body = head.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(1 << 20)
        assert chunk, "connection closed early"
        body += chunk
    assert len(body) == length
    return body


@pytest_twisted.ensureDeferred
async def test_get_bodies_go_out_by_sendfile_on_a_keep_alive_connection(
    svc: Any, bucket: str, monkeypatch: Any
) -> None:
    big = bytes(range(256)) * (3 * MIB // 256)
    await put(svc, bucket, "big", big)
    calls: list[int] = []
    real = reading.os_sendfile
    assert real is not None

    def counting(out_fd: int, in_fd: int, offset: int, count: int) -> int:
        calls.append(count)
        return real(out_fd, in_fd, offset, count)

    monkeypatch.setattr(reading, "os_sendfile", counting)
    target = _ObjectResource(svc, bucket)
    port = reactor.listenTCP(0, StreamingSite(target), interface="127.0.0.1")
    try:

        def client() -> list[bytes]:
            with socket.create_connection(("127.0.0.1", port.getHost().port)) as sock:
                return [_get(sock, "/big"), _get(sock, "/big?start=1000"), _get(sock, "/big")]

        bodies = await deferToThread(client)
    finally:
        await port.stopListening()
    assert [hashlib.sha256(b).digest() for b in bodies] == [
        hashlib.sha256(big).digest(),
        hashlib.sha256(big[1000:]).digest(),
        hashlib.sha256(big).digest(),
    ]
    assert target.used_sendfile == [True, True, True]
    assert calls  # the bytes went through os.sendfile, not request.write
