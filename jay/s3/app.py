"""S3Api: the S3 HTTP front end, a Klein app bound to an instance holding its collaborators.

Routing works from the raw request URI (``jay.s3.routing``), never from werkzeug, so keys keep
``//``, ``%2F`` and ``..`` exactly. Handlers run as soon as the headers arrive
(``jay.s3.http.StreamingSite``): they authenticate and authorize first, and only then ask for the
body, which streams into a storage ``StagingWriter`` with back-pressure.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import json
import random
import time
from collections.abc import Callable, Coroutine, Generator, Mapping
from dataclasses import dataclass
from typing import Any

from klein import Klein
from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.interfaces import IConsumer, IProducer, IPushProducer
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure
from twisted.web.http_headers import Headers
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET
from zope.interface import implementer

from jay import checksums
from jay import errors as e
from jay.auth import acl, ownership, public_access, sigv4
from jay.auth.authenticate import Authenticator, AuthResult
from jay.auth.policy import parse_policy
from jay.auth.ratelimit import RequestLimits
from jay.auth.tokens import ANONYMOUS, Principal
from jay.core.access import AccessControl
from jay.lifecycle import Readiness
from jay.logs import is_enabled
from jay.s3 import conditions, cors, postobject, routing, sse, tagging
from jay.s3 import headers as h
from jay.s3 import objectlock as lock_wire
from jay.s3 import xml as x
from jay.s3.chunked import AwsChunkedDecoder
from jay.s3.errors import error_response
from jay.s3.errors import lookup as lookup_error
from jay.s3.http import BodyDeliveryStopped
from jay.s3.lifecycle import (
    MAX_LIFECYCLE_BODY,
    parse_lifecycle_configuration,
    render_lifecycle_configuration,
)
from jay.s3.ownership import (
    MAX_OWNERSHIP_CONTROLS_BODY,
    OBJECT_OWNERSHIP_HEADER,
    parse_ownership_controls,
    render_ownership_controls,
    setting_from_header,
)
from jay.s3.public_access import (
    MAX_PUBLIC_ACCESS_BLOCK_BODY,
    parse_public_access_block,
    render_policy_status,
    render_public_access_block,
)
from jay.storage import names
from jay.storage import objectlock as ol
from jay.storage.api import (
    BUCKET_CONFIG_ACL,
    BUCKET_CONFIG_CORS,
    BUCKET_CONFIG_ENCRYPTION,
    BUCKET_CONFIG_LIFECYCLE,
    BUCKET_CONFIG_OBJECT_LOCK,
    BUCKET_CONFIG_OWNERSHIP,
    BUCKET_CONFIG_PUBLIC_ACCESS_BLOCK,
    BUCKET_CONFIG_TAGGING,
    BUCKET_CONFIG_VERSIONING,
    NULL_VERSION,
    VERSIONING_ENABLED,
    VERSIONING_SUSPENDED,
    BucketInfo,
    CompletedPart,
    ListPage,
    ObjectAttributes,
    ObjectInfo,
    StagedBlob,
    StagingWriter,
    Storage,
)
from jay.storage.encryption import (
    DEFAULT_KMS_KEY_ID,
    MODE_SSE_C,
    MODE_SSE_KMS,
    MODE_SSE_S3,
    CustomerKey,
    Sealing,
    bucket_encryption_of,
    check_read_access,
    customer_data_key,
    keyed_etag,
    parse_record,
)
from jay.storage.lifecycle import cached_rules, decode_rules, encode_rules, object_expiration

log = Logger(namespace="jay.s3")

ALL_METHODS = ["GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT"]
# Small XML/JSON request bodies are read whole, each with a cap that says why it is enough.
MAX_CREATE_BUCKET_BODY = 64 * 1024  # a LocationConstraint document is < 200 bytes
MAX_DELETE_BODY = 2 * 1024 * 1024  # 1000 keys of 1024 bytes plus markup
MAX_COMPLETE_BODY = 2 * 1024 * 1024  # 10000 parts of ~150 bytes each
MAX_POLICY_BODY = 20 * 1024
MAX_VERSIONING_BODY = 16 * 1024  # a VersioningConfiguration document is < 200 bytes
MAX_LIST_KEYS = 1000
# The last second an HTTP date can name (9999-12-31T23:59:59Z).
LAST_HTTP_DATE = 253402300799.0
# GET bodies at least this large (and not verified while streaming) go out by sendfile.
SENDFILE_MIN_BYTES = 128 * 1024
SECURITY_HEADERS = (
    (b"X-Content-Type-Options", b"nosniff"),
    (b"X-Frame-Options", b"DENY"),
    (b"Referrer-Policy", b"strict-origin-when-cross-origin"),
)
# On every response, names in twisted's Canonical-Case (see _S3ResponseHeaders.replacing).
_CONSTANT_RESPONSE_HEADERS = (*SECURITY_HEADERS, (b"Server", b"jay"))


@dataclass(frozen=True, slots=True, kw_only=True)
class S3Settings:
    region: str = "us-east-1"
    domain: str = ""
    max_object_size: int = 5 * 1024**3
    min_part_size: int = 5 * 1024**2
    read_verify_rate: float = 0.05


@dataclass(slots=True)
class _Call:
    """Everything one request's handler needs."""

    request: Any
    route: routing.Route
    headers: dict[str, str]  # lower-case name → first value
    principal: Principal
    signing: sigv4.SigningContext | None
    request_id: str
    client_ip: str
    bytes_in: int = 0  # decoded body bytes stored (metrics)
    bytes_out: int = 0  # object bytes sent (metrics)
    body_tags: Mapping[str, str] | None = None  # a PutObjectTagging body's tags (conditions)
    form_fields: Mapping[str, str] | None = None  # a POST upload's form fields (conditions)

    def condition_values(self, keys: frozenset[str]) -> Mapping[str, tuple[str, ...]]:
        """jay.auth.policy.ConditionSource: asked only when a bucket policy's conditions
        read some of ``keys``."""
        return conditions.request_values(
            keys,
            operation=self.route.operation,
            headers=self.headers,
            params=self.route.params,
            auth_method=self.principal.auth_method,
            is_secure=bool(self.request.isSecure()),
            body_tags=self.body_tags,
            form_fields=self.form_fields,
        )


def _required_config(bucket: BucketInfo, name: str, missing: type[e.JayError]) -> str:
    """A bucket configuration a Get* operation returns; ``missing`` (its S3 404) when unset."""
    stored = bucket.config(name)
    if stored is None:
        raise missing(bucket=bucket.name)
    return stored


class _S3ResponseHeaders(Headers):
    """Response headers that send user metadata names in lower case, as S3 does.

    twisted.web writes every header name in Canonical-Case; SDKs take a metadata key verbatim
    from the header name after ``x-amz-meta-``, so boto3 would report ``Author`` for ``author``.
    """

    @classmethod
    def replacing(cls, current: Headers, request_id: bytes) -> _S3ResponseHeaders:
        """``current``'s headers plus jay's constant ones and the request id.

        The constants are stored pre-encoded in Canonical-Case, as ``setRawHeaders`` would store
        them, without its per-value encoding and sanitising work (they are fixed ASCII); the
        request id is hex. Values from elsewhere still go through ``setRawHeaders``/``setHeader``.
        """
        headers = cls()
        raw: dict[bytes, list[bytes]] = headers._rawHeaders
        for name, values in current.getAllRawHeaders():
            raw[name] = list(values)
        for name, value in _CONSTANT_RESPONSE_HEADERS:
            raw[name] = [value]
        raw[b"X-Amz-Request-Id"] = [request_id]
        return headers

    def set_plain(self, name: bytes, value: bytes) -> None:
        """``setRawHeaders(name, [value])`` for jay's own values on the hot paths.

        ``name`` is already what twisted's name encoder makes of it (``PLAIN_HEADER_NAMES``,
        pinned by a test) and ``value`` holds no line break (digits, hex, an HTTP date, a
        constant), so encoding and sanitising would change nothing; skipping them saves about
        a microsecond per header.
        """
        self._rawHeaders[name] = [value]

    def getAllRawHeaders(self) -> Any:
        raw = self._rawHeaders
        for name in raw:
            if name.startswith(b"X-Amz-Meta-"):
                return iter(
                    [
                        (n.lower() if n.startswith(b"X-Amz-Meta-") else n, values)
                        for n, values in raw.items()
                    ]
                )
        return iter(raw.items())


# Names given to _S3ResponseHeaders.set_plain, each in the form twisted stores it.
PLAIN_HEADER_NAMES = (b"ETag", b"Last-Modified", b"Accept-Ranges", b"Content-Length")


def stored_object_headers(info: ObjectInfo) -> tuple[tuple[bytes, tuple[bytes, ...]], ...]:
    """The response headers an object's record gives (ETag, Last-Modified, Accept-Ranges, its
    content attributes, its user metadata), in that order, names and values as twisted's
    ``setHeader`` stores them."""
    attrs = info.attributes
    headers = _S3ResponseHeaders()
    headers.set_plain(b"ETag", h.quote_etag(info.etag).encode())
    headers.set_plain(b"Last-Modified", h.format_http_date(info.updated_at).encode())
    headers.set_plain(b"Accept-Ranges", b"bytes")
    headers.setRawHeaders(b"Content-Type", [attrs.content_type.encode()])
    for header, value in (
        ("Content-Encoding", attrs.content_encoding),
        ("Content-Disposition", attrs.content_disposition),
        ("Content-Language", attrs.content_language),
        ("Cache-Control", attrs.cache_control),
        ("Expires", attrs.expires),
    ):
        if value:
            headers.setRawHeaders(header.encode(), [value.encode("utf-8", "replace")])
    for name, value in h.metadata_response_headers(attrs.metadata):
        headers.setRawHeaders(name.encode(), [value.encode("utf-8", "replace")])
    if attrs.tags:
        headers.setRawHeaders(b"x-amz-tagging-count", [str(len(attrs.tags)).encode()])
    if info.version_id != NULL_VERSION:
        headers.setRawHeaders(b"x-amz-version-id", [info.version_id.encode()])
    if attrs.lock_mode is not None or attrs.legal_hold is not None:
        for lock_name, lock_value in lock_wire.response_headers(attrs):
            headers.setRawHeaders(lock_name, [lock_value])
    return tuple((name, tuple(values)) for name, values in headers._rawHeaders.items())


class _StoredHeaders:
    """``stored_object_headers`` per record, remembered while the record is reused.

    GET and HEAD of a hot object get the same ``ObjectInfo`` from the storage's record cache
    until the object changes; formatting its date, quoting its ETag and encoding and
    sanitising each header again cost about 4 % of a HEAD. Entries hold their record, so an
    ``id`` is never reused while its entry exists; the table is emptied when full.

    As many entries as the storage service caches records (``OBJECT_CACHE_ENTRIES``): a smaller
    table is emptied over and over by a rotation over more keys than it holds, although every
    record is still cached (with 4096 entries, HEADs over 10,000 keys spent 6.8–8.7 µs per
    lookup rebuilding headers instead of 0.2 µs). About 800 bytes an entry.
    """

    MAX_ENTRIES = 16_384

    def __init__(self) -> None:
        self._entries: dict[int, tuple[ObjectInfo, tuple[tuple[bytes, tuple[bytes, ...]], ...]]]
        self._entries = {}

    def of(self, info: ObjectInfo) -> tuple[tuple[bytes, tuple[bytes, ...]], ...]:
        entry = self._entries.get(id(info))
        if entry is not None and entry[0] is info:
            return entry[1]
        headers = stored_object_headers(info)
        if len(self._entries) >= self.MAX_ENTRIES:
            self._entries.clear()
        self._entries[id(info)] = (info, headers)
        return headers


@dataclass(frozen=True, slots=True)
class _InfoOnly:
    """Stands in for an OpenObject where only the record is needed (HEAD)."""

    info: ObjectInfo

    def close(self) -> None:
        pass


@implementer(IConsumer)
class _DecodingConsumer:
    """Sits between the request body and the staging writer, decoding aws-chunked framing.

    A decoding error (bad chunk signature, broken framing) must not escape ``write``: it would
    unwind into the channel's ``dataReceived`` and drop the connection without a response. It is
    kept in ``error`` instead, and the body is stopped, so the handler answers with its code.
    """

    def __init__(self, writer: StagingWriter, decoder: AwsChunkedDecoder) -> None:
        self._writer = writer
        self._decoder = decoder
        self._producer: IProducer | None = None
        self.error: Exception | None = None

    def registerProducer(self, producer: IProducer, streaming: bool) -> None:
        self._producer = producer
        # RequestBody.deliver_to registers itself, an IPushProducer, as a streaming producer.
        self._writer.registerProducer(IPushProducer(producer), streaming)

    def unregisterProducer(self) -> None:
        self._producer = None
        self._writer.unregisterProducer()

    def write(self, data: bytes) -> None:
        if self.error is not None:
            return
        try:
            pieces = self._decoder.feed(data)
        except Exception as exc:  # noqa: BLE001 - re-raised by the handler, see _receive_body
            self.error = exc
            if self._producer is not None:
                self._producer.stopProducing()
            return
        for piece in pieces:
            self._writer.write(piece)


# Storage continues after a common prefix CP from CP + U+10FFFF repeated past the longest key
# (jay.storage.api ListPage.next_start_after). V1 markers and version key markers are visible
# to clients, which expect the common prefix itself there (S3 sends NextMarker = the last
# CommonPrefix), so the position is shortened on the way out and rebuilt on the way in.
_AFTER_GROUP = "\U0010ffff"
_MAX_KEY_BYTES = 1024


def _visible_marker(page: ListPage) -> ListPage:
    marker = page.next_start_after.rstrip(_AFTER_GROUP)
    if marker == page.next_start_after:
        return page
    return dataclasses.replace(page, next_start_after=marker)


def _start_from_marker(marker: str, prefix: str, delimiter: str) -> str:
    """A marker that is itself a common prefix means: after every key rolled up into it."""
    if not delimiter or not marker.startswith(prefix) or not marker.endswith(delimiter):
        return marker
    if marker.find(delimiter, len(prefix)) != len(marker) - len(delimiter):
        return marker
    room = _MAX_KEY_BYTES - len(marker.encode("utf-8"))
    return marker + _AFTER_GROUP * (max(room, 0) // 4 + 1)


def _encode_token(start_after: str) -> str:
    return base64.urlsafe_b64encode(start_after.encode("utf-8", "surrogatepass")).decode()


def _decode_token(token: str) -> str:
    try:
        return base64.b64decode(token.encode("ascii"), altchars=b"-_", validate=True).decode(
            "utf-8"
        )
    except (ValueError, UnicodeError, binascii.Error):
        raise e.InvalidArgument(
            "The continuation token provided is incorrect", argument_name="continuation-token"
        ) from None


def _int_param(params: Mapping[str, str], name: str, default: int, *, low: int, high: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise e.InvalidArgument(
            f"Provided {name} not an integer or within integer range",
            argument_name=name,
            argument_value=raw,
        ) from None
    if value < low:
        raise e.InvalidArgument(
            f"Argument {name} must be an integer between {low} and {high}",
            argument_name=name,
            argument_value=raw,
        )
    return min(value, high)


class S3Api:
    app = Klein()
    # Keys may contain "//": werkzeug must not redirect such paths to merged ones.
    app.url_map.merge_slashes = False

    def __init__(
        self,
        *,
        storage: Storage,
        authenticator: Authenticator,
        access: AccessControl,
        clock: Any,
        readiness: Readiness,
        settings: S3Settings,
        client_ip: Callable[[Any], str] | None = None,
        limits: RequestLimits | None = None,
        metrics: Any = None,
    ) -> None:
        self._storage = storage
        self._auth = authenticator
        self._access = access
        self._clock = clock
        self._readiness = readiness
        self._settings = settings
        self._client_ip = client_ip or (
            lambda request: getattr(request.getClientAddress(), "host", "")
        )
        self._random = random.Random()
        self._limits = limits
        self._in_flight = 0
        self._idle_waiters: list[Deferred[None]] = []
        self._metrics = metrics  # jay.metrics.registry.Metrics, or None
        self._stored_headers = _StoredHeaders()

    def resource(self) -> Any:
        """The twisted.web resource the S3 site serves: ``S3Resource`` (see there)."""
        return S3Resource(self)

    def klein_resource(self) -> Any:
        """The same handler behind Klein's werkzeug router (slower; kept for comparison)."""
        return self.app.resource()

    # --- entry ---------------------------------------------------------------------------------
    @app.route("/", branch=True, methods=ALL_METHODS)
    def handle(self, request: Any) -> Deferred[bytes | None]:
        self._in_flight += 1
        d = Deferred.fromCoroutine(self._handle(request))
        d.addBoth(self._request_done)
        return d

    def handle_now(self, request: Any) -> bytes | None | Deferred[bytes | None]:
        """``handle`` for ``S3Resource``: the handler runs at once, and a request it answers
        without waiting (a GET or HEAD whose credentials, bucket and object come from caches
        and the inline lookup) returns its body directly, with no Deferred around it.

        Driving the coroutine by hand costs about 1 µs; ``Deferred.fromCoroutine`` plus the
        callbacks that write the result cost about 8 µs per request. A handler that has to
        wait continues as a Deferred exactly as ``handle`` would (see ``_Continued``).
        Whatever the handler raises before its first wait is raised here.
        """
        self._in_flight += 1
        coroutine = self._handle(request)
        try:
            waiting = coroutine.send(None)
        except StopIteration as done:
            self._request_done(None)
            return done.value  # type: ignore[no-any-return]
        except BaseException:
            self._request_done(None)
            raise
        d: Deferred[bytes | None] = Deferred.fromCoroutine(_continue(coroutine, waiting))
        d.addBoth(self._request_done)
        return d

    def _request_done(self, result: Any) -> Any:
        self._in_flight -= 1
        if self._in_flight == 0:
            waiters, self._idle_waiters = self._idle_waiters, []
            for waiter in waiters:
                waiter.callback(None)
        return result

    def wait_idle(self) -> Deferred[None]:
        """Fires once no request is being handled (graceful shutdown)."""
        if self._in_flight == 0:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._idle_waiters.append(waiter)
        return waiter

    async def _handle(self, request: Any) -> bytes | None:
        started = time.monotonic()
        # Unpredictable enough to correlate logs, from a generator seeded by os.urandom once:
        # os.urandom per request released the GIL to the storage threads mid-request.
        request_id = f"{self._random.getrandbits(64):016x}"
        request.responseHeaders = _S3ResponseHeaders.replacing(
            request.responseHeaders, request_id.encode("ascii")
        )
        method = request.method.decode("ascii", "replace")
        # One pass over twisted's headers (one entry per name, Canonical-Case, values in arrival
        # order) builds the three views: the pairs as received, the values by lower-case name
        # (what SigV4 needs, so it does not index them again), and the first value as text.
        header_pairs: list[tuple[bytes, bytes]] = []
        header_index: dict[str, list[bytes]] = {}
        headers: dict[str, str] = {}
        for name, values in request.requestHeaders.getAllRawHeaders():
            if not values:
                continue
            for value in values:
                header_pairs.append((name, value))
            lower = sigv4.lower_name(name)
            header_index[lower] = values
            headers[lower] = values[0].decode("utf-8", "replace")
        host = headers.get("host", "")
        route = routing.route(method, host, request.uri, self._settings.domain, headers)
        principal: Principal | None = None
        call: _Call | None = None
        try:
            if not self._readiness.is_ready:
                raise e.ServiceUnavailable()
            if route.is_error:
                raise route.error()
            raw_path, _, raw_query = request.uri.partition(b"?")
            client_ip = self._client_ip(request)
            if self._limits is not None:
                # Before any credential check: a guessing flood costs no bcrypt (§8.2 item 14).
                self._limits.before_auth(client_ip)
            if "origin" in headers and route.bucket and route.operation != routing.CORS_PREFLIGHT:
                # Before authentication: a browser needs the CORS headers to read a denial too.
                await self._add_cors_headers(request, route, method, headers)
            try:
                if route.operation == routing.CORS_PREFLIGHT:
                    # Browsers send preflights without credentials; a presigned URL's query
                    # signs the real request's method, not OPTIONS.
                    auth = AuthResult(ANONYMOUS)
                else:
                    auth = await self._auth.authenticate_async(
                        method,
                        raw_path,
                        raw_query,
                        header_pairs,
                        virtual_host_bucket=route.bucket if route.is_virtual_host else "",
                        header_index=header_index,
                    )
            except CancelledError:
                raise
            except Exception as auth_error:
                if self._limits is not None:
                    self._limits.auth_failed(client_ip, auth_error)
                raise
            principal = auth.principal
            if self._limits is not None:
                self._limits.admit(principal.token_id, client_ip)
            call = _Call(
                request=request,
                route=route,
                headers=headers,
                principal=principal,
                signing=auth.signing,
                request_id=request_id,
                client_ip=client_ip,
            )
            handler = getattr(self, "_op_" + route.operation, None)
            if handler is None:
                raise e.NotImplementedOperation()
            if "x-amz-expected-bucket-owner" in headers or (
                "x-amz-source-expected-bucket-owner" in headers
            ):
                await self._check_expected_owners(call)
            body = await handler(call)
        except CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - mapped to an S3 error below
            body = self._error(request, exc, route, request_id)
            if self._metrics is not None and isinstance(exc, _AUTH_FAILURES):
                self._metrics.auth_failure()
        duration = time.monotonic() - started
        if self._metrics is not None:
            self._metrics.observe_request(
                "s3",
                route.operation,
                request.code,
                duration,
                bytes_in=call.bytes_in if call is not None else 0,
                bytes_out=call.bytes_out if call is not None else 0,
            )
        if is_enabled(log, LogLevel.info):
            log.info(
                "{method} {path} {status} {duration_ms:.1f}ms token={token_id} op={operation}",
                method=method,
                path=route.resource,
                status=request.code,
                duration_ms=duration * 1000,
                # call.principal: PostObject replaces the request's with the form's signer.
                token_id=call.principal.token_id if call is not None else "",
                operation=route.operation,
                request_id=request_id,
            )
        return body

    def _error(
        self, request: Any, exc: BaseException, route: routing.Route, request_id: str
    ) -> bytes:
        if isinstance(exc, (ConnectionLost, ConnectionDone)):
            # The client went away mid-response (closed a ranged read early, timed out): an
            # everyday event, not a server fault.
            log.info(
                "Client went away during {method} {path} (request {request_id})",
                method=request.method,
                path=route.resource,
                request_id=request_id,
            )
        elif not isinstance(exc, e.JayError):
            log.failure(
                "Unexpected error for {method} {path} (request {request_id})",
                method=request.method,
                path=route.resource,
                request_id=request_id,
            )
        if request.startedWriting:
            # Headers (and maybe part of the body) are out: the only honest signal left is to
            # cut the connection so the client cannot mistake a short body for a whole one.
            request.transport.abortConnection()
            return b""
        resource = exc.resource if isinstance(exc, e.JayError) and exc.resource else route.resource
        status, headers, body = error_response(
            exc, resource, request_id, include_body=request.method != b"HEAD"
        )
        request.setResponseCode(status)
        for name, value in headers:
            request.setHeader(name.encode(), value.encode())
        if body:
            request.setHeader(b"Content-Type", b"application/xml")
            request.setHeader(b"Content-Length", str(len(body)).encode("ascii"))
        return body

    # --- helpers -------------------------------------------------------------------------------
    def _xml(self, call: _Call, body: bytes, status: int = 200) -> bytes:
        call.request.setResponseCode(status)
        call.request.setHeader(b"Content-Type", b"application/xml")
        # A length rather than chunked framing, as S3 sends: HTTP/1.0 clients and some SDKs
        # expect one on XML replies.
        call.request.setHeader(b"Content-Length", str(len(body)).encode("ascii"))
        return body

    def _empty(self, call: _Call, status: int = 200) -> bytes:
        call.request.setResponseCode(status)
        if status != 204:
            call.request.responseHeaders.set_plain(b"Content-Length", b"0")
        return b""

    async def _check_expected_owners(self, call: _Call) -> None:
        """``x-amz-expected-bucket-owner`` (and ``x-amz-source-expected-bucket-owner`` for a
        copy's source): 403 AccessDenied when the bucket belongs to another account, so a
        client never writes into (or reads from) a bucket that changed hands."""
        checks = [(call.headers.get("x-amz-expected-bucket-owner"), call.route.bucket)]
        source = call.headers.get("x-amz-copy-source")
        if source:
            checks.append(
                (
                    call.headers.get("x-amz-source-expected-bucket-owner"),
                    h.parse_copy_source(source).bucket,
                )
            )
        for expected, name in checks:
            if expected is None or not name:
                continue
            try:
                bucket = await self._storage.get_bucket(name)
            except e.NoSuchBucket:
                continue  # the operation answers for a missing bucket as it always does
            if expected.strip() != bucket.owner_account_id:
                raise e.AccessDenied(bucket=name, reason="expected bucket owner differs")

    async def _bucket(self, call: _Call, action: str, key: str = "", **kw: Any) -> Any:
        return await self._access.authorized_bucket(
            call.principal,
            action,
            call.route.bucket,
            key,
            client_ip=call.client_ip,
            conditions=call,
            **kw,
        )

    def _attributes(
        self, headers: Mapping[str, str], tags: Mapping[str, str] | None = None
    ) -> ObjectAttributes:
        encoding = headers.get("content-encoding")
        if encoding is not None:
            kept = [
                p.strip() for p in encoding.split(",") if p.strip() and p.strip() != "aws-chunked"
            ]
            encoding = ", ".join(kept) or None
        return ObjectAttributes(
            content_type=headers.get("content-type") or "application/octet-stream",
            content_encoding=encoding,
            content_disposition=headers.get("content-disposition"),
            content_language=headers.get("content-language"),
            cache_control=headers.get("cache-control"),
            expires=headers.get("expires"),
            metadata=h.extract_user_metadata(headers),
            tags=tags or {},
        )

    # --- server-side encryption ----------------------------------------------------------------
    def _sealing(
        self, requested: h.RequestedEncryption | None, bucket: BucketInfo
    ) -> Sealing | None:
        """The data key and record a new object gets: what the request asks for, else the
        bucket's default encryption, else none."""
        if requested is None:
            return self._storage.default_sealing(bucket)
        if requested.mode == MODE_SSE_KMS:
            return self._storage.new_sealing(
                kms_key_id=requested.kms_key_id or DEFAULT_KMS_KEY_ID,
                kms_context=requested.kms_context,
            )
        return self._storage.new_sealing(requested.customer)

    def _read_key(self, attributes: ObjectAttributes, customer: CustomerKey | None) -> bytes | None:
        """The data key to read an object (or write an upload's part) with; None for a plain
        one, which refuses SSE-C headers as S3 does."""
        if attributes.encryption is None:
            self._check_read_key(attributes, customer)
            return None
        return self._storage.data_key(attributes, customer)

    @staticmethod
    def _check_read_key(attributes: ObjectAttributes, customer: CustomerKey | None) -> None:
        """``_read_key``'s errors without a key: SSE-C needs the right key, others none."""
        if attributes.encryption is None:
            if customer is not None:
                raise e.InvalidRequest(
                    "The encryption parameters are not applicable to this object."
                )
            return
        check_read_access(parse_record(attributes.encryption), customer)

    def _plaintext(self, opened: Any, customer: CustomerKey | None) -> Any:
        """``opened`` as its plaintext: itself for a plain object."""
        data_key = self._read_key(opened.info.attributes, customer)
        return opened if data_key is None else self._storage.decrypting(opened, data_key)

    def _upload_sealing(self, upload: Any, customer: CustomerKey | None) -> Sealing | None:
        """The sealing an upload's parts are written with; an SSE-C upload needs the key it
        was created with on every part, as S3 requires."""
        if upload.attributes.encryption is None:
            if customer is not None:
                raise e.InvalidRequest(
                    "The encryption parameters are not applicable to this object."
                )
            return None
        record = parse_record(upload.attributes.encryption)
        if record.mode == MODE_SSE_C:
            if customer is None:
                raise e.InvalidRequest(
                    "The multipart upload initiate requested encryption. Subsequent part "
                    "requests must include the appropriate encryption parameters."
                )
            try:
                data_key = customer_data_key(record, customer)
            except e.AccessDenied:
                raise e.InvalidArgument(
                    "The provided encryption parameters did not match the ones used originally.",
                    argument_name="x-amz-server-side-encryption-customer-key",
                ) from None
            return Sealing(record=record, data_key=data_key)
        return Sealing(record=record, data_key=self._storage.data_key(upload.attributes, customer))

    @staticmethod
    def _etag_for(sealing: Sealing | None, staged: StagedBlob) -> str | None:
        """An SSE-C or SSE-KMS object's or part's ETag (not the plaintext's MD5, as S3
        documents); None: the MD5 (plain and SSE-S3 objects)."""
        if sealing is None or sealing.record.mode == MODE_SSE_S3:
            return None
        return keyed_etag(sealing.data_key, staged.md5)

    @staticmethod
    def _encryption_headers(
        call: _Call, record_json: str | None, *, with_context: bool = False
    ) -> None:
        for name, value in sse.response_headers(record_json, with_context=with_context):
            call.request.setHeader(name, value)

    def _requested_lock(
        self,
        call: _Call,
        bucket: BucketInfo,
        attributes: ObjectAttributes,
        lock_json: str,
        *,
        is_put: bool,
        fields: Mapping[str, str] | None = None,
    ) -> ObjectAttributes:
        """A write into a bucket with Object Lock: the lock its headers ask for. Setting a
        retention or a legal hold needs the rights PutObjectRetention / PutObjectLegalHold
        need, as on S3. A PutObject with lock parameters (its own, or the bucket's default
        retention) must carry Content-MD5 or an x-amz-checksum-* (AWS PutObject). A POST
        form passes its ``fields`` in place of headers."""
        headers = call.headers if fields is None else fields
        attributes = lock_wire.requested_lock(headers, attributes, self._clock.seconds())
        key = call.route.key
        for is_asked, action in (
            (attributes.lock_mode is not None, "object:put-retention"),
            (attributes.legal_hold is not None, "object:put-legal-hold"),
        ):
            if is_asked:
                self._access.check(
                    call.principal, action, bucket, key, call.client_ip, conditions=call
                )
        if is_put and (
            ol.has_lock(attributes) or ol.decode_configuration(lock_json).has_default_retention
        ):
            lock_wire.require_integrity_header(headers, lock_wire.CHECKSUM_REQUIRED_MESSAGE)
        return attributes

    def _object_headers(self, call: _Call, info: ObjectInfo, *, with_checksums: bool) -> None:
        req = call.request
        raw = req.responseHeaders._rawHeaders
        for stored_name, values in self._stored_headers.of(info):
            raw[stored_name] = list(values)
        if with_checksums and call.headers.get("x-amz-checksum-mode", "").upper() == "ENABLED":
            for algorithm, value in info.checksums.items():
                req.setHeader(f"x-amz-checksum-{algorithm.lower()}".encode(), value.encode())
            if info.checksum_type:
                req.setHeader(b"x-amz-checksum-type", info.checksum_type.encode())
        if not call.principal.is_anonymous:
            for name, value in h.response_overrides(call.route.params):
                req.setHeader(name.encode(), value.encode("utf-8", "replace"))

    # --- body intake ---------------------------------------------------------------------------
    def _wanted_checksums(self, call: _Call, extra: str = "") -> tuple[dict[str, str], list[str]]:
        """(checksums the client sent in headers, algorithms to compute)."""
        given = h.parse_checksum_headers(call.headers)
        algorithms = set(given)
        trailer = call.headers.get("x-amz-trailer", "")
        for name in trailer.split(","):
            name = name.strip().lower()
            if name.startswith("x-amz-checksum-"):
                algorithm = name[len("x-amz-checksum-") :].upper()
                if algorithm not in checksums.ALGORITHMS:
                    raise e.InvalidRequest(f"Unsupported trailer checksum {name}")
                algorithms.add(algorithm)
        sdk_algorithm = call.headers.get("x-amz-sdk-checksum-algorithm", "").upper()
        if sdk_algorithm in checksums.ALGORITHMS:
            algorithms.add(sdk_algorithm)
        if extra:
            algorithms.add(extra)
        algorithms.discard("")
        return given, sorted(algorithms)

    async def _receive_body(
        self,
        call: _Call,
        *,
        max_size: int,
        extra_checksum: str = "",
        sealing: Sealing | None = None,
        part_number: int = 0,
    ) -> StagedBlob:
        """Stream the request body into a staged blob and check every digest the client sent."""
        headers = call.headers
        payload_hash = headers.get("x-amz-content-sha256", "")
        mode = call.signing.payload_mode if call.signing is not None else None
        if mode is None and payload_hash:
            mode = sigv4.parse_payload_mode(payload_hash)
        is_chunked = mode is not None and mode.is_aws_chunked
        declared = call.request.body.length
        if is_chunked:
            decoded = headers.get("x-amz-decoded-content-length")
            decoded_length = int(decoded) if decoded and decoded.isdigit() else None
            if decoded_length is not None and decoded_length > max_size:
                raise e.EntityTooLarge(max_size_allowed=max_size)
        else:
            decoded_length = None
            if declared is not None and declared > max_size:
                raise e.EntityTooLarge(max_size_allowed=max_size)
        content_md5 = headers.get("content-md5")
        expected_md5 = h.parse_content_md5(content_md5) if content_md5 is not None else None
        given, algorithms = self._wanted_checksums(call, extra_checksum)
        size_hint = decoded_length if is_chunked else declared
        writer = (
            self._storage.begin_write(algorithms, size_hint=size_hint)
            if sealing is None
            else self._storage.begin_write(
                algorithms, sealing=sealing, part_number=part_number, size_hint=size_hint
            )
        )
        try:
            if is_chunked:
                assert mode is not None
                decoder = AwsChunkedDecoder(
                    mode,
                    call.signing if mode.has_chunk_signatures else None,
                    "x-amz-trailer" in headers,
                    decoded_length,
                )
                consumer = _DecodingConsumer(writer, decoder)
                try:
                    await call.request.body.deliver_to(consumer)
                except BodyDeliveryStopped:
                    if consumer.error is not None:
                        raise consumer.error from None
                    raise
                if consumer.error is not None:
                    raise consumer.error
                decoder.finish()
                trailers = decoder.trailers
            else:
                await call.request.body.deliver_to(writer)
                trailers = {}
            staged = await writer.finish()
        except BaseException:
            await writer.abort()
            raise
        try:
            if staged.size > max_size:
                raise e.EntityTooLarge(max_size_allowed=max_size)
            if expected_md5 is not None and expected_md5 != staged.md5:
                raise e.BadDigest("The Content-MD5 you specified did not match what we received.")
            if (
                mode is sigv4.PayloadMode.SHA256 or (mode is None and len(payload_hash) == 64)
            ) and payload_hash.lower() != staged.sha256_hex:
                raise e.ContentSHA256Mismatch()
            for name, value in trailers.items():
                if name.startswith("x-amz-checksum-"):
                    algorithm = name[len("x-amz-checksum-") :].upper()
                    given[algorithm] = value
            h.check_given_checksums(given, staged.checksums)
        except BaseException:
            await self._storage.discard(staged)
            raise
        call.bytes_in = staged.size
        return staged

    # --- service and bucket operations ------------------------------------------------------
    async def _op_ListBuckets(self, call: _Call) -> bytes:
        self._access.authorize_service(call.principal, "bucket:list")
        params = call.route.params
        # Paginated ListBuckets (max-buckets, continuation-token, prefix, bucket-region); without
        # max-buckets every bucket comes back in one answer, as S3 does.
        max_buckets = _int_param(params, "max-buckets", 10000, low=1, high=10000)
        token = params.get("continuation-token")
        after = _decode_token(token) if token else ""
        prefix = params.get("prefix")
        region = params.get("bucket-region")
        buckets = [
            bucket
            for bucket in await self._storage.list_buckets(call.principal.account_id)
            if bucket.name > after
            and (not prefix or bucket.name.startswith(prefix))
            and (not region or region == self._settings.region)
        ]
        page = buckets[:max_buckets]
        next_token = _encode_token(page[-1].name) if len(buckets) > len(page) else ""
        body = x.render_list_buckets(
            page,
            call.principal.account_id,
            region=self._settings.region,
            prefix=prefix,
            continuation_token=next_token,
        )
        return self._xml(call, body)

    async def _op_CreateBucket(self, call: _Call) -> bytes:
        bucket = call.route.bucket
        names.validate_bucket_name(bucket)
        self._access.authorize_service(call.principal, "bucket:write-meta", bucket)
        body = await call.request.body.read_all(MAX_CREATE_BUCKET_BODY)
        if body.strip():
            x.parse_create_bucket_configuration(body)
        owner_id = call.principal.account_id
        setting = call.headers.get(OBJECT_OWNERSHIP_HEADER)
        setting = setting_from_header(setting) if setting is not None else None
        acl_json = (
            await self._acl_from_headers(call.headers, owner_id)
            if acl.has_acl_headers(call.headers)
            else None
        )
        if (
            setting == ownership.BUCKET_OWNER_ENFORCED
            and acl_json is not None
            and not ownership.only_owner_full_control(acl.from_json(acl_json), owner_id)
        ):
            raise e.InvalidBucketAclWithObjectOwnership(bucket=bucket)
        configs = None
        if lock_wire.is_true(call.headers.get(lock_wire.BUCKET_LOCK_HEADER)):
            # Object Lock needs versioning; both are in force from the bucket's first moment.
            configs = {
                BUCKET_CONFIG_VERSIONING: VERSIONING_ENABLED,
                BUCKET_CONFIG_OBJECT_LOCK: ol.encode_configuration(ol.ENABLED_ONLY),
            }
        await self._storage.create_bucket(bucket, owner_id, configs)
        # A crash in between leaves the bucket private, with ACLs applying to what only its
        # owner writes until the ownership setting is stored: the safe side of each.
        if setting is not None:
            await self._storage.set_bucket_config(bucket, BUCKET_CONFIG_OWNERSHIP, setting)
        if acl_json is not None and setting != ownership.BUCKET_OWNER_ENFORCED:
            await self._storage.set_bucket_config(bucket, BUCKET_CONFIG_ACL, acl_json)
        call.request.setHeader(b"Location", f"/{bucket}".encode())
        return self._empty(call)

    async def _op_DeleteBucket(self, call: _Call) -> bytes:
        await self._bucket(call, "bucket:write-meta")
        await self._storage.delete_bucket(call.route.bucket)
        return self._empty(call, 204)

    async def _op_HeadBucket(self, call: _Call) -> bytes:
        await self._bucket(call, "bucket:read-meta")
        call.request.setHeader(b"x-amz-bucket-region", self._settings.region.encode())
        return self._empty(call)

    async def _op_GetBucketLocation(self, call: _Call) -> bytes:
        await self._bucket(call, "bucket:read-meta")
        region = self._settings.region
        return self._xml(call, x.render_location("" if region == "us-east-1" else region))

    async def _op_GetBucketVersioning(self, call: _Call) -> bytes:
        bucket = await self._bucket(call, "bucket:read-meta")
        return self._xml(call, x.render_versioning(bucket.config(BUCKET_CONFIG_VERSIONING) or ""))

    async def _op_PutBucketVersioning(self, call: _Call) -> bytes:
        """Enabled or Suspended, stored as the bucket's versioning configuration (the writes
        read it in their own transaction). There is no way back to unversioned, as on S3: a
        configuration without a Status changes nothing. MFA delete needs an MFA device jay
        does not have: asking to enable it is refused, never ignored."""
        await self._owner_only(call, "bucket:write-meta")
        body = await self._read_checked_body(call, MAX_VERSIONING_BODY)
        status, mfa_delete = x.parse_versioning_configuration(body)
        if mfa_delete == "Enabled":
            raise e.NotImplementedOperation("MFA delete is not supported")
        if status in (VERSIONING_ENABLED, VERSIONING_SUSPENDED):
            await self._storage.set_bucket_config(
                call.route.bucket, BUCKET_CONFIG_VERSIONING, status
            )
        return self._empty(call)

    def _version_id_param(self, call: _Call) -> str | None:
        """The request's ``versionId`` (validated: InvalidArgument), None without one."""
        version_id = call.route.params.get("versionId")
        return None if version_id is None else names.validate_version_id(version_id)

    @staticmethod
    def _version_header(call: _Call, info: ObjectInfo) -> None:
        """``x-amz-version-id`` on a write's answer: only for a real version (a write while
        versioning is suspended makes the "null" version, answered without it)."""
        if info.version_id != NULL_VERSION:
            call.request.setHeader(b"x-amz-version-id", info.version_id.encode())

    # --- ACLs ----------------------------------------------------------------------------------
    async def _op_GetBucketAcl(self, call: _Call) -> bytes:
        bucket = await self._access.authorized_bucket_acp(
            call.principal,
            "bucket:read-meta",
            acl.READ_ACP,
            call.route.bucket,
            call.client_ip,
            call,
        )
        # ACLs disabled (BucketOwnerEnforced): the owner's full control is all there is.
        stored = None if ownership.acls_disabled(bucket) else bucket.config(BUCKET_CONFIG_ACL)
        grants = acl.from_json(stored) if stored is not None else None
        return self._xml(call, acl.render(bucket.owner_account_id, grants))

    async def _op_PutBucketAcl(self, call: _Call) -> bytes:
        bucket = await self._access.authorized_bucket_acp(
            call.principal,
            "bucket:write-meta",
            acl.WRITE_ACP,
            call.route.bucket,
            call.client_ip,
            call,
        )
        grants = await self._requested_acl(call, bucket, bucket.owner_account_id)
        ownership.check_acl_allowed(bucket, grants)
        value = None if acl.is_default(grants, bucket.owner_account_id) else acl.to_json(grants)
        await self._storage.set_bucket_config(call.route.bucket, BUCKET_CONFIG_ACL, value)
        return self._empty(call)

    async def _op_GetObjectAcl(self, call: _Call) -> bytes:
        version_id = self._version_id_param(call)
        bucket = await self._access.authorized_object(
            call.principal,
            "object:get-acl",
            acl.READ_ACP,
            call.route.bucket,
            call.route.key,
            client_ip=call.client_ip,
            conditions=call,
            version_id=version_id,
        )
        stored = await self._storage.get_object_acl(call.route.bucket, call.route.key, version_id)
        if ownership.acls_disabled(bucket):  # the bucket owner owns everything in it
            stored = None
        owner = acl.owner_of(stored, bucket.owner_account_id)
        grants = acl.from_json(stored) if stored is not None else None
        if version_id is not None:
            call.request.setHeader(b"x-amz-version-id", version_id.encode())
        return self._xml(call, acl.render(owner, grants))

    async def _op_PutObjectAcl(self, call: _Call) -> bytes:
        version_id = self._version_id_param(call)
        bucket = await self._access.authorized_object(
            call.principal,
            "object:put-acl",
            acl.WRITE_ACP,
            call.route.bucket,
            call.route.key,
            client_ip=call.client_ip,
            conditions=call,
            version_id=version_id,
        )
        stored = await self._storage.get_object_acl(call.route.bucket, call.route.key, version_id)
        if ownership.acls_disabled(bucket):
            stored = None  # the bucket owner owns the object; only its full control may be set
        owner = acl.owner_of(stored, bucket.owner_account_id)
        grants = await self._requested_acl(call, bucket, owner, bucket.owner_account_id)
        ownership.check_acl_allowed(bucket, grants)
        if owner != bucket.owner_account_id:
            value: str | None = acl.to_json(grants, owner)
        else:
            value = None if acl.is_default(grants, owner) else acl.to_json(grants)
        await self._storage.set_object_acl(call.route.bucket, call.route.key, value, version_id)
        if version_id is not None:
            call.request.setHeader(b"x-amz-version-id", version_id.encode())
        return self._empty(call)

    async def _requested_acl(
        self, call: _Call, bucket: BucketInfo, owner_id: str, bucket_owner_id: str = ""
    ) -> acl.Acl:
        """A PutBucketAcl / PutObjectAcl request's ACL: its headers, else its body."""
        body = await self._read_checked_body(call, acl.MAX_ACL_BYTES)
        if acl.has_acl_headers(call.headers):
            if body.strip():
                raise e.UnexpectedContent()
            grants = acl.from_headers(call.headers, owner_id, bucket_owner_id)
            assert grants is not None
        elif body.strip():
            grants = acl.parse_policy_document(body, owner_id)
        else:
            raise e.MalformedACLError()
        await self._check_grantees(grants, bucket)
        return grants

    async def _new_object_acl(
        self, call: _Call, headers: Mapping[str, str], bucket: Any
    ) -> str | None:
        """The stored ACL of an object this request writes; None for the default (the bucket
        owner's FULL_CONTROL). Another account that writes an object owns it (S3's object
        writer ownership): it gets FULL_CONTROL besides what the headers ask for; the bucket's
        owner keeps its access to everything in the bucket. The bucket's Object Ownership
        setting (jay.auth.ownership) can give the bucket owner the object instead, and with
        ACLs disabled nothing is stored and any ACL but the owner's full control is refused."""
        bucket_owner = bucket.owner_account_id
        writer = call.principal.account_id if call.principal.token is not None else ""
        setting = ownership.setting_of(bucket)
        canned = headers.get("x-amz-acl")
        owner = ownership.object_owner(
            setting, writer, bucket_owner, canned.strip() if canned is not None else None
        )
        grants = acl.from_headers(headers, owner, bucket_owner)
        if setting == ownership.BUCKET_OWNER_ENFORCED:
            ownership.check_acl_allowed(bucket, grants)
            return None
        if owner != bucket_owner:
            await self._check_grantees(grants or (), bucket)
            return acl.to_json(grants or acl.owner_full_control(owner), owner)
        if grants is None or acl.is_default(grants, owner):
            return None
        await self._check_grantees(grants, bucket)
        return acl.to_json(grants)

    def _needs_object_acl(self, call: _Call, headers: Mapping[str, str], bucket: Any) -> bool:
        """Whether ``_new_object_acl`` has anything to store (cheap: the hot path asks)."""
        return acl.has_acl_headers(headers) or (
            call.principal.token is not None
            and call.principal.account_id != bucket.owner_account_id
        )

    async def _acl_from_headers(self, headers: Mapping[str, str], owner_id: str) -> str | None:
        """The stored form of the ACL a bucket creation's headers ask for; None: the default."""
        grants = acl.from_headers(headers, owner_id)
        if grants is None or acl.is_default(grants, owner_id):
            return None
        await self._check_grantees(grants)
        return acl.to_json(grants)

    async def _check_grantees(self, grants: acl.Acl, bucket: BucketInfo | None = None) -> None:
        """Every ACL a request asks to store passes here: ``bucket``'s BlockPublicAcls refuses
        a public one (a bucket being created has no configuration yet), and every account it
        names must exist."""
        if bucket is not None:
            public_access.check_acl(bucket, grants)
        for account_id in acl.account_ids(grants):
            try:
                await self._storage.get_account(account_id)
            except e.NoSuchAccount:
                raise e.InvalidArgument("Invalid id", argument_name="CanonicalUser/ID") from None

    async def _op_BucketStats(self, call: _Call) -> bytes:
        await self._bucket(call, "bucket:read-meta")
        stats = await self._storage.bucket_stats(call.route.bucket)
        call.request.setHeader(b"Content-Type", b"application/json")
        doc = {
            "bucket": call.route.bucket,
            "object_count": stats.object_count,
            "total_size_bytes": stats.total_size_bytes,
        }
        return json.dumps(doc, separators=(",", ":")).encode() + b"\n"

    async def _op_GetBucketPolicy(self, call: _Call) -> bytes:
        bucket = await self._owner_only(call, "bucket:read-meta")
        if not bucket.policy_json:
            raise e.NoSuchBucketPolicy(bucket=call.route.bucket)
        call.request.setHeader(b"Content-Type", b"application/json")
        return bucket.policy_json.encode()

    async def _op_PutBucketPolicy(self, call: _Call) -> bytes:
        bucket = await self._owner_only(call, "bucket:write-meta")
        body = await call.request.body.read_all(MAX_POLICY_BODY, too_large=e.MalformedPolicy)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise e.MalformedPolicy("Policies must be UTF-8 JSON") from None
        public_access.check_policy(bucket, parse_policy(text, bucket=call.route.bucket))
        await self._storage.set_bucket_policy(call.route.bucket, text)
        return self._empty(call, 204)

    async def _op_DeleteBucketPolicy(self, call: _Call) -> bytes:
        await self._owner_only(call, "bucket:write-meta")
        await self._storage.set_bucket_policy(call.route.bucket, None)
        return self._empty(call, 204)

    async def _op_GetBucketPolicyStatus(self, call: _Call) -> bytes:
        """Whether the bucket's policy is public (jay.auth.public_access); without a policy
        S3 answers NoSuchBucketPolicy. A legacy public-read bucket counts as one."""
        bucket = await self._owner_only(call, "bucket:get-policy-status")
        if not bucket.policy_json and bucket.visibility != "public-read":
            raise e.NoSuchBucketPolicy(bucket=call.route.bucket)
        try:
            policy = parse_policy(bucket.policy_json) if bucket.policy_json else None
        except e.MalformedPolicy:
            policy = None  # an unreadable stored policy refuses everyone (decide): not public
        return self._xml(call, render_policy_status(public_access.is_public(bucket, policy)))

    # --- Block Public Access -------------------------------------------------------------------
    # Owner only, like the policy it guards; a policy's deny of s3:*PublicAccessBlock still
    # applies to the owner (jay.auth.policy SUB_ACTIONS).
    async def _op_GetPublicAccessBlock(self, call: _Call) -> bytes:
        bucket = await self._owner_only(call, "bucket:get-public-access-block")
        block = public_access.block_of(bucket)
        if block is None:
            raise e.NoSuchPublicAccessBlockConfiguration(bucket=call.route.bucket)
        return self._xml(call, render_public_access_block(block))

    async def _op_PutPublicAccessBlock(self, call: _Call) -> bytes:
        await self._owner_only(call, "bucket:put-public-access-block")
        body = await self._read_checked_body(call, MAX_PUBLIC_ACCESS_BLOCK_BODY)
        block = parse_public_access_block(body)
        await self._storage.set_bucket_config(
            call.route.bucket, BUCKET_CONFIG_PUBLIC_ACCESS_BLOCK, public_access.to_json(block)
        )
        return self._empty(call)

    async def _op_DeletePublicAccessBlock(self, call: _Call) -> bytes:
        # S3 authorizes it as s3:PutBucketPublicAccessBlock.
        return await self._delete_config(
            call, "bucket:put-public-access-block", BUCKET_CONFIG_PUBLIC_ACCESS_BLOCK
        )

    # --- default encryption ------------------------------------------------------------------
    async def _op_GetBucketEncryption(self, call: _Call) -> bytes:
        bucket = await self._owner_only(call, "bucket:get-encryption")
        stored = _required_config(
            bucket, BUCKET_CONFIG_ENCRYPTION, e.ServerSideEncryptionConfigurationNotFound
        )
        return self._xml(call, sse.render_bucket_encryption(bucket_encryption_of(stored)))

    async def _op_PutBucketEncryption(self, call: _Call) -> bytes:
        await self._owner_only(call, "bucket:put-encryption")
        body = await self._read_checked_body(call, sse.MAX_ENCRYPTION_BODY)
        config = sse.parse_bucket_encryption(body)
        if config.kms_key_id is not None:
            self._storage.check_kms_key(config.kms_key_id)
        await self._storage.set_bucket_config(
            call.route.bucket, BUCKET_CONFIG_ENCRYPTION, config.to_json()
        )
        return self._empty(call)

    async def _op_DeleteBucketEncryption(self, call: _Call) -> bytes:
        # S3 authorizes it as s3:PutEncryptionConfiguration.
        return await self._delete_config(call, "bucket:put-encryption", BUCKET_CONFIG_ENCRYPTION)

    # --- features jay does not have, as S3 reads a bucket without them -------------------------
    async def _op_GetBucketLogging(self, call: _Call) -> bytes:
        await self._bucket(call, "bucket:read-meta")
        return self._xml(call, x.render_unconfigured(call.route.operation))

    _op_GetBucketNotificationConfiguration = _op_GetBucketLogging
    _op_GetBucketAccelerateConfiguration = _op_GetBucketLogging
    _op_GetBucketRequestPayment = _op_GetBucketLogging

    async def _op_GetBucketWebsite(self, call: _Call) -> bytes:
        await self._bucket(call, "bucket:read-meta")
        raise e.NoSuchWebsiteConfiguration(bucket=call.route.bucket)

    async def _op_GetBucketReplication(self, call: _Call) -> bytes:
        await self._bucket(call, "bucket:read-meta")
        raise e.ReplicationConfigurationNotFound(bucket=call.route.bucket)

    # --- Object Ownership ----------------------------------------------------------------------
    # Owner only, like Block Public Access; a policy's deny of s3:*BucketOwnershipControls
    # still applies to the owner.
    async def _op_GetBucketOwnershipControls(self, call: _Call) -> bytes:
        bucket = await self._owner_only(call, "bucket:get-ownership-controls")
        setting = _required_config(bucket, BUCKET_CONFIG_OWNERSHIP, e.OwnershipControlsNotFound)
        return self._xml(call, render_ownership_controls(setting))

    async def _op_PutBucketOwnershipControls(self, call: _Call) -> bytes:
        bucket = await self._owner_only(call, "bucket:put-ownership-controls")
        body = await self._read_checked_body(call, MAX_OWNERSHIP_CONTROLS_BODY)
        setting = parse_ownership_controls(body)
        if setting == ownership.BUCKET_OWNER_ENFORCED:
            ownership.check_can_enforce(bucket)
        await self._storage.set_bucket_config(call.route.bucket, BUCKET_CONFIG_OWNERSHIP, setting)
        return self._empty(call)

    async def _op_DeleteBucketOwnershipControls(self, call: _Call) -> bytes:
        # S3 authorizes it as s3:PutBucketOwnershipControls.
        return await self._delete_config(
            call, "bucket:put-ownership-controls", BUCKET_CONFIG_OWNERSHIP
        )

    # --- CORS ----------------------------------------------------------------------------------
    async def _op_GetBucketCors(self, call: _Call) -> bytes:
        bucket = await self._owner_only(call, "bucket:read-meta")
        stored = _required_config(bucket, BUCKET_CONFIG_CORS, e.NoSuchCORSConfiguration)
        return self._xml(call, cors.render_configuration(cors.rules_of(stored)))

    async def _op_PutBucketCors(self, call: _Call) -> bytes:
        await self._owner_only(call, "bucket:write-meta")
        body = await self._read_checked_body(call, cors.MAX_CONFIGURATION_BYTES)
        rules = cors.parse_configuration(body)
        await self._storage.set_bucket_config(
            call.route.bucket, BUCKET_CONFIG_CORS, cors.to_json(rules)
        )
        return self._empty(call)

    async def _op_DeleteBucketCors(self, call: _Call) -> bytes:
        return await self._delete_config(call, "bucket:write-meta", BUCKET_CONFIG_CORS)

    async def _op_CorsPreflight(self, call: _Call) -> bytes:
        """OPTIONS: allowed when a rule of the bucket's CORS configuration admits the origin,
        the method the browser asks for and every header it wants to send (no authentication:
        the answer reveals only what the configuration says)."""
        headers = call.headers
        origin = headers["origin"]
        method = headers["access-control-request-method"]
        wanted = cors.requested_headers(headers.get("access-control-request-headers", ""))
        try:
            bucket = await self._storage.get_bucket(call.route.bucket)
        except e.NoSuchBucket:
            raise e.CORSForbidden("CORSResponse: Bucket not found") from None
        stored = bucket.config(BUCKET_CONFIG_CORS)
        if stored is None:
            raise e.CORSForbidden()
        rule = cors.find_rule(cors.rules_of(stored), origin, method, wanted)
        if rule is None:
            raise e.CORSForbidden("CORSResponse: This CORS request is not allowed.")
        raw = call.request.responseHeaders
        for name, value in cors.response_headers(
            rule, origin, preflight=True, request_headers=wanted
        ):
            raw.addRawHeader(name, value)
        return self._empty(call)

    async def _add_cors_headers(
        self, request: Any, route: routing.Route, method: str, headers: Mapping[str, str]
    ) -> None:
        """The CORS headers of a request from a browser (one with ``Origin``) to a bucket whose
        CORS configuration has a rule for that origin and method; nothing otherwise."""
        try:
            bucket = await self._storage.get_bucket(route.bucket)
        except e.JayError:
            return  # the operation itself reports a missing bucket or a failing store
        stored = bucket.config(BUCKET_CONFIG_CORS)
        if stored is None:
            return
        origin = headers["origin"]
        # The method a preflight asked for, when a client repeats it (as Ceph's tests do).
        wanted = headers.get("access-control-request-method") or method
        rule = cors.find_rule(cors.rules_of(stored), origin, wanted)
        if rule is not None:
            raw = request.responseHeaders
            for name, value in cors.response_headers(rule, origin, preflight=False):
                raw.addRawHeader(name, value)

    # --- lifecycle configuration ---------------------------------------------------------------
    # Owner only, like the policy: a lifecycle rule deletes objects, so no policy grants it
    # (s3:PutLifecycleConfiguration in an AWS-format policy grants nothing).
    async def _op_GetBucketLifecycleConfiguration(self, call: _Call) -> bytes:
        bucket = await self._owner_only(call, "bucket:read-meta")
        stored = _required_config(bucket, BUCKET_CONFIG_LIFECYCLE, e.NoSuchLifecycleConfiguration)
        return self._xml(call, render_lifecycle_configuration(decode_rules(stored)))

    async def _op_PutBucketLifecycleConfiguration(self, call: _Call) -> bytes:
        await self._owner_only(call, "bucket:write-meta")
        body = await self._read_checked_body(call, MAX_LIFECYCLE_BODY)
        rules = parse_lifecycle_configuration(body, new_rule_id=self._new_rule_id)
        await self._storage.set_bucket_config(
            call.route.bucket, BUCKET_CONFIG_LIFECYCLE, encode_rules(rules)
        )
        return self._empty(call)

    async def _op_DeleteBucketLifecycle(self, call: _Call) -> bytes:
        return await self._delete_config(call, "bucket:write-meta", BUCKET_CONFIG_LIFECYCLE)

    async def _delete_config(self, call: _Call, action: str, name: str) -> bytes:
        """A Delete* of a bucket configuration only its owner manages: 204, even when unset."""
        await self._owner_only(call, action)
        await self._storage.set_bucket_config(call.route.bucket, name, None)
        return self._empty(call, 204)

    def _new_rule_id(self) -> str:
        """The ID of a rule put without one (S3 generates one too)."""
        return f"{self._random.getrandbits(160):040x}"

    def _expiration_of_new(self, call: _Call, bucket: BucketInfo, info: ObjectInfo) -> None:
        """``x-amz-expiration`` on the answer to a write (PUT, copy, Complete), as S3 sends it."""
        lifecycle = bucket.config(BUCKET_CONFIG_LIFECYCLE)
        if lifecycle is not None:
            self._expiration_header(call, lifecycle, info)

    def _expiration_header(self, call: _Call, lifecycle: str, info: ObjectInfo) -> None:
        """``x-amz-expiration`` for an object an enabled Expiration rule applies to."""
        due = object_expiration(
            cached_rules(lifecycle),
            info.key,
            info.size,
            info.attributes.tags,
            info.updated_at,
        )
        if due is None or due[0] >= LAST_HTTP_DATE:
            return  # not in this millennium (Days near 2**31): as good as never
        rule_id = due[1].replace("\\", "\\\\").replace('"', '\\"')
        value = f'expiry-date="{h.format_http_date(due[0])}", rule-id="{rule_id}"'
        call.request.setHeader(b"x-amz-expiration", value.encode("utf-8"))

    async def _owner_only(self, call: _Call, action: str) -> Any:
        """Policy management is for the bucket's owner only: a policy cannot grant it."""
        bucket = await self._bucket(call, action)
        if call.principal.account_id != bucket.owner_account_id:
            raise e.AccessDenied()
        return bucket

    # --- listings ------------------------------------------------------------------------------
    def _list_params(self, call: _Call) -> tuple[str, str, int, str]:
        params = call.route.params
        encoding_type = params.get("encoding-type", "")
        if encoding_type and encoding_type != "url":
            raise e.InvalidArgument(
                "Invalid Encoding Method specified in Request", argument_name="encoding-type"
            )
        max_keys = _int_param(params, "max-keys", MAX_LIST_KEYS, low=0, high=MAX_LIST_KEYS)
        return params.get("prefix", ""), params.get("delimiter", ""), max_keys, encoding_type

    async def _op_ListObjectsV2(self, call: _Call) -> bytes:
        prefix, delimiter, max_keys, encoding_type = self._list_params(call)
        await self._bucket(call, "object:list", list_prefix=prefix)
        params = call.route.params
        token = params.get("continuation-token")
        start_after = params.get("start-after", "")
        start = _decode_token(token) if token else start_after
        page = await self._storage.list_objects(
            call.route.bucket,
            prefix=prefix,
            delimiter=delimiter,
            start_after=start,
            max_keys=max_keys,
        )
        next_token = (
            _encode_token(page.next_start_after)
            if page.is_truncated and page.next_start_after
            else ""
        )
        fetch_owner = params.get("fetch-owner", "").lower() == "true"
        bucket_owner = ""
        if fetch_owner:
            bucket_owner = (await self._storage.get_bucket(call.route.bucket)).owner_account_id
        body = x.render_list_objects_v2(
            page,
            bucket=call.route.bucket,
            prefix=prefix,
            delimiter=delimiter,
            max_keys=max_keys,
            encoding_type=encoding_type,
            start_after=start_after,
            continuation_token=token,
            next_continuation_token=next_token,
            owner_id=bucket_owner if fetch_owner else None,
        )
        return self._xml(call, body)

    async def _marker_listing(
        self, call: _Call, marker_param: str
    ) -> tuple[Any, Any, str, str, int, str, str]:
        """Authorize and list for ListObjects (V1), paged by ``marker``."""
        prefix, delimiter, max_keys, encoding_type = self._list_params(call)
        bucket = await self._bucket(call, "object:list", list_prefix=prefix)
        marker = call.route.params.get(marker_param, "")
        page = await self._storage.list_objects(
            call.route.bucket,
            prefix=prefix,
            delimiter=delimiter,
            start_after=_start_from_marker(marker, prefix, delimiter),
            max_keys=max_keys,
        )
        return bucket, _visible_marker(page), prefix, delimiter, max_keys, encoding_type, marker

    async def _op_ListObjects(self, call: _Call) -> bytes:
        (
            bucket,
            page,
            prefix,
            delimiter,
            max_keys,
            encoding_type,
            marker,
        ) = await self._marker_listing(call, "marker")
        body = x.render_list_objects_v1(
            page,
            bucket=call.route.bucket,
            prefix=prefix,
            delimiter=delimiter,
            marker=marker,
            max_keys=max_keys,
            encoding_type=encoding_type,
            owner_id=bucket.owner_account_id,
        )
        return self._xml(call, body)

    async def _op_ListObjectVersions(self, call: _Call) -> bytes:
        prefix, delimiter, max_keys, encoding_type = self._list_params(call)
        bucket = await self._bucket(call, "object:list", list_prefix=prefix)
        params = call.route.params
        key_marker = params.get("key-marker", "")
        version_id_marker = params.get("version-id-marker", "")
        if version_id_marker:
            if not key_marker:
                raise e.InvalidArgument(
                    "A version-id marker cannot be specified without a key marker.",
                    argument_name="version-id-marker",
                    argument_value=version_id_marker,
                )
            names.validate_version_id(version_id_marker)
        page = await self._storage.list_object_versions(
            call.route.bucket,
            prefix=prefix,
            delimiter=delimiter,
            key_marker=key_marker,
            version_id_marker=version_id_marker,
            max_keys=max_keys,
        )
        body = x.render_list_object_versions(
            page,
            bucket=call.route.bucket,
            prefix=prefix,
            delimiter=delimiter,
            key_marker=key_marker,
            version_id_marker=version_id_marker,
            max_keys=max_keys,
            encoding_type=encoding_type,
            owner_id=bucket.owner_account_id,
        )
        return self._xml(call, body)

    async def _op_ListMultipartUploads(self, call: _Call) -> bytes:
        params = call.route.params
        prefix = params.get("prefix", "")
        await self._bucket(call, "object:list", list_prefix=prefix)
        max_uploads = _int_param(params, "max-uploads", 1000, low=0, high=1000)
        encoding_type = params.get("encoding-type", "")
        page = await self._storage.list_multipart_uploads(
            call.route.bucket,
            prefix=prefix,
            delimiter=params.get("delimiter", ""),
            key_marker=params.get("key-marker", ""),
            upload_id_marker=params.get("upload-id-marker", ""),
            max_uploads=max_uploads,
        )
        body = x.render_list_multipart_uploads(
            page,
            bucket=call.route.bucket,
            prefix=prefix,
            delimiter=params.get("delimiter", ""),
            key_marker=params.get("key-marker", ""),
            upload_id_marker=params.get("upload-id-marker", ""),
            max_uploads=max_uploads,
            encoding_type=encoding_type,
        )
        return self._xml(call, body)

    # --- objects -------------------------------------------------------------------------------
    async def _op_PutObject(self, call: _Call) -> bytes:
        key = call.route.key
        names.validate_key(key)
        bucket = await self._bucket(call, "object:put", key)
        lock = bucket.config(BUCKET_CONFIG_OBJECT_LOCK) if bucket.configs else None
        requested = h.check_write_features(call.headers, is_lock_enabled=lock is not None)
        headers = call.headers
        attributes = self._attributes(
            headers, self._header_tags(call, bucket, key) if "x-amz-tagging" in headers else None
        )
        sealing = (
            None if requested is None and not bucket.configs else self._sealing(requested, bucket)
        )
        if sealing is not None:
            attributes = dataclasses.replace(attributes, encryption=sealing.record.to_json())
        if lock is not None:
            attributes = self._requested_lock(call, bucket, attributes, lock, is_put=True)
        condition = h.parse_write_condition(headers)
        # Inline tests: this is the hot path of every PUT (no ACL headers, the owner writing).
        acl_json = (
            await self._new_object_acl(call, headers, bucket)
            if not acl.ACL_HEADERS.isdisjoint(headers)
            or (
                call.principal.token is not None
                and call.principal.account_id != bucket.owner_account_id
            )
            else None
        )
        if sealing is None:
            staged = await self._receive_body(call, max_size=self._settings.max_object_size)
            etag = None
        else:
            staged = await self._receive_body(
                call, max_size=self._settings.max_object_size, sealing=sealing
            )
            etag = self._etag_for(sealing, staged)
            self._encryption_headers(call, attributes.encryption, with_context=True)
        info = await self._storage.put_object(
            call.route.bucket,
            key,
            staged,
            attributes,
            condition=condition,
            acl_json=acl_json,
            etag=etag,
        )
        if bucket.configs:
            self._expiration_of_new(call, bucket, info)
            self._version_header(call, info)
        call.request.responseHeaders.set_plain(b"ETag", h.quote_etag(info.etag).encode())
        for algorithm, value in info.checksums.items():
            call.request.setHeader(f"x-amz-checksum-{algorithm.lower()}".encode(), value.encode())
        return self._empty(call)

    async def _op_PostObject(self, call: _Call) -> bytes:
        """A browser form upload: ``jay.s3.postobject`` reads, authorizes and stores it."""
        return await postobject.post_object(self, call)

    async def _op_HeadObject(self, call: _Call) -> bytes | None:
        return await self._get_object(call, head=True)

    async def _op_GetObject(self, call: _Call) -> bytes | None:
        return await self._get_object(call, head=False)

    async def _readable_bucket(self, call: _Call) -> BucketInfo:
        """The bucket, once ``object:get`` on the routed key is allowed."""
        try:
            bucket: BucketInfo = await self._bucket(call, "object:get", call.route.key)
            return bucket
        except e.AccessDenied:
            # The object's own ACL may grant what the bucket does not (public-read objects);
            # a version's own, when one is named.
            return await self._access.authorized_object(
                call.principal,
                "object:get",
                acl.READ,
                call.route.bucket,
                call.route.key,
                client_ip=call.client_ip,
                conditions=call,
                version_id=self._version_id_param(call),
            )

    async def _get_object(self, call: _Call, *, head: bool) -> bytes | None:
        key = call.route.key
        try:
            # Inline rather than ``_readable_bucket``: one coroutine less on every GET and HEAD.
            bucket = await self._bucket(call, "object:get", key)
        except e.AccessDenied:
            bucket = await self._readable_bucket(call)
        customer = h.check_read_features(call.headers)
        lifecycle = None
        is_versioned = False
        if bucket.configs:
            lifecycle = bucket.config(BUCKET_CONFIG_LIFECYCLE)
            is_versioned = bucket.config(BUCKET_CONFIG_VERSIONING) is not None
        if "versionId" in call.route.params:
            return await self._get_version(call, lifecycle, customer, head=head)
        if head:
            # HEAD needs the record only: no file to open, no bytes to read.
            info = await self._storage.get_object_info(call.route.bucket, key)
            if info.attributes.encryption is not None or customer is not None:
                self._check_read_key(info.attributes, customer)
            if is_versioned:
                self._null_version_header(call, info)
            return await self._serve_object(call, _InfoOnly(info), head=True, lifecycle=lifecycle)
        opened = await self._storage.open_object(call.route.bucket, key)
        if is_versioned:
            self._null_version_header(call, opened.info)
        # Inline rather than ``_serve_opened``: one coroutine less on every GET.
        readable = opened
        try:
            if opened.info.attributes.encryption is not None or customer is not None:
                readable = self._plaintext(opened, customer)
            return await self._serve_object(call, readable, head=False, lifecycle=lifecycle)
        finally:
            readable.close()  # a decrypting reader closes the file once its last read is done

    async def _serve_opened(
        self, call: _Call, opened: Any, customer: Any, lifecycle: str | None
    ) -> bytes | None:
        """Serve an opened object's bytes, decrypted when it is encrypted."""
        readable = opened
        try:
            if opened.info.attributes.encryption is not None or customer is not None:
                readable = self._plaintext(opened, customer)
            return await self._serve_object(call, readable, head=False, lifecycle=lifecycle)
        finally:
            readable.close()  # a decrypting reader closes the file once its last read is done

    @staticmethod
    def _null_version_header(call: _Call, info: ObjectInfo) -> None:
        """Every answer for an object of a versioned bucket names its version: the record's
        stored headers carry a real version id, this adds "null"."""
        if info.version_id == NULL_VERSION:
            call.request.setHeader(b"x-amz-version-id", NULL_VERSION.encode())

    async def _get_version(
        self, call: _Call, lifecycle: str | None, customer: Any, *, head: bool
    ) -> bytes | None:
        """GET/HEAD ``?versionId=``: that version, current or not (never from the cache)."""
        version_id = self._version_id_param(call)
        assert version_id is not None
        try:
            if head:
                info = await self._storage.get_object_version(
                    call.route.bucket, call.route.key, version_id
                )
                if info.attributes.encryption is not None or customer is not None:
                    self._check_read_key(info.attributes, customer)
                call.request.setHeader(b"x-amz-version-id", version_id.encode())
                return await self._serve_object(
                    call, _InfoOnly(info), head=True, lifecycle=lifecycle
                )
            opened = await self._storage.open_object_version(
                call.route.bucket, call.route.key, version_id
            )
        except e.MethodNotAllowed as exc:
            exc.details["method"] = "HEAD" if head else "GET"
            raise
        call.request.setHeader(b"x-amz-version-id", version_id.encode())
        return await self._serve_opened(call, opened, customer, lifecycle)

    async def _op_GetObjectAttributes(self, call: _Call) -> bytes:
        await self._readable_bucket(call)
        customer = h.check_read_features(call.headers)
        wanted = h.parse_object_attributes(call.headers)
        max_parts, marker = h.parse_attribute_parts_paging(call.headers)
        version_id = self._version_id_param(call)
        info, part_checksums = await self._storage.get_object_part_checksums(
            call.route.bucket, call.route.key, version_id
        )
        if info.attributes.encryption is not None or customer is not None:
            self._check_read_key(info.attributes, customer)
        req = call.request
        if info.version_id != NULL_VERSION or version_id is not None:
            req.setHeader(b"x-amz-version-id", info.version_id.encode())
        # The conditional headers of GetObject/HeadObject, with the same outcomes.
        condition = h.evaluate_conditionals(call.headers, info.etag, info.updated_at)
        if condition is h.Condition.NOT_MODIFIED:
            req.setResponseCode(304)
            req.setHeader(b"ETag", h.quote_etag(info.etag).encode())
            req.setHeader(b"Last-Modified", h.format_http_date(info.updated_at).encode())
            return b""
        if condition is h.Condition.PRECONDITION_FAILED:
            raise e.PreconditionFailed(key=info.key)
        req.setHeader(b"Last-Modified", h.format_http_date(info.updated_at).encode())
        body = x.render_object_attributes(
            info, wanted, part_checksums, max_parts=max_parts, part_number_marker=marker
        )
        return self._xml(call, body)

    async def _serve_object(
        self, call: _Call, opened: Any, *, head: bool, lifecycle: str | None = None
    ) -> bytes | None:
        info: ObjectInfo = opened.info
        req = call.request
        condition = h.evaluate_conditionals(call.headers, info.etag, info.updated_at)
        if condition is h.Condition.NOT_MODIFIED:
            req.setResponseCode(304)
            req.setHeader(b"ETag", h.quote_etag(info.etag).encode())
            req.setHeader(b"Last-Modified", h.format_http_date(info.updated_at).encode())
            return b""
        if condition is h.Condition.PRECONDITION_FAILED:
            raise e.PreconditionFailed(key=info.key)
        byte_range: h.ByteRange | None = None
        part_number_text = call.route.params.get("partNumber")
        if part_number_text is not None:
            byte_range = self._part_range(info, part_number_text)
            req.setHeader(b"x-amz-mp-parts-count", str(max(1, len(info.part_sizes))).encode())
        elif "range" in call.headers and h.if_range_allows(
            call.headers.get("if-range"), info.etag, info.updated_at
        ):
            try:
                byte_range = h.parse_range(call.headers["range"], info.size)
            except e.InvalidRange:
                req.setHeader(b"Content-Range", h.unsatisfiable_content_range(info.size).encode())
                raise
        self._object_headers(call, info, with_checksums=byte_range is None)
        if info.attributes.encryption is not None:
            self._encryption_headers(call, info.attributes.encryption)
        if lifecycle is not None:
            self._expiration_header(call, lifecycle, info)
        if (
            byte_range is not None
            and (byte_range.start, byte_range.length) != (0, info.size)
            or (byte_range is not None and part_number_text is None)
        ):
            req.setResponseCode(206)
            req.setHeader(b"Content-Range", byte_range.content_range(info.size).encode())
        start, length = (byte_range.start, byte_range.length) if byte_range else (0, info.size)
        if not head:
            call.bytes_out = length
        req.responseHeaders.set_plain(b"Content-Length", str(length).encode())
        if head:
            return b""
        verify = byte_range is None and self._random.random() < self._settings.read_verify_rate
        prefetched: bytes | None = opened.prefetched
        if prefetched is not None:
            # A small object was read with its lookup: return its bytes like an XML reply, so
            # head and body go out in one write, without a producer. A short file (the record
            # says more) takes the producer below, which fails the read and cuts the connection.
            body = prefetched[start : start + length]
            if len(body) == length and (
                not verify or hashlib.sha256(prefetched).hexdigest() == info.sha256_hex
            ):
                # A read picked for verification (always the whole object) is checked here,
                # on the bytes already read; on a mismatch the verifying producer below reads
                # the file again, finds the same, quarantines the object and fails the read.
                return body
        try:
            sending = None
            send_file_body = getattr(req.channel, "send_file_body", None)
            if (
                send_file_body is not None
                and not verify
                and length >= SENDFILE_MIN_BYTES
                and opened.prefetched is None
                and info.attributes.encryption is None  # the file holds ciphertext
            ):
                # Large bodies go from the file to the socket without a Python copy.
                sending = send_file_body(req, opened, start, length)
            if sending is not None:
                await sending
            else:
                await opened.stream(req, start, length, verify=verify)
        except Exception:
            if not req.finished:
                req.transport.abortConnection()
            raise
        if not req.finished and not req._disconnected:
            req.finish()
        return _ALREADY_FINISHED

    def _part_range(self, info: ObjectInfo, text: str) -> h.ByteRange:
        try:
            number = int(text)
        except ValueError:
            number = 0
        if not 1 <= number <= 10000:
            raise e.InvalidArgument(
                "Part number must be an integer between 1 and 10000, inclusive",
                argument_name="partNumber",
                argument_value=text,
            )
        sizes = info.part_sizes or (info.size,)
        if number > len(sizes):
            raise e.InvalidRange(size=info.size)
        start = sum(sizes[: number - 1])
        return h.ByteRange(start, sizes[number - 1])

    async def _op_DeleteObject(self, call: _Call) -> bytes:
        bucket = await self._bucket(call, "object:delete", call.route.key)
        condition = h.parse_delete_condition(call.headers)
        version_id = self._version_id_param(call)
        outcome = await self._storage.delete_version(
            call.route.bucket,
            call.route.key,
            version_id=version_id,
            condition=condition,
            bypass_governance=self._bypasses_governance(call, bucket, call.route.key),
        )
        req = call.request
        if outcome.is_delete_marker:
            req.setHeader(b"x-amz-delete-marker", b"true")
        if outcome.version_id is not None:
            req.setHeader(b"x-amz-version-id", outcome.version_id.encode())
        return self._empty(call, 204)

    async def _read_checked_body(self, call: _Call, max_bytes: int) -> bytes:
        """A small request document, read whole (at most ``max_bytes``, else MalformedXML) and
        checked against the Content-MD5 and x-amz-checksum-* the client sent (BadDigest)."""
        content_md5 = call.headers.get("content-md5")
        given = h.parse_checksum_headers(call.headers)
        body = await call.request.body.read_all(max_bytes, too_large=e.MalformedXML)
        if content_md5 is not None:
            if h.parse_content_md5(content_md5) != hashlib.md5(body).digest():
                raise e.BadDigest()
        for algorithm, value in given.items():
            if checksums.checksum_of(algorithm, body) != value:
                raise e.BadDigest()
        return body

    async def _op_DeleteObjects(self, call: _Call) -> bytes:
        bucket = await self._bucket(call, "object:delete")
        body = await self._read_checked_body(call, MAX_DELETE_BODY)
        request = x.parse_delete(body)
        wants_bypass = lock_wire.is_true(call.headers.get(lock_wire.BYPASS_HEADER))
        deleted = []
        failures = []
        for item in request.objects:
            try:
                self._access.check(
                    call.principal,
                    "object:delete",
                    bucket,
                    item.key,
                    call.client_ip,
                    conditions=call,
                )
                version_id = (
                    None if item.version_id is None else names.validate_version_id(item.version_id)
                )
                outcome = await self._storage.delete_version(
                    call.route.bucket,
                    item.key,
                    version_id=version_id,
                    condition=item.condition,
                    bypass_governance=wants_bypass
                    and self._bypasses_governance(call, bucket, item.key),
                )
                deleted.append(
                    x.DeletedObject(
                        key=item.key,
                        version_id=item.version_id,
                        delete_marker_version_id=(
                            outcome.version_id if outcome.is_delete_marker else None
                        ),
                    )
                )
            except e.JayError as exc:
                status_and_code = lookup_error(exc)
                failures.append(
                    x.DeleteError(
                        key=item.key,
                        code=status_and_code[1] if status_and_code else "InternalError",
                        message=exc.message,
                        version_id=item.version_id,
                    )
                )
        return self._xml(call, x.render_delete_result(deleted, failures, is_quiet=request.is_quiet))

    async def _op_CopyObject(self, call: _Call) -> bytes:
        key = call.route.key
        names.validate_key(key)
        bucket = await self._bucket(call, "object:put", key)
        lock = bucket.config(BUCKET_CONFIG_OBJECT_LOCK) if bucket.configs else None
        requested = h.check_write_features(call.headers, is_lock_enabled=lock is not None)
        source_customer = h.copy_source_customer_key(call.headers)
        source = h.parse_copy_source(call.headers.get("x-amz-copy-source", ""))
        source_bucket = await self._access.authorized_object(
            call.principal,
            "object:get",
            acl.READ,
            source.bucket,
            source.key,
            client_ip=call.client_ip,
            conditions=call,
            version_id=source.version_id,
        )
        # A copy starts with the ACL its request asks for, not the source's (as on S3).
        acl_json = (
            await self._new_object_acl(call, call.headers, bucket)
            if self._needs_object_acl(call, call.headers, bucket)
            else None
        )
        directive = call.headers.get("x-amz-metadata-directive", "COPY").upper()
        if directive not in ("COPY", "REPLACE"):
            raise e.InvalidArgument(
                "Unknown metadata directive.", argument_name="x-amz-metadata-directive"
            )
        tagging_directive = call.headers.get("x-amz-tagging-directive", "COPY").upper()
        if tagging_directive not in ("COPY", "REPLACE"):
            raise e.InvalidArgument(
                "Unknown tagging directive.", argument_name="x-amz-tagging-directive"
            )
        # REPLACE: the request's x-amz-tagging (none: no tags); COPY: the source's, below.
        tags = self._header_tags(call, bucket, key) if tagging_directive == "REPLACE" else {}
        opened = await self._open_copy_source(source)
        readable = opened
        try:
            info = opened.info
            cond = h.evaluate_copy_source_conditionals(call.headers, info.etag, info.updated_at)
            if cond is not h.Condition.PROCEED:
                raise e.PreconditionFailed()
            if info.attributes.encryption is not None or source_customer is not None:
                readable = self._plaintext(opened, source_customer)
            if directive == "COPY":
                # A copy onto itself that asks for encryption changes the object (S3 allows it).
                if source.bucket == call.route.bucket and source.key == key and requested is None:
                    raise e.InvalidRequest(
                        "This copy request is illegal because it is trying to copy an object to "
                        "itself without changing the object's metadata, storage class, website "
                        "redirect location or encryption attributes."
                    )
                attributes = info.attributes
            else:
                attributes = self._attributes(call.headers)
            if tagging_directive == "COPY" and info.attributes.tags:
                # Copying tags reads the source's and writes the copy's, as S3 authorizes it.
                tags = dict(info.attributes.tags)
                self._access.check(
                    call.principal,
                    "object:get-tagging",
                    source_bucket,
                    source.key,
                    call.client_ip,
                    conditions=call,
                )
                self._access.check(
                    call.principal,
                    "object:put-tagging",
                    bucket,
                    key,
                    call.client_ip,
                    conditions=call,
                )
            if attributes.tags != tags:
                attributes = dataclasses.replace(attributes, tags=tags)
            # The copy is encrypted as its request (or its bucket's default) asks, never
            # because the source was: each object has its own data key.
            sealing = self._sealing(requested, bucket)
            encryption = sealing.record.to_json() if sealing is not None else None
            if attributes.encryption != encryption:
                attributes = dataclasses.replace(attributes, encryption=encryption)
            # A copy never inherits its source's lock: it gets what its request asks for, or
            # the destination bucket's default retention (as on S3).
            attributes = ol.without_lock(attributes)
            if lock is not None:
                attributes = self._requested_lock(call, bucket, attributes, lock, is_put=False)
            _, algorithms = self._wanted_checksums(call)
            algorithms = sorted(set(algorithms) | set(info.checksums))
            staged = await self._storage.stage_copy(
                readable, checksum_algorithms=algorithms, sealing=sealing
            )
        finally:
            readable.close()
        new = await self._storage.put_object(
            call.route.bucket,
            key,
            staged,
            attributes,
            condition=h.parse_write_condition(call.headers),
            acl_json=acl_json,
            etag=self._etag_for(sealing, staged),
        )
        self._encryption_headers(call, new.attributes.encryption, with_context=True)
        if bucket.configs:
            self._expiration_of_new(call, bucket, new)
        self._version_header(call, new)
        if source.version_id is not None or info.version_id != NULL_VERSION:
            call.request.setHeader(b"x-amz-copy-source-version-id", info.version_id.encode())
        stored = {a: v for a, v in new.checksums.items() if a in info.checksums}
        return self._xml(
            call, x.render_copy_object_result(new.etag, new.updated_at, checksums=stored)
        )

    async def _open_copy_source(self, source: h.CopySource) -> Any:
        """The copy source's current version, or the version its ``?versionId=`` names."""
        if source.version_id is not None:
            return await self._storage.open_object_version(
                source.bucket, source.key, source.version_id
            )
        return await self._storage.open_object(source.bucket, source.key)

    # --- Object Lock ---------------------------------------------------------------------------
    def _bypasses_governance(self, call: _Call, bucket: BucketInfo, key: str) -> bool:
        """``x-amz-bypass-governance-retention: true`` from a caller allowed to bypass
        (s3:BypassGovernanceRetention: the owner's token scope, or a policy that grants it; a
        policy's deny wins). Without the permission the header changes nothing, so a
        GOVERNANCE retention still protects the version (AccessDenied)."""
        if not lock_wire.is_true(call.headers.get(lock_wire.BYPASS_HEADER)):
            return False
        try:
            self._access.check(
                call.principal,
                "object:bypass-governance-retention",
                bucket,
                key,
                call.client_ip,
                conditions=call,
            )
        except e.AccessDenied:
            return False
        return True

    @staticmethod
    def _lock_of(bucket: BucketInfo) -> ol.LockConfiguration:
        """The bucket's Object Lock configuration; InvalidRequest without one (S3's answer to
        retention and legal-hold requests there)."""
        stored = bucket.config(BUCKET_CONFIG_OBJECT_LOCK) if bucket.configs else None
        if stored is None:
            raise e.InvalidRequest(ol.NOT_ENABLED_MESSAGE, bucket=bucket.name)
        return ol.decode_configuration(stored)

    async def _lock_body(self, call: _Call) -> bytes:
        """The document of a lock PUT: S3 requires Content-MD5 or an x-amz-checksum-*."""
        lock_wire.require_integrity_header(
            call.headers, "Missing required header for this request: Content-MD5"
        )
        return await self._read_checked_body(call, lock_wire.MAX_LOCK_BODY)

    async def _op_GetObjectLockConfiguration(self, call: _Call) -> bytes:
        bucket = await self._bucket(call, "bucket:get-object-lock")
        stored = bucket.config(BUCKET_CONFIG_OBJECT_LOCK) if bucket.configs else None
        if stored is None:
            raise e.ObjectLockConfigurationNotFound(bucket=call.route.bucket)
        return self._xml(call, lock_wire.render_configuration(ol.decode_configuration(stored)))

    async def _op_PutObjectLockConfiguration(self, call: _Call) -> bytes:
        """Enable Object Lock (on a bucket with versioning Enabled: S3 allows it on existing
        buckets since 2023) and set or clear the default retention. It cannot be turned off;
        the storage refuses it without versioning Enabled (InvalidBucketState)."""
        await self._owner_only(call, "bucket:put-object-lock")
        config = lock_wire.parse_configuration(await self._lock_body(call))
        await self._storage.set_bucket_config(
            call.route.bucket, BUCKET_CONFIG_OBJECT_LOCK, ol.encode_configuration(config)
        )
        return self._empty(call)

    async def _locked_version(self, call: _Call, action: str) -> ObjectInfo:
        bucket = await self._bucket(call, action, call.route.key)
        self._lock_of(bucket)
        version_id = self._version_id_param(call)
        if version_id is None:
            info: ObjectInfo = await self._storage.get_object_info(
                call.route.bucket, call.route.key
            )
        else:
            info = await self._storage.get_object_version(
                call.route.bucket, call.route.key, version_id
            )
        return info

    async def _op_GetObjectRetention(self, call: _Call) -> bytes:
        info = await self._locked_version(call, "object:get-retention")
        if info.attributes.lock_mode is None or info.attributes.lock_until is None:
            raise e.NoSuchObjectLockConfiguration(bucket=call.route.bucket, key=call.route.key)
        return self._xml(call, lock_wire.render_retention(info.attributes))

    async def _op_GetObjectLegalHold(self, call: _Call) -> bytes:
        info = await self._locked_version(call, "object:get-legal-hold")
        if info.attributes.legal_hold is None:
            raise e.NoSuchObjectLockConfiguration(bucket=call.route.bucket, key=call.route.key)
        return self._xml(call, lock_wire.render_legal_hold(info.attributes.legal_hold))

    async def _op_PutObjectRetention(self, call: _Call) -> bytes:
        bucket = await self._bucket(call, "object:put-retention", call.route.key)
        self._lock_of(bucket)
        mode, until = lock_wire.parse_retention(await self._lock_body(call))
        if until is not None and until <= self._clock.seconds():
            raise e.InvalidArgument("The retain until date must be in the future!")
        info = await self._storage.set_object_lock(
            call.route.bucket,
            call.route.key,
            self._version_id_param(call),
            retention=(mode, until),
            bypass_governance=self._bypasses_governance(call, bucket, call.route.key),
        )
        self._version_header(call, info)
        return self._empty(call)

    async def _op_PutObjectLegalHold(self, call: _Call) -> bytes:
        bucket = await self._bucket(call, "object:put-legal-hold", call.route.key)
        self._lock_of(bucket)
        status = lock_wire.parse_legal_hold(await self._lock_body(call))
        info = await self._storage.set_object_lock(
            call.route.bucket, call.route.key, self._version_id_param(call), legal_hold=status
        )
        self._version_header(call, info)
        return self._empty(call)

    # --- tagging -------------------------------------------------------------------------------
    def _header_tags(self, call: _Call, bucket: BucketInfo, key: str) -> dict[str, str]:
        """The tags a write's ``x-amz-tagging`` asks for. Setting tags needs the right to tag
        the object besides the right to write it (S3 checks s3:PutObjectTagging too)."""
        text = call.headers.get("x-amz-tagging")
        if not text:
            return {}
        tags = tagging.parse_tagging_header(text)
        if tags:
            self._access.check(
                call.principal, "object:put-tagging", bucket, key, call.client_ip, conditions=call
            )
        return tags

    async def _tagging_body(self, call: _Call, *, for_bucket: bool) -> dict[str, str]:
        """The tag set of a Put*Tagging body, its Content-MD5 and x-amz-checksum-* checked."""
        body = await self._read_checked_body(call, tagging.MAX_TAGGING_BODY)
        return tagging.parse_tagging(body, for_bucket=for_bucket)

    async def _op_GetObjectTagging(self, call: _Call) -> bytes:
        await self._bucket(call, "object:get-tagging", call.route.key)
        version_id = self._version_id_param(call)
        if version_id is None:
            info = await self._storage.get_object_info(call.route.bucket, call.route.key)
        else:
            info = await self._storage.get_object_version(
                call.route.bucket, call.route.key, version_id
            )
        if info.version_id != NULL_VERSION or version_id is not None:
            call.request.setHeader(b"x-amz-version-id", info.version_id.encode())
        return self._xml(call, tagging.render_tagging(info.attributes.tags))

    async def _op_PutObjectTagging(self, call: _Call) -> bytes:
        # The body first: a policy may read its tags (s3:RequestObjectTag/<key>). It is small
        # (the checked small-body reader's limit) and nothing is stored before authorization.
        tags = await self._tagging_body(call, for_bucket=False)
        call.body_tags = tags
        await self._bucket(call, "object:put-tagging", call.route.key)
        info = await self._storage.set_object_tags(
            call.route.bucket, call.route.key, tags, self._version_id_param(call)
        )
        if info.version_id != NULL_VERSION or "versionId" in call.route.params:
            call.request.setHeader(b"x-amz-version-id", info.version_id.encode())
        return self._empty(call)

    async def _op_DeleteObjectTagging(self, call: _Call) -> bytes:
        await self._bucket(call, "object:delete-tagging", call.route.key)
        info = await self._storage.set_object_tags(
            call.route.bucket, call.route.key, {}, self._version_id_param(call)
        )
        if info.version_id != NULL_VERSION or "versionId" in call.route.params:
            call.request.setHeader(b"x-amz-version-id", info.version_id.encode())
        return self._empty(call, 204)

    async def _op_GetBucketTagging(self, call: _Call) -> bytes:
        bucket = await self._bucket(call, "bucket:get-tagging")
        stored = _required_config(bucket, BUCKET_CONFIG_TAGGING, e.NoSuchTagSet)
        return self._xml(call, tagging.render_tagging(tagging.decode_bucket_tags(stored)))

    async def _op_PutBucketTagging(self, call: _Call) -> bytes:
        await self._bucket(call, "bucket:put-tagging")
        tags = await self._tagging_body(call, for_bucket=True)
        # An empty TagSet leaves the bucket without tags (GetBucketTagging: NoSuchTagSet).
        stored = tagging.encode_bucket_tags(tags) if tags else None
        await self._storage.set_bucket_config(call.route.bucket, BUCKET_CONFIG_TAGGING, stored)
        return self._empty(call, 204)

    async def _op_DeleteBucketTagging(self, call: _Call) -> bytes:
        await self._bucket(call, "bucket:put-tagging")  # S3 checks s3:PutBucketTagging for it
        await self._storage.set_bucket_config(call.route.bucket, BUCKET_CONFIG_TAGGING, None)
        return self._empty(call, 204)

    # --- multipart -----------------------------------------------------------------------------
    async def _op_CreateMultipartUpload(self, call: _Call) -> bytes:
        key = call.route.key
        names.validate_key(key)
        bucket = await self._bucket(call, "multipart:create", key)
        if call.principal.is_anonymous:
            raise e.AccessDenied("Authentication required")
        lock = bucket.config(BUCKET_CONFIG_OBJECT_LOCK) if bucket.configs else None
        requested = h.check_write_features(call.headers, is_lock_enabled=lock is not None)
        acl_json = (
            await self._new_object_acl(call, call.headers, bucket)
            if self._needs_object_acl(call, call.headers, bucket)
            else None
        )
        # Kept with the upload and given to the object at CompleteMultipartUpload.
        tags = self._header_tags(call, bucket, key)
        algorithm = call.headers.get("x-amz-checksum-algorithm", "").upper()
        if algorithm and algorithm not in checksums.ALGORITHMS:
            raise e.InvalidRequest("Checksum algorithm provided is unsupported.")
        checksum_type = call.headers.get("x-amz-checksum-type", "").upper()
        if checksum_type not in ("", "COMPOSITE", "FULL_OBJECT"):
            raise e.InvalidRequest("Value for x-amz-checksum-type header is invalid.")
        if algorithm and not checksum_type:
            checksum_type = "FULL_OBJECT" if algorithm == "CRC64NVME" else "COMPOSITE"
        attributes = self._attributes(call.headers, tags)
        # The upload keeps the record (never a key); every part is encrypted under it.
        sealing = self._sealing(requested, bucket)
        if sealing is not None:
            attributes = dataclasses.replace(attributes, encryption=sealing.record.to_json())
            self._encryption_headers(call, attributes.encryption, with_context=True)
        if lock is not None:
            # Kept with the upload; the default retention applies at completion.
            attributes = self._requested_lock(call, bucket, attributes, lock, is_put=False)
        upload = await self._storage.create_multipart_upload(
            call.route.bucket,
            key,
            attributes,
            call.principal.account_id,
            checksum_algorithm=algorithm,
            checksum_type=checksum_type,
            acl_json=acl_json,
        )
        if algorithm:
            call.request.setHeader(b"x-amz-checksum-algorithm", algorithm.encode())
            call.request.setHeader(b"x-amz-checksum-type", checksum_type.encode())
        body = x.render_initiate_multipart_upload(
            call.route.bucket,
            key,
            upload.upload_id,
            checksum_algorithm=algorithm,
            checksum_type=checksum_type,
        )
        return self._xml(call, body)

    async def _upload(self, call: _Call, action: str) -> Any:
        return (await self._upload_in_bucket(call, action))[1]

    async def _upload_in_bucket(self, call: _Call, action: str) -> tuple[BucketInfo, Any]:
        bucket = await self._bucket(call, action, call.route.key)
        upload_id = call.route.params.get("uploadId", "")
        upload = await self._storage.get_multipart_upload(
            call.route.bucket, call.route.key, upload_id
        )
        if upload.initiated_by != call.principal.account_id:
            raise e.AccessDenied()
        return bucket, upload

    def _part_number(self, call: _Call) -> int:
        text = call.route.params.get("partNumber", "")
        try:
            number = int(text)
        except ValueError:
            number = 0
        if not 1 <= number <= 10000:
            raise e.InvalidArgument(
                "Part number must be an integer between 1 and 10000, inclusive",
                argument_name="partNumber",
                argument_value=text,
            )
        return number

    async def _store_part(
        self, call: _Call, upload: Any, number: int, staged: StagedBlob, sealing: Sealing | None
    ) -> Any:
        """Record a staged part (UploadPart, UploadPartCopy) and answer its encryption."""
        part = await self._storage.upload_part(
            call.route.bucket,
            call.route.key,
            upload.upload_id,
            number,
            staged,
            etag=self._etag_for(sealing, staged),
        )
        self._encryption_headers(call, upload.attributes.encryption)
        return part

    async def _op_UploadPart(self, call: _Call) -> bytes:
        number = self._part_number(call)
        bucket, upload = await self._upload_in_bucket(call, "multipart:upload-part")
        requested = h.check_write_features(call.headers)
        sealing = None
        if upload.attributes.encryption is not None or requested is not None:
            sealing = self._upload_sealing(upload, requested.customer if requested else None)
        lock = bucket.config(BUCKET_CONFIG_OBJECT_LOCK) if bucket.configs else None
        if lock is not None and (
            ol.has_lock(upload.attributes) or ol.decode_configuration(lock).has_default_retention
        ):
            # As S3 answers a part of an upload that will be locked without an integrity check.
            lock_wire.require_integrity_header(call.headers, lock_wire.PART_CHECKSUM_MESSAGE)
        staged = await self._receive_body(
            call,
            max_size=self._settings.max_object_size,
            extra_checksum=upload.checksum_algorithm,
            sealing=sealing,
            part_number=number,
        )
        part = await self._store_part(call, upload, number, staged, sealing)
        call.request.setHeader(b"ETag", h.quote_etag(part.etag).encode())
        for algorithm, value in part.checksums.items():
            call.request.setHeader(f"x-amz-checksum-{algorithm.lower()}".encode(), value.encode())
        return self._empty(call)

    async def _op_UploadPartCopy(self, call: _Call) -> bytes:
        number = self._part_number(call)
        upload = await self._upload(call, "multipart:upload-part")
        requested = h.check_write_features(call.headers)
        source_customer = h.copy_source_customer_key(call.headers)
        sealing = None
        if upload.attributes.encryption is not None or requested is not None:
            sealing = self._upload_sealing(upload, requested.customer if requested else None)
        source = h.parse_copy_source(call.headers.get("x-amz-copy-source", ""))
        await self._access.authorized_bucket(
            call.principal,
            "object:get",
            source.bucket,
            source.key,
            client_ip=call.client_ip,
            conditions=call,
        )
        opened = await self._open_copy_source(source)
        readable = opened
        try:
            info = opened.info
            cond = h.evaluate_copy_source_conditionals(call.headers, info.etag, info.updated_at)
            if cond is not h.Condition.PROCEED:
                raise e.PreconditionFailed()
            if source.version_id is not None:
                call.request.setHeader(b"x-amz-copy-source-version-id", info.version_id.encode())
            if info.attributes.encryption is not None or source_customer is not None:
                readable = self._plaintext(opened, source_customer)
            range_text = call.headers.get("x-amz-copy-source-range")
            if range_text:
                byte_range = h.parse_copy_source_range(range_text, info.size)
                start, length = byte_range.start, byte_range.length
            else:
                start, length = 0, info.size
            algorithms = [upload.checksum_algorithm] if upload.checksum_algorithm else []
            staged = await self._storage.stage_copy(
                readable,
                start,
                length,
                checksum_algorithms=algorithms,
                sealing=sealing,
                part_number=number,
            )
        finally:
            readable.close()
        part = await self._store_part(call, upload, number, staged, sealing)
        return self._xml(
            call, x.render_copy_part_result(part.etag, part.created_at, checksums=part.checksums)
        )

    async def _op_CompleteMultipartUpload(self, call: _Call) -> bytes:
        try:
            upload = await self._upload(call, "multipart:complete")
        except e.NoSuchUpload:
            return await self._completed_again(call)
        expected_checksums, expected_type = h.parse_complete_checksum_headers(call.headers)
        # SSE-C headers are optional here: S3 needs them only to compute a FULL_OBJECT checksum.
        customer = h.check_read_features(call.headers)
        if customer is not None:
            self._upload_sealing(upload, customer)
        body = await call.request.body.read_all(MAX_COMPLETE_BODY, too_large=e.MalformedXML)
        requested = x.parse_complete_multipart_upload(body)
        algorithm = upload.checksum_algorithm
        # S3 wants each part's checksum listed for an upload created with an algorithm. The
        # values are not compared: the parts' own checksums were verified on upload, and what
        # the object's checksum is made of are those (clients such as s3-tests list one part's
        # checksum for every part, which Ceph accepts too).
        if algorithm:
            for p in requested:
                if not p.checksums.get(algorithm):
                    raise e.InvalidRequest(
                        f"The upload was created using a {algorithm.lower()} checksum. The "
                        "complete request must include the checksum for each part. It was "
                        f"missing for part {p.part_number} in the request."
                    )
        info = await self._storage.complete_multipart_upload(
            call.route.bucket,
            call.route.key,
            upload.upload_id,
            [CompletedPart(part_number=p.part_number, etag=p.etag) for p in requested],
            min_part_size=self._settings.min_part_size,
            condition=h.parse_write_condition(call.headers),
            expected_checksums=expected_checksums,
            expected_checksum_type=expected_type,
            customer=customer,
        )
        self._encryption_headers(call, info.attributes.encryption)
        bucket = await self._storage.get_bucket(call.route.bucket)
        if bucket.configs:
            self._expiration_of_new(call, bucket, info)
        self._version_header(call, info)
        body = x.render_complete_multipart_upload(
            call.route.bucket,
            call.route.key,
            info.etag,
            checksums=info.checksums,
            checksum_type=info.checksum_type,
        )
        return self._xml(call, body)

    async def _completed_again(self, call: _Call) -> bytes:
        """A Complete for an upload that is no longer open: when the caller's own upload was
        completed recently and its object is still current, the client is retrying a Complete
        whose answer it lost, and S3 answers it again (200, the same ETag) rather than
        ``NoSuchUpload``. Anything else stays ``NoSuchUpload``."""
        upload_id = call.route.params.get("uploadId", "")
        account = call.principal.account_id if call.principal is not None else ""
        info = None
        if account:  # anonymous callers never initiated an upload: no lookup
            info = await self._storage.completed_multipart_upload(
                call.route.bucket, call.route.key, upload_id, account
            )
        if info is None:
            raise e.NoSuchUpload(key=call.route.key, resource=upload_id)
        body = await call.request.body.read_all(MAX_COMPLETE_BODY, too_large=e.MalformedXML)
        x.parse_complete_multipart_upload(body)  # still a well-formed request
        self._encryption_headers(call, info.attributes.encryption)
        return self._xml(
            call,
            x.render_complete_multipart_upload(
                call.route.bucket,
                call.route.key,
                info.etag,
                checksums=info.checksums,
                checksum_type=info.checksum_type,
            ),
        )

    async def _op_AbortMultipartUpload(self, call: _Call) -> bytes:
        upload = await self._upload(call, "multipart:abort")
        await self._storage.abort_multipart_upload(
            call.route.bucket, call.route.key, upload.upload_id
        )
        return self._empty(call, 204)

    async def _op_ListParts(self, call: _Call) -> bytes:
        upload = await self._upload(call, "multipart:upload-part")
        params = call.route.params
        marker = _int_param(params, "part-number-marker", 0, low=0, high=10000)
        max_parts = _int_param(params, "max-parts", 1000, low=0, high=1000)
        page = await self._storage.list_parts(
            call.route.bucket,
            call.route.key,
            upload.upload_id,
            part_number_marker=marker,
            max_parts=max_parts,
        )
        return self._xml(
            call, x.render_list_parts(page, part_number_marker=marker, max_parts=max_parts)
        )


class S3Resource(Resource):
    """Serves every request with ``S3Api.handle``, as the Klein branch route on "/" does.

    The S3 front end routes on the raw URI itself (``jay.s3.routing``), so Klein's werkzeug
    match of the one catch-all route only costs time: per request it bound a URL map, decoded
    host and path, matched, and wrapped the handler in two more Deferreds (about 12% of a
    1 KiB GET's reactor CPU in a profile). This leaf resource keeps Klein's contract for
    ``handle``: the Deferred is cancelled when the client goes away, returned bytes are written,
    and the request is finished unless the handler finished it (or the connection is gone).
    """

    isLeaf = True

    def __init__(self, api: S3Api) -> None:
        super().__init__()
        self._api = api

    def render(self, request: Any) -> Any:
        try:
            handled = self._api.handle_now(request)
        except BaseException:
            request.processingFailed(Failure())
            return NOT_DONE_YET
        if not isinstance(handled, Deferred):
            # Answered at once (see S3Api.handle_now): write and finish as _RenderState would.
            if not request.finished:
                _write_and_finish(request, handled)
            return NOT_DONE_YET
        d = handled
        state = _RenderState(request, d)
        if not d.called:
            # Only a handler still running can be cancelled; one that already answered (a GET
            # served by inline storage) needs no notification Deferred.
            request.notifyFinish().addBoth(state.finished)
        d.addCallbacks(state.write, state.failed)
        return NOT_DONE_YET


class _Continued:
    """Awaitable that continues a coroutine already run up to its first wait, on ``waiting``.

    ``Deferred.fromCoroutine(_continue(...))`` then drives it as it would have driven the
    coroutine from the start: each result or failure of what it waits on is passed in
    (``send``/``throw``), and cancelling cancels that Deferred, so the coroutine sees the
    CancelledError at its ``await``. Awaiting the coroutine object itself is not possible:
    Python refuses to await a coroutine suspended in an ``await`` of its own.
    """

    __slots__ = ("_coroutine", "_waiting")

    def __init__(self, coroutine: Coroutine[Any, Any, Any], waiting: Any) -> None:
        self._coroutine = coroutine
        self._waiting = waiting

    def __await__(self) -> Generator[Any, Any, Any]:
        coroutine, waiting = self._coroutine, self._waiting
        while True:
            try:
                sent = yield waiting
            except BaseException as exc:  # noqa: BLE001 - handed on to the coroutine
                try:
                    waiting = coroutine.throw(exc)
                except StopIteration as done:
                    return done.value
            else:
                try:
                    waiting = coroutine.send(sent)
                except StopIteration as done:
                    return done.value


async def _continue(coroutine: Coroutine[Any, Any, Any], waiting: Any) -> Any:
    return await _Continued(coroutine, waiting)


def _write_and_finish(request: Any, body: bytes | None) -> None:
    """Write the handler's body and finish: in one step on a ``StreamingRequest``."""
    respond_now = getattr(request, "respond_now", None)
    if respond_now is not None:
        respond_now(body or b"")
        return
    if body:
        request.write(body)
    request.finish()


class _RenderState:
    __slots__ = ("_request", "_handled", "_is_finished")

    def __init__(self, request: Any, handled: Deferred[bytes | None]) -> None:
        self._request = request
        self._handled = handled
        self._is_finished = False

    def finished(self, result: Any) -> None:
        self._is_finished = True
        if isinstance(result, Failure):
            # The client went away: cancel the handler (every handler is safe to cancel).
            self._handled.cancel()

    def write(self, body: bytes | None) -> None:
        if self._is_finished or self._request.finished:
            # The handler finished the request itself (it streamed the body): finishing again
            # would only make twisted warn "request.finish called twice".
            return
        _write_and_finish(self._request, body)

    def failed(self, failure: Failure) -> None:
        if self._is_finished:
            if not failure.check(CancelledError):
                log.failure("Unhandled error after the response finished", failure)
            return
        self._request.processingFailed(failure)


# Rejections counted as auth_failures (JAY_SPEC §3.12, on every port).
_AUTH_FAILURES = (
    e.AccessDenied,
    e.InvalidAccessKeyId,
    e.SignatureDoesNotMatch,
    e.RequestTimeTooSkewed,
    e.AuthorizationHeaderMalformed,
    e.AuthorizationQueryParametersError,
    e.ExpiredToken,
)

# S3Resource (like Klein) writes a handler's bytes and then finishes the request unless it
# already finished; after streaming a body ourselves we return None so nothing more is written.
_ALREADY_FINISHED = None
