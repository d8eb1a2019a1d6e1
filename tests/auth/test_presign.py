"""Jay presigned URLs (JAY_SPEC §3.6, §9.2) and SigV2 query presigns (botocore HmacV1QueryAuth)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.auth import HmacV1QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from jay.auth import presign
from jay.errors import AccessDenied, AuthorizationQueryParametersError, SignatureDoesNotMatch
from tests.auth.botocore_capture import ACCESS_KEY, SECRET, split_url

SIGNING_SECRET = "0123456789abcdef0123456789abcdef"
EXPIRES = 1700000000
NOW = EXPIRES - 60

# --- §9.2 vectors ----------------------------------------------------------------------------

ROW1_SIG = "9d8f5df0dea1d756b854696261711be17c735038f77a0e3c003690c84c90413f"
ROW2_SIG = "06e8d35eca7605c09a7112fb539333205ab78c36f2bfc83a5b52f1e3e83fda58"


def test_vector_row1_string_to_sign_and_signature() -> None:
    sts = presign.jay_string_to_sign("tok-1", "GET", "/photos/a.txt", "", "1700000000")
    assert sts == b"tok-1\nGET\n/photos/a.txt\n\n1700000000"
    assert presign.jay_signature(SIGNING_SECRET, sts) == ROW1_SIG


def test_vector_row2_canonical_query_and_signature() -> None:
    canonical = presign.jay_canonical_query([("prefix", "a b/"), ("list-type", "2")])
    assert canonical == "list-type=2&prefix=a+b%2F"
    sts = presign.jay_string_to_sign("tok-1", "GET", "/photos", canonical, "1700000000")
    assert sts == b"tok-1\nGET\n/photos\nlist-type=2&prefix=a+b%2F\n1700000000"
    assert presign.jay_signature(SIGNING_SECRET, sts) == ROW2_SIG


def test_vector_admin_url() -> None:
    url = presign.generate_jay_url(
        base_url="http://:9000",
        signing_secret=SIGNING_SECRET,
        token_id="tok-1",
        method="GET",
        path="/photos/a.txt",
        expires=EXPIRES,
    )
    assert url == (
        "http://:9000/photos/a.txt?X-Jay-Expires=1700000000&X-Jay-Signature="
        f"{ROW1_SIG}&X-Jay-Token=tok-1"
    )


def _verify(url: str, method: str = "GET", now: float = NOW) -> presign.JayPresign:
    parts = urlsplit(url)
    return presign.verify_jay_url(
        signing_secret=SIGNING_SECRET,
        method=method,
        raw_path=parts.path.encode(),
        raw_query=parts.query.encode(),
        now=now,
    )


def test_vector_row2_url_verifies() -> None:
    url = (
        "http://h/photos?prefix=a+b%2F&list-type=2&X-Jay-Token=tok-1&X-Jay-Expires=1700000000"
        f"&X-Jay-Signature={ROW2_SIG}"
    )
    assert _verify(url) == presign.JayPresign("tok-1", EXPIRES)
    assert presign.has_jay_presign(urlsplit(url).query)


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/photos/my file.txt", ()),
        ("/b/ünï+%.txt", (("versionId", "x y"), ("a", "2"), ("a", "1"))),
        ("/b/k", (("uploadId", "abc/def"), ("partNumber", "3"))),
    ],
)
def test_generated_urls_verify(path: str, query: tuple[tuple[str, str], ...]) -> None:
    url = presign.generate_jay_url(
        base_url="https://s3.example.com/",
        signing_secret=SIGNING_SECRET,
        token_id="tok-1",
        method="PUT",
        path=path,
        expires=EXPIRES,
        query=query,
    )
    assert url.startswith("https://s3.example.com/")
    assert _verify(url, method="PUT").token_id == "tok-1"
    with pytest.raises(AccessDenied, match="Invalid presigned URL"):
        _verify(url, method="GET")


def _row1_url(**replace: str) -> str:
    params = {"X-Jay-Token": "tok-1", "X-Jay-Expires": "1700000000", "X-Jay-Signature": ROW1_SIG}
    params.update(replace)
    query = "&".join(f"{k}={v}" for k, v in params.items() if v != "-")
    return f"http://h/photos/a.txt?{query}"


@pytest.mark.parametrize(
    ("url", "now"),
    [
        (_row1_url(), EXPIRES + 1),  # expired
        (_row1_url(), EXPIRES - 604801),  # more than 7 days ahead
        (_row1_url(**{"X-Jay-Token": "-"}), NOW),
        (_row1_url(**{"X-Jay-Expires": "-"}), NOW),
        (_row1_url(**{"X-Jay-Signature": "-"}), NOW),
        (_row1_url(**{"X-Jay-Expires": "17e8"}), NOW),
        (_row1_url(**{"X-Jay-Token": "tok-2"}), NOW),
        (_row1_url(**{"X-Jay-Signature": ROW1_SIG.upper()}), NOW),
        (_row1_url().replace("a.txt", "b.txt"), NOW),
        (_row1_url() + "&extra=1", NOW),
    ],
)
def test_invalid_jay_urls(url: str, now: float) -> None:
    with pytest.raises(AccessDenied, match="Invalid presigned URL"):
        _verify(url, now=now)


def test_expiry_boundaries() -> None:
    assert _verify(_row1_url(), now=EXPIRES).expires == EXPIRES
    assert _verify(_row1_url(), now=EXPIRES - 604800).expires == EXPIRES


def test_form_escape() -> None:
    assert presign.form_escape("a b/~*é") == "a+b%2F~%2A%C3%A9"


# --- SigV2 query presigns --------------------------------------------------------------------

V2_EXPIRES = 1704164645 + 3600
V2_NOW = V2_EXPIRES - 100


class _FixedExpiry(HmacV1QueryAuth):
    def _get_date(self) -> str:
        return str(V2_EXPIRES)


def sigv2_url(url: str, method: str = "GET", headers: dict[str, str] | None = None) -> str:
    request = AWSRequest(method=method, url=url, headers=headers or {})
    _FixedExpiry(Credentials(ACCESS_KEY, SECRET)).add_auth(request)
    return str(request.url)


def verify_v2(
    url: str,
    method: str = "GET",
    headers: list[tuple[str, str]] | None = None,
    now: float = V2_NOW,
    secret: str = SECRET,
) -> presign.SigV2Presign:
    path, query = split_url(url)
    assert presign.has_sigv2_query(query)
    parsed = presign.parse_sigv2_query(method, path, query, headers or [])
    assert parsed.access_key == ACCESS_KEY
    presign.verify_sigv2_query(parsed, secret, now=now)
    return parsed


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:9000/b/k",
        "http://localhost:9000/b/my%20file%2B%C3%BC.txt",
        "http://localhost:9000/b/k?uploadId=abc&partNumber=1",
        "http://localhost:9000/b/k?uploads",
        "http://localhost:9000/b?location",
        "http://localhost:9000/b/k?response-content-type=text%2Fplain&versionId=v1",
        "http://localhost:9000/b?list-type=2&prefix=a",  # not sub-resources: unsigned
    ],
)
def test_sigv2_from_botocore(url: str) -> None:
    parsed = verify_v2(sigv2_url(url))
    assert parsed.expires == V2_EXPIRES


def test_sigv2_with_content_type_and_amz_headers() -> None:
    url = sigv2_url(
        "http://localhost:9000/b/k",
        method="PUT",
        headers={"Content-Type": "text/plain", "x-amz-acl": "public-read"},
    )
    # botocore copies them into the query; a client may send them as headers or not at all.
    verify_v2(url, method="PUT")
    verify_v2(url, method="PUT", headers=[("Content-Type", "text/plain")])
    with pytest.raises(SignatureDoesNotMatch):
        verify_v2(url, method="PUT", headers=[("Content-Type", "image/png")])


def test_sigv2_from_botocore_client(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.auth.botocore_capture import make_client

    client: Any = make_client()  # botocore's default S3 presign is SigV2
    url = client.generate_presigned_url(
        "get_object", Params={"Bucket": "b", "Key": "a b.txt"}, ExpiresIn=600
    )
    path, query = split_url(url)
    parsed = presign.parse_sigv2_query("GET", path, query, [])
    presign.verify_sigv2_query(parsed, SECRET, now=parsed.expires - 600)


def test_sigv2_negative_cases() -> None:
    url = sigv2_url("http://localhost:9000/b/k?uploadId=abc&partNumber=1")
    with pytest.raises(AccessDenied, match="Request has expired"):
        verify_v2(url, now=V2_EXPIRES + 1)
    with pytest.raises(SignatureDoesNotMatch):
        verify_v2(url, secret="wrong")
    with pytest.raises(SignatureDoesNotMatch):
        verify_v2(url, method="PUT")
    with pytest.raises(SignatureDoesNotMatch):
        verify_v2(url.replace("partNumber=1", "partNumber=2"))
    with pytest.raises(SignatureDoesNotMatch):
        verify_v2(url.replace("/b/k", "/b/j"))
    with pytest.raises(AuthorizationQueryParametersError):
        presign.parse_sigv2_query("GET", b"/b/k", b"AWSAccessKeyId=a&Signature=x", [])
    with pytest.raises(AuthorizationQueryParametersError):
        presign.parse_sigv2_query("GET", b"/", b"AWSAccessKeyId=a&Signature=x&Expires=soon", [])


def test_sigv2_string_to_sign() -> None:
    parsed = presign.parse_sigv2_query(
        "get",
        b"/b/k",
        b"partNumber=1&uploadId=a%2Fb&AWSAccessKeyId=AK&Expires=99&Signature=s&x=1",
        [("x-amz-meta-b", " 2 "), ("X-Amz-Meta-A", "1"), ("Content-MD5", "md5")],
    )
    assert presign.sigv2_string_to_sign(parsed) == (
        b"GET\nmd5\n\n99\nx-amz-meta-a:1\nx-amz-meta-b:2\n/b/k?partNumber=1&uploadId=a/b"
    )
