"""``Client``: one Deferred method per native op, over a :class:`ConnectionPool` (JAY_SPEC §1.7).

Bodies stream both ways. ``put_object``/``upload_part`` take bytes, a file path (read in chunks,
re-opened if the request is retried) or an ``IBodyProducer``-like object with a known length.
``get_object`` returns bytes only when asked for no consumer (small objects, capped by
``max_bytes``); otherwise the data goes into an ``IConsumer`` (which may pause the socket) or into
a file written beside the target and renamed into place when complete.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

from twisted.internet.defer import Deferred
from twisted.internet.endpoints import clientFromString
from twisted.internet.interfaces import IConsumer, IProducer, IReactorCore, IReactorTime
from twisted.web.client import FileBodyProducer
from zope.interface import implementer

from jay.client.pool import BodyFactory, ConnectionPool
from jay.client.protocol import (
    BodyProducer,
    ConnectionClosed,
    NativeConnectionError,
    NativeError,
    RequestBody,
    Response,
)
from jay.native.codec import (
    DRAIN_LIMIT_BYTES,
    BucketEntry,
    BucketInfo,
    BucketRequest,
    CompleteMultipartUploadRequest,
    CompleteMultipartUploadResponse,
    CreateMultipartUploadRequest,
    CreateMultipartUploadResponse,
    ListBucketsResponse,
    ListObjectsRequest,
    ListObjectsResponse,
    ListPartsResponse,
    ObjectEntry,
    ObjectInfo,
    ObjectRequest,
    Op,
    PartInfo,
    PutObjectRequest,
    PutResult,
    UploadPartRequest,
    UploadRequest,
    encode_text,
)
from jay.native.parser import ResponseHead

DEFAULT_MAX_BYTES = 64 * 1024 * 1024  # get_object without a consumer holds at most this much
FILE_READ_SIZE = 256 * 1024  # chunk size for uploads from files

Body = bytes | str | os.PathLike[str] | BodyProducer


class ResponseTooLarge(NativeConnectionError):
    """get_object without a consumer met an object above ``max_bytes``; nothing was held."""

    def __init__(self, size: int, max_bytes: int) -> None:
        super().__init__(f"object of {size} bytes exceeds max_bytes={max_bytes}; pass a consumer")
        self.size = size
        self.max_bytes = max_bytes


@dataclass(frozen=True, slots=True)
class GetObjectResult:
    """``data`` holds the bytes when no consumer or path was given, else None."""

    info: ObjectInfo
    data: bytes | None


@implementer(IConsumer)
class _Collector:
    """Collects a small response body (size already checked against the cap on the head)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def registerProducer(self, producer: IProducer, streaming: bool) -> None:
        pass

    def unregisterProducer(self) -> None:
        pass

    def write(self, data: bytes) -> None:
        self.parts.append(data)


@implementer(IConsumer)
class _FileSink:
    """Writes a download into ``<target>.part`` and renames it into place once complete.

    Writes are synchronous on the reactor thread: this is a client, and a local file write of
    one socket read is short. The partial file is removed on failure.
    """

    def __init__(self, target: Path) -> None:
        self.target = target
        self.partial = target.with_name(target.name + ".part")
        self._file: IO[bytes] | None = None

    def open(self) -> None:
        if self._file is None:
            self._file = open(self.partial, "wb")

    def registerProducer(self, producer: IProducer, streaming: bool) -> None:
        self.open()

    def unregisterProducer(self) -> None:
        pass

    def write(self, data: bytes) -> None:
        self.open()
        assert self._file is not None
        self._file.write(data)

    def commit(self) -> None:
        self.open()  # zero-length objects never register a producer
        assert self._file is not None
        self._file.close()
        os.replace(self.partial, self.target)

    def discard(self) -> None:
        if self._file is not None:
            self._file.close()
        try:
            os.unlink(self.partial)
        except FileNotFoundError:
            pass


def _body_from(data: Body) -> tuple[RequestBody | BodyFactory, int, bool]:
    """The body (or a factory for a replayable one), its length, and whether it can be resent."""
    if isinstance(data, bytes | bytearray | memoryview):
        value = bytes(data)
        return value, len(value), True
    if isinstance(data, str | os.PathLike):
        path = Path(data)
        size = path.stat().st_size  # fail early (FileNotFoundError) before any request

        def open_body() -> RequestBody:
            return FileBodyProducer(open(path, "rb"), readSize=FILE_READ_SIZE)  # type: ignore[no-untyped-call]

        return open_body, size, True
    length = getattr(data, "length", None)
    if not isinstance(length, int) or length < 0:
        raise ValueError("a body producer needs a known integer length")
    return data, length, False


class Client:
    """A native client. Every method returns a Deferred; errors are NativeError subclasses."""

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool

    @property
    def pool(self) -> ConnectionPool:
        return self._pool

    def close(self) -> Deferred[None]:
        return self._pool.close()

    # -- buckets -------------------------------------------------------------------------------

    def create_bucket(self, bucket: str) -> Deferred[BucketInfo]:
        return self._call(Op.CREATE_BUCKET, BucketRequest(bucket).encode(), BucketInfo)

    def delete_bucket(self, bucket: str) -> Deferred[None]:
        return self._call_empty(Op.DELETE_BUCKET, BucketRequest(bucket).encode())

    def head_bucket(self, bucket: str) -> Deferred[BucketInfo]:
        return self._call(
            Op.HEAD_BUCKET, BucketRequest(bucket).encode(), BucketInfo, is_retryable=True
        )

    def list_buckets(self) -> Deferred[tuple[BucketEntry, ...]]:
        return Deferred.fromCoroutine(self._list_buckets())

    async def _list_buckets(self) -> tuple[BucketEntry, ...]:
        response = await self._pool.submit(Op.LIST_BUCKETS, is_retryable=True)
        return ListBucketsResponse.decode(response.meta).buckets

    # -- objects -------------------------------------------------------------------------------

    def put_object(
        self,
        bucket: str,
        key: str,
        data: Body,
        *,
        content_type: str = "",
        metadata: Mapping[str, str] | None = None,
    ) -> Deferred[PutResult]:
        """Upload ``data`` (bytes, a file path, or a body producer with a ``length``)."""
        meta = PutObjectRequest(
            bucket=bucket, key=key, content_type=content_type, metadata=dict(metadata or {})
        ).encode()
        body, length, is_replayable = _body_from(data)
        return Deferred.fromCoroutine(
            self._upload(
                Op.PUT_OBJECT, meta, body, length, is_replayable, lambda: self.head_bucket(bucket)
            )
        )

    def get_object(
        self,
        bucket: str,
        key: str,
        consumer_or_path: IConsumer | str | os.PathLike[str] | None = None,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> Deferred[GetObjectResult]:
        """Download an object into a consumer, a file, or (None) bytes of at most ``max_bytes``.

        With a consumer, this connection is registered as its streaming producer for the data
        section and unregistered at the end; the Deferred fires after the last byte.
        """
        return Deferred.fromCoroutine(self._get_object(bucket, key, consumer_or_path, max_bytes))

    async def _get_object(
        self,
        bucket: str,
        key: str,
        consumer_or_path: IConsumer | str | os.PathLike[str] | None,
        max_bytes: int,
    ) -> GetObjectResult:
        meta = ObjectRequest(bucket, key).encode()
        if consumer_or_path is None:
            collector = _Collector()

            def check_size(head: ResponseHead) -> None:
                if head.data_len > max_bytes:
                    raise ResponseTooLarge(head.data_len, max_bytes)

            response = await self._pool.submit(
                Op.GET_OBJECT,
                meta,
                sink=collector,
                on_head=check_size,
                is_retryable=True,
                is_bulky=max_bytes > DEFAULT_MAX_BYTES,
            )
            return GetObjectResult(ObjectInfo.decode(response.meta), b"".join(collector.parts))
        if isinstance(consumer_or_path, str | os.PathLike):
            sink = _FileSink(Path(consumer_or_path))
            try:
                response = await self._pool.submit(
                    Op.GET_OBJECT, meta, sink=sink, is_retryable=True
                )
                info = ObjectInfo.decode(response.meta)
                sink.commit()
            except BaseException:
                sink.discard()
                raise
            return GetObjectResult(info, None)
        response = await self._pool.submit(
            Op.GET_OBJECT, meta, sink=consumer_or_path, is_retryable=True
        )
        return GetObjectResult(ObjectInfo.decode(response.meta), None)

    def head_object(self, bucket: str, key: str) -> Deferred[ObjectInfo]:
        return self._call(
            Op.HEAD_OBJECT, ObjectRequest(bucket, key).encode(), ObjectInfo, is_retryable=True
        )

    def delete_object(self, bucket: str, key: str) -> Deferred[None]:
        """Deleting a missing key succeeds (§1.7), so a retry is safe."""
        return self._call_empty(
            Op.DELETE_OBJECT, ObjectRequest(bucket, key).encode(), is_retryable=True
        )

    def list_objects(
        self,
        bucket: str,
        prefix: str = "",
        delimiter: str = "",
        start_after: str = "",
        max_keys: int = 1000,
    ) -> Deferred[ListObjectsResponse]:
        """One page (§1.12); continue with ``start_after=page.next_start_after``."""
        meta = ListObjectsRequest(
            bucket=bucket,
            prefix=prefix,
            delimiter=delimiter,
            start_after=start_after,
            max_keys=max_keys,
        ).encode()
        return self._call(Op.LIST_OBJECTS, meta, ListObjectsResponse, is_retryable=True)

    async def iter_pages(
        self,
        bucket: str,
        prefix: str = "",
        delimiter: str = "",
        start_after: str = "",
        max_keys: int = 1000,
    ) -> AsyncIterator[ListObjectsResponse]:
        """Every page of a listing, in order: ``async for page in client.iter_pages(b): ...``.

        Guards against upstream's pagination defect (§1.12): when a truncated page ends with a
        common prefix, the next page starts after ``<prefix>\\xff`` (the raw byte FF), and a
        cursor that does not advance ends the loop instead of repeating forever.
        """
        cursor = start_after
        while True:
            page = await self.list_objects(bucket, prefix, delimiter, cursor, max_keys)
            yield page
            if not page.is_truncated:
                return
            following = _next_cursor(page)
            if not following or encode_text(following) <= encode_text(cursor):
                return
            cursor = following

    def list_all_objects(
        self, bucket: str, prefix: str = "", delimiter: str = "", *, max_keys: int = 1000
    ) -> Deferred[tuple[list[ObjectEntry], list[str]]]:
        """Every object and common prefix under ``prefix`` (all pages)."""
        return Deferred.fromCoroutine(self._list_all(bucket, prefix, delimiter, max_keys))

    async def _list_all(
        self, bucket: str, prefix: str, delimiter: str, max_keys: int
    ) -> tuple[list[ObjectEntry], list[str]]:
        objects: list[ObjectEntry] = []
        prefixes: list[str] = []
        async for page in self.iter_pages(bucket, prefix, delimiter, max_keys=max_keys):
            objects.extend(page.objects)
            prefixes.extend(page.common_prefixes)
        return objects, prefixes

    # -- multipart -----------------------------------------------------------------------------

    def create_multipart_upload(
        self, bucket: str, key: str, *, content_type: str = ""
    ) -> Deferred[str]:
        return Deferred.fromCoroutine(self._create_multipart(bucket, key, content_type))

    async def _create_multipart(self, bucket: str, key: str, content_type: str) -> str:
        meta = CreateMultipartUploadRequest(
            bucket=bucket, key=key, content_type=content_type
        ).encode()
        response = await self._pool.submit(Op.CREATE_MULTIPART_UPLOAD, meta)
        return CreateMultipartUploadResponse.decode(response.meta).upload_id

    def upload_part(
        self, bucket: str, key: str, upload_id: str, part_number: int, data: Body
    ) -> Deferred[PutResult]:
        """Re-uploading a part number replaces it, so bytes and file bodies are retried."""
        meta = UploadPartRequest(
            bucket=bucket, key=key, upload_id=upload_id, part_number=part_number
        ).encode()
        body, length, is_replayable = _body_from(data)
        return Deferred.fromCoroutine(
            self._upload(
                Op.UPLOAD_PART,
                meta,
                body,
                length,
                is_replayable,
                lambda: self.list_parts(bucket, key, upload_id),
            )
        )

    async def _upload(
        self,
        op: Op,
        meta: bytes,
        body: RequestBody | BodyFactory,
        length: int,
        is_replayable: bool,
        probe: Callable[[], Deferred[Any]],
    ) -> PutResult:
        """Send a body; explain a rejection the server could only answer by closing.

        A rejected body above 10 MiB is not drained: the server closes without an error frame
        (§1.10). Resending it would repeat the same fate at the same cost, so such bodies are
        not retried, and a cheap probe (the bucket, or the upload) turns the bare close into
        the NotFound/Forbidden the server meant.
        """
        is_large = length > DRAIN_LIMIT_BYTES
        try:
            response = await self._pool.submit(
                op, meta, body=body, is_retryable=is_replayable and not is_large
            )
        except ConnectionClosed as closed:
            if not is_large or closed.is_response_started or not closed.is_sent:
                raise
            try:
                await probe()
            except NativeError as meant:
                raise meant from closed
            raise
        return PutResult.decode(response.meta)

    def complete_multipart_upload(
        self, bucket: str, key: str, upload_id: str, part_numbers: Sequence[int]
    ) -> Deferred[CompleteMultipartUploadResponse]:
        meta = CompleteMultipartUploadRequest(
            bucket=bucket, key=key, upload_id=upload_id, part_numbers=tuple(part_numbers)
        ).encode()
        return self._call(Op.COMPLETE_MULTIPART_UPLOAD, meta, CompleteMultipartUploadResponse)

    def abort_multipart_upload(self, bucket: str, key: str, upload_id: str) -> Deferred[None]:
        meta = UploadRequest(bucket=bucket, key=key, upload_id=upload_id).encode()
        return self._call_empty(Op.ABORT_MULTIPART_UPLOAD, meta)

    def list_parts(self, bucket: str, key: str, upload_id: str) -> Deferred[tuple[PartInfo, ...]]:
        return Deferred.fromCoroutine(self._list_parts(bucket, key, upload_id))

    async def _list_parts(self, bucket: str, key: str, upload_id: str) -> tuple[PartInfo, ...]:
        meta = UploadRequest(bucket=bucket, key=key, upload_id=upload_id).encode()
        response = await self._pool.submit(Op.LIST_PARTS, meta, is_retryable=True)
        return ListPartsResponse.decode(response.meta).parts

    def ping(self) -> Deferred[None]:
        return self._call_empty(Op.PING, b"", is_retryable=True)

    # -- plumbing ------------------------------------------------------------------------------

    def _call(
        self,
        op: Op,
        meta: bytes,
        result_type: Any,
        *,
        body: RequestBody | BodyFactory | None = None,
        is_retryable: bool = False,
    ) -> Deferred[Any]:
        d = self._pool.submit(op, meta, body=body, is_retryable=is_retryable)
        return d.addCallback(lambda response: result_type.decode(response.meta))

    def _call_empty(self, op: Op, meta: bytes, *, is_retryable: bool = False) -> Deferred[None]:
        d = self._pool.submit(op, meta, is_retryable=is_retryable)
        return d.addCallback(_discard)


def _discard(response: Response) -> None:
    return None


def _next_cursor(page: ListObjectsResponse) -> str:
    """Past the last entry of either kind: a common prefix CP continues at CP + byte FF."""
    candidates = []
    if page.next_start_after:
        candidates.append(page.next_start_after)
    if page.objects:
        candidates.append(page.objects[-1].key)
    if page.common_prefixes:
        candidates.append(page.common_prefixes[-1] + "\udcff")  # surrogateescape for byte FF
    if not candidates:
        return ""
    return max(candidates, key=encode_text)


def parse_endpoint(endpoint: str, *, tls: bool = False) -> str:
    """``host:port`` (or ``[v6]:port``) to a Twisted client endpoint string; others pass."""
    if endpoint.startswith(("tcp:", "tls:", "unix:", "ssl:")) and "=" in endpoint:
        return endpoint
    host, sep, port = endpoint.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"endpoint must be host:port or a Twisted endpoint: {endpoint!r}")
    host = host.strip("[]") or "127.0.0.1"
    escaped = host.replace(":", "\\:")
    kind = "tls" if tls else "tcp"
    return f"{kind}:host={escaped}:port={int(port)}"


def connect(
    endpoint: str,
    token_id: str,
    secret: str,
    *,
    reactor: IReactorCore,
    pool_size: int = 4,
    pipeline_depth: int = 8,
    tls: bool = False,
) -> Deferred[Client]:
    """Dial, handshake one connection (bad credentials fail here), and return a Client.

    ``endpoint`` is ``"host:port"`` or a Twisted client endpoint string such as
    ``"tcp:host=127.0.0.1:port=4444"``.
    """
    return Deferred.fromCoroutine(
        _connect(endpoint, token_id, secret, reactor, pool_size, pipeline_depth, tls)
    )


async def _connect(
    endpoint: str,
    token_id: str,
    secret: str,
    reactor: IReactorCore,
    pool_size: int,
    pipeline_depth: int,
    tls: bool,
) -> Client:
    description = parse_endpoint(endpoint, tls=tls)
    pool = ConnectionPool(
        clientFromString(reactor, description),  # type: ignore[no-untyped-call]
        token_id,
        secret,
        size=pool_size,
        pipeline_depth=pipeline_depth,
        clock=cast(IReactorTime, reactor),
    )
    await pool.start()
    return Client(pool)


# Names re-exported so users need only jay.client.
__all__ = [
    "Body",
    "BucketEntry",
    "BucketInfo",
    "Client",
    "CompleteMultipartUploadResponse",
    "GetObjectResult",
    "ListObjectsResponse",
    "ObjectEntry",
    "ObjectInfo",
    "PartInfo",
    "PutResult",
    "ResponseTooLarge",
    "connect",
    "parse_endpoint",
]
