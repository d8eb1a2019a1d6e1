"""A small native server for client tests, built on the codec and parser only.

It answers the ops the client tests need from an in-memory dict, sequentially and in order, as
the real server does (§1.9). Knobs let tests stall answers, drop connections, and count what the
server saw; it is not the real server and claims no conformance.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from twisted.internet.protocol import Factory, Protocol

from jay.native import codec
from jay.native.codec import HandshakeStatus, Op, Status
from jay.native.parser import (
    DataChunk,
    Handshake,
    ProtocolError,
    RequestEnd,
    RequestHead,
    ServerFrameParser,
)

TOKEN_ID = "tok-1"
SECRET = "s3cr3t"
WIRE_TIME = "2024-01-02T03:04:05Z"


@dataclass
class Stored:
    data: bytes
    content_type: str
    metadata: dict[str, str]

    @property
    def etag(self) -> str:
        return hashlib.md5(self.data).hexdigest()

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass
class FakeState:
    buckets: dict[str, dict[str, Stored]] = field(default_factory=dict)
    connections: int = 0
    handshakes: int = 0
    ops: list[int] = field(default_factory=list)
    live: list[FakeServerProtocol] = field(default_factory=list)
    # Close the connection (without answering) when this op arrives, once per entry.
    drop_on: list[int] = field(default_factory=list)
    # Hold answers until release() is called.
    is_stalled: bool = False
    chunk_size: int = 4096
    on_request: Callable[[RequestHead], None] | None = None


class FakeServerProtocol(Protocol):
    def __init__(self, state: FakeState) -> None:
        self.state = state
        self.parser = ServerFrameParser()
        self.is_authed = False
        self.head: RequestHead | None = None
        self.body = bytearray()
        self.held: list[bytes] = []

    def connectionMade(self) -> None:
        self.state.connections += 1
        self.state.live.append(self)

    def connectionLost(self, reason: object = None) -> None:
        if self in self.state.live:
            self.state.live.remove(self)

    def release(self) -> None:
        held, self.held = self.held, []
        for frame in held:
            assert self.transport is not None
            self.transport.write(frame)

    def send(self, data: bytes) -> None:
        assert self.transport is not None
        if self.state.is_stalled:
            self.held.append(data)
        else:
            self.transport.write(data)

    def dataReceived(self, data: bytes) -> None:
        for event in self.parser.feed(data):
            assert self.transport is not None
            if isinstance(event, Handshake):
                ok = (event.token_id, event.secret) == (TOKEN_ID, SECRET)
                status = HandshakeStatus.OK if ok else HandshakeStatus.AUTH_FAILED
                self.transport.write(codec.encode_server_handshake(status))
                if not ok:
                    self.transport.loseConnection()
                    return
                self.state.handshakes += 1
            elif isinstance(event, RequestHead):
                self.head = event
                self.body = bytearray()
                self.state.ops.append(event.op)
                if self.state.on_request is not None:
                    self.state.on_request(event)
                if self._rejects_large_put(event):
                    # §1.10: a rejected body above 10 MiB is not drained; close, no frame.
                    self.transport.loseConnection()
                    return
                if event.op in self.state.drop_on:
                    self.state.drop_on.remove(event.op)
                    self.transport.abortConnection()  # type: ignore[attr-defined]
                    return
            elif isinstance(event, DataChunk):
                self.body += event.data
            elif isinstance(event, RequestEnd):
                assert self.head is not None
                self.answer(self.head, bytes(self.body))
            elif isinstance(event, ProtocolError):
                self.transport.loseConnection()

    def _rejects_large_put(self, head: RequestHead) -> bool:
        if head.op != Op.PUT_OBJECT or head.data_len <= codec.DRAIN_LIMIT_BYTES:
            return False
        request = codec.PutObjectRequest.decode(head.meta)
        return request.bucket not in self.state.buckets

    def error(self, stream_id: int, status: Status, message: str, code: str) -> None:
        self.send(codec.encode_error_frame(status, stream_id, message, code))

    def answer(self, head: RequestHead, body: bytes) -> None:
        op = codec.known_op(head.op)
        sid = head.stream_id
        buckets = self.state.buckets
        if op is None:
            self.error(sid, Status.BAD_REQUEST, "unknown operation", "UnknownOp")
            return
        meta = codec.decode_request(op, head.meta)
        if op is Op.PING:
            self.send(codec.encode_response(sid))
        elif op is Op.CREATE_BUCKET:
            assert isinstance(meta, codec.BucketRequest)
            if meta.bucket in buckets:
                self.error(sid, Status.CONFLICT, "bucket already exists", "BucketAlreadyExists")
                return
            buckets[meta.bucket] = {}
            self.send(codec.encode_response(sid, self._bucket_info(meta.bucket)))
        elif op in (Op.HEAD_BUCKET, Op.DELETE_BUCKET):
            assert isinstance(meta, codec.BucketRequest)
            if meta.bucket not in buckets:
                self.error(sid, Status.NOT_FOUND, "bucket not found", "NoSuchBucket")
            elif op is Op.HEAD_BUCKET:
                self.send(codec.encode_response(sid, self._bucket_info(meta.bucket)))
            elif buckets[meta.bucket]:
                self.error(sid, Status.CONFLICT, "bucket is not empty", "BucketNotEmpty")
            else:
                del buckets[meta.bucket]
                self.send(codec.encode_response(sid))
        elif op is Op.LIST_BUCKETS:
            entries = tuple(codec.BucketEntry(name, WIRE_TIME) for name in sorted(buckets))
            self.send(codec.encode_response(sid, codec.ListBucketsResponse(entries)))
        elif op is Op.PUT_OBJECT:
            assert isinstance(meta, codec.PutObjectRequest)
            if meta.bucket not in buckets:
                self.error(sid, Status.NOT_FOUND, "bucket not found", "NoSuchBucket")
                return
            stored = Stored(
                body, meta.content_type or "application/octet-stream", dict(meta.metadata)
            )
            buckets[meta.bucket][meta.key] = stored
            self.send(codec.encode_response(sid, codec.PutResult(stored.etag, stored.sha256)))
        elif op in (Op.GET_OBJECT, Op.HEAD_OBJECT, Op.DELETE_OBJECT):
            assert isinstance(meta, codec.ObjectRequest)
            if meta.bucket not in buckets:
                self.error(sid, Status.NOT_FOUND, "bucket not found", "NoSuchBucket")
                return
            objects = buckets[meta.bucket]
            if op is Op.DELETE_OBJECT:
                objects.pop(meta.key, None)
                self.send(codec.encode_response(sid))
                return
            found = objects.get(meta.key)
            if found is None:
                self.error(sid, Status.NOT_FOUND, "object not found", "NoSuchKey")
                return
            info = codec.ObjectInfo(
                content_type=found.content_type,
                size=len(found.data),
                etag=found.etag,
                checksum_sha256=found.sha256,
                last_modified=WIRE_TIME,
                metadata=found.metadata,
            )
            if op is Op.HEAD_OBJECT:
                self.send(codec.encode_response(sid, info))
                return
            self.send(codec.encode_response(sid, info, data_len=len(found.data)))
            size = self.state.chunk_size
            for start in range(0, len(found.data), size):
                self.send(found.data[start : start + size])
        elif op is Op.LIST_OBJECTS:
            assert isinstance(meta, codec.ListObjectsRequest)
            self._list(sid, meta)
        else:
            self.error(sid, Status.INTERNAL, "internal error", "InternalError")

    def _bucket_info(self, name: str) -> codec.BucketInfo:
        return codec.BucketInfo(bucket_id="id-" + name, name=name, created_at=WIRE_TIME)

    def _list(self, sid: int, req: codec.ListObjectsRequest) -> None:
        objects = self.state.buckets.get(req.bucket)
        if objects is None:
            self.error(sid, Status.NOT_FOUND, "bucket not found", "NoSuchBucket")
            return
        keys = sorted(
            k
            for k in objects
            if k.startswith(req.prefix)
            and codec.encode_text(k) > codec.encode_text(req.start_after)
        )
        entries: list[codec.ObjectEntry] = []
        prefixes: list[str] = []
        max_keys = req.max_keys if req.max_keys > 0 else 1000
        last = ""
        is_truncated = False
        for key in keys:
            rest = key[len(req.prefix) :]
            if req.delimiter and req.delimiter in rest:
                cp = req.prefix + rest.split(req.delimiter, 1)[0] + req.delimiter
                if prefixes and prefixes[-1] == cp:
                    continue
                if len(entries) + len(prefixes) >= max_keys:
                    is_truncated = True
                    break
                prefixes.append(cp)
                last = cp + "\udcff"
                continue
            if len(entries) + len(prefixes) >= max_keys:
                is_truncated = True
                break
            found = objects[key]
            entries.append(
                codec.ObjectEntry(
                    key=key,
                    size=len(found.data),
                    etag=found.etag,
                    checksum_sha256=found.sha256,
                    last_modified=WIRE_TIME,
                    content_type=found.content_type,
                )
            )
            last = key
        response = codec.ListObjectsResponse(
            objects=tuple(entries),
            common_prefixes=tuple(prefixes),
            is_truncated=is_truncated,
            next_start_after=last if is_truncated else "",
        )
        self.send(codec.encode_response(sid, response))


class FakeServerFactory(Factory):
    def __init__(self, state: FakeState | None = None) -> None:
        self.state = state or FakeState()

    def buildProtocol(self, addr: object) -> FakeServerProtocol:
        return FakeServerProtocol(self.state)
