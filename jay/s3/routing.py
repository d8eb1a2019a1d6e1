"""(method, host, raw URI, headers) → S3 operation, bucket, key. Pure: no Twisted objects.

Works from the *raw* request URI: the path and the query are split before anything is decoded,
so ``%2F`` in a key stays a ``/`` inside the key, ``//`` is preserved and ``+`` in a path is a
literal plus (JAY_SPEC §2.2). Sub-resources are routed explicitly; any we do not implement
answers ``NotImplemented`` so it can never fall through to a data operation (JAY_SPEC §8.2 item 4:
upstream overwrote objects on ``PUT ?tagging`` and deleted buckets on ``DELETE ?cors``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from jay.errors import (
    BadRequest,
    InvalidBucketName,
    InvalidRequest,
    InvalidURI,
    JayError,
    MethodNotAllowed,
    NotImplementedOperation,
)

# Operations that are not operations: the front end answers them with the matching error.
NOT_IMPLEMENTED = "NotImplemented"
METHOD_NOT_ALLOWED = "MethodNotAllowed"
INVALID_REQUEST = "InvalidRequest"
INVALID_URI = "InvalidURI"
INVALID_BUCKET_NAME = "InvalidBucketName"

BAD_REQUEST = "BadRequest"
# An OPTIONS request with Origin and Access-Control-Request-Method: never authenticated.
CORS_PREFLIGHT = "CorsPreflight"
ERROR_OPERATIONS = frozenset(
    {
        NOT_IMPLEMENTED,
        METHOD_NOT_ALLOWED,
        INVALID_REQUEST,
        INVALID_URI,
        INVALID_BUCKET_NAME,
        BAD_REQUEST,
    }
)

# Every query parameter that names a sub-resource of a bucket or an object in the S3 API model.
# Parameters outside this set (prefix, max-keys, partNumber, response-*, x-id, X-Amz-*, …) are
# arguments and never change the operation.
SUBRESOURCES = frozenset(
    {
        "abac",
        "accelerate",
        "acl",
        "analytics",
        "annotation",
        "attributes",
        "cors",
        "defaultObjectAcl",
        "delete",
        "encryption",
        "intelligent-tiering",
        "inventory",
        "legal-hold",
        "lifecycle",
        "location",
        "logging",
        "metadataAnnotationTable",
        "metadataConfiguration",
        "metadataInventoryTable",
        "metadataJournalTable",
        "metadataTable",
        "metrics",
        "notification",
        "object-lock",
        "ownershipControls",
        "policy",
        "policyStatus",
        "publicAccessBlock",
        "renameObject",
        "replication",
        "requestPayment",
        "restore",
        "retention",
        "select",
        "session",
        "tagging",
        "torrent",
        "uploads",
        "versioning",
        "versions",
        "website",
    }
)

# (method, sub-resource or None) → operation, for a bucket (no key).
_BUCKET_OPERATIONS: Mapping[tuple[str, str | None], str] = {
    ("GET", None): "ListObjects",  # ListObjectsV2 when list-type=2, see route()
    ("GET", "location"): "GetBucketLocation",
    ("GET", "versioning"): "GetBucketVersioning",
    ("PUT", "versioning"): "PutBucketVersioning",
    ("GET", "versions"): "ListObjectVersions",
    ("GET", "uploads"): "ListMultipartUploads",
    ("GET", "policy"): "GetBucketPolicy",
    ("GET", "acl"): "GetBucketAcl",
    ("PUT", "acl"): "PutBucketAcl",
    ("GET", "cors"): "GetBucketCors",
    ("GET", "lifecycle"): "GetBucketLifecycleConfiguration",
    ("PUT", None): "CreateBucket",
    ("PUT", "cors"): "PutBucketCors",
    ("PUT", "policy"): "PutBucketPolicy",
    ("PUT", "lifecycle"): "PutBucketLifecycleConfiguration",
    ("DELETE", None): "DeleteBucket",
    ("DELETE", "policy"): "DeleteBucketPolicy",
    ("DELETE", "cors"): "DeleteBucketCors",
    ("GET", "tagging"): "GetBucketTagging",
    ("PUT", "tagging"): "PutBucketTagging",
    ("DELETE", "tagging"): "DeleteBucketTagging",
    ("DELETE", "lifecycle"): "DeleteBucketLifecycle",
    ("GET", "publicAccessBlock"): "GetPublicAccessBlock",
    ("PUT", "publicAccessBlock"): "PutPublicAccessBlock",
    ("DELETE", "publicAccessBlock"): "DeletePublicAccessBlock",
    ("GET", "policyStatus"): "GetBucketPolicyStatus",
    ("GET", "encryption"): "GetBucketEncryption",
    ("PUT", "encryption"): "PutBucketEncryption",
    ("DELETE", "encryption"): "DeleteBucketEncryption",
    ("GET", "ownershipControls"): "GetBucketOwnershipControls",
    # Features jay does not offer, read as S3 reads a bucket that never had them configured
    # (their PUTs stay 501): tools that inspect a bucket (Terraform, s3cmd info) ask for these.
    ("GET", "website"): "GetBucketWebsite",
    ("GET", "replication"): "GetBucketReplication",
    ("GET", "notification"): "GetBucketNotificationConfiguration",
    ("GET", "logging"): "GetBucketLogging",
    ("GET", "accelerate"): "GetBucketAccelerateConfiguration",
    ("GET", "requestPayment"): "GetBucketRequestPayment",
    ("GET", "object-lock"): "GetObjectLockConfiguration",
    ("PUT", "object-lock"): "PutObjectLockConfiguration",
    ("PUT", "ownershipControls"): "PutBucketOwnershipControls",
    ("DELETE", "ownershipControls"): "DeleteBucketOwnershipControls",
    ("HEAD", None): "HeadBucket",
    ("POST", "delete"): "DeleteObjects",
    # A browser form upload (POST Object); the handler answers a body that is not
    # multipart/form-data with S3's 412.
    ("POST", None): "PostObject",
}

# (method, sub-resource or None) → operation, for an object; uploadId is handled before this.
_OBJECT_OPERATIONS: Mapping[tuple[str, str | None], str] = {
    ("GET", None): "GetObject",
    ("GET", "acl"): "GetObjectAcl",
    ("PUT", "acl"): "PutObjectAcl",
    ("GET", "attributes"): "GetObjectAttributes",
    ("HEAD", None): "HeadObject",
    ("PUT", None): "PutObject",  # CopyObject with x-amz-copy-source, see route()
    ("DELETE", None): "DeleteObject",
    ("POST", "uploads"): "CreateMultipartUpload",
    ("GET", "tagging"): "GetObjectTagging",
    ("PUT", "tagging"): "PutObjectTagging",
    ("DELETE", "tagging"): "DeleteObjectTagging",
    ("GET", "retention"): "GetObjectRetention",
    ("PUT", "retention"): "PutObjectRetention",
    ("GET", "legal-hold"): "GetObjectLegalHold",
    ("PUT", "legal-hold"): "PutObjectLegalHold",
}

# Methods S3 knows at all; anything else is 405 rather than 501.
_KNOWN_METHODS = frozenset({"GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS"})

_HEX = frozenset(b"0123456789abcdefABCDEF")
# The params of every request without a query string (most object requests): one shared,
# read-only mapping.
_NO_PARAMS: Mapping[str, str] = MappingProxyType({})


# Not frozen (nothing changes one): a frozen dataclass sets each field through
# object.__setattr__, about three times the cost, and one of these is built per request.
@dataclass(slots=True, kw_only=True)
class Route:
    """Where a request goes. ``query`` keeps every pair in order; ``params`` the first values."""

    operation: str
    bucket: str = ""
    key: str = ""
    query: tuple[tuple[str, str], ...] = ()
    params: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    # The decoded request path ("/bucket/key" even for virtual-host requests), for Resource.
    resource: str = "/"
    is_virtual_host: bool = False
    # Why an error operation was chosen; safe to show to a client.
    reason: str = ""

    @property
    def is_error(self) -> bool:
        return self.operation in ERROR_OPERATIONS

    def error(self) -> JayError:
        """The domain exception an error route stands for (call only when ``is_error``)."""
        kind: type[JayError] = {
            NOT_IMPLEMENTED: NotImplementedOperation,
            METHOD_NOT_ALLOWED: MethodNotAllowed,
            INVALID_REQUEST: InvalidRequest,
            INVALID_URI: InvalidURI,
            INVALID_BUCKET_NAME: InvalidBucketName,
            BAD_REQUEST: BadRequest,
        }[self.operation]
        return kind(self.reason or None, bucket=self.bucket, key=self.key, resource=self.resource)


class _BadEncoding(ValueError):
    pass


def percent_decode(text: str, *, plus_is_space: bool = False) -> str:
    """Strict percent-decoding to UTF-8 text. ``+`` is literal unless ``plus_is_space``.

    Unlike ``urllib.parse.unquote`` a malformed escape or invalid UTF-8 is an error, not
    silently kept, so two different raw URIs never name the same key by accident.
    """
    if "%" not in text and not (plus_is_space and "+" in text):
        return text
    raw = text.encode("utf-8", "surrogateescape")
    out = bytearray()
    i = 0
    n = len(raw)
    while i < n:
        c = raw[i]
        if c == 0x25:  # %
            if i + 2 >= n or raw[i + 1] not in _HEX or raw[i + 2] not in _HEX:
                raise _BadEncoding(text)
            out.append(int(raw[i + 1 : i + 3], 16))
            i += 3
        elif c == 0x2B and plus_is_space:
            out.append(0x20)
            i += 1
        else:
            out.append(c)
            i += 1
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        raise _BadEncoding(text) from None


def parse_query(raw_query: str) -> tuple[tuple[str, str], ...]:
    """Split a raw query string into decoded (name, value) pairs, in order.

    ``name`` without ``=`` has value "". ``+`` decodes to a space, as form encoding says and as
    S3 reads query strings. Raises ``ValueError`` on bad percent-encoding.
    """
    pairs: list[tuple[str, str]] = []
    for part in raw_query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        pairs.append(
            (percent_decode(name, plus_is_space=True), percent_decode(value, plus_is_space=True))
        )
    return tuple(pairs)


def split_host(host: str) -> str:
    """Host header without port, lower-cased; IPv6 literals keep their brackets."""
    host = host.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        return host[: end + 1] if end != -1 else host
    name, _, _ = host.partition(":")
    return name.rstrip(".")


def _strip_absolute_form(uri: str) -> str:
    # A request line may carry an absolute URI (RFC 7230 §5.3.2); only path and query matter.
    lowered = uri[:8].lower()
    if lowered.startswith("http://") or lowered.startswith("https://"):
        rest = uri.split("://", 1)[1]
        slash = rest.find("/")
        question = rest.find("?")
        if slash == -1 or (question != -1 and question < slash):
            return "/" + rest[question:] if question != -1 else "/"
        return rest[slash:]
    return uri


def route(
    method: str,
    host: str,
    raw_uri: bytes | str,
    virtual_host_domain: str = "",
    headers: Mapping[str, str] | None = None,
) -> Route:
    """Choose the operation for a request. ``headers`` has lower-cased names.

    Never raises: malformed input becomes an error route (``Route.is_error``).
    """
    headers = headers or {}
    method = method.upper()
    try:
        # Bytes beyond ASCII in a raw request line are taken as UTF-8, as clients mean them.
        uri = raw_uri.decode("utf-8") if isinstance(raw_uri, bytes) else raw_uri
    except UnicodeDecodeError:
        return Route(operation=INVALID_URI, reason="Couldn't parse the specified URI.")
    if not uri.startswith("/"):  # origin form, as nearly every client sends, needs no strip
        uri = _strip_absolute_form(uri)
    if "#" in uri:
        uri = uri.partition("#")[0]
    raw_path, _, raw_query = uri.partition("?")
    if not raw_path.startswith("/"):
        raw_path = "/" + raw_path

    try:
        path = percent_decode(raw_path)
        query = parse_query(raw_query) if raw_query else ()
    except _BadEncoding:
        return Route(
            operation=INVALID_URI,
            reason="Couldn't parse the specified URI.",
            resource=raw_path,
        )

    if query:
        params: dict[str, str] = {}
        for name, value in query:
            params.setdefault(name, value)
        frozen_params: Mapping[str, str] = MappingProxyType(params)
    else:
        frozen_params = _NO_PARAMS

    vhost_bucket = ""
    if virtual_host_domain:
        name = split_host(host)
        domain = virtual_host_domain.strip().lower().rstrip(".")
        suffix = "." + domain
        if name.endswith(suffix) and len(name) > len(suffix):
            vhost_bucket = name[: -len(suffix)]

    if vhost_bucket:
        bucket, key = vhost_bucket, path[1:]
        resource = "/" + bucket + ("/" + key if key else "")
    else:
        # Rule 1 of JAY_SPEC §2.2: the Jay-specific JSON stats endpoint.
        if method == "GET" and path.startswith("/_stats/"):
            rest = path[len("/_stats/") :]
            if rest and "/" not in rest:
                return Route(
                    operation="BucketStats",
                    bucket=rest,
                    query=query,
                    params=frozen_params,
                    resource=path,
                )
        bucket, _, key = path[1:].partition("/")
        resource = path

    operation, reason = _choose(method, bucket, key, frozen_params, headers)
    return Route(
        operation=operation,
        bucket=bucket,
        key=key,
        query=query,
        params=frozen_params,
        resource=resource,
        is_virtual_host=bool(vhost_bucket),
        reason=reason,
    )


# (operation, reason): what _choose and its helpers decide; reason "" for a real operation.
_Choice = tuple[str, str]


def _choose(
    method: str, bucket: str, key: str, params: Mapping[str, str], headers: Mapping[str, str]
) -> _Choice:
    if method not in _KNOWN_METHODS:
        return METHOD_NOT_ALLOWED, ""

    if not bucket:
        if key:
            return INVALID_BUCKET_NAME, "The specified bucket is not valid."
        if method == "GET":
            return "ListBuckets", ""
        return METHOD_NOT_ALLOWED, ""

    if method == "OPTIONS":
        # A CORS preflight (answered from the bucket's CORS configuration, without
        # authentication); 400 when it is not a preflight at all, as S3 answers.
        if not headers.get("origin"):
            return BAD_REQUEST, "Insufficient information. Origin request header needed."
        if not headers.get("access-control-request-method"):
            return BAD_REQUEST, "Invalid Access-Control-Request-Method: null"
        return CORS_PREFLIGHT, ""

    subresources = [name for name in params if name in SUBRESOURCES]
    if len(subresources) > 1:
        return NOT_IMPLEMENTED, "Unsupported combination of sub-resources"
    sub = subresources[0] if subresources else None

    if not key:
        if method == "POST" and bucket == "WriteGetObjectResponse" and sub is None:
            # S3 Object Lambda's API, not a form upload to a bucket (no bucket has that name).
            return NOT_IMPLEMENTED, "WriteGetObjectResponse is not implemented"
        return _route_bucket(method, sub, params)
    return _route_object(method, sub, params, headers)


def _route_bucket(method: str, sub: str | None, params: Mapping[str, str]) -> _Choice:
    if "uploadId" in params or "versionId" in params or "partNumber" in params:
        # Object arguments on a bucket: never let DELETE /b?uploadId=… fall through to
        # DeleteBucket.
        return INVALID_REQUEST, "This query parameter requires an object key"
    operation = _BUCKET_OPERATIONS.get((method, sub))
    if operation is None:
        if sub is None:
            return METHOD_NOT_ALLOWED, ""
        return NOT_IMPLEMENTED, f"The {sub} sub-resource is not implemented"
    if operation == "ListObjects" and params.get("list-type") == "2":
        operation = "ListObjectsV2"
    return operation, ""


def _route_object(
    method: str,
    sub: str | None,
    params: Mapping[str, str],
    headers: Mapping[str, str],
) -> _Choice:
    if "uploadId" in params and sub is None:
        if method == "PUT":
            if headers.get("x-amz-copy-source"):
                return "UploadPartCopy", ""
            return "UploadPart", ""
        operation = {
            "POST": "CompleteMultipartUpload",
            "DELETE": "AbortMultipartUpload",
            "GET": "ListParts",
        }.get(method)
        return (operation, "") if operation else (METHOD_NOT_ALLOWED, "")
    if "uploadId" in params:
        return NOT_IMPLEMENTED, f"The {sub} sub-resource is not implemented"

    operation = _OBJECT_OPERATIONS.get((method, sub))
    if operation is None:
        if sub is not None:
            return NOT_IMPLEMENTED, f"The {sub} sub-resource is not implemented"
        if method == "POST":
            return INVALID_REQUEST, "A POST on an object needs uploads or uploadId"
        return METHOD_NOT_ALLOWED, ""
    if operation == "PutObject" and headers.get("x-amz-copy-source"):
        operation = "CopyObject"
    return operation, ""
