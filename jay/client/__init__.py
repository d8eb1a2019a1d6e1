"""jay.client: a Twisted client for jay's native protocol (JAY_SPEC §1).

``await connect("127.0.0.1:4444", token_id, secret, reactor=reactor)`` returns a :class:`Client`
whose methods return Deferreds. Errors from the server are :class:`NativeError` subclasses keyed
by status; connection failures are :class:`NativeConnectionError` subclasses.
"""

from jay.client.api import (
    Body,
    Client,
    GetObjectResult,
    ResponseTooLarge,
    connect,
    parse_endpoint,
)
from jay.client.pool import ConnectFailed, ConnectionPool, PoolClosed
from jay.client.protocol import (
    AuthenticationFailed,
    BadRequest,
    BodyError,
    ClientProtocolError,
    Conflict,
    ConnectionClosed,
    DownloadStopped,
    Forbidden,
    HandshakeFailed,
    Internal,
    NativeClientProtocol,
    NativeConnectionError,
    NativeError,
    NotFound,
    RateLimited,
    Response,
    VersionMismatch,
)
from jay.native.codec import (
    BucketEntry,
    BucketInfo,
    CompleteMultipartUploadResponse,
    ListObjectsResponse,
    ObjectEntry,
    ObjectInfo,
    PartInfo,
    PutResult,
)

__all__ = [
    "AuthenticationFailed",
    "BadRequest",
    "Body",
    "BodyError",
    "BucketEntry",
    "BucketInfo",
    "Client",
    "ClientProtocolError",
    "CompleteMultipartUploadResponse",
    "Conflict",
    "ConnectFailed",
    "ConnectionClosed",
    "ConnectionPool",
    "DownloadStopped",
    "Forbidden",
    "GetObjectResult",
    "HandshakeFailed",
    "Internal",
    "ListObjectsResponse",
    "NativeClientProtocol",
    "NativeConnectionError",
    "NativeError",
    "NotFound",
    "ObjectEntry",
    "ObjectInfo",
    "PartInfo",
    "PoolClosed",
    "PutResult",
    "RateLimited",
    "ResponseTooLarge",
    "Response",
    "VersionMismatch",
    "connect",
    "parse_endpoint",
]
