"""Domain exception → S3 error response: the one table of the S3 front end (JAY_SPEC §2.6).

Lookup walks the exception's MRO, so a subclass added later maps like its parent. Anything not
in the table is 500 ``InternalError`` with a fixed message: the exception text, a traceback or a
path never reaches the client (the caller logs the failure).
"""

from __future__ import annotations

from collections.abc import Mapping
from email.utils import formatdate

from jay import errors as e
from jay.s3.xml import CONTENT_TYPE, render_error

INTERNAL_ERROR_MESSAGE = "We encountered an internal error. Please try again."

S3_ERRORS: Mapping[type[e.JayError], tuple[int, str]] = {
    # lookups
    e.NoSuchBucket: (404, "NoSuchBucket"),
    e.NoSuchKey: (404, "NoSuchKey"),
    e.NoSuchUpload: (404, "NoSuchUpload"),
    e.NoSuchVersion: (404, "NoSuchVersion"),
    e.NoSuchBucketPolicy: (404, "NoSuchBucketPolicy"),
    e.NoSuchCORSConfiguration: (404, "NoSuchCORSConfiguration"),
    e.NoSuchTagSet: (404, "NoSuchTagSet"),
    e.NoSuchLifecycleConfiguration: (404, "NoSuchLifecycleConfiguration"),
    e.NoSuchPublicAccessBlockConfiguration: (404, "NoSuchPublicAccessBlockConfiguration"),
    e.KMSKeyNotFound: (400, "KMS.NotFoundException"),
    e.ServerSideEncryptionConfigurationNotFound: (
        404,
        "ServerSideEncryptionConfigurationNotFoundError",
    ),
    e.OwnershipControlsNotFound: (404, "OwnershipControlsNotFoundError"),
    e.NoSuchWebsiteConfiguration: (404, "NoSuchWebsiteConfiguration"),
    e.ReplicationConfigurationNotFound: (404, "ReplicationConfigurationNotFoundError"),
    e.ObjectLockConfigurationNotFound: (404, "ObjectLockConfigurationNotFoundError"),
    e.NoSuchObjectLockConfiguration: (404, "NoSuchObjectLockConfiguration"),
    # An account or token that vanished mid-request is a credentials problem, never a 404
    # that would reveal which ids exist.
    e.NoSuchAccount: (403, "AccessDenied"),
    e.NoSuchToken: (403, "InvalidAccessKeyId"),
    # conflicts and validation
    e.BucketAlreadyExists: (409, "BucketAlreadyExists"),
    e.BucketAlreadyOwnedByYou: (409, "BucketAlreadyOwnedByYou"),
    e.BucketNotEmpty: (409, "BucketNotEmpty"),
    e.InvalidBucketState: (409, "InvalidBucketState"),
    e.InvalidRetentionPeriod: (400, "InvalidRetentionPeriod"),
    e.TooManyBuckets: (400, "TooManyBuckets"),
    e.InvalidBucketName: (400, "InvalidBucketName"),
    e.KeyTooLong: (400, "KeyTooLongError"),
    e.InvalidArgument: (400, "InvalidArgument"),
    e.InvalidRequest: (400, "InvalidRequest"),
    e.MalformedACLError: (400, "MalformedACLError"),
    e.UnexpectedContent: (400, "UnexpectedContent"),
    e.AccessControlListNotSupported: (400, "AccessControlListNotSupported"),
    e.InvalidBucketAclWithObjectOwnership: (400, "InvalidBucketAclWithObjectOwnership"),
    e.UnresolvableGrantByEmailAddress: (400, "UnresolvableGrantByEmailAddress"),
    e.InvalidURI: (400, "InvalidURI"),
    e.MalformedXML: (400, "MalformedXML"),
    e.MalformedPolicy: (400, "MalformedPolicy"),
    e.InvalidTag: (400, "InvalidTag"),
    e.MetadataTooLarge: (400, "MetadataTooLarge"),
    e.EntityTooLarge: (400, "EntityTooLarge"),
    e.EntityTooSmall: (400, "EntityTooSmall"),
    e.IncompleteBody: (400, "IncompleteBody"),
    e.InvalidPart: (400, "InvalidPart"),
    e.InvalidPartOrder: (400, "InvalidPartOrder"),
    e.InvalidRange: (416, "InvalidRange"),
    e.PreconditionFailed: (412, "PreconditionFailed"),
    e.NotModified: (304, "NotModified"),
    e.ConditionalRequestConflict: (409, "ConditionalRequestConflict"),
    e.BadDigest: (400, "BadDigest"),
    e.InvalidDigest: (400, "InvalidDigest"),
    # POST Object (browser form uploads)
    e.InvalidPolicyDocument: (400, "InvalidPolicyDocument"),
    e.MalformedPOSTRequest: (400, "MalformedPOSTRequest"),
    e.MaxPostPreDataLengthExceeded: (400, "MaxPostPreDataLengthExceeded"),
    # Stored bytes failed verification: the client did nothing wrong and must not learn more.
    e.ChecksumMismatch: (500, "InternalError"),
    # access
    e.AccessDenied: (403, "AccessDenied"),
    e.InvalidAccessKeyId: (403, "InvalidAccessKeyId"),
    e.SignatureDoesNotMatch: (403, "SignatureDoesNotMatch"),
    e.RequestTimeTooSkewed: (403, "RequestTimeTooSkewed"),
    e.AuthorizationHeaderMalformed: (400, "AuthorizationHeaderMalformed"),
    e.AuthorizationQueryParametersError: (400, "AuthorizationQueryParametersError"),
    e.ExpiredToken: (400, "ExpiredToken"),
    # S3's answer (upstream sent 429): SDKs retry 503 SlowDown with back-off.
    e.SlowDown: (503, "SlowDown"),
    # protocol / server
    e.NotImplementedOperation: (501, "NotImplemented"),
    e.MethodNotAllowed: (405, "MethodNotAllowed"),
    e.BadRequest: (400, "BadRequest"),
    e.CORSForbidden: (403, "AccessForbidden"),
    # Disk full. S3 has no code for it; 507 (RFC 4918) with a self-explaining code follows
    # MinIO's precedent (507 XMinioStorageFull). SDKs do not retry 507, which is right: the
    # condition outlasts a back-off, and a 503 SlowDown would send clients into retry loops
    # while telling the operator nothing.
    e.StorageFull: (507, "InsufficientStorage"),
    e.StorageIOError: (500, "InternalError"),
    e.ServiceUnavailable: (503, "ServiceUnavailable"),
    e.ConfigError: (500, "InternalError"),
}

# Exceptions other modules add to jay.errors as they land; each is mapped once it exists, so this
# table never imports a name that is not there yet. Status and code are S3's.
_ADDED_LATER: tuple[tuple[str, int, str], ...] = (
    ("ContentSHA256Mismatch", 400, "XAmzContentSHA256Mismatch"),
    ("MissingContentLength", 411, "MissingContentLength"),
    ("MissingSecurityHeader", 400, "MissingSecurityHeader"),
    ("InvalidObjectState", 403, "InvalidObjectState"),
    ("RequestTimeout", 400, "RequestTimeout"),
    ("InvalidToken", 400, "InvalidToken"),
    ("InvalidEncryptionAlgorithmError", 400, "InvalidEncryptionAlgorithmError"),
    ("MaxMessageLengthExceeded", 400, "MaxMessageLengthExceeded"),
)
S3_ERRORS = dict(S3_ERRORS)
for _name, _status, _code in _ADDED_LATER:
    _kind = getattr(e, _name, None)
    if isinstance(_kind, type) and issubclass(_kind, e.JayError):
        S3_ERRORS.setdefault(_kind, (_status, _code))

# Extra <Error> fields S3 includes, taken from the exception's data when present.
_EXTRA_FIELDS: Mapping[str, tuple[tuple[str, str], ...]] = {
    "NoSuchBucket": (("BucketName", "bucket"),),
    "NoSuchKey": (("Key", "key"),),
    "NoSuchUpload": (("UploadId", "upload_id"),),
    "NoSuchVersion": (("Key", "key"), ("VersionId", "version_id")),
    "BucketAlreadyExists": (("BucketName", "bucket"),),
    "BucketAlreadyOwnedByYou": (("BucketName", "bucket"),),
    "BucketNotEmpty": (("BucketName", "bucket"),),
    "InvalidBucketName": (("BucketName", "bucket"),),
    "NoSuchBucketPolicy": (("BucketName", "bucket"),),
    "NoSuchCORSConfiguration": (("BucketName", "bucket"),),
    "NoSuchTagSet": (("BucketName", "bucket"),),
    "NoSuchLifecycleConfiguration": (("BucketName", "bucket"),),
    "NoSuchPublicAccessBlockConfiguration": (("BucketName", "bucket"),),
    "ServerSideEncryptionConfigurationNotFoundError": (("BucketName", "bucket"),),
    "OwnershipControlsNotFoundError": (("BucketName", "bucket"),),
    "NoSuchWebsiteConfiguration": (("BucketName", "bucket"),),
    "ReplicationConfigurationNotFoundError": (("BucketName", "bucket"),),
    "ObjectLockConfigurationNotFoundError": (("BucketName", "bucket"),),
    "InvalidRange": (("ActualObjectSize", "size"), ("RangeRequested", "range")),
    "InvalidArgument": (("ArgumentName", "argument_name"), ("ArgumentValue", "argument_value")),
    "MethodNotAllowed": (("Method", "method"), ("ResourceType", "resource_type")),
    "PreconditionFailed": (("Condition", "condition"),),
    "MaxPostPreDataLengthExceeded": (("MaxPostPreDataLengthBytes", "max_bytes"),),
}


def lookup(exc: BaseException) -> tuple[int, str] | None:
    """(status, code) for a domain exception, or None when it is not in the table."""
    for kind in type(exc).__mro__:
        entry = S3_ERRORS.get(kind)
        if entry is not None:
            return entry
    return None


def _field_value(exc: e.JayError, attribute: str) -> str | None:
    if attribute in ("bucket", "key"):
        value: object = getattr(exc, attribute)
    else:
        value = exc.details.get(attribute)
    if value is None or value == "":
        return None
    return str(value)


def error_response(
    exc: BaseException,
    resource: str,
    request_id: str,
    *,
    include_body: bool = True,
) -> tuple[int, list[tuple[str, str]], bytes]:
    """(status, headers, body) for ``exc``. ``include_body=False`` for HEAD requests.

    304 never has a body. 416 carries ``Content-Range: bytes */<size>`` when the size is known;
    SlowDown carries ``Retry-After``.
    """
    entry = lookup(exc) if isinstance(exc, e.JayError) else None
    if entry is None or not isinstance(exc, e.JayError):
        status, code, message = 500, "InternalError", INTERNAL_ERROR_MESSAGE
        extra: list[tuple[str, str]] = []
    else:
        status, code = entry
        message = exc.message if status != 500 else (exc.message or INTERNAL_ERROR_MESSAGE)
        if exc.resource:
            resource = exc.resource
        extra = []
        for element, attribute in _EXTRA_FIELDS.get(code, ()):
            value = _field_value(exc, attribute)
            if value is not None:
                extra.append((element, value))

    headers: list[tuple[str, str]] = []
    if isinstance(exc, e.SlowDown):
        headers.append(("Retry-After", str(max(1, int(exc.retry_after_seconds)))))
    if isinstance(exc, e.InvalidRange) and isinstance(exc, e.JayError):
        size = exc.details.get("size")
        if isinstance(size, int):
            headers.append(("Content-Range", f"bytes */{size}"))

    if isinstance(exc, e.JayError) and exc.details.get("is_delete_marker"):
        # A key whose current version is a delete marker (404), or a marker's version id
        # read (405): S3 says so in headers, also on HEAD.
        headers.append(("x-amz-delete-marker", "true"))
        version_id = exc.details.get("version_id")
        if isinstance(version_id, str):
            headers.append(("x-amz-version-id", version_id))
        updated_at = exc.details.get("updated_at")
        if isinstance(updated_at, float):
            headers.append(("Last-Modified", formatdate(updated_at, usegmt=True)))

    if status == 304 or not include_body:
        return status, headers, b""
    body = render_error(code, message, resource, request_id, extra)
    headers.append(("Content-Type", CONTENT_TYPE))
    return status, headers, body
