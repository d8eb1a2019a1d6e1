"""SigV4 against botocore (both its awscrt and pure-Python signers), AWS's vectors and §9.4."""

from __future__ import annotations

import hashlib
from typing import Any

import botocore.auth
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from jay.auth import sigv4
from jay.errors import (
    AccessDenied,
    AuthorizationHeaderMalformed,
    AuthorizationQueryParametersError,
    InvalidArgument,
    NotImplementedOperation,
    RequestTimeTooSkewed,
    SignatureDoesNotMatch,
)
from tests.auth.botocore_capture import (
    ACCESS_KEY,
    FROZEN_EPOCH,
    SECRET,
    Captured,
    capture,
    frozen_botocore,
    make_client,
    split_url,
)


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Any:
    with frozen_botocore(monkeypatch):
        yield make_client()


def verify_captured(cap: Captured, secret: str = SECRET, now: float = FROZEN_EPOCH) -> Any:
    parsed = sigv4.parse_header_request(cap.method, cap.raw_path, cap.raw_query, cap.headers)
    assert parsed.access_key == ACCESS_KEY
    return sigv4.verify_header_request(parsed, secret, now=now)


# --- JAY_SPEC §9.4 ---------------------------------------------------------------------------


def _vector_request(path: bytes, query: bytes, signature: str) -> list[tuple[bytes, bytes]]:
    return [
        (b"Host", b"localhost:9000"),
        (b"X-Amz-Date", b"20240102T030405Z"),
        (b"x-amz-content-sha256", sigv4.EMPTY_SHA256.encode()),
        (
            b"Authorization",
            b"AWS4-HMAC-SHA256 Credential=tok-1/20240102/us-east-1/s3/aws4_request, "
            b"SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=" + signature.encode(),
        ),
    ]


@pytest.mark.parametrize(
    ("path", "query", "signature"),
    [
        (b"/photos/a.txt", b"", "b6cf38e6516fbcf2d46effc9b2270b5fc9a567f183165eee9ab5bd2f48be13a7"),
        (
            b"/photos",
            b"list-type=2&prefix=a%2F&delimiter=%2F&encoding-type=url",
            "d56644718a5961cd2039ebf27dc5bd648749639a9ea7c720d85b1770e8d05ae3",
        ),
    ],
)
def test_spec_9_4_vectors_are_accepted(path: bytes, query: bytes, signature: str) -> None:
    headers = _vector_request(path, query, signature)
    parsed = sigv4.parse_header_request("GET", path, query, headers)
    context = sigv4.verify(parsed, SECRET, now=FROZEN_EPOCH)
    assert context.seed_signature == signature
    assert context.scope == "20240102/us-east-1/s3/aws4_request"
    assert context.payload_mode is sigv4.PayloadMode.SHA256


def test_spec_9_4_canonical_query_is_sorted() -> None:
    raw = b"list-type=2&prefix=a%2F&delimiter=%2F&encoding-type=url"
    assert sigv4.canonical_query(raw) == "delimiter=%2F&encoding-type=url&list-type=2&prefix=a%2F"


def test_spec_9_4_raw_query_signature_is_rejected() -> None:
    # Upstream Jay's signature over the raw query is not a valid AWS signature.
    sig = "34f4205a684b94229351c067ea996f94c93d9b30e47b8836cb4c5b9089d2d3e3"
    query = b"list-type=2&prefix=a%2F&delimiter=%2F&encoding-type=url"
    parsed = sigv4.parse_header_request("GET", b"/photos", query, _vector_request(b"", b"", sig))
    with pytest.raises(SignatureDoesNotMatch):
        sigv4.verify(parsed, SECRET, now=FROZEN_EPOCH)


# --- AWS's published streaming example ---------------------------------------------------------

AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
AWS_SEED = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
AWS_CHUNK_SIGNATURES = [
    "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
    "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
    "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
]


def aws_streaming_request() -> sigv4.ParsedRequest:
    headers = [
        ("Host", "s3.amazonaws.com"),
        ("x-amz-date", "20130524T000000Z"),
        ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
        ("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
        ("Content-Encoding", "aws-chunked"),
        ("x-amz-decoded-content-length", "66560"),
        ("Content-Length", "66824"),
        (
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
            "SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;"
            f"x-amz-decoded-content-length;x-amz-storage-class,Signature={AWS_SEED}",
        ),
    ]
    return sigv4.parse_header_request("PUT", "/examplebucket/chunkObject.txt", "", headers)


def test_aws_streaming_example_seed_and_chunk_signatures() -> None:
    parsed = aws_streaming_request()
    context = sigv4.verify(parsed, AWS_SECRET, now=parsed.request_time)
    assert context.payload_mode is sigv4.PayloadMode.STREAMING_SIGNED
    previous = context.seed_signature
    for data, expected in zip([b"a" * 65536, b"a" * 1024, b""], AWS_CHUNK_SIGNATURES, strict=True):
        previous = context.chunk_signature(previous, hashlib.sha256(data).hexdigest())
        assert previous == expected


def test_aws_trailer_example_signature() -> None:
    # AWS's trailing-header example: seed 106e…, chunks of 65536 and 1024 'a', crc32c trailer.
    key = sigv4.signing_key(AWS_SECRET, "20130524", "us-east-1", "s3")
    scope = "20130524/us-east-1/s3/aws4_request"
    previous = "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e"
    for data in (b"a" * 65536, b"a" * 1024, b""):
        previous = sigv4.chunk_signature(
            key, "20130524T000000Z", scope, previous, hashlib.sha256(data).hexdigest()
        )
    assert previous == "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992"
    trailer = sigv4.trailer_signature(
        key, "20130524T000000Z", scope, previous, b"x-amz-checksum-crc32c:sOO8/Q==\n"
    )
    assert trailer == "d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435"


# --- real botocore client requests (awscrt signer) ---------------------------------------------

KEYS = ["plain.txt", "dir/my file.txt", "a+b.txt", "100%.txt", "ünï/cödé ✓.bin", "x=y&z?.txt"]


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.list_buckets(),
        lambda c: c.list_objects_v2(Bucket="photos", Prefix="a/", Delimiter="/"),
        lambda c: c.list_objects_v2(Bucket="photos", Prefix="a b+c/%ü", StartAfter="x y"),
        lambda c: c.create_multipart_upload(Bucket="b", Key="big file+.bin"),
        lambda c: c.upload_part(Bucket="b", Key="k", UploadId="u/1+2=3", PartNumber=1, Body=b"x"),
        lambda c: c.list_parts(Bucket="b", Key="k", UploadId="abc", MaxParts=5),
        lambda c: c.get_bucket_location(Bucket="b"),
        lambda c: c.delete_objects(Bucket="b", Delete={"Objects": [{"Key": "a"}]}),
        lambda c: c.get_object(Bucket="b", Key="k", Range="bytes=0-1", ResponseContentType="a/b"),
        lambda c: c.put_object(Bucket="b", Key="k", Body=b"hello", Metadata={"m": "  a   b  "}),
    ],
)
def test_botocore_client_requests_verify(client: Any, call: Any) -> None:
    cap = capture(client, call)
    context = verify_captured(cap)
    assert context.amz_date == "20240102T030405Z"


@pytest.mark.parametrize("key", KEYS)
def test_botocore_keys_verify(client: Any, key: str) -> None:
    cap = capture(client, lambda c: c.head_object(Bucket="bucket", Key=key))
    verify_captured(cap)


def test_wrong_secret_is_signature_mismatch(client: Any) -> None:
    cap = capture(client, lambda c: c.get_object(Bucket="b", Key="k"))
    with pytest.raises(SignatureDoesNotMatch):
        verify_captured(cap, secret="not-the-secret")


def test_empty_secret_is_signature_mismatch(client: Any) -> None:
    cap = capture(client, lambda c: c.get_object(Bucket="b", Key="k"))
    with pytest.raises(SignatureDoesNotMatch):
        verify_captured(cap, secret="")


def test_tampered_signed_header_fails(client: Any) -> None:
    cap = capture(client, lambda c: c.get_object(Bucket="b", Key="k", Range="bytes=0-1"))
    headers = [(n, b"bytes=0-99" if n.lower() == b"range" else v) for n, v in cap.headers]
    with pytest.raises(SignatureDoesNotMatch):
        verify_captured(Captured(cap.method, cap.raw_path, cap.raw_query, headers, b"", cap.url))


def test_unsigned_header_may_change(client: Any) -> None:
    cap = capture(client, lambda c: c.get_object(Bucket="b", Key="k"))
    headers = [(n, b"curl/8" if n.lower() == b"user-agent" else v) for n, v in cap.headers]
    verify_captured(Captured(cap.method, cap.raw_path, cap.raw_query, headers, b"", cap.url))


@pytest.mark.parametrize(
    ("path", "query"),
    [
        (None, b"list-type=2&prefix=b%2F&delimiter=%2F"),
        (None, b"list-type=2&prefix=a%2F"),
        (b"/photos2", None),
    ],
)
def test_tampered_query_or_path_fails(client: Any, path: bytes | None, query: bytes | None) -> None:
    cap = capture(client, lambda c: c.list_objects_v2(Bucket="photos", Prefix="a/", Delimiter="/"))
    tampered = Captured(
        cap.method, path or cap.raw_path, query or cap.raw_query, cap.headers, b"", cap.url
    )
    with pytest.raises(SignatureDoesNotMatch):
        verify_captured(tampered)


def test_tampered_method_fails(client: Any) -> None:
    cap = capture(client, lambda c: c.get_object(Bucket="b", Key="k"))
    with pytest.raises(SignatureDoesNotMatch):
        verify_captured(Captured("DELETE", cap.raw_path, cap.raw_query, cap.headers, b"", cap.url))


@pytest.mark.parametrize("offset", [-901, 901, 3600 * 24])
def test_skew_is_rejected(client: Any, offset: int) -> None:
    cap = capture(client, lambda c: c.list_buckets())
    with pytest.raises(RequestTimeTooSkewed):
        verify_captured(cap, now=FROZEN_EPOCH + offset)


@pytest.mark.parametrize("offset", [-900, 0, 900])
def test_skew_within_15_minutes_is_accepted(client: Any, offset: int) -> None:
    verify_captured(capture(client, lambda c: c.list_buckets()), now=FROZEN_EPOCH + offset)


def test_expected_region_is_enforced(client: Any) -> None:
    cap = capture(client, lambda c: c.list_buckets())
    parsed = sigv4.parse_header_request(cap.method, cap.raw_path, cap.raw_query, cap.headers)
    sigv4.verify(parsed, SECRET, now=FROZEN_EPOCH, expected_region="us-east-1")
    with pytest.raises(AuthorizationHeaderMalformed, match="region"):
        sigv4.verify(parsed, SECRET, now=FROZEN_EPOCH, expected_region="eu-west-1")


def test_https_put_is_streaming_unsigned_trailer(monkeypatch: pytest.MonkeyPatch) -> None:
    with frozen_botocore(monkeypatch):
        cap = capture(
            make_client("https://localhost:9000"),
            lambda c: c.put_object(Bucket="b", Key="k", Body=b"hello"),
        )
    context = verify_captured(cap)
    assert context.payload_mode is sigv4.PayloadMode.STREAMING_UNSIGNED_TRAILER
    assert cap.body == b"5\r\nhello\r\n0\r\nx-amz-checksum-crc32:NhCmhg==\r\n\r\n"


# --- pure-Python botocore signers --------------------------------------------------------------


def _python_signed(
    monkeypatch: pytest.MonkeyPatch, auth: Any, method: str, url: str, headers: dict[str, str]
) -> Captured:
    request = AWSRequest(method=method, url=url, headers=headers, data=b"")
    with frozen_botocore(monkeypatch):
        auth.add_auth(request)
    raw_path, raw_query = split_url(request.url)
    pairs = [(b"Host", b"localhost:9000")]
    pairs += [(k.encode(), v.encode("utf-8")) for k, v in request.headers.items()]
    return Captured(method, raw_path, raw_query, pairs, b"", request.url)


CREDS = Credentials(ACCESS_KEY, SECRET)


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:9000/b/k?uploads",
        "http://localhost:9000/b/k?uploadId=abc%2Fdef&partNumber=1",
        "http://localhost:9000/b?location",
        "http://localhost:9000/b?list-type=2&prefix=a%20b%2Bc%25&delimiter=%2F",
        "http://localhost:9000/b/my%20file%2B%C3%BC.txt?versionId=x&acl",
    ],
)
def test_python_s3_sigv4_auth(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    cap = _python_signed(
        monkeypatch, botocore.auth.S3SigV4Auth(CREDS, "s3", "us-east-1"), "PUT", url, {}
    )
    verify_captured(cap)


def test_python_signer_with_date_header_and_folded_values(monkeypatch: pytest.MonkeyPatch) -> None:
    # A request that already has Date is stamped with Date (RFC 1123) instead of X-Amz-Date.
    headers = {"Date": "x", "x-amz-meta-note": "  two   spaces\there  "}
    cap = _python_signed(
        monkeypatch,
        botocore.auth.S3SigV4Auth(CREDS, "s3", "us-east-1"),
        "GET",
        "http://localhost:9000/b/k",
        headers,
    )
    assert not any(name.lower() == b"x-amz-date" for name, _ in cap.headers)
    verify_captured(cap)


def test_repeated_headers_are_joined() -> None:
    headers = [(b"host", b"h"), (b"x-amz-meta-a", b" 1 "), (b"x-amz-meta-a", b"2  3")]
    block = sigv4.canonical_headers(headers, ("host", "x-amz-meta-a"))
    assert block == b"host:h\nx-amz-meta-a:1,2 3\n"


# --- presigned SigV4 -----------------------------------------------------------------------------


def presigned(monkeypatch: pytest.MonkeyPatch, call: Any) -> tuple[bytes, bytes]:
    with frozen_botocore(monkeypatch):
        # Without signature_version botocore presigns S3 URLs with SigV2.
        url = call(make_client(signature_version="s3v4"))
    return split_url(url)


def verify_presigned(
    path: bytes, query: bytes, method: str = "GET", now: float = FROZEN_EPOCH + 10
) -> sigv4.SigningContext:
    assert sigv4.has_presigned_query(query)
    parsed = sigv4.parse_presigned_request(method, path, query, [(b"Host", b"localhost:9000")])
    assert parsed.access_key == ACCESS_KEY
    return sigv4.verify_presigned_request(parsed, SECRET, now=now)


@pytest.mark.parametrize("key", KEYS)
def test_presigned_get_from_botocore(monkeypatch: pytest.MonkeyPatch, key: str) -> None:
    path, query = presigned(
        monkeypatch,
        lambda c: c.generate_presigned_url(
            "get_object", Params={"Bucket": "b", "Key": key}, ExpiresIn=300
        ),
    )
    context = verify_presigned(path, query)
    assert context.payload_mode is sigv4.PayloadMode.UNSIGNED


def test_presigned_upload_part_and_put(monkeypatch: pytest.MonkeyPatch) -> None:
    path, query = presigned(
        monkeypatch,
        lambda c: c.generate_presigned_url(
            "upload_part",
            Params={"Bucket": "b", "Key": "k", "UploadId": "u+1", "PartNumber": 2},
            ExpiresIn=60,
        ),
    )
    verify_presigned(path, query, method="PUT")
    with pytest.raises(SignatureDoesNotMatch):
        verify_presigned(path, query, method="GET")


def test_presigned_python_signer(monkeypatch: pytest.MonkeyPatch) -> None:
    request = AWSRequest(method="GET", url="http://localhost:9000/b/a%20b?versionId=1", data=b"")
    with frozen_botocore(monkeypatch):
        botocore.auth.S3SigV4QueryAuth(CREDS, "s3", "us-east-1", expires=120).add_auth(request)
    path, query = split_url(request.url)
    verify_presigned(path, query)
    with pytest.raises(AccessDenied, match="Request has expired"):
        verify_presigned(path, query, now=FROZEN_EPOCH + 121)


def test_presigned_expired_and_tampered(monkeypatch: pytest.MonkeyPatch) -> None:
    path, query = presigned(
        monkeypatch,
        lambda c: c.generate_presigned_url(
            "get_object", Params={"Bucket": "b", "Key": "k"}, ExpiresIn=300
        ),
    )
    verify_presigned(path, query, now=FROZEN_EPOCH + 300)
    with pytest.raises(AccessDenied, match="Request has expired"):
        verify_presigned(path, query, now=FROZEN_EPOCH + 301)
    with pytest.raises(AccessDenied, match="not yet valid"):
        verify_presigned(path, query, now=FROZEN_EPOCH - 3600)
    with pytest.raises(SignatureDoesNotMatch):
        verify_presigned(path.replace(b"/k", b"/j"), query)
    with pytest.raises(SignatureDoesNotMatch):
        verify_presigned(path, query.replace(b"X-Amz-Expires=300", b"X-Amz-Expires=299"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ((b"X-Amz-Expires=300", b"X-Amz-Expires=604801"), "604800"),
        ((b"X-Amz-Expires=300", b"X-Amz-Expires=0"), "604800"),
        ((b"X-Amz-Expires=300", b"X-Amz-Expires=abc"), "number"),
        ((b"X-Amz-Algorithm=AWS4-HMAC-SHA256", b"X-Amz-Algorithm=AWS4-HMAC-SHA1"), "Algorithm"),
        ((b"X-Amz-Date=20240102T030405Z", b"X-Amz-Date=20240103T030405Z"), "credential date"),
        ((b"&X-Amz-SignedHeaders=host", b""), "X-Amz-SignedHeaders"),
    ],
)
def test_presigned_malformed(
    monkeypatch: pytest.MonkeyPatch, change: tuple[bytes, bytes], message: str
) -> None:
    path, query = presigned(
        monkeypatch,
        lambda c: c.generate_presigned_url(
            "get_object", Params={"Bucket": "b", "Key": "k"}, ExpiresIn=300
        ),
    )
    assert change[0] in query
    with pytest.raises(AuthorizationQueryParametersError, match=message):
        verify_presigned(path, query.replace(*change))


# --- parsing ---------------------------------------------------------------------------------------

GOOD = (
    "AWS4-HMAC-SHA256 Credential=AK/20240102/us-east-1/s3/aws4_request, "
    "SignedHeaders=host;x-amz-date, Signature=" + "a" * 64
)


def test_parse_authorization_header() -> None:
    parsed = sigv4.parse_authorization_header(GOOD)
    assert parsed.credential == sigv4.Credential("AK", "20240102", "us-east-1", "s3")
    assert parsed.signed_headers == ("host", "x-amz-date")
    assert parsed.signature == "a" * 64
    compact = GOOD.replace(", ", ",")
    assert sigv4.parse_authorization_header(compact.encode()) == parsed


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("AWS4-HMAC-SHA256Credential=x", "must start"),
        ("Bearer abc", "must start"),
        (GOOD.replace("Signature=", "Sig="), "missing Signature"),
        (GOOD.replace("SignedHeaders=host;x-amz-date", "SignedHeaders=x-amz-date"), "host"),
        (GOOD.replace("a" * 64, "A" * 64), "64 lower-case hex"),
        (GOOD.replace("a" * 64, "a" * 63), "64 lower-case hex"),
        (GOOD.replace("20240102", "2024012"), "YYYYMMDD"),
        (GOOD.replace("/s3/", "/ec2/"), "service"),
        (GOOD.replace("aws4_request", "aws5_request"), "aws4_request"),
        (GOOD.replace("AK/20240102/", "AK/"), "YYYYMMDD"),
        (GOOD.replace("/us-east-1/s3/aws4_request", "/us-east-1"), "Credential must be"),
        (GOOD.replace("Credential=AK", "Credential=/AK"), "Credential must be"),
        (GOOD + ", Signature=" + "b" * 64, "repeats"),
        (GOOD + ", Junk", "no '='"),
    ],
)
def test_malformed_authorization_header(header: str, message: str) -> None:
    with pytest.raises(AuthorizationHeaderMalformed, match=message):
        sigv4.parse_authorization_header(header)


def _headers(date_name: str, date_value: str) -> list[tuple[str, str]]:
    return [("Host", "h"), (date_name, date_value), ("Authorization", GOOD)]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("X-Amz-Date", "20240102T030405Z"),
        ("Date", "Tue, 02 Jan 2024 03:04:05 GMT"),
        ("Date", "Tue, 02 Jan 2024 05:04:05 +0200"),
        ("X-Amz-Date", "Mon, 01 Jan 2024 22:04:05 -0500"),
    ],
)
def test_request_time_formats(name: str, value: str) -> None:
    parsed = sigv4.parse_header_request("GET", "/", "", _headers(name, value))
    assert parsed.request_time == FROZEN_EPOCH
    assert parsed.amz_date == "20240102T030405Z"


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ([("Host", "h"), ("Authorization", GOOD)], "neither X-Amz-Date nor Date"),
        (_headers("X-Amz-Date", "2024-01-02T03:04:05Z"), "not valid"),
        (_headers("X-Amz-Date", "20240230T030405Z"), "not valid"),
        (_headers("X-Amz-Date", "20240103T030405Z"), "credential date"),
        ([("Host", "h"), ("X-Amz-Date", "20240102T030405Z")], "exactly one Authorization"),
    ],
)
def test_malformed_request(headers: list[tuple[str, str]], message: str) -> None:
    with pytest.raises(AuthorizationHeaderMalformed, match=message):
        sigv4.parse_header_request("GET", "/", "", headers)


def test_payload_modes() -> None:
    assert sigv4.parse_payload_mode("UNSIGNED-PAYLOAD") is sigv4.PayloadMode.UNSIGNED
    assert sigv4.parse_payload_mode(sigv4.EMPTY_SHA256) is sigv4.PayloadMode.SHA256
    for mode in (
        sigv4.PayloadMode.STREAMING_SIGNED,
        sigv4.PayloadMode.STREAMING_SIGNED_TRAILER,
        sigv4.PayloadMode.STREAMING_UNSIGNED_TRAILER,
    ):
        assert sigv4.parse_payload_mode(mode.value) is mode
        assert mode.is_aws_chunked
    with pytest.raises(InvalidArgument):
        sigv4.parse_payload_mode("abc")
    with pytest.raises(InvalidArgument):
        sigv4.parse_payload_mode(sigv4.EMPTY_SHA256.upper())
    with pytest.raises(NotImplementedOperation):
        sigv4.parse_payload_mode("STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD")


def test_missing_content_sha256_means_unsigned() -> None:
    parsed = sigv4.parse_header_request("GET", "/", "", _headers("X-Amz-Date", "20240102T030405Z"))
    assert parsed.payload_mode is sigv4.PayloadMode.UNSIGNED
    assert parsed.payload_hash == "UNSIGNED-PAYLOAD"


# --- canonicalisation details ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"", ""),
        (b"uploads", "uploads="),
        (b"uploadId=abc&partNumber=1", "partNumber=1&uploadId=abc"),
        (b"b=2&a=3&a=1", "a=1&a=3&b=2"),
        (b"prefix=a%20b&x=%7e%2f", "prefix=a%20b&x=~%2F"),
        (b"p=caf\xc3\xa9 x", "p=caf%C3%A9%20x"),  # sent unencoded: encoded per RFC 3986
        (b"k=a+b", "k=a%2Bb"),  # '+' is literal in SigV4
        (b"k=100%", "k=100%25"),  # a lone '%' is literal
    ],
)
def test_canonical_query(raw: bytes, expected: str) -> None:
    assert sigv4.canonical_query(raw) == expected


def test_plus_has_a_form_fallback() -> None:
    assert sigv4.canonical_query_candidates(b"k=a+b") == ["k=a%2Bb", "k=a%20b"]
    assert sigv4.canonical_query_candidates(b"k=a%2Bb") == ["k=a%2Bb"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"", ["/"]),
        (b"/b/my%20file%2Bx.txt", ["/b/my%20file%2Bx.txt"]),
        (b"/b/a//b/../c", ["/b/a//b/../c"]),  # S3: no normalisation
        (b"/b/my file", ["/b/my%20file"]),
        (b"/b/\xc3\xbc", ["/b/%C3%BC"]),
        (b"/b/a=b!", ["/b/a=b!", "/b/a%3Db%21"]),
        (b"/b/100%", ["/b/100%25"]),
    ],
)
def test_canonical_uri(raw: bytes, expected: list[str]) -> None:
    assert sigv4.canonical_uri_candidates(raw) == expected


def test_signing_key_matches_botocore() -> None:
    signer = botocore.auth.SigV4Auth(CREDS, "s3", "us-east-1")
    k = signer._sign(("AWS4" + SECRET).encode(), "20240102")
    for part in ("us-east-1", "s3", "aws4_request"):
        k = signer._sign(k, part)
    assert sigv4.signing_key(SECRET, "20240102", "us-east-1", "s3") == k


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("method", ["head_object", "get_object", "delete_object"])
def test_first_form_shortcut_agrees_with_the_general_loop(
    client: Any, key: str, method: str
) -> None:
    # verify() tries the usual form with one join before the general loop: it must accept
    # exactly what the loop's first form accepts, and leave every other request to the loop.
    cap = capture(client, lambda c: getattr(c, method)(Bucket="bucket", Key=key))
    parsed = sigv4.parse_header_request(cap.method, cap.raw_path, cap.raw_query, cap.headers)
    signing_key = sigv4.signing_key(SECRET, parsed.credential.date, parsed.credential.region)
    scope = parsed.credential.scope
    first = sigv4.canonical_requests(parsed)[0]
    by_loop = sigv4.sign(signing_key, sigv4.string_to_sign(parsed.amz_date, scope, first))
    for signature in (parsed.signature, "0" * 64):
        shortcut = sigv4._matches_first_form(parsed, signing_key, scope, signature.encode())
        is_plain = sigv4._PLAIN_PATH.fullmatch(parsed.raw_path) is not None
        assert shortcut == (is_plain and not parsed.raw_query and by_loop == signature)
    assert by_loop == parsed.signature  # botocore signed the first form
