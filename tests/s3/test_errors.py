"""The domain exception → S3 error table and error responses."""

from __future__ import annotations

import inspect
import xml.etree.ElementTree as ET

import pytest

from jay import errors
from jay.s3.errors import INTERNAL_ERROR_MESSAGE, S3_ERRORS, error_response, lookup

EXPECTED = {
    errors.NoSuchBucket: (404, "NoSuchBucket"),
    errors.NoSuchKey: (404, "NoSuchKey"),
    errors.NoSuchUpload: (404, "NoSuchUpload"),
    errors.NoSuchBucketPolicy: (404, "NoSuchBucketPolicy"),
    errors.BucketAlreadyExists: (409, "BucketAlreadyExists"),
    errors.BucketAlreadyOwnedByYou: (409, "BucketAlreadyOwnedByYou"),
    errors.BucketNotEmpty: (409, "BucketNotEmpty"),
    errors.TooManyBuckets: (400, "TooManyBuckets"),
    errors.InvalidBucketName: (400, "InvalidBucketName"),
    errors.KeyTooLong: (400, "KeyTooLongError"),
    errors.InvalidArgument: (400, "InvalidArgument"),
    errors.InvalidRequest: (400, "InvalidRequest"),
    errors.InvalidURI: (400, "InvalidURI"),
    errors.MalformedXML: (400, "MalformedXML"),
    errors.MalformedPolicy: (400, "MalformedPolicy"),
    errors.MetadataTooLarge: (400, "MetadataTooLarge"),
    errors.EntityTooLarge: (400, "EntityTooLarge"),
    errors.EntityTooSmall: (400, "EntityTooSmall"),
    errors.IncompleteBody: (400, "IncompleteBody"),
    errors.InvalidPart: (400, "InvalidPart"),
    errors.InvalidPartOrder: (400, "InvalidPartOrder"),
    errors.InvalidRange: (416, "InvalidRange"),
    errors.PreconditionFailed: (412, "PreconditionFailed"),
    errors.NotModified: (304, "NotModified"),
    errors.BadDigest: (400, "BadDigest"),
    errors.InvalidDigest: (400, "InvalidDigest"),
    errors.ChecksumMismatch: (500, "InternalError"),
    errors.AccessDenied: (403, "AccessDenied"),
    errors.InvalidAccessKeyId: (403, "InvalidAccessKeyId"),
    errors.SignatureDoesNotMatch: (403, "SignatureDoesNotMatch"),
    errors.RequestTimeTooSkewed: (403, "RequestTimeTooSkewed"),
    errors.AuthorizationHeaderMalformed: (400, "AuthorizationHeaderMalformed"),
    errors.ExpiredToken: (400, "ExpiredToken"),
    errors.SlowDown: (503, "SlowDown"),
    errors.NotImplementedOperation: (501, "NotImplemented"),
    errors.MethodNotAllowed: (405, "MethodNotAllowed"),
    errors.StorageFull: (507, "InsufficientStorage"),
    errors.StorageIOError: (500, "InternalError"),
    errors.ServiceUnavailable: (503, "ServiceUnavailable"),
}


@pytest.mark.parametrize(("kind", "expected"), list(EXPECTED.items()), ids=lambda v: str(v))
def test_table(kind: type[errors.JayError], expected: tuple[int, str]) -> None:
    assert lookup(kind()) == expected


def test_every_domain_exception_is_mapped() -> None:
    classes = [
        obj
        for _, obj in inspect.getmembers(errors, inspect.isclass)
        if issubclass(obj, errors.JayError) and obj is not errors.JayError
    ]
    # a subclass of a mapped class is covered through its MRO
    missing = [c.__name__ for c in classes if not any(k in S3_ERRORS for k in c.__mro__)]
    assert missing == []


def test_subclass_maps_like_parent() -> None:
    class SpecialDenied(errors.AccessDenied):
        pass

    assert lookup(SpecialDenied()) == (403, "AccessDenied")


def parse(body: bytes) -> ET.Element:
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n')
    return ET.fromstring(body)


def test_error_response_body() -> None:
    status, headers, body = error_response(
        errors.NoSuchKey(bucket="photos", key="a.txt"), "/photos/a.txt", "9f86d081884c7d65"
    )
    assert status == 404
    assert ("Content-Type", "application/xml") in headers
    root = parse(body)
    assert root.tag == "Error"
    assert root.findtext("Code") == "NoSuchKey"
    assert root.findtext("Message") == "The specified key does not exist."
    assert root.findtext("Resource") == "/photos/a.txt"
    assert root.findtext("RequestId") == "9f86d081884c7d65"
    assert root.findtext("Key") == "a.txt"


def test_exception_resource_wins() -> None:
    exc = errors.InvalidArgument("Invalid copy source", resource="src/%zz")
    _, _, body = error_response(exc, "/dest/key", "r")
    assert parse(body).findtext("Resource") == "src/%zz"


def test_unknown_exception_is_generic_500() -> None:
    exc = RuntimeError("secret /var/lib/jay/objects/ab/cd path and token abc123")
    status, headers, body = error_response(exc, "/b/k", "rid")
    assert status == 500
    root = parse(body)
    assert root.findtext("Code") == "InternalError"
    assert root.findtext("Message") == INTERNAL_ERROR_MESSAGE
    assert b"secret" not in body and b"Traceback" not in body and b"/var/lib" not in body


def test_unmapped_jay_error_base_is_500() -> None:
    status, _, body = error_response(errors.JayError("detail"), "/", "rid")
    assert status == 500
    assert parse(body).findtext("Message") == INTERNAL_ERROR_MESSAGE


def test_slow_down_retry_after() -> None:
    status, headers, _ = error_response(errors.SlowDown(retry_after_seconds=7), "/b", "r")
    assert status == 503
    assert ("Retry-After", "7") in headers


def test_invalid_range_content_range() -> None:
    status, headers, body = error_response(
        errors.InvalidRange(size=10, range="bytes=20-"), "/b/k", "r"
    )
    assert status == 416
    assert ("Content-Range", "bytes */10") in headers
    root = parse(body)
    assert root.findtext("Code") == "InvalidRange"
    assert root.findtext("ActualObjectSize") == "10"
    assert root.findtext("RangeRequested") == "bytes=20-"


def test_not_modified_has_no_body() -> None:
    status, headers, body = error_response(errors.NotModified(), "/b/k", "r")
    assert (status, body) == (304, b"")
    assert all(name != "Content-Type" for name, _ in headers)


def test_head_has_no_body() -> None:
    status, headers, body = error_response(errors.NoSuchKey(), "/b/k", "r", include_body=False)
    assert (status, body) == (404, b"")


def test_message_escaped() -> None:
    _, _, body = error_response(errors.InvalidArgument('bad <value> & "quote"'), "/b/<k>", "r")
    root = parse(body)
    assert root.findtext("Message") == 'bad <value> & "quote"'
    assert root.findtext("Resource") == "/b/<k>"
