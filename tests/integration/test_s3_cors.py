"""Bucket CORS against a real jay process: configured with boto3, exercised the way a browser
does (preflight OPTIONS without credentials, then the real request with ``Origin``)."""

from __future__ import annotations

import itertools

import pytest
from botocore.exceptions import ClientError

from tests.integration.conftest import code_of, raw_request, s3_client
from tests.integration.jayproc import JayProcess

_names = itertools.count()


pytestmark = pytest.mark.usefixtures("server_log_is_clean")


CONFIG = {
    "CORSRules": [
        {
            "ID": "app",
            "AllowedOrigins": ["https://app.example.com", "https://*.preview.example.com"],
            "AllowedMethods": ["GET", "PUT", "HEAD"],
            "AllowedHeaders": ["Content-Type", "x-amz-*"],
            "ExposeHeaders": ["ETag", "x-amz-request-id"],
            "MaxAgeSeconds": 3000,
        },
        {"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]},
    ]
}


@pytest.fixture
def bucket(s3) -> str:
    name = f"cors-{next(_names)}"
    s3.create_bucket(Bucket=name)
    return name


def test_configuration_round_trip_and_delete(s3, bucket: str) -> None:
    with pytest.raises(ClientError) as err:
        s3.get_bucket_cors(Bucket=bucket)
    assert code_of(err) == "NoSuchCORSConfiguration"
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=CONFIG)
    rules = s3.get_bucket_cors(Bucket=bucket)["CORSRules"]
    assert rules[0] == CONFIG["CORSRules"][0]
    assert rules[1] == CONFIG["CORSRules"][1]
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": CONFIG["CORSRules"][1:]})
    assert len(s3.get_bucket_cors(Bucket=bucket)["CORSRules"]) == 1
    s3.delete_bucket_cors(Bucket=bucket)
    with pytest.raises(ClientError) as err:
        s3.get_bucket_cors(Bucket=bucket)
    assert code_of(err) == "NoSuchCORSConfiguration"
    with pytest.raises(ClientError) as err:
        s3.get_bucket_cors(Bucket="cors-no-such-bucket")
    assert code_of(err) == "NoSuchBucket"


def test_invalid_configurations_are_refused(s3, bucket: str) -> None:
    with pytest.raises(ClientError) as err:
        s3.put_bucket_cors(
            Bucket=bucket,
            CORSConfiguration={
                "CORSRules": [{"AllowedOrigins": ["*"], "AllowedMethods": ["PATCH"]}]
            },
        )
    assert code_of(err) == "InvalidRequest"
    with pytest.raises(ClientError) as err:
        s3.put_bucket_cors(
            Bucket=bucket,
            CORSConfiguration={
                "CORSRules": [{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}] * 101
            },
        )
    assert code_of(err) == "InvalidRequest"
    with pytest.raises(ClientError) as err:
        s3.get_bucket_cors(Bucket=bucket)
    assert code_of(err) == "NoSuchCORSConfiguration"  # nothing was stored


def test_put_checks_content_md5(jay: JayProcess, s3, bucket: str) -> None:
    """A body that does not match its Content-MD5 is refused (signed, so only the digest
    is wrong)."""

    def corrupt(request, **_: object) -> None:
        request.headers["Content-MD5"] = "1B2M2Y8AsgTpgAmY7PhCfg=="  # MD5 of nothing

    s3.meta.events.register_first("before-sign.s3.PutBucketCors", corrupt)
    with pytest.raises(ClientError) as err:
        s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=CONFIG)
    assert code_of(err) == "BadDigest"


def test_preflight_follows_the_rules(jay: JayProcess, s3, bucket: str) -> None:
    url = f"{jay.s3_url}/{bucket}/photos/cat.jpg"
    preflight = {
        "Origin": "https://app.example.com",
        "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "content-type, x-amz-date, x-amz-content-sha256",
    }
    status, _, body = raw_request(url, "OPTIONS", headers=preflight)
    assert status == 403 and b"<Code>AccessForbidden</Code>" in body  # no configuration yet
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=CONFIG)

    status, headers, body = raw_request(url, "OPTIONS", headers=preflight)
    assert status == 200, body
    assert headers["access-control-allow-origin"] == "https://app.example.com"
    assert headers["access-control-allow-methods"] == "GET, PUT, HEAD"
    assert (
        headers["access-control-allow-headers"] == "content-type, x-amz-date, x-amz-content-sha256"
    )
    assert headers["access-control-allow-credentials"] == "true"
    assert headers["access-control-expose-headers"] == "ETag, x-amz-request-id"
    assert headers["access-control-max-age"] == "3000"
    assert "Origin" in headers["vary"]

    # A wildcard origin of the first rule; the second rule answers any origin for GET only.
    status, headers, _ = raw_request(
        url,
        "OPTIONS",
        headers={
            "Origin": "https://pr-7.preview.example.com",
            "Access-Control-Request-Method": "HEAD",
        },
    )
    assert status == 200 and headers["access-control-allow-origin"].startswith("https://pr-7")
    status, headers, _ = raw_request(
        url,
        "OPTIONS",
        headers={"Origin": "https://else.test", "Access-Control-Request-Method": "GET"},
    )
    assert status == 200 and headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in headers
    for refused in (
        {"Origin": "https://else.test", "Access-Control-Request-Method": "PUT"},
        {**preflight, "Access-Control-Request-Headers": "authorization, x-evil"},
        {"Origin": "https://app.example.com", "Access-Control-Request-Method": "DELETE"},
    ):
        status, headers, body = raw_request(url, "OPTIONS", headers=refused)
        assert status == 403 and b"<Code>AccessForbidden</Code>" in body
        assert "access-control-allow-origin" not in headers
    status, _, body = raw_request(url, "OPTIONS", headers={"Origin": "https://app.example.com"})
    assert status == 400 and b"<Code>BadRequest</Code>" in body
    status, _, body = raw_request(
        f"{jay.s3_url}/cors-missing-bucket/k",
        "OPTIONS",
        headers={"Origin": "https://else.test", "Access-Control-Request-Method": "GET"},
    )
    assert status == 403


def test_preflight_of_a_presigned_url_needs_no_credentials(
    jay: JayProcess, s3, bucket: str
) -> None:
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=CONFIG)
    presigning = s3_client(jay, signature_version="s3v4")
    put_url = presigning.generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": "upload.txt"}, ExpiresIn=300
    )
    origin = {"Origin": "https://app.example.com"}
    status, headers, _ = raw_request(
        put_url, "OPTIONS", headers={**origin, "Access-Control-Request-Method": "PUT"}
    )
    assert status == 200 and headers["access-control-allow-origin"] == origin["Origin"]
    status, headers, _ = raw_request(put_url, "PUT", b"from the browser", headers=origin)
    assert status == 200
    assert headers["access-control-allow-origin"] == origin["Origin"]
    assert headers["access-control-expose-headers"] == "ETag, x-amz-request-id"
    assert s3.get_object(Bucket=bucket, Key="upload.txt")["Body"].read() == b"from the browser"


def test_actual_requests_carry_cors_headers_even_when_refused(
    jay: JayProcess, s3, bucket: str
) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    url = f"{jay.s3_url}/{bucket}/k"
    origin = {"Origin": "https://app.example.com"}
    status, headers, _ = raw_request(url, "GET", headers=origin)
    assert status == 403 and "access-control-allow-origin" not in headers  # no rules yet
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=CONFIG)
    # Anonymous: refused, but the browser may read why.
    status, headers, body = raw_request(url, "GET", headers=origin)
    assert status == 403 and b"AccessDenied" in body
    assert headers["access-control-allow-origin"] == "https://app.example.com"
    # Signed (a presigned GET), on a missing key too.
    get_url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"})
    status, headers, body = raw_request(get_url, "GET", headers=origin)
    assert (status, body) == (200, b"v")
    assert headers["access-control-allow-origin"] == "https://app.example.com"
    missing = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "nope"})
    status, headers, _ = raw_request(missing, "GET", headers={"Origin": "https://x.test"})
    assert status == 404 and headers["access-control-allow-origin"] == "*"
    # An origin no rule admits for this method gets no CORS headers.
    delete_url = s3.generate_presigned_url("delete_object", Params={"Bucket": bucket, "Key": "k"})
    status, headers, _ = raw_request(delete_url, "DELETE", headers={"Origin": "https://x.test"})
    assert status == 204 and "access-control-allow-origin" not in headers
    # No Origin, no CORS headers.
    status, headers, _ = raw_request(get_url, "GET")
    assert "access-control-allow-origin" not in headers


def test_configuration_goes_with_the_bucket(s3, bucket: str) -> None:
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=CONFIG)
    s3.delete_bucket(Bucket=bucket)
    s3.create_bucket(Bucket=bucket)
    with pytest.raises(ClientError) as err:
        s3.get_bucket_cors(Bucket=bucket)
    assert code_of(err) == "NoSuchCORSConfiguration"
