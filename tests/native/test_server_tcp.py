"""The native server on a real loopback socket: a 64 MiB PutObject and its GetObject stream
through with memory bounded far below the object size (JAY_SPEC §1.1, STYLE: measured bounds)."""

from __future__ import annotations

import hashlib
import socket
import tracemalloc
from typing import Any

import pytest_twisted
from twisted.internet import reactor, threads

from jay.native import codec
from jay.native.codec import HEADER_SIZE, BucketRequest, ObjectRequest, Op, PutObjectRequest
from tests.native.test_server import SECRET, TOKEN_ID, Env, env  # noqa: F401 - fixture

MiB = 1024 * 1024
OBJECT_CHUNKS = 64  # 64 MiB


def chunk(index: int) -> bytes:
    """1 MiB of bytes made on the fly, different for every index."""
    seed = hashlib.sha256(index.to_bytes(4, "big")).digest()
    return seed * (MiB // len(seed))


def recv_exact(sock: socket.socket, size: int) -> bytes:
    parts = []
    while size:
        data = sock.recv(min(size, MiB))
        if not data:
            raise ConnectionError("closed early")
        parts.append(data)
        size -= len(data)
    return b"".join(parts)


def read_response(sock: socket.socket) -> tuple[codec.FrameHeader, bytes]:
    header = codec.decode_header(recv_exact(sock, HEADER_SIZE))
    return header, recv_exact(sock, header.meta_len)


def client_session(port: int) -> dict[str, Any]:
    """A blocking client in a thread: handshake, create, put 64 MiB, get it back."""
    results: dict[str, Any] = {}
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(codec.encode_client_handshake(TOKEN_ID, SECRET))
        results["handshake"] = recv_exact(sock, 8)
        sock.sendall(codec.encode_frame(Op.CREATE_BUCKET, 1, BucketRequest("bulk").encode()))
        results["create"] = read_response(sock)[0].code
        meta = PutObjectRequest(bucket="bulk", key="big.bin").encode()
        sock.sendall(codec.encode_frame(Op.PUT_OBJECT, 2, meta, OBJECT_CHUNKS * MiB))
        sent = hashlib.sha256()
        for index in range(OBJECT_CHUNKS):
            data = chunk(index)
            sent.update(data)
            sock.sendall(data)
        header, put_meta = read_response(sock)
        results["put"] = (header.code, header.stream_id, codec.PutResult.decode(put_meta))
        results["sent_sha256"] = sent.hexdigest()
        sock.sendall(
            codec.encode_frame(Op.GET_OBJECT, 3, ObjectRequest("bulk", "big.bin").encode())
        )
        header, get_meta = read_response(sock)
        received = hashlib.sha256()
        remaining = header.data_len
        while remaining:
            data = sock.recv(min(remaining, MiB))
            if not data:
                raise ConnectionError("closed during the body")
            received.update(data)
            remaining -= len(data)
        results["get"] = (header.code, header.data_len, codec.ObjectInfo.decode(get_meta).size)
        results["received_sha256"] = received.hexdigest()
        sock.sendall(codec.encode_frame(Op.PING, 4))
        results["ping"] = read_response(sock)[0]
    return results


@pytest_twisted.ensureDeferred
async def test_64_mib_put_and_get_over_loopback_with_bounded_memory(env: Env) -> None:  # noqa: F811
    factory = env.factory()
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        results = await threads.deferToThread(client_session, port.getHost().port)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        await port.stopListening()
    assert results["handshake"] == codec.encode_server_handshake(0)
    assert results["create"] == 0
    status, stream_id, put_result = results["put"]
    assert (status, stream_id) == (0, 2)
    assert put_result.checksum_sha256 == results["sent_sha256"]
    assert results["get"] == (0, OBJECT_CHUNKS * MiB, OBJECT_CHUNKS * MiB)
    assert results["received_sha256"] == results["sent_sha256"]
    assert (results["ping"].code, results["ping"].stream_id) == (0, 4)
    # Staging water marks (4 MiB), one parser buffer and a few socket reads; never the object.
    assert peak < 16 * MiB, f"peak traced memory {peak / MiB:.1f} MiB"


def read_until_eof(port: int, first: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(first)
        received = b""
        while data := sock.recv(65536):
            received += data
        return received


@pytest_twisted.ensureDeferred
async def test_server_side_closes_reach_a_real_socket(env: Env) -> None:  # noqa: F811
    factory = env.factory(clock=reactor, idle_timeout_seconds=0.2)
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    try:
        number = port.getHost().port
        handshake = codec.encode_client_handshake(TOKEN_ID, SECRET)
        # Idle timeout after a completed request: the socket reaches EOF.
        idle = await threads.deferToThread(
            read_until_eof, number, handshake + codec.encode_frame(Op.PING, 1)
        )
        assert idle == codec.encode_server_handshake(0) + codec.encode_frame(0, 1)
        # An unknown op whose data is over the drain limit: closed without a frame.
        oversized = codec.encode_frame(0x7E, 2, b"", 11 * MiB)
        dropped = await threads.deferToThread(read_until_eof, number, handshake + oversized)
        assert dropped == codec.encode_server_handshake(0)
        refused = await threads.deferToThread(
            read_until_eof, number, codec.encode_client_handshake(TOKEN_ID, "wrong")
        )
        assert refused == codec.encode_server_handshake(1)
    finally:
        await port.stopListening()
