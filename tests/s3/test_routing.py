"""Routing: every operation, every sub-resource, raw-URI decoding, virtual hosts."""

from __future__ import annotations

from types import MappingProxyType
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jay import errors
from jay.s3.routing import SUBRESOURCES, Route, parse_query, percent_decode, route, split_host

COPY = {"x-amz-copy-source": "/src/key"}
PREFLIGHT = {"origin": "https://a.example", "access-control-request-method": "PUT"}


def op(method: str, uri: str, headers: dict[str, str] | None = None) -> str:
    return route(method, "localhost:9000", uri, headers=headers or {}).operation


@pytest.mark.parametrize(
    ("method", "uri", "headers", "expected"),
    [
        ("GET", "/", None, "ListBuckets"),
        ("PUT", "/", None, "MethodNotAllowed"),
        ("DELETE", "/", None, "MethodNotAllowed"),
        ("POST", "/", None, "MethodNotAllowed"),
        ("GET", "/_stats/photos", None, "BucketStats"),
        ("GET", "/b", None, "ListObjects"),
        ("GET", "/b/", None, "ListObjects"),
        ("GET", "/b?list-type=2", None, "ListObjectsV2"),
        ("GET", "/b?list-type=2&prefix=a&delimiter=%2F&x-id=ListObjectsV2", None, "ListObjectsV2"),
        ("GET", "/b?list-type=1", None, "ListObjects"),
        ("GET", "/b?location", None, "GetBucketLocation"),
        ("GET", "/b?versioning", None, "GetBucketVersioning"),
        ("GET", "/b?versions", None, "ListObjectVersions"),
        ("GET", "/b?versions&prefix=x&key-marker=a", None, "ListObjectVersions"),
        ("GET", "/b?uploads", None, "ListMultipartUploads"),
        ("GET", "/b?uploads&upload-id-marker=x&key-marker=k", None, "ListMultipartUploads"),
        ("GET", "/b?policy", None, "GetBucketPolicy"),
        ("PUT", "/b?policy", None, "PutBucketPolicy"),
        ("DELETE", "/b?policy", None, "DeleteBucketPolicy"),
        ("GET", "/b?acl", None, "GetBucketAcl"),
        ("PUT", "/b?acl", None, "PutBucketAcl"),
        ("PUT", "/b", None, "CreateBucket"),
        ("PUT", "/b/", None, "CreateBucket"),
        ("DELETE", "/b", None, "DeleteBucket"),
        ("HEAD", "/b", None, "HeadBucket"),
        ("POST", "/b?delete", None, "DeleteObjects"),
        ("POST", "/b?delete=", None, "DeleteObjects"),
        ("POST", "/b", None, "PostObject"),
        ("POST", "/b?x-id=PostObject", None, "PostObject"),
        ("OPTIONS", "/b", None, "BadRequest"),
        ("OPTIONS", "/b/k", None, "BadRequest"),
        ("OPTIONS", "/b/k", {"origin": "https://a.example"}, "BadRequest"),
        ("OPTIONS", "/b/k", PREFLIGHT, "CorsPreflight"),
        ("OPTIONS", "/b", PREFLIGHT, "CorsPreflight"),
        ("PATCH", "/b", None, "MethodNotAllowed"),
        ("PATCH", "/b/k", None, "MethodNotAllowed"),
        ("TRACE", "/", None, "MethodNotAllowed"),
        # objects
        ("GET", "/b/k", None, "GetObject"),
        ("GET", "/b/k?partNumber=2", None, "GetObject"),
        ("GET", "/b/k?response-content-type=text/plain", None, "GetObject"),
        ("GET", "/b/k?versionId=null", None, "GetObject"),
        ("GET", "/b/k?versionId=3HL4kqtJlcpXroDTDmJ", None, "GetObject"),
        ("HEAD", "/b/k?versionId=abc", None, "HeadObject"),
        ("DELETE", "/b/k?versionId=abc", None, "DeleteObject"),
        ("DELETE", "/b/k?versionId=null", None, "DeleteObject"),
        ("HEAD", "/b/k", None, "HeadObject"),
        ("PUT", "/b/k", None, "PutObject"),
        ("PUT", "/b/k", COPY, "CopyObject"),
        ("PUT", "/b/k", {"x-amz-copy-source": ""}, "PutObject"),
        ("DELETE", "/b/k", None, "DeleteObject"),
        ("GET", "/b/k?acl", None, "GetObjectAcl"),
        ("PUT", "/b/k?acl", None, "PutObjectAcl"),
        ("POST", "/b/k?uploads", None, "CreateMultipartUpload"),
        ("POST", "/b/k?uploads=", None, "CreateMultipartUpload"),
        ("PUT", "/b/k?partNumber=1&uploadId=u", None, "UploadPart"),
        ("PUT", "/b/k?partNumber=1&uploadId=u", COPY, "UploadPartCopy"),
        ("POST", "/b/k?uploadId=u", None, "CompleteMultipartUpload"),
        ("DELETE", "/b/k?uploadId=u", None, "AbortMultipartUpload"),
        ("GET", "/b/k?uploadId=u", None, "ListParts"),
        ("GET", "/b/k?uploadId=u&max-parts=2&part-number-marker=1", None, "ListParts"),
        ("HEAD", "/b/k?uploadId=u", None, "MethodNotAllowed"),
        ("POST", "/b/k", None, "InvalidRequest"),
        ("POST", "/b/k?foo=bar", None, "InvalidRequest"),
        ("PUT", "/b/k?tagging&uploadId=u", None, "NotImplemented"),
        # never touch data for unknown sub-resources (upstream overwrote / deleted here)
        ("PUT", "/b/k?retention", None, "PutObjectRetention"),
        ("GET", "/b/k?retention", None, "GetObjectRetention"),
        ("DELETE", "/b/k?legal-hold", None, "NotImplemented"),
        ("GET", "/b/k?legal-hold", None, "GetObjectLegalHold"),
        ("PUT", "/b/k?legal-hold", None, "PutObjectLegalHold"),
        ("PUT", "/b?object-lock", None, "PutObjectLockConfiguration"),
        ("DELETE", "/b?object-lock", None, "NotImplemented"),
        ("PUT", "/b/k?tagging", None, "PutObjectTagging"),
        ("PUT", "/b/k?tagging", COPY, "PutObjectTagging"),
        ("DELETE", "/b/k?tagging", None, "DeleteObjectTagging"),
        ("GET", "/b/k?tagging", None, "GetObjectTagging"),
        ("GET", "/b/k?tagging&versionId=null", None, "GetObjectTagging"),
        ("GET", "/b/k?tagging&versionId=3", None, "GetObjectTagging"),
        ("POST", "/b/k?tagging", None, "NotImplemented"),
        ("PUT", "/b?tagging", None, "PutBucketTagging"),
        ("GET", "/b?tagging", None, "GetBucketTagging"),
        ("DELETE", "/b?tagging", None, "DeleteBucketTagging"),
        ("HEAD", "/b?tagging", None, "NotImplemented"),
        ("GET", "/b/k?attributes", None, "GetObjectAttributes"),
        ("GET", "/b?publicAccessBlock", None, "GetPublicAccessBlock"),
        ("PUT", "/b?publicAccessBlock", None, "PutPublicAccessBlock"),
        ("DELETE", "/b?publicAccessBlock", None, "DeletePublicAccessBlock"),
        ("POST", "/b?publicAccessBlock", None, "NotImplemented"),
        ("GET", "/b/k?publicAccessBlock", None, "NotImplemented"),
        ("GET", "/b?policyStatus", None, "GetBucketPolicyStatus"),
        ("PUT", "/b?policyStatus", None, "NotImplemented"),
        ("GET", "/b?encryption", None, "GetBucketEncryption"),
        ("PUT", "/b?encryption", None, "PutBucketEncryption"),
        ("DELETE", "/b?encryption", None, "DeleteBucketEncryption"),
        ("GET", "/b/k?encryption", None, "NotImplemented"),
        ("POST", "/b/k?restore", None, "NotImplemented"),
        ("POST", "/b/k?select&select-type=2", None, "NotImplemented"),
        ("PUT", "/b?versioning", None, "PutBucketVersioning"),
        ("DELETE", "/b?cors", None, "DeleteBucketCors"),
        ("DELETE", "/b?location&policy", None, "NotImplemented"),
        ("GET", "/b?acl&policy", None, "NotImplemented"),
        ("GET", "/b/k?uploads", None, "NotImplemented"),
        ("HEAD", "/b?acl", None, "NotImplemented"),
        ("POST", "/WriteGetObjectResponse", None, "NotImplemented"),
        # object arguments on a bucket never fall through to a bucket operation
        ("DELETE", "/b?uploadId=u", None, "InvalidRequest"),
        ("DELETE", "/b?versionId=null", None, "InvalidRequest"),
        ("PUT", "/b?partNumber=1&uploadId=u", None, "InvalidRequest"),
        ("GET", "/b?list-type=2&versionId=x", None, "InvalidRequest"),
        # error routes
        ("GET", "//k", None, "InvalidBucketName"),
        ("GET", "/b/k%ZZ", None, "InvalidURI"),
        ("GET", "/b/k%C3", None, "InvalidURI"),
        ("GET", "/b/k%", None, "InvalidURI"),
        ("GET", "/b?prefix=%G0", None, "InvalidURI"),
    ],
)
def test_operation_table(
    method: str, uri: str, headers: dict[str, str] | None, expected: str
) -> None:
    assert op(method, uri, headers) == expected


SUBRESOURCE_HANDLERS = {
    ("GET", "bucket", "location"),
    ("GET", "bucket", "versioning"),
    ("PUT", "bucket", "versioning"),
    ("GET", "bucket", "versions"),
    ("GET", "bucket", "uploads"),
    ("GET", "bucket", "policy"),
    ("GET", "bucket", "acl"),
    ("PUT", "bucket", "policy"),
    ("DELETE", "bucket", "policy"),
    ("GET", "bucket", "cors"),
    ("PUT", "bucket", "acl"),
    ("PUT", "object", "acl"),
    ("PUT", "bucket", "cors"),
    ("DELETE", "bucket", "cors"),
    ("GET", "bucket", "lifecycle"),
    ("PUT", "bucket", "lifecycle"),
    ("DELETE", "bucket", "lifecycle"),
    ("POST", "bucket", "delete"),
    ("GET", "object", "acl"),
    ("POST", "object", "uploads"),
    ("GET", "bucket", "tagging"),
    ("PUT", "bucket", "tagging"),
    ("DELETE", "bucket", "tagging"),
    ("GET", "object", "tagging"),
    ("PUT", "object", "tagging"),
    ("DELETE", "object", "tagging"),
    ("GET", "object", "attributes"),
    ("GET", "bucket", "publicAccessBlock"),
    ("PUT", "bucket", "publicAccessBlock"),
    ("DELETE", "bucket", "publicAccessBlock"),
    ("GET", "bucket", "policyStatus"),
    ("GET", "bucket", "encryption"),
    ("PUT", "bucket", "encryption"),
    ("DELETE", "bucket", "encryption"),
    ("GET", "bucket", "ownershipControls"),
    ("PUT", "bucket", "ownershipControls"),
    ("DELETE", "bucket", "ownershipControls"),
    ("GET", "bucket", "website"),
    ("GET", "bucket", "replication"),
    ("GET", "bucket", "notification"),
    ("GET", "bucket", "logging"),
    ("GET", "bucket", "accelerate"),
    ("GET", "bucket", "requestPayment"),
    ("GET", "bucket", "object-lock"),
    ("PUT", "bucket", "object-lock"),
    ("GET", "object", "retention"),
    ("PUT", "object", "retention"),
    ("GET", "object", "legal-hold"),
    ("PUT", "object", "legal-hold"),
}


@pytest.mark.parametrize("sub", sorted(SUBRESOURCES))
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "POST", "HEAD"])
@pytest.mark.parametrize("level", ["bucket", "object"])
def test_every_unhandled_subresource_is_not_implemented(sub: str, method: str, level: str) -> None:
    uri = ("/b" if level == "bucket" else "/b/some/key") + "?" + sub
    result = route(method, "h", uri, headers=COPY if method == "PUT" else {})
    if (method, level, sub) in SUBRESOURCE_HANDLERS:
        assert not result.is_error
    else:
        assert result.operation == "NotImplemented", (method, level, sub, result)
        assert isinstance(result.error(), errors.NotImplementedOperation)
        assert sub in result.reason


@pytest.mark.parametrize(
    ("uri", "bucket", "key"),
    [
        ("/b/a%2Fb", "b", "a/b"),
        ("/b/a%2fb", "b", "a/b"),
        ("/b/a+b", "b", "a+b"),
        ("/b/a%2Bb", "b", "a+b"),
        ("/b/a%20b", "b", "a b"),
        ("/b/a//b", "b", "a//b"),
        ("/b//lead", "b", "/lead"),
        ("/b/trail/", "b", "trail/"),
        ("/b/../x", "b", "../x"),
        ("/b/./x/../y", "b", "./x/../y"),
        ("/b/%2E%2E/etc/passwd", "b", "../etc/passwd"),
        ("/b/caf%C3%A9", "b", "café"),
        ("/b/%E2%9C%93?x-id=GetObject", "b", "✓"),
        ("/b/k%3Fq=1", "b", "k?q=1"),
        ("/b/k%23frag", "b", "k#frag"),
        ("/b/k;params", "b", "k;params"),
        ("http://example.com:9000/b/abs?x", "b", "abs"),
        ("/b/%25", "b", "%"),
    ],
)
def test_key_decoding_from_raw_uri(uri: str, bucket: str, key: str) -> None:
    for raw in (uri, uri.encode()):
        result = route("GET", "h", raw, headers={})
        assert (result.bucket, result.key) == (bucket, key)


def test_raw_utf8_in_request_line() -> None:
    assert route("GET", "h", "/b/café✓".encode(), headers={}).key == "café✓"
    assert route("GET", "h", "/b/café✓", headers={}).key == "café✓"
    assert route("GET", "h", b"/b/\xff", headers={}).operation == "InvalidURI"


def test_query_is_split_before_decoding() -> None:
    result = route("GET", "h", "/b?list-type=2&prefix=a%26b%3Dc&delimiter=%2F&prefix=second")
    assert result.params["prefix"] == "a&b=c"
    assert result.params["delimiter"] == "/"
    assert result.query == (
        ("list-type", "2"),
        ("prefix", "a&b=c"),
        ("delimiter", "/"),
        ("prefix", "second"),
    )


def test_plus_in_query_is_space_but_literal_in_path() -> None:
    result = route("GET", "h", "/b/x+y?prefix=a+b&start-after=c%2Bd")
    assert result.key == "x+y"
    assert result.params["prefix"] == "a b"
    assert result.params["start-after"] == "c+d"


def test_resource_is_decoded_path() -> None:
    assert route("GET", "h", "/b/a%2Fb").resource == "/b/a/b"
    assert route("GET", "h", "/b").resource == "/b"


@pytest.mark.parametrize(
    ("host", "uri", "op_name", "bucket", "key"),
    [
        ("photos.s3.example.com", "/a/b.txt", "GetObject", "photos", "a/b.txt"),
        ("photos.s3.example.com:9000", "/a%2Fb", "GetObject", "photos", "a/b"),
        ("PHOTOS.S3.Example.COM", "/k", "GetObject", "photos", "k"),
        ("photos.s3.example.com", "/", "ListObjects", "photos", ""),
        ("photos.s3.example.com", "/?list-type=2", "ListObjectsV2", "photos", ""),
        ("photos.s3.example.com", "//double", "GetObject", "photos", "/double"),
        # _stats is only a path-style thing; under a virtual host it is a key
        ("photos.s3.example.com", "/_stats/x", "GetObject", "photos", "_stats/x"),
        ("my.dotted.bucket.s3.example.com", "/k", "GetObject", "my.dotted.bucket", "k"),
        # the bare domain and foreign hosts are path style
        ("s3.example.com", "/b/k", "GetObject", "b", "k"),
        ("s3.example.com:443", "/", "ListBuckets", "", ""),
        ("other.org", "/b/k", "GetObject", "b", "k"),
        ("evil-s3.example.com", "/b/k", "GetObject", "b", "k"),
        ("127.0.0.1:9000", "/b/k", "GetObject", "b", "k"),
        ("[::1]:9000", "/b/k", "GetObject", "b", "k"),
    ],
)
def test_virtual_host(host: str, uri: str, op_name: str, bucket: str, key: str) -> None:
    result = route("GET", host, uri, "s3.example.com", headers={})
    assert (result.operation, result.bucket, result.key) == (op_name, bucket, key)


def test_virtual_host_ignored_without_domain() -> None:
    result = route("GET", "photos.s3.example.com", "/a/b")
    assert (result.bucket, result.key, result.is_virtual_host) == ("a", "b", False)


def test_virtual_host_resource_names_bucket() -> None:
    result = route("PUT", "photos.s3.example.com", "/k", "s3.example.com", headers={})
    assert result.is_virtual_host
    assert result.resource == "/photos/k"
    assert result.operation == "PutObject"


def test_stats_edge_cases() -> None:
    assert op("GET", "/_stats/") == "ListObjects"  # bucket "_stats", no remainder
    assert op("GET", "/_stats/a/b") == "GetObject"
    assert op("PUT", "/_stats/a") == "PutObject"
    result = route("GET", "h", "/_stats/photos")
    assert result.bucket == "photos" and result.key == ""


def test_method_is_case_insensitive() -> None:
    assert op("get", "/b/k") == "GetObject"


@pytest.mark.parametrize(
    ("operation", "kind"),
    [
        ("NotImplemented", errors.NotImplementedOperation),
        ("MethodNotAllowed", errors.MethodNotAllowed),
        ("InvalidRequest", errors.InvalidRequest),
        ("InvalidURI", errors.InvalidURI),
        ("InvalidBucketName", errors.InvalidBucketName),
    ],
)
def test_error_routes_build_their_exception(operation: str, kind: type[Exception]) -> None:
    result = Route(operation=operation, bucket="b", key="k", resource="/b/k", reason="why")
    assert result.is_error
    exc = result.error()
    assert type(exc) is kind
    assert exc.message == "why"  # type: ignore[attr-defined]
    assert exc.resource == "/b/k"  # type: ignore[attr-defined]


def test_normal_route_is_not_error() -> None:
    assert not route("GET", "h", "/b/k").is_error


def test_percent_decode_strict() -> None:
    assert percent_decode("a%41+") == "aA+"
    assert percent_decode("a%41+", plus_is_space=True) == "aA "
    for bad in ("%", "%4", "%4g", "%ff", "%C3%28"):
        with pytest.raises(ValueError):
            percent_decode(bad)


def test_parse_query_shapes() -> None:
    assert parse_query("") == ()
    assert parse_query("a&&b=1&=x&c=") == (("a", ""), ("b", "1"), ("", "x"), ("c", ""))
    assert parse_query("k=a=b") == (("k", "a=b"),)


def test_split_host() -> None:
    assert split_host("Example.COM:80") == "example.com"
    assert split_host("[::1]:9000") == "[::1]"
    assert split_host("example.com.") == "example.com"


@settings(max_examples=300, deadline=None)
@given(key=st.text(min_size=1).filter(lambda k: "\x00" not in k), safe=st.sampled_from(["", "/"]))
def test_any_percent_encoded_key_round_trips(key: str, safe: str) -> None:
    uri = "/bucket/" + quote(key, safe=safe) + "?x-id=GetObject"
    result = route("GET", "h", uri.encode("ascii"), headers={})
    assert (result.operation, result.bucket, result.key) == ("GetObject", "bucket", key)


def test_requests_without_a_query_share_one_read_only_empty_params() -> None:
    plain = route("GET", "h", b"/b/k", headers={})
    other = route("PUT", "h", b"/b/other", headers={})
    assert plain.params is other.params
    assert plain.params == MappingProxyType({}) and plain.query == ()
    with pytest.raises(TypeError):
        plain.params["x"] = "y"  # type: ignore[index]
    assert route("GET", "h", b"/b/k?", headers={}).params is plain.params
    assert dict(route("GET", "h", b"/b/k?a=1&a=2", headers={}).params) == {"a": "1"}


def test_fragments_and_absolute_forms_without_and_with_a_query() -> None:
    assert route("GET", "h", b"/b/k#frag?acl", headers={}).operation == "GetObject"
    absolute = route("GET", "h", b"HTTPS://host/b/k?acl", headers={})
    assert (absolute.operation, absolute.key) == ("GetObjectAcl", "k")
    assert route("GET", "h", b"http://host", headers={}).operation == "ListBuckets"


def test_post_object_routes_in_both_styles() -> None:
    vhost = route("POST", "photos.s3.example.com", "/", "s3.example.com", headers={})
    assert (vhost.operation, vhost.bucket, vhost.key) == ("PostObject", "photos", "")
    path = route("POST", "s3.example.com", "/photos", "s3.example.com", headers={})
    assert (path.operation, path.bucket, path.key) == ("PostObject", "photos", "")
