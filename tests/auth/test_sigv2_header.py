"""SigV2 header authentication (``Authorization: AWS id:signature``), as s3cmd and botocore's
HmacV1Auth send it."""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
from urllib.parse import urlsplit

import pytest
from botocore.auth import HmacV1Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from jay.auth import presign
from jay.errors import AccessDenied, RequestTimeTooSkewed, SignatureDoesNotMatch

KEY = "seed-token-0001"
SECRET = "s3cr3t-" + "y" * 33


def botocore_signed(
    method: str, url: str, headers: dict[str, str] | None = None, secret: str = SECRET
) -> tuple[bytes, bytes, list[tuple[bytes, bytes]], float]:
    request = AWSRequest(method=method, url=url, headers=headers or {})
    HmacV1Auth(Credentials(KEY, secret)).add_auth(request)
    split = urlsplit(url)
    pairs = [
        (k.encode(), v.encode() if isinstance(v, str) else v) for k, v in request.headers.items()
    ]
    now = email.utils.parsedate_to_datetime(request.headers["Date"]).timestamp()
    return split.path.encode(), split.query.encode(), pairs, now


def verify(
    method: str, path: bytes, query: bytes, headers, now: float, **kw
) -> presign.SigV2Header:
    parsed = presign.parse_sigv2_header(method, path, query, headers, **kw)
    presign.verify_sigv2_header(parsed, SECRET, now=now)
    return parsed


@pytest.mark.parametrize(
    "method,url,headers",
    [
        ("GET", "http://h/", {}),
        ("GET", "http://h/bucket/some%20key", {}),
        ("PUT", "http://h/bucket/k", {"Content-Type": "text/plain", "Content-MD5": "abc=="}),
        ("PUT", "http://h/b/k?partNumber=2&uploadId=u-1", {"x-amz-meta-a": "1"}),
        ("POST", "http://h/b/k?uploads", {}),
        ("GET", "http://h/b?list-type=2&prefix=a&location", {}),
        ("DELETE", "http://h/b?delete", {"X-Amz-Meta-Two": "x", "x-amz-acl": "private"}),
    ],
)
def test_botocore_hmacv1_is_accepted(method: str, url: str, headers: dict[str, str]) -> None:
    path, query, pairs, now = botocore_signed(method, url, headers)
    parsed = verify(method, path, query, pairs, now + 60)
    assert parsed.access_key == KEY


def test_x_amz_date_empties_the_date_slot_and_sets_the_request_time() -> None:
    # s3cmd's shape: no Date header, x-amz-date signed among the x-amz-* headers.
    amz_date = "Fri, 27 Nov 2026 16:39:35 +0000"
    to_sign = f"GET\n\n\n\nx-amz-date:{amz_date}\n/s3c/"
    signature = base64.b64encode(
        hmac.new(SECRET.encode(), to_sign.encode(), hashlib.sha1).digest()
    ).decode()
    headers = [
        (b"x-amz-date", amz_date.encode()),
        (b"Authorization", f"AWS {KEY}:{signature}".encode()),
    ]
    when = email.utils.parsedate_to_datetime(amz_date).timestamp()
    parsed = verify("GET", b"/s3c/", b"", headers, when)
    assert parsed.request_time == when
    with pytest.raises(RequestTimeTooSkewed):
        verify("GET", b"/s3c/", b"", headers, when + 15 * 60 + 1)
    with pytest.raises(RequestTimeTooSkewed):
        verify("GET", b"/s3c/", b"", headers, when - 15 * 60 - 1)
    verify("GET", b"/s3c/", b"", headers, when - 15 * 60)


def test_s3cmd_escaped_subresource_values_are_accepted() -> None:
    # s3cmd signs sub-resource values escaped, as they are on the wire.
    amz_date = "Fri, 27 Nov 2026 16:39:35 +0000"
    to_sign = f"PUT\n\n\n\nx-amz-date:{amz_date}\n/b/k?partNumber=1&uploadId=a%2Bb"
    signature = base64.b64encode(
        hmac.new(SECRET.encode(), to_sign.encode(), hashlib.sha1).digest()
    ).decode()
    headers = [
        (b"x-amz-date", amz_date.encode()),
        (b"Authorization", f"AWS {KEY}:{signature}".encode()),
    ]
    when = email.utils.parsedate_to_datetime(amz_date).timestamp()
    verify("PUT", b"/b/k", b"uploadId=a%2Bb&partNumber=1", headers, when)


def test_virtual_host_bucket_is_part_of_the_resource() -> None:
    path, query, pairs, now = botocore_signed("GET", "http://h/vbucket/obj")
    with pytest.raises(SignatureDoesNotMatch):
        verify("GET", b"/obj", query, pairs, now)
    verify("GET", b"/obj", query, pairs, now, virtual_host_bucket="vbucket")


def test_wrong_secret_tampering_and_skew() -> None:
    path, query, pairs, now = botocore_signed("GET", "http://h/b/k", secret="other")
    with pytest.raises(SignatureDoesNotMatch):
        verify("GET", path, query, pairs, now)
    path, query, pairs, now = botocore_signed("GET", "http://h/b/k")
    with pytest.raises(SignatureDoesNotMatch):
        verify("DELETE", path, query, pairs, now)
    with pytest.raises(SignatureDoesNotMatch):
        verify("GET", b"/b/other", query, pairs, now)
    with pytest.raises(RequestTimeTooSkewed):
        verify("GET", path, query, pairs, now + 3600)
    parsed = presign.parse_sigv2_header("GET", path, query, pairs)
    with pytest.raises(SignatureDoesNotMatch):
        presign.verify_sigv2_header(parsed, "", now=now)


@pytest.mark.parametrize(
    "headers",
    [
        [(b"Authorization", b"AWS nocolon")],
        [(b"Authorization", b"AWS :sig"), (b"Date", b"Fri, 27 Nov 2026 16:39:35 GMT")],
        [(b"Authorization", b"AWS id:sig")],  # no Date, no x-amz-date
        [(b"Authorization", b"AWS id:sig"), (b"Date", b"yesterday")],
    ],
)
def test_malformed_headers_are_access_denied(headers: list[tuple[bytes, bytes]]) -> None:
    with pytest.raises(AccessDenied):
        presign.parse_sigv2_header("GET", b"/", b"", headers)


def test_a_bucket_path_signed_with_its_trailing_slash() -> None:
    """botocore signs a path-style bucket request "/bucket" as "/bucket/" (its auth_path);
    a key's path gets no such second reading."""
    date = "Sat, 28 Nov 2026 15:49:57 GMT"
    when = email.utils.parsedate_to_datetime(date).timestamp()

    def signed(resource: str) -> list[tuple[bytes, bytes]]:
        to_sign = f"PUT\n\n\n{date}\n{resource}"
        signature = base64.b64encode(
            hmac.new(SECRET.encode(), to_sign.encode(), hashlib.sha1).digest()
        ).decode()
        return [(b"Date", date.encode()), (b"Authorization", f"AWS {KEY}:{signature}".encode())]

    verify("PUT", b"/newbucket", b"", signed("/newbucket/"), when)
    verify("PUT", b"/newbucket", b"", signed("/newbucket"), when)
    with pytest.raises(SignatureDoesNotMatch):
        verify("PUT", b"/newbucket/k", b"", signed("/newbucket/k/"), when)
