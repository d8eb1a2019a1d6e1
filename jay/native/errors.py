"""Domain exception → native error frame (status, message, code) (JAY_SPEC §1.4, §1.8).

One table, looked up along the exception's MRO, so a subclass of a mapped error maps like its
parent. Codes are the ones upstream emits wherever upstream has the situation (clients key on the
code); messages are upstream's. Errors upstream never produces (checksums, sizes, ...) use the
S3 code name with status 03. Anything unmapped is ``05 "internal error" InternalError``; the
server logs it with ``log.failure`` and never puts exception text on the wire.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from jay import errors
from jay.native.codec import (
    CODE_INTERNAL,
    CODE_INVALID_ARGUMENT,
    CODE_RATE_LIMITED,
    CODE_UNKNOWN_OP,
    MESSAGE_INVALID_REQUEST,
    MESSAGE_RATE_LIMITED,
    MESSAGE_UNKNOWN_OP,
    ErrorInfo,
    Status,
    encode_error_frame,
)

MESSAGE_INTERNAL = "internal error"


@dataclass(frozen=True, slots=True)
class NativeError:
    """What goes into an error frame."""

    status: Status
    message: str
    code: str

    @property
    def info(self) -> ErrorInfo:
        return ErrorInfo(message=self.message, code=self.code)

    def frame(self, stream_id: int) -> bytes:
        return encode_error_frame(self.status, stream_id, self.message, self.code)


INTERNAL_ERROR = NativeError(Status.INTERNAL, MESSAGE_INTERNAL, CODE_INTERNAL)
INVALID_REQUEST = NativeError(Status.BAD_REQUEST, MESSAGE_INVALID_REQUEST, CODE_INVALID_ARGUMENT)
UNKNOWN_OP = NativeError(Status.BAD_REQUEST, MESSAGE_UNKNOWN_OP, CODE_UNKNOWN_OP)
RATE_LIMITED = NativeError(Status.BAD_REQUEST, MESSAGE_RATE_LIMITED, CODE_RATE_LIMITED)
ACCESS_DENIED = NativeError(Status.FORBIDDEN, "access denied", "AccessDenied")

NATIVE_ERRORS: Mapping[type[errors.JayError], NativeError] = {
    # 01 not found
    errors.NoSuchBucket: NativeError(Status.NOT_FOUND, "bucket not found", "NoSuchBucket"),
    errors.NoSuchKey: NativeError(Status.NOT_FOUND, "object not found", "NoSuchKey"),
    errors.NoSuchUpload: NativeError(Status.NOT_FOUND, "upload not found", "NoSuchUpload"),
    # 02 conflict. Upstream says BucketAlreadyExists whoever owns the name.
    errors.BucketAlreadyExists: NativeError(
        Status.CONFLICT, "bucket already exists", "BucketAlreadyExists"
    ),
    errors.BucketAlreadyOwnedByYou: NativeError(
        Status.CONFLICT, "bucket already exists", "BucketAlreadyExists"
    ),
    errors.BucketNotEmpty: NativeError(Status.CONFLICT, "bucket is not empty", "BucketNotEmpty"),
    # 03 bad request
    errors.InvalidBucketName: NativeError(
        Status.BAD_REQUEST, "invalid bucket name", "InvalidBucketName"
    ),
    errors.InvalidArgument: INVALID_REQUEST,
    errors.InvalidRequest: INVALID_REQUEST,
    errors.KMSKeyNotFound: NativeError(
        Status.BAD_REQUEST, "invalid KMS key", "KMS.NotFoundException"
    ),
    errors.KeyTooLong: NativeError(Status.BAD_REQUEST, "key too long", "KeyTooLongError"),
    # Upstream answers a Complete naming a missing part with 05 "failed to complete"; jay says
    # what is wrong. The Go client treats every non-zero status alike.
    errors.InvalidPart: NativeError(Status.BAD_REQUEST, "invalid part", "InvalidPart"),
    errors.InvalidPartOrder: NativeError(
        Status.BAD_REQUEST, "invalid part order", "InvalidPartOrder"
    ),
    errors.EntityTooSmall: NativeError(Status.BAD_REQUEST, "part too small", "EntityTooSmall"),
    errors.EntityTooLarge: NativeError(Status.BAD_REQUEST, "entity too large", "EntityTooLarge"),
    errors.MetadataTooLarge: NativeError(
        Status.BAD_REQUEST, "metadata too large", "MetadataTooLarge"
    ),
    errors.IncompleteBody: NativeError(Status.BAD_REQUEST, "incomplete body", "IncompleteBody"),
    errors.BadDigest: NativeError(Status.BAD_REQUEST, "checksum mismatch", "BadDigest"),
    errors.InvalidDigest: NativeError(Status.BAD_REQUEST, "invalid checksum", "InvalidDigest"),
    errors.SlowDown: RATE_LIMITED,  # §1.13
    # 04 forbidden
    errors.AccessDenied: ACCESS_DENIED,
    errors.InvalidAccessKeyId: ACCESS_DENIED,
    errors.SignatureDoesNotMatch: ACCESS_DENIED,
    errors.ExpiredToken: ACCESS_DENIED,
    # 05: upstream's 1000-bucket limit surfaces as an internal error on the native port (§6.4).
    errors.TooManyBuckets: NativeError(Status.INTERNAL, "too many buckets", CODE_INTERNAL),
}

# Codes whose message varies upstream ("upload not active", "part number must be between 1 and
# 10000", ...): the exception's own message is used when core gave one explicitly.
_MESSAGE_FROM_EXCEPTION = frozenset({CODE_INVALID_ARGUMENT})


def native_error_for(
    exc: BaseException, *, internal_message: str = MESSAGE_INTERNAL
) -> NativeError:
    """The error frame content for ``exc``.

    ``internal_message`` lets an op keep upstream's wording for its 05 answers ("failed to store
    object", "failed to write part", ...). Unmapped exceptions never leak their text.
    """
    if isinstance(exc, errors.JayError):
        for cls in type(exc).__mro__:
            mapped = NATIVE_ERRORS.get(cls)
            if mapped is None:
                continue
            if (
                mapped.code in _MESSAGE_FROM_EXCEPTION
                and exc.message
                and exc.message != type(exc).default_message
            ):
                return NativeError(mapped.status, exc.message, mapped.code)
            return mapped
    if internal_message == MESSAGE_INTERNAL:
        return INTERNAL_ERROR
    return NativeError(Status.INTERNAL, internal_message, CODE_INTERNAL)


def error_frame_for(
    exc: BaseException, stream_id: int, *, internal_message: str = MESSAGE_INTERNAL
) -> bytes:
    """The complete error frame for ``exc``, echoing ``stream_id``."""
    return native_error_for(exc, internal_message=internal_message).frame(stream_id)
