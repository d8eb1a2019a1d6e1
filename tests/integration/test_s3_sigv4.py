"""SigV4 over a real socket: requests signed by botocore's signer, then bent on purpose.

Every rejection carries its own S3 code, and the server keeps serving afterwards.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import itertools
import urllib.parse
import zlib
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from jay.auth import sigv4
from tests.integration.conftest import SEED_SECRET, SEED_TOKEN_ID, s3_client
from tests.integration.jayproc import JayProcess

REGION = "us-east-1"
_names = itertools.count()


pytestmark = pytest.mark.usefixtures("server_log_is_clean")


@pytest.fixture
def bucket(s3) -> Iterator[str]:
    name = f"sig-{next(_names)}"
    s3.create_bucket(Bucket=name)
    yield name


@contextlib.contextmanager
def signing_time(when: datetime) -> Iterator[None]:
    """Make botocore sign as if it were ``when``: its Python signer and the awscrt one."""

    def fake_now(remove_tzinfo: bool = True) -> datetime:
        aware = when.astimezone(UTC)
        return aware.replace(tzinfo=None) if remove_tzinfo else aware

    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch("botocore.auth.get_current_datetime", fake_now))
        try:
            import botocore.crt.auth  # noqa: F401 - present when awscrt is installed
        except ImportError:
            pass
        else:
            stack.enter_context(mock.patch("botocore.crt.auth.get_current_datetime", fake_now))
        yield


def signed(
    jay: JayProcess,
    method: str,
    path: str,
    *,
    query: str = "",
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
    secret: str = SEED_SECRET,
    token_id: str = SEED_TOKEN_ID,
    when: datetime | None = None,
) -> dict[str, str]:
    """Headers botocore's S3 signer produces for this request (at ``when``, default now)."""
    url = jay.s3_url + path + ("?" + query if query else "")
    all_headers = dict(headers or {})
    # SigV4Auth signs the x-amz-content-sha256 it is given (S3SigV4Auth would replace it).
    if not any(name.lower() == "x-amz-content-sha256" for name in all_headers):
        all_headers["x-amz-content-sha256"] = hashlib.sha256(body).hexdigest()
    request = AWSRequest(method=method, url=url, data=body, headers=all_headers)
    signer = SigV4Auth(Credentials(token_id, secret), "s3", REGION)
    with signing_time(when or datetime.now(UTC)):
        signer.add_auth(request)
    return {k: (v.decode() if isinstance(v, bytes) else v) for k, v in request.headers.items()}


def send(
    jay: JayProcess,
    method: str,
    path: str,
    *,
    query: str = "",
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", jay.s3_port, timeout=10)
    try:
        conn.request(
            method, path + ("?" + query if query else ""), body=body, headers=dict(headers or {})
        )
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def error_code(body: bytes) -> str:
    start, end = body.find(b"<Code>"), body.find(b"</Code>")
    return body[start + 6 : end].decode() if start >= 0 and end > start else ""


def assert_still_serving(s3, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="alive", Body=b"yes")
    assert s3.get_object(Bucket=bucket, Key="alive")["Body"].read() == b"yes"


def test_botocore_signature_is_accepted(jay: JayProcess, bucket: str) -> None:
    headers = signed(jay, "PUT", f"/{bucket}/ok", body=b"signed")
    assert send(jay, "PUT", f"/{bucket}/ok", body=b"signed", headers=headers)[0] == 200
    query = "list-type=2&prefix=o&delimiter=%2F&encoding-type=url"
    headers = signed(jay, "GET", f"/{bucket}", query=query)
    status, _, body = send(jay, "GET", f"/{bucket}", query=query, headers=headers)
    assert status == 200
    assert b"<Key>ok</Key>" in body


def test_wrong_secret_is_signature_does_not_match(jay: JayProcess, bucket: str, s3) -> None:
    bad = s3_client(jay, secret="not-the-secret")
    with pytest.raises(ClientError) as err:
        bad.put_object(Bucket=bucket, Key="x", Body=b"x")
    assert err.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="x")
    assert_still_serving(s3, bucket)


def test_unknown_access_key(jay: JayProcess, bucket: str, s3) -> None:
    stranger = s3_client(jay, token_id="no-such-token")
    with pytest.raises(ClientError) as err:
        stranger.list_objects_v2(Bucket=bucket)
    assert err.value.response["Error"]["Code"] == "InvalidAccessKeyId"
    assert_still_serving(s3, bucket)


def test_tampered_signed_header(jay: JayProcess, bucket: str, s3) -> None:
    headers = signed(jay, "PUT", f"/{bucket}/meta", body=b"m", headers={"x-amz-meta-owner": "ann"})
    headers["x-amz-meta-owner"] = "eve"
    status, _, body = send(jay, "PUT", f"/{bucket}/meta", body=b"m", headers=headers)
    assert (status, error_code(body)) == (403, "SignatureDoesNotMatch")
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="meta")
    assert_still_serving(s3, bucket)


def test_tampered_body_is_content_sha256_mismatch(jay: JayProcess, bucket: str, s3) -> None:
    headers = signed(jay, "PUT", f"/{bucket}/body", body=b"original")
    status, _, body = send(jay, "PUT", f"/{bucket}/body", body=b"tampered", headers=headers)
    assert status == 400
    assert error_code(body) == "XAmzContentSHA256Mismatch"
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="body")
    assert_still_serving(s3, bucket)


def test_tampered_query(jay: JayProcess, bucket: str, s3) -> None:
    s3.put_object(Bucket=bucket, Key="a1", Body=b"")
    headers = signed(jay, "GET", f"/{bucket}", query="list-type=2&prefix=a")
    status, _, body = send(jay, "GET", f"/{bucket}", query="list-type=2&prefix=b", headers=headers)
    assert (status, error_code(body)) == (403, "SignatureDoesNotMatch")
    # An unsigned parameter cannot be slipped in either.
    status, _, body = send(
        jay, "GET", f"/{bucket}", query="list-type=2&prefix=a&max-keys=1", headers=headers
    )
    assert (status, error_code(body)) == (403, "SignatureDoesNotMatch")
    status, _, body = send(jay, "GET", f"/{bucket}", query="list-type=2&prefix=a", headers=headers)
    assert status == 200 and b"<Key>a1</Key>" in body


def test_clock_skew(jay: JayProcess, bucket: str, s3) -> None:
    past = datetime.now(UTC) - timedelta(minutes=20)
    headers = signed(jay, "GET", f"/{bucket}", query="list-type=2", when=past)
    status, _, body = send(jay, "GET", f"/{bucket}", query="list-type=2", headers=headers)
    assert (status, error_code(body)) == (403, "RequestTimeTooSkewed")
    future = datetime.now(UTC) + timedelta(minutes=20)
    headers = signed(jay, "GET", f"/{bucket}", query="list-type=2", when=future)
    status, _, body = send(jay, "GET", f"/{bucket}", query="list-type=2", headers=headers)
    assert (status, error_code(body)) == (403, "RequestTimeTooSkewed")
    # Inside the 15-minute window is fine.
    near = datetime.now(UTC) - timedelta(minutes=10)
    headers = signed(jay, "GET", f"/{bucket}", query="list-type=2", when=near)
    assert send(jay, "GET", f"/{bucket}", query="list-type=2", headers=headers)[0] == 200
    assert_still_serving(s3, bucket)


def test_expired_presigned_url(jay: JayProcess, bucket: str, s3) -> None:
    s3.put_object(Bucket=bucket, Key="p", Body=b"presigned")
    s3v4 = s3_client(jay, signature_version="s3v4")
    two_hours_ago = datetime.now(UTC) - timedelta(hours=2)
    with signing_time(two_hours_ago):
        url = s3v4.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": "p"}, ExpiresIn=60
        )
    parts = urllib.parse.urlsplit(url)
    status, _, body = send(jay, "GET", parts.path, query=parts.query)
    assert (status, error_code(body)) == (403, "AccessDenied")
    assert b"expired" in body.lower()
    fresh = s3v4.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "p"}, ExpiresIn=60
    )
    parts = urllib.parse.urlsplit(fresh)
    assert send(jay, "GET", parts.path, query=parts.query)[2] == b"presigned"


def test_presign_longer_than_seven_days_is_refused(jay: JayProcess, bucket: str, s3) -> None:
    s3.put_object(Bucket=bucket, Key="p", Body=b"x")
    url = s3_client(jay, signature_version="s3v4").generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "p"}, ExpiresIn=604801
    )
    parts = urllib.parse.urlsplit(url)
    status, _, body = send(jay, "GET", parts.path, query=parts.query)
    assert status in (400, 403)
    assert error_code(body) in ("AuthorizationQueryParametersError", "AccessDenied")


def test_malformed_authorization_header(jay: JayProcess, bucket: str, s3) -> None:
    headers = {
        "Authorization": "AWS4-HMAC-SHA256 Credential=broken, SignedHeaders=host, Signature=00",
        "x-amz-date": sigv4.format_amz_date(int(datetime.now(UTC).timestamp())),
        "x-amz-content-sha256": sigv4.EMPTY_SHA256,
    }
    status, _, body = send(jay, "GET", f"/{bucket}", headers=headers)
    assert (status, error_code(body)) == (400, "AuthorizationHeaderMalformed")
    assert_still_serving(s3, bucket)


# --- aws-chunked bodies built by hand ---------------------------------------------------------


def _chunk_frames(
    data: bytes,
    chunk_size: int,
    key: bytes,
    amz_date: str,
    scope: str,
    seed: str,
    *,
    corrupt: int = -1,
) -> bytes:
    frames = []
    previous = seed
    pieces = [data[i : i + chunk_size] for i in range(0, len(data), chunk_size)] + [b""]
    for index, piece in enumerate(pieces):
        signature = sigv4.chunk_signature(
            key, amz_date, scope, previous, hashlib.sha256(piece).hexdigest()
        )
        previous = signature
        if index == corrupt:
            signature = ("0" if signature[0] != "0" else "1") + signature[1:]
        frames.append(b"%x;chunk-signature=%s\r\n%s\r\n" % (len(piece), signature.encode(), piece))
    return b"".join(frames)


def _streaming_put(jay: JayProcess, bucket: str, key: str, data: bytes, *, corrupt: int = -1):
    path = f"/{bucket}/{key}"
    headers = signed(
        jay,
        "PUT",
        path,
        headers={
            "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
            "Content-Encoding": "aws-chunked",
            "x-amz-decoded-content-length": str(len(data)),
        },
    )
    amz_date = headers["X-Amz-Date"]
    seed = headers["Authorization"].rsplit("Signature=", 1)[1]
    scope = f"{amz_date[:8]}/{REGION}/s3/aws4_request"
    key_bytes = sigv4.signing_key(SEED_SECRET, amz_date[:8], REGION)
    body = _chunk_frames(data, 64 * 1024, key_bytes, amz_date, scope, seed, corrupt=corrupt)
    return send(jay, "PUT", path, body=body, headers=headers)


def test_streaming_signed_payload(jay: JayProcess, bucket: str, s3) -> None:
    data = bytes(range(256)) * 1000  # 256000 bytes: three full chunks and a short one
    status, _, body = _streaming_put(jay, bucket, "streamed", data)
    assert status == 200, body
    assert s3.get_object(Bucket=bucket, Key="streamed")["Body"].read() == data
    # aws-chunked is framing, not a stored content encoding.
    assert "ContentEncoding" not in s3.head_object(Bucket=bucket, Key="streamed")


def test_bad_chunk_signature(jay: JayProcess, bucket: str, s3) -> None:
    data = b"z" * 200_000
    status, _, body = _streaming_put(jay, bucket, "badchunk", data, corrupt=2)
    assert (status, error_code(body)) == (403, "SignatureDoesNotMatch")
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="badchunk")
    assert_still_serving(s3, bucket)


def _trailer_body(data: bytes, trailer_name: str, trailer_value: str) -> bytes:
    return b"%x\r\n%s\r\n0\r\n%s:%s\r\n\r\n" % (
        len(data),
        data,
        trailer_name.encode(),
        trailer_value.encode(),
    )


def test_unsigned_payload_with_crc32_trailer(jay: JayProcess, bucket: str, s3) -> None:
    """What botocore sends over HTTPS: STREAMING-UNSIGNED-PAYLOAD-TRAILER with a CRC32 trailer."""
    data = b"hello trailer"
    crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    extra = {
        "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        "Content-Encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(len(data)),
        "x-amz-trailer": "x-amz-checksum-crc32",
        "x-amz-sdk-checksum-algorithm": "CRC32",
    }
    path = f"/{bucket}/trailer"
    headers = signed(jay, "PUT", path, headers=extra)
    status, resp_headers, body = send(
        jay, "PUT", path, body=_trailer_body(data, "x-amz-checksum-crc32", crc), headers=headers
    )
    assert status == 200, body
    assert resp_headers.get("x-amz-checksum-crc32") == crc
    got = s3.get_object(Bucket=bucket, Key="trailer", ChecksumMode="ENABLED")
    assert got["Body"].read() == data
    assert got["ChecksumCRC32"] == crc
    assert "ContentEncoding" not in got
    # A trailer that does not match the body is refused and stores nothing.
    headers = signed(jay, "PUT", f"/{bucket}/trailer2", headers=extra)
    status, _, body = send(
        jay,
        "PUT",
        f"/{bucket}/trailer2",
        body=_trailer_body(data, "x-amz-checksum-crc32", "AAAAAA=="),
        headers=headers,
    )
    assert (status, error_code(body)) == (400, "BadDigest")
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="trailer2")
    assert_still_serving(s3, bucket)


def test_signed_payload_with_signed_trailer(jay: JayProcess, bucket: str, s3) -> None:
    """STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER: signed chunks, then a signed checksum trailer."""
    data = b"t" * 100_000
    crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()

    def put(key: str, trailer_value: str, *, bad_trailer_signature: bool = False):
        path = f"/{bucket}/{key}"
        headers = signed(
            jay,
            "PUT",
            path,
            headers={
                "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
                "Content-Encoding": "aws-chunked",
                "x-amz-decoded-content-length": str(len(data)),
                "x-amz-trailer": "x-amz-checksum-crc32",
            },
        )
        amz_date = headers["X-Amz-Date"]
        scope = f"{amz_date[:8]}/{REGION}/s3/aws4_request"
        key_bytes = sigv4.signing_key(SEED_SECRET, amz_date[:8], REGION)
        previous = headers["Authorization"].rsplit("Signature=", 1)[1]
        frames = []
        for piece in (data[:65536], data[65536:], b""):
            previous = sigv4.chunk_signature(
                key_bytes, amz_date, scope, previous, hashlib.sha256(piece).hexdigest()
            )
            terminator = b"\r\n" if piece else b""
            frames.append(
                b"%x;chunk-signature=%s\r\n%s%s"
                % (len(piece), previous.encode(), piece, terminator)
            )
        trailer = f"x-amz-checksum-crc32:{trailer_value}\n".encode()
        trailer_sig = sigv4.trailer_signature(key_bytes, amz_date, scope, previous, trailer)
        if bad_trailer_signature:
            trailer_sig = "0" * 64
        frames.append(trailer.replace(b"\n", b"\r\n"))
        frames.append(b"x-amz-trailer-signature:%s\r\n\r\n" % trailer_sig.encode())
        return send(jay, "PUT", path, body=b"".join(frames), headers=headers)

    status, resp_headers, body = put("signed-trailer", crc)
    assert status == 200, body
    assert resp_headers.get("x-amz-checksum-crc32") == crc
    assert s3.get_object(Bucket=bucket, Key="signed-trailer")["Body"].read() == data
    status, _, body = put("bad-trailer-sig", crc, bad_trailer_signature=True)
    assert (status, error_code(body)) == (403, "SignatureDoesNotMatch")
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="bad-trailer-sig")
    assert_still_serving(s3, bucket)


def test_broken_chunk_framing(jay: JayProcess, bucket: str, s3) -> None:
    extra = {
        "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        "Content-Encoding": "aws-chunked",
        "x-amz-decoded-content-length": "5",
        "x-amz-trailer": "x-amz-checksum-crc32",
    }
    headers = signed(jay, "PUT", f"/{bucket}/broken", headers=extra)
    status, _, body = send(
        jay, "PUT", f"/{bucket}/broken", body=b"zz-not-hex\r\nhello\r\n", headers=headers
    )
    assert status == 400
    assert error_code(body) in ("InvalidRequest", "IncompleteBody", "InvalidArgument")
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="broken")
    assert_still_serving(s3, bucket)


def _send_headers_only(jay: JayProcess, method: str, path: str, headers: Mapping[str, str]):
    """Send a request's head and no body, then read the response the server gives early."""
    conn = http.client.HTTPConnection("127.0.0.1", jay.s3_port, timeout=10)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def test_declared_size_over_the_limit_is_refused_before_the_body(
    jay: JayProcess, bucket: str, s3
) -> None:
    size = 6 * 1024**3
    headers = signed(
        jay, "PUT", f"/{bucket}/huge", headers={"x-amz-content-sha256": "UNSIGNED-PAYLOAD"}
    )
    headers["Content-Length"] = str(size)
    status, _, body = _send_headers_only(jay, "PUT", f"/{bucket}/huge", headers)
    assert (status, error_code(body)) == (400, "EntityTooLarge")
    assert_still_serving(s3, bucket)


def test_expect_continue_rejected_on_headers(jay: JayProcess, bucket: str, s3) -> None:
    """A bad signature is answered before 100 Continue, so the client never sends the body."""
    headers = signed(
        jay,
        "PUT",
        f"/{bucket}/expect",
        secret="wrong",
        headers={"x-amz-content-sha256": "UNSIGNED-PAYLOAD"},
    )
    headers["Content-Length"] = str(50 * 1024 * 1024)
    headers["Expect"] = "100-continue"
    status, _, body = _send_headers_only(jay, "PUT", f"/{bucket}/expect", headers)
    assert (status, error_code(body)) == (403, "SignatureDoesNotMatch")
    good = signed(
        jay, "PUT", f"/{bucket}/expect", headers={"x-amz-content-sha256": "UNSIGNED-PAYLOAD"}
    )
    good["Expect"] = "100-continue"
    status, _, _ = send(jay, "PUT", f"/{bucket}/expect", body=b"after continue", headers=good)
    assert status == 200
    assert s3.get_object(Bucket=bucket, Key="expect")["Body"].read() == b"after continue"
