"""POST Object (browser form uploads) against a real jay process: boto3's
``generate_presigned_post`` (SigV4) and hand-built SigV2 forms, posted over loopback."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import itertools
import json
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from tests.integration.conftest import SEED_SECRET, SEED_TOKEN_ID
from tests.integration.jayproc import JayProcess

MiB = 1024 * 1024
BOUNDARY = "jayTestBoundary0a1b2c3d"
_names = itertools.count()


pytestmark = pytest.mark.usefixtures("server_log_is_clean")


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"post-{next(_names)}"
    s3.create_bucket(Bucket=name)
    return name


def form_body(fields: list[tuple[str, str]], file: bytes, filename: str = "upload.bin") -> bytes:
    parts = []
    for name, value in fields:
        parts.append(
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        )
    parts.append(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode()
    )
    parts.append(file)
    parts.append(f"\r\n--{BOUNDARY}--\r\n".encode())
    return b"".join(parts)


class Reply:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def code(self) -> str:
        return ET.fromstring(self.body).findtext("Code") or ""

    @property
    def message(self) -> str:
        return ET.fromstring(self.body).findtext("Message") or ""


def post(
    jay: JayProcess,
    path: str,
    body: bytes | Iterator[bytes],
    content_type: str = f"multipart/form-data; boundary={BOUNDARY}",
) -> Reply:
    host, port = urllib.parse.urlsplit(jay.s3_url).netloc.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        headers = {"Content-Type": content_type}
        if not isinstance(body, bytes):
            headers["Transfer-Encoding"] = "chunked"
        conn.request("POST", path, body=body, headers=headers, encode_chunked=True)
        resp = conn.getresponse()
        return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()


def presigned(s3: Any, bucket: str, key: str, **kw: Any) -> tuple[str, list[tuple[str, str]]]:
    """boto3's SigV4 form for ``key``: the URL path and the fields in boto3's order."""
    signer = boto3.client(
        "s3",
        endpoint_url=s3.meta.endpoint_url,
        aws_access_key_id=SEED_TOKEN_ID,
        aws_secret_access_key=SEED_SECRET,
        region_name="us-east-1",
        config=BotoConfig(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    signed = signer.generate_presigned_post(bucket, key, **kw)
    fields = list(signed["fields"].items())
    assert ("x-amz-algorithm", "AWS4-HMAC-SHA256") in fields
    return urllib.parse.urlsplit(signed["url"]).path, fields


def sigv2_form(
    bucket: str, conditions: list[Any], *, expires_in: float = 600, secret: str = SEED_SECRET
) -> list[tuple[str, str]]:
    expiration = (datetime.now(UTC) + timedelta(seconds=expires_in)).strftime("%Y-%m-%dT%H:%M:%SZ")
    document = {"expiration": expiration, "conditions": [{"bucket": bucket}, *conditions]}
    policy = base64.b64encode(json.dumps(document).encode()).decode()
    signature = base64.b64encode(
        hmac.new(secret.encode(), policy.encode(), hashlib.sha1).digest()
    ).decode()
    return [("AWSAccessKeyId", SEED_TOKEN_ID), ("policy", policy), ("signature", signature)]


# --- SigV4 (boto3 generate_presigned_post) ---------------------------------------------------


def test_presigned_post_stores_the_file_with_its_attributes(
    jay: JayProcess, s3: Any, bucket: str
) -> None:
    path, fields = presigned(
        s3,
        bucket,
        "docs/report.txt",
        Fields={"Content-Type": "text/plain", "x-amz-meta-owner": "ana"},
        Conditions=[{"Content-Type": "text/plain"}, {"x-amz-meta-owner": "ana"}],
    )
    reply = post(jay, path, form_body(fields, b"hello, form"))
    assert reply.status == 204, reply.body
    head = s3.head_object(Bucket=bucket, Key="docs/report.txt")
    assert (
        reply.headers["etag"] == head["ETag"] == '"' + hashlib.md5(b"hello, form").hexdigest() + '"'
    )
    assert head["ContentType"] == "text/plain"
    assert head["Metadata"] == {"owner": "ana"}
    assert s3.get_object(Bucket=bucket, Key="docs/report.txt")["Body"].read() == b"hello, form"


def test_post_with_sse_c_and_sse_s3_fields_encrypts(jay: JayProcess, s3: Any, bucket: str) -> None:
    """test_encryption_sse_c_post_object_authenticated_request: the form's SSE-C fields are a
    PUT's headers; x-amz-server-side-encryption asks for SSE-S3."""
    key = bytes(range(32))
    sse_fields = {
        "x-amz-server-side-encryption-customer-algorithm": "AES256",
        "x-amz-server-side-encryption-customer-key": base64.b64encode(key).decode(),
        "x-amz-server-side-encryption-customer-key-md5": base64.b64encode(
            hashlib.md5(key).digest()
        ).decode(),
    }
    path, fields = presigned(
        s3, bucket, "c.txt", Fields=sse_fields, Conditions=[{k: v} for k, v in sse_fields.items()]
    )
    reply = post(jay, path, form_body(fields, b"bar"))
    assert reply.status == 204, reply.body
    assert reply.headers["x-amz-server-side-encryption-customer-algorithm"] == "AES256"
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="c.txt")
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    got = s3.get_object(
        Bucket=bucket,
        Key="c.txt",
        SSECustomerAlgorithm="AES256",
        SSECustomerKey=sse_fields["x-amz-server-side-encryption-customer-key"],
        SSECustomerKeyMD5=sse_fields["x-amz-server-side-encryption-customer-key-md5"],
    )
    assert got["Body"].read() == b"bar"
    path, fields = presigned(
        s3,
        bucket,
        "s3.txt",
        Fields={"x-amz-server-side-encryption": "AES256"},
        Conditions=[{"x-amz-server-side-encryption": "AES256"}],
    )
    reply = post(jay, path, form_body(fields, b"baz"))
    assert reply.status == 204, reply.body
    got = s3.get_object(Bucket=bucket, Key="s3.txt")
    assert got["ServerSideEncryption"] == "AES256" and got["Body"].read() == b"baz"


def test_success_action_status_201_answers_post_response(
    jay: JayProcess, s3: Any, bucket: str
) -> None:
    path, fields = presigned(
        s3,
        bucket,
        "a b.txt",
        Fields={"success_action_status": "201"},
        Conditions=[{"success_action_status": "201"}],
    )
    reply = post(jay, path, form_body(fields, b"x" * 10))
    assert reply.status == 201, reply.body
    doc = ET.fromstring(reply.body)
    assert doc.tag == "PostResponse"
    assert doc.findtext("Bucket") == bucket
    assert doc.findtext("Key") == "a b.txt"
    assert doc.findtext("ETag") == reply.headers["etag"]
    assert doc.findtext("Location", "").endswith(f"/{bucket}/a%20b.txt")


def test_success_action_status_200_and_unknown_values(
    jay: JayProcess, s3: Any, bucket: str
) -> None:
    for given, expected in (("200", 200), ("404", 204)):
        path, fields = presigned(
            s3,
            bucket,
            "k",
            Fields={"success_action_status": given},
            Conditions=[{"success_action_status": given}],
        )
        reply = post(jay, path, form_body(fields, b"data"))
        assert (reply.status, reply.body) == (expected, b"")


def test_success_action_redirect_is_a_303_with_bucket_key_and_etag(
    jay: JayProcess, s3: Any, bucket: str
) -> None:
    target = "https://app.example/done?from=upload"
    path, fields = presigned(
        s3,
        bucket,
        "photos/${filename}",
        Fields={"success_action_redirect": target},
        Conditions=[["starts-with", "$key", "photos/"], {"success_action_redirect": target}],
    )
    reply = post(jay, path, form_body(fields, b"jpeg bytes", filename="cat 1.jpg"))
    assert reply.status == 303, reply.body
    etag = s3.head_object(Bucket=bucket, Key="photos/cat 1.jpg")["ETag"]
    assert reply.headers["location"] == (
        f"{target}&bucket={bucket}&key=photos%2Fcat%201.jpg&etag={urllib.parse.quote(etag)}"
    )


def test_content_length_range(jay: JayProcess, s3: Any, bucket: str) -> None:
    path, fields = presigned(s3, bucket, "sized", Conditions=[["content-length-range", 5, 10]])
    too_big = post(jay, path, form_body(fields, b"x" * 11))
    assert (too_big.status, too_big.code) == (400, "EntityTooLarge")
    too_small = post(jay, path, form_body(fields, b"x" * 4))
    assert (too_small.status, too_small.code) == (400, "EntityTooSmall")
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="sized")
    assert post(jay, path, form_body(fields, b"x" * 10)).status == 204


def test_starts_with_on_the_key(jay: JayProcess, s3: Any, bucket: str) -> None:
    path, fields = presigned(
        s3, bucket, "user/42/${filename}", Conditions=[["starts-with", "$key", "user/42/"]]
    )
    ok = post(jay, path, form_body(fields, b"mine", filename="a.txt"))
    assert ok.status == 204
    assert s3.get_object(Bucket=bucket, Key="user/42/a.txt")["Body"].read() == b"mine"
    # The same signed policy cannot write elsewhere: the key field is changed by the page.
    moved = [(n, "user/43/a.txt" if n == "key" else v) for n, v in fields]
    denied = post(jay, path, form_body(moved, b"theirs"))
    assert (denied.status, denied.code) == (403, "AccessDenied")
    assert "Policy Condition failed" in denied.message


def test_extra_fields_are_rejected_and_x_ignore_fields_are_not(
    jay: JayProcess, s3: Any, bucket: str
) -> None:
    path, fields = presigned(s3, bucket, "k")
    extra = post(jay, path, form_body([*fields, ("x-amz-meta-sneaky", "1")], b"data"))
    assert (extra.status, extra.code) == (403, "AccessDenied")
    assert extra.message == "Invalid according to Policy: Extra input fields: x-amz-meta-sneaky"
    ignored = post(jay, path, form_body([*fields, ("x-ignore-note", "1")], b"data"))
    assert ignored.status == 204


def test_expired_policy(jay: JayProcess, s3: Any, bucket: str) -> None:
    path, fields = presigned(s3, bucket, "late", ExpiresIn=-10)
    reply = post(jay, path, form_body(fields, b"data"))
    assert (reply.status, reply.code) == (403, "AccessDenied")
    assert reply.message == "Invalid according to Policy: Policy expired."


def test_bad_signature_and_unknown_key(jay: JayProcess, s3: Any, bucket: str) -> None:
    path, fields = presigned(s3, bucket, "k")
    forged = [(n, "0" * 64 if n == "x-amz-signature" else v) for n, v in fields]
    reply = post(jay, path, form_body(forged, b"data"))
    assert (reply.status, reply.code) == (403, "SignatureDoesNotMatch")
    other = [
        (n, v.replace(SEED_TOKEN_ID, "no-such-token") if n == "x-amz-credential" else v)
        for n, v in fields
    ]
    assert post(jay, path, form_body(other, b"data")).code == "InvalidAccessKeyId"


def test_a_multi_mib_file_streams_through(jay: JayProcess, s3: Any, bucket: str) -> None:
    data = hashlib.sha256(b"seed").digest() * (7 * MiB // 32 + 5)
    path, fields = presigned(
        s3, bucket, "big.bin", Conditions=[["content-length-range", 0, 8 * MiB]]
    )
    body = form_body(fields, data)

    def chunks() -> Iterator[bytes]:  # odd sizes, so delimiters and CRLFs straddle chunks
        for i in range(0, len(body), 65_521):
            yield body[i : i + 65_521]

    reply = post(jay, path, chunks())
    assert reply.status == 204, reply.body
    assert reply.headers["etag"] == '"' + hashlib.md5(data).hexdigest() + '"'
    got = s3.get_object(Bucket=bucket, Key="big.bin")["Body"].read()
    assert len(got) == len(data) and got == data


# --- SigV2 forms -----------------------------------------------------------------------------


def test_sigv2_form_with_filename_key(jay: JayProcess, s3: Any, bucket: str) -> None:
    fields = [
        ("key", "in/${filename}"),
        *sigv2_form(
            bucket, [["starts-with", "$key", "in/"], ["starts-with", "$Content-Type", "image/"]]
        ),
        ("Content-Type", "image/png"),
    ]
    reply = post(jay, f"/{bucket}", form_body(fields, b"\x89PNG", filename="dot.png"))
    assert reply.status == 204, reply.body
    head = s3.head_object(Bucket=bucket, Key="in/dot.png")
    assert head["ContentType"] == "image/png"


def test_sigv2_form_with_wrong_secret(jay: JayProcess, bucket: str) -> None:
    fields = [("key", "k"), *sigv2_form(bucket, [["starts-with", "$key", ""]], secret="wrong")]
    assert post(jay, f"/{bucket}", form_body(fields, b"d")).code == "SignatureDoesNotMatch"


def test_checksum_field_is_verified(jay: JayProcess, s3: Any, bucket: str) -> None:
    wrong = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    right = base64.b64encode(hashlib.sha256(b"data").digest()).decode()
    base = [("key", "sum"), *sigv2_form(bucket, [["starts-with", "$key", ""]])]
    bad = post(jay, f"/{bucket}", form_body([*base, ("x-amz-checksum-sha256", wrong)], b"data"))
    assert (bad.status, bad.code) == (400, "BadDigest")
    good = post(jay, f"/{bucket}", form_body([*base, ("x-amz-checksum-sha256", right)], b"data"))
    assert good.status == 204 and good.headers["x-amz-checksum-sha256"] == right


# --- anonymous forms -------------------------------------------------------------------------


def test_anonymous_form_needs_a_bucket_policy_allowing_put(
    jay: JayProcess, s3: Any, bucket: str
) -> None:
    body = form_body([("key", "drop/${filename}")], b"anon", filename="f.txt")
    denied = post(jay, f"/{bucket}", body)
    assert (denied.status, denied.code) == (403, "AccessDenied")
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:PutObject",
                "Resource": f"arn:aws:s3:::{bucket}/drop/*",
            }
        ],
    }
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    allowed = post(jay, f"/{bucket}", body)
    assert allowed.status == 204, allowed.body
    assert s3.get_object(Bucket=bucket, Key="drop/f.txt")["Body"].read() == b"anon"
    outside = post(jay, f"/{bucket}", form_body([("key", "elsewhere")], b"anon"))
    assert outside.status == 403


def test_bucket_policy_conditions_read_the_form_fields(
    jay: JayProcess, s3: Any, bucket: str
) -> None:
    drop = {"Principal": "*", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{bucket}/*"}
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            dict(drop, Effect="Allow"),
            dict(drop, Effect="Deny", Condition={"StringEquals": {"s3:x-amz-acl": "public-read"}}),
            dict(drop, Effect="Deny", Condition={"StringEquals": {"s3:authType": "REST-HEADER"}}),
        ],
    }
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    public = post(jay, f"/{bucket}", form_body([("key", "a"), ("acl", "public-read")], b"x"))
    assert (public.status, public.code) == (403, "AccessDenied")
    private = post(jay, f"/{bucket}", form_body([("key", "a"), ("acl", "private")], b"x"))
    assert private.status == 204, private.body
    path, fields = presigned(s3, bucket, "signed")
    signed = post(jay, path, form_body(fields, b"y"))
    assert signed.status == 204, signed.body  # a signed form is authType POST too
    with pytest.raises(ClientError):
        s3.put_object(Bucket=bucket, Key="b", Body=b"x")  # REST-HEADER: denied


# --- malformed forms -------------------------------------------------------------------------


def test_not_a_form_is_412(jay: JayProcess, bucket: str) -> None:
    reply = post(jay, f"/{bucket}", b"key=k", content_type="application/x-www-form-urlencoded")
    assert (reply.status, reply.code) == (412, "PreconditionFailed")
    condition = ET.fromstring(reply.body).findtext("Condition")
    assert condition == "Bucket POST must be of the enclosure-type multipart/form-data"


def test_missing_key_file_and_oversized_fields(jay: JayProcess, bucket: str) -> None:
    no_key = post(jay, f"/{bucket}", form_body(sigv2_form(bucket, []), b"d"))
    assert (no_key.status, no_key.code) == (400, "InvalidArgument")
    assert no_key.message.startswith("Bucket POST must contain a field named 'key'")
    without_file = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="key"\r\n\r\nk\r\n--{BOUNDARY}--\r\n'
    )
    no_file = post(jay, f"/{bucket}", without_file.encode())
    assert (no_file.status, no_file.code) == (400, "InvalidArgument")
    huge = post(jay, f"/{bucket}", form_body([("key", "k"), ("x-ignore-pad", "p" * 30_000)], b"d"))
    assert (huge.status, huge.code) == (400, "MaxPostPreDataLengthExceeded")
    signed = [("key", "k"), *sigv2_form(bucket, [["starts-with", "$key", ""]])]
    broken = post(jay, f"/{bucket}", form_body(signed, b"d")[:-10])
    assert (broken.status, broken.code) == (400, "MalformedPOSTRequest")
