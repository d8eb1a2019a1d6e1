"""jay.native.errors: domain exception → (status, message, code) per JAY_SPEC §1.8."""

from __future__ import annotations

import pytest

from jay import errors
from jay.native import codec
from jay.native.codec import Status
from jay.native.errors import NativeError, error_frame_for, native_error_for
from tests.native import vectors as v


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (errors.NoSuchBucket(bucket="b"), (Status.NOT_FOUND, "bucket not found", "NoSuchBucket")),
        (errors.NoSuchKey(), (Status.NOT_FOUND, "object not found", "NoSuchKey")),
        (errors.NoSuchUpload(), (Status.NOT_FOUND, "upload not found", "NoSuchUpload")),
        (
            errors.BucketAlreadyExists(),
            (Status.CONFLICT, "bucket already exists", "BucketAlreadyExists"),
        ),
        (
            errors.BucketAlreadyOwnedByYou(),
            (Status.CONFLICT, "bucket already exists", "BucketAlreadyExists"),
        ),
        (errors.BucketNotEmpty(), (Status.CONFLICT, "bucket is not empty", "BucketNotEmpty")),
        (
            errors.InvalidBucketName(),
            (Status.BAD_REQUEST, "invalid bucket name", "InvalidBucketName"),
        ),
        (errors.InvalidArgument(), (Status.BAD_REQUEST, "invalid request", "InvalidArgument")),
        (errors.KeyTooLong(), (Status.BAD_REQUEST, "key too long", "KeyTooLongError")),
        (errors.InvalidPart(), (Status.BAD_REQUEST, "invalid part", "InvalidPart")),
        (errors.AccessDenied(), (Status.FORBIDDEN, "access denied", "AccessDenied")),
        (errors.ExpiredToken(), (Status.FORBIDDEN, "access denied", "AccessDenied")),
        (
            errors.SlowDown(),
            (Status.BAD_REQUEST, "rate limit exceeded", "RateLimitExceeded"),
        ),
        (errors.StorageFull(), (Status.INTERNAL, "internal error", "InternalError")),
        (errors.ChecksumMismatch(), (Status.INTERNAL, "internal error", "InternalError")),
        (RuntimeError("/secret/path"), (Status.INTERNAL, "internal error", "InternalError")),
    ],
)
def test_table(exc: BaseException, expected: tuple[Status, str, str]) -> None:
    assert native_error_for(exc) == NativeError(*expected)


def test_invalid_argument_keeps_an_explicit_message() -> None:
    exc = errors.InvalidArgument("part number must be between 1 and 10000")
    assert native_error_for(exc) == NativeError(
        Status.BAD_REQUEST, "part number must be between 1 and 10000", "InvalidArgument"
    )


def test_other_messages_never_reach_the_wire() -> None:
    exc = errors.NoSuchBucket("Bucket /var/lib/jay/buckets/x is gone")
    assert native_error_for(exc).message == "bucket not found"


def test_subclasses_map_like_their_parent() -> None:
    class Gone(errors.NoSuchKey):
        pass

    assert native_error_for(Gone()).code == "NoSuchKey"


def test_internal_message_per_op() -> None:
    err = native_error_for(OSError("disk"), internal_message="failed to store object")
    assert err == NativeError(Status.INTERNAL, "failed to store object", "InternalError")
    # A mapped error keeps its own answer.
    assert native_error_for(errors.NoSuchKey(), internal_message="x").code == "NoSuchKey"


def test_frames_match_the_vectors() -> None:
    assert error_frame_for(errors.NoSuchKey(), 9) == v.NO_SUCH_KEY_RESPONSE
    assert error_frame_for(errors.SlowDown(), 0) == v.RATE_LIMITED_RESPONSE
    frame = native_error_for(errors.AccessDenied()).frame(4)
    assert frame[0] == 4 and frame[1:5] == b"\x00\x00\x00\x04"
    assert codec.ErrorInfo.decode(frame[17:]) == native_error_for(errors.AccessDenied()).info
