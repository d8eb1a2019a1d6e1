"""boto3 against a real jay process: every S3 operation jay serves, as a real SDK drives it."""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import urllib.error
import urllib.parse
import urllib.request
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from tests.integration.conftest import code_of, raw_request, s3_client, status_of
from tests.integration.jayproc import JayProcess

MiB = 1024 * 1024
_names = itertools.count()


pytestmark = pytest.mark.usefixtures("server_log_is_clean")


@pytest.fixture
def bucket(s3) -> str:
    name = f"boto-{next(_names)}"
    s3.create_bucket(Bucket=name)
    return name


def pattern(size: int, seed: int = 0) -> bytes:
    """Deterministic bytes that differ per position, so a misplaced part shows up."""
    block = hashlib.sha256(str(seed).encode()).digest() * 2048  # 64 KiB
    return (block * (size // len(block) + 1))[:size]


# --- buckets ---------------------------------------------------------------------------------


def test_bucket_lifecycle_and_listing(s3) -> None:
    s3.create_bucket(Bucket="lifecycle-a")
    s3.create_bucket(
        Bucket="lifecycle-b", CreateBucketConfiguration={"LocationConstraint": "us-east-1"}
    )
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert {"lifecycle-a", "lifecycle-b"} <= set(names)
    assert names == sorted(names)
    assert s3.head_bucket(Bucket="lifecycle-a")["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert s3.get_bucket_location(Bucket="lifecycle-a").get("LocationConstraint") in (None, "")
    versioning = s3.get_bucket_versioning(Bucket="lifecycle-a")
    assert "Status" not in versioning
    # Suspended: every write replaces the "null" version (versioning has its own tests).
    s3.put_bucket_versioning(Bucket="lifecycle-a", VersioningConfiguration={"Status": "Suspended"})
    assert s3.get_bucket_versioning(Bucket="lifecycle-a")["Status"] == "Suspended"
    with pytest.raises(ClientError) as err:
        s3.put_bucket_versioning(
            Bucket="lifecycle-a", VersioningConfiguration={"Status": "Sometimes"}
        )
    assert code_of(err) == "MalformedXML"
    assert s3.get_bucket_versioning(Bucket="lifecycle-a")["Status"] == "Suspended"
    with pytest.raises(ClientError) as err:
        s3.create_bucket(Bucket="lifecycle-a")
    assert code_of(err) == "BucketAlreadyOwnedByYou"
    s3.put_object(Bucket="lifecycle-a", Key="x", Body=b"1")
    with pytest.raises(ClientError) as err:
        s3.delete_bucket(Bucket="lifecycle-a")
    assert code_of(err) == "BucketNotEmpty"
    s3.delete_object(Bucket="lifecycle-a", Key="x")
    # Versioning suspended: that delete left a "null" delete marker, as on S3.
    with pytest.raises(ClientError) as err:
        s3.delete_bucket(Bucket="lifecycle-a")
    assert code_of(err) == "BucketNotEmpty"
    s3.delete_object(Bucket="lifecycle-a", Key="x", VersionId="null")
    s3.delete_bucket(Bucket="lifecycle-a")
    s3.delete_bucket(Bucket="lifecycle-b")
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert "lifecycle-a" not in names and "lifecycle-b" not in names
    with pytest.raises(ClientError) as err:
        s3.head_bucket(Bucket="lifecycle-a")
    assert status_of(err) == 404


def test_list_buckets_pages(s3) -> None:
    wanted = [f"paged-{i}" for i in range(5)]
    for name in wanted:
        s3.create_bucket(Bucket=name)
    seen: list[str] = []
    kwargs: dict = {"MaxBuckets": 2, "Prefix": "paged-"}
    while True:
        page = s3.list_buckets(**kwargs)
        assert page["Prefix"] == "paged-"
        assert len(page["Buckets"]) <= 2
        assert all(b["BucketRegion"] == "us-east-1" for b in page["Buckets"])
        seen += [b["Name"] for b in page["Buckets"]]
        if "ContinuationToken" not in page:
            break
        kwargs["ContinuationToken"] = page["ContinuationToken"]
    assert seen == wanted
    assert [b["Name"] for b in s3.list_buckets(Prefix="paged-3")["Buckets"]] == ["paged-3"]
    assert s3.list_buckets(Prefix="paged-", BucketRegion="eu-west-1")["Buckets"] == []
    everything = s3.list_buckets()
    assert "ContinuationToken" not in everything and set(wanted) <= {
        b["Name"] for b in everything["Buckets"]
    }
    paginator = s3.get_paginator("list_buckets")
    names = [
        b["Name"] for p in paginator.paginate(Prefix="paged-", MaxBuckets=3) for b in p["Buckets"]
    ]
    assert names == wanted
    for name in wanted:
        s3.delete_bucket(Bucket=name)


@pytest.mark.parametrize("name", ["ab", "UPPER", "under_score", "-dash", "a" * 64, "1.2.3.4"])
def test_invalid_bucket_names(s3, name: str) -> None:
    with pytest.raises(ClientError) as err:
        s3.create_bucket(Bucket=name)
    assert code_of(err) == "InvalidBucketName"


def test_missing_bucket_and_key(s3, bucket: str) -> None:
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket="no-such-bucket-here", Key="k")
    assert code_of(err) == "NoSuchBucket"
    with pytest.raises(ClientError) as err:
        s3.list_objects_v2(Bucket="no-such-bucket-here")
    assert code_of(err) == "NoSuchBucket"
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="missing")
    assert code_of(err) == "NoSuchKey"
    assert err.value.response["Error"].get("Key") in (None, "missing")
    with pytest.raises(ClientError) as err:
        s3.head_object(Bucket=bucket, Key="missing")
    assert status_of(err) == 404
    # Deleting a missing key is a success, as on S3.
    assert (
        s3.delete_object(Bucket=bucket, Key="missing")["ResponseMetadata"]["HTTPStatusCode"] == 204
    )


def test_key_too_long(s3, bucket: str) -> None:
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=bucket, Key="k" * 1025, Body=b"x")
    assert code_of(err) == "KeyTooLongError"
    s3.put_object(Bucket=bucket, Key="k" * 1024, Body=b"x")
    assert s3.get_object(Bucket=bucket, Key="k" * 1024)["Body"].read() == b"x"


# --- objects ---------------------------------------------------------------------------------


def test_put_get_head_with_metadata_and_content_headers(s3, bucket: str) -> None:
    body = b"hello world"
    put = s3.put_object(
        Bucket=bucket,
        Key="dir/a.txt",
        Body=body,
        ContentType="text/plain",
        Metadata={"author": "ann", "Mixed-Case": "v"},
        CacheControl="max-age=60",
        ContentDisposition='attachment; filename="a.txt"',
        ContentLanguage="en",
    )
    assert put["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    got = s3.get_object(Bucket=bucket, Key="dir/a.txt")
    assert got["Body"].read() == body
    assert got["ContentType"] == "text/plain"
    assert got["ContentLength"] == len(body)
    assert got["Metadata"] == {"author": "ann", "mixed-case": "v"}
    assert got["CacheControl"] == "max-age=60"
    assert got["ContentDisposition"] == 'attachment; filename="a.txt"'
    assert got["ContentLanguage"] == "en"
    assert got["ETag"] == put["ETag"]
    head = s3.head_object(Bucket=bucket, Key="dir/a.txt")
    assert head["ContentLength"] == len(body)
    assert head["Metadata"] == {"author": "ann", "mixed-case": "v"}
    assert head["LastModified"] == got["LastModified"]
    # Overwrite replaces bytes and metadata.
    s3.put_object(Bucket=bucket, Key="dir/a.txt", Body=b"second")
    got = s3.get_object(Bucket=bucket, Key="dir/a.txt")
    assert got["Body"].read() == b"second"
    assert got["Metadata"] == {}
    assert got["ContentType"] == "application/octet-stream"


def test_metadata_beyond_ascii_round_trips_as_rfc2047(jay: JayProcess, bucket: str) -> None:
    """A value sent as raw UTF-8 (botocore refuses non-ASCII Metadata, so a hook sets the
    header, as clients that allow it send it) comes back as an RFC 2047 encoded-word, as S3
    answers; a value sent as encoded-words is stored decoded (ASCII then goes out as is)."""
    client = s3_client(jay)
    value = "Hello World\u00e9 \u4e2d"
    sent: dict[str, str] = {}

    def set_header(params: dict, **_: object) -> None:
        params["headers"].update(sent)

    client.meta.events.register("before-call.s3.PutObject", set_header)
    sent["x-amz-meta-raw"] = value
    client.put_object(Bucket=bucket, Key="raw", Body=b"x")
    encoded = "=?UTF-8?B?" + base64.b64encode(value.encode()).decode() + "?="
    assert client.head_object(Bucket=bucket, Key="raw")["Metadata"] == {"raw": encoded}
    sent.clear()
    sent["x-amz-meta-words"] = encoded
    sent["x-amz-meta-ascii"] = "=?UTF-8?Q?plain_text?="
    client.put_object(Bucket=bucket, Key="words", Body=b"x")
    got = client.get_object(Bucket=bucket, Key="words")
    assert got["Metadata"] == {"words": encoded, "ascii": "plain text"}


def test_empty_object_and_odd_keys(s3, bucket: str) -> None:
    keys = ["empty", "a//b", "dots/../x", "sp ace", "plus+sign", "per%cent", "ünï/cødé", "q?x=1#h"]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    s3.put_object(Bucket=bucket, Key="zero", Body=b"")
    for key in keys:
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == key.encode()
    assert s3.get_object(Bucket=bucket, Key="zero")["Body"].read() == b""
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert sorted(listed, key=lambda k: k.encode()) == listed
    assert set(listed) == set(keys) | {"zero"}


# --- checksums -------------------------------------------------------------------------------


def test_default_put_stores_crc32_and_get_validates(s3, bucket: str) -> None:
    body = b"checksummed body"
    put = s3.put_object(Bucket=bucket, Key="default", Body=body)
    crc = base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode()
    # botocore >= 1.36 computes CRC32 by default: the server echoes it.
    assert put.get("ChecksumCRC32") == crc
    got = s3.get_object(Bucket=bucket, Key="default", ChecksumMode="ENABLED")
    assert got["Body"].read() == body
    assert got["ChecksumCRC32"] == crc


@pytest.mark.parametrize("algorithm", ["CRC32", "CRC32C", "SHA1", "SHA256", "CRC64NVME"])
def test_flexible_checksums(s3, bucket: str, algorithm: str) -> None:
    body = pattern(70_000, seed=3)
    put = s3.put_object(Bucket=bucket, Key=algorithm, Body=body, ChecksumAlgorithm=algorithm)
    echoed = put[f"Checksum{algorithm}"]
    got = s3.get_object(Bucket=bucket, Key=algorithm, ChecksumMode="ENABLED")
    assert got["Body"].read() == body
    assert got[f"Checksum{algorithm}"] == echoed
    if algorithm == "SHA256":
        assert echoed == base64.b64encode(hashlib.sha256(body).digest()).decode()
    head = s3.head_object(Bucket=bucket, Key=algorithm, ChecksumMode="ENABLED")
    assert head[f"Checksum{algorithm}"] == echoed


def test_wrong_checksum_is_bad_digest(s3, bucket: str) -> None:
    wrong = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=bucket, Key="bad", Body=b"data", ChecksumSHA256=wrong)
    assert code_of(err) == "BadDigest"
    with pytest.raises(ClientError) as err:
        s3.put_object(
            Bucket=bucket,
            Key="bad",
            Body=b"data",
            ContentMD5=base64.b64encode(hashlib.md5(b"nope").digest()).decode(),
        )
    assert code_of(err) == "BadDigest"
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="bad")


def test_checksums_when_required_only(jay: JayProcess, bucket: str) -> None:
    """With checksums only when required botocore sends a plain body with a SHA-256 payload hash."""
    client = s3_client(
        jay,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    client.put_object(Bucket=bucket, Key="plain", Body=b"plain body")
    assert client.get_object(Bucket=bucket, Key="plain")["Body"].read() == b"plain body"


# --- conditionals ----------------------------------------------------------------------------


def test_conditional_get_and_head(s3, bucket: str) -> None:
    etag = s3.put_object(Bucket=bucket, Key="c", Body=b"conditional")["ETag"]
    modified = s3.head_object(Bucket=bucket, Key="c")["LastModified"]
    assert s3.get_object(Bucket=bucket, Key="c", IfMatch=etag)["Body"].read() == b"conditional"
    for call in (s3.get_object, s3.head_object):
        with pytest.raises(ClientError) as err:
            call(Bucket=bucket, Key="c", IfMatch='"0000"')
        assert status_of(err) == 412
        with pytest.raises(ClientError) as err:
            call(Bucket=bucket, Key="c", IfNoneMatch=etag)
        assert status_of(err) == 304
        with pytest.raises(ClientError) as err:
            call(Bucket=bucket, Key="c", IfModifiedSince=modified + timedelta(seconds=5))
        assert status_of(err) == 304
        with pytest.raises(ClientError) as err:
            call(Bucket=bucket, Key="c", IfUnmodifiedSince=modified - timedelta(days=1))
        assert status_of(err) == 412
    got = s3.get_object(Bucket=bucket, Key="c", IfModifiedSince=modified - timedelta(days=1))
    assert got["Body"].read() == b"conditional"
    got = s3.get_object(Bucket=bucket, Key="c", IfNoneMatch='"0000"')
    assert got["Body"].read() == b"conditional"


def test_conditional_writes(s3, bucket: str) -> None:
    first = s3.put_object(Bucket=bucket, Key="once", Body=b"one", IfNoneMatch="*")
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=bucket, Key="once", Body=b"two", IfNoneMatch="*")
    assert status_of(err) == 412
    assert code_of(err) == "PreconditionFailed"
    # Compare-and-swap: only the writer holding the current ETag wins.
    second = s3.put_object(Bucket=bucket, Key="once", Body=b"two", IfMatch=first["ETag"])
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=bucket, Key="once", Body=b"three", IfMatch=first["ETag"])
    assert status_of(err) == 412
    assert s3.get_object(Bucket=bucket, Key="once")["ETag"] == second["ETag"]
    assert s3.get_object(Bucket=bucket, Key="once")["Body"].read() == b"two"
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=bucket, Key="never", Body=b"x", IfMatch=first["ETag"])
    assert code_of(err) == "NoSuchKey"
    # If-Match: * replaces whatever version exists, and only an existing one.
    s3.put_object(Bucket=bucket, Key="once", Body=b"four", IfMatch="*")
    assert s3.get_object(Bucket=bucket, Key="once")["Body"].read() == b"four"
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=bucket, Key="never", Body=b"x", IfMatch="*")
    assert code_of(err) == "NoSuchKey"
    # If-None-Match with ETags: not over a version that has one of them.
    current = s3.head_object(Bucket=bucket, Key="once")["ETag"]
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=bucket, Key="once", Body=b"five", IfNoneMatch=f'"x", {current}')
    assert status_of(err) == 412
    s3.put_object(Bucket=bucket, Key="once", Body=b"five", IfNoneMatch='"some-other-etag"')
    assert s3.get_object(Bucket=bucket, Key="once")["Body"].read() == b"five"
    s3.put_object(Bucket=bucket, Key="fresh", Body=b"new", IfNoneMatch=current)


def test_conditional_deletes(s3, bucket: str) -> None:
    """DeleteObject If-Match / x-amz-if-match-size / -last-modified-time and DeleteObjects'
    per-object ETag / Size: a precondition that does not hold leaves the object in place."""
    put = s3.put_object(Bucket=bucket, Key="d", Body=b"twelve bytes")
    head = s3.head_object(Bucket=bucket, Key="d")
    for wrong in (
        {"IfMatch": '"00000000000000000000000000000000"'},
        {"IfMatchSize": 11},
        {"IfMatchLastModifiedTime": head["LastModified"] - timedelta(seconds=5)},
    ):
        with pytest.raises(ClientError) as err:
            s3.delete_object(Bucket=bucket, Key="d", **wrong)
        assert status_of(err) == 412, wrong
        assert code_of(err) == "PreconditionFailed"
    assert s3.get_object(Bucket=bucket, Key="d")["Body"].read() == b"twelve bytes"
    s3.delete_object(
        Bucket=bucket,
        Key="d",
        IfMatch=put["ETag"],
        IfMatchSize=12,
        IfMatchLastModifiedTime=head["LastModified"],
    )
    with pytest.raises(ClientError) as err:
        s3.head_object(Bucket=bucket, Key="d")
    assert status_of(err) == 404
    # If-Match on a missing key: NoSuchKey; "*" deletes whatever version exists.
    with pytest.raises(ClientError) as err:
        s3.delete_object(Bucket=bucket, Key="d", IfMatch="*")
    assert code_of(err) == "NoSuchKey"
    s3.put_object(Bucket=bucket, Key="d", Body=b"again")
    s3.delete_object(Bucket=bucket, Key="d", IfMatch="*")
    # DeleteObjects: each object's own preconditions.
    etags = {k: s3.put_object(Bucket=bucket, Key=k, Body=k.encode())["ETag"] for k in "abce"}
    result = s3.delete_objects(
        Bucket=bucket,
        Delete={
            "Objects": [
                {"Key": "a", "ETag": etags["a"]},
                {"Key": "b", "ETag": etags["a"]},
                {"Key": "c", "Size": 5},
                {"Key": "e", "LastModifiedTime": datetime(2015, 1, 1, tzinfo=UTC)},
            ]
        },
    )
    assert [d["Key"] for d in result["Deleted"]] == ["a"]
    assert sorted((e["Key"], e["Code"]) for e in result["Errors"]) == [
        ("b", "PreconditionFailed"),
        ("c", "PreconditionFailed"),
        ("e", "PreconditionFailed"),
    ]
    modified = s3.head_object(Bucket=bucket, Key="e")["LastModified"]
    result = s3.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": "e", "LastModifiedTime": modified}]}
    )
    assert [d["Key"] for d in result["Deleted"]] == ["e"]
    assert s3.get_object(Bucket=bucket, Key="b")["Body"].read() == b"b"


def test_client_leaving_mid_download_is_not_a_server_error(s3, bucket: str, jay) -> None:
    """A GET whose client closes the connection part-way is logged as the client leaving, not
    as an unexpected failure (``server_log_is_clean`` checks the log after the module)."""
    s3.put_object(Bucket=bucket, Key="big", Body=pattern(48 * MiB))
    for extra in ({}, {"Range": "bytes=1-"}):
        body = s3.get_object(Bucket=bucket, Key="big", **extra)["Body"]
        assert len(body.read(64 * 1024)) == 64 * 1024
        body.close()  # unread bytes left: urllib3 drops the connection
    # The server keeps serving.
    assert s3.get_object(Bucket=bucket, Key="big", Range="bytes=0-3")["Body"].read() == (pattern(4))


# --- ranges and overrides --------------------------------------------------------------------


def test_ranges(s3, bucket: str) -> None:
    body = bytes(range(256)) * 4
    s3.put_object(Bucket=bucket, Key="r", Body=body)
    got = s3.get_object(Bucket=bucket, Key="r", Range="bytes=10-19")
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert got["ContentRange"] == f"bytes 10-19/{len(body)}"
    assert got["Body"].read() == body[10:20]
    assert s3.get_object(Bucket=bucket, Key="r", Range="bytes=1000-")["Body"].read() == body[1000:]
    assert s3.get_object(Bucket=bucket, Key="r", Range="bytes=-5")["Body"].read() == body[-5:]
    assert (
        s3.get_object(Bucket=bucket, Key="r", Range="bytes=1020-5000")["Body"].read() == body[1020:]
    )
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="r", Range=f"bytes={len(body)}-")
    assert status_of(err) == 416
    assert code_of(err) == "InvalidRange"
    # A multi-range request is served whole (JAY_SPEC §8.2 item 9).
    got = s3.get_object(Bucket=bucket, Key="r", Range="bytes=0-1,5-6")
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert got["Body"].read() == body


def test_response_overrides(s3, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="o", Body=b"x", ContentType="text/plain")
    got = s3.get_object(
        Bucket=bucket,
        Key="o",
        ResponseContentType="application/json",
        ResponseContentDisposition="attachment; filename=o.json",
        ResponseCacheControl="no-cache",
        ResponseContentLanguage="de",
        ResponseContentEncoding="identity",
        ResponseExpires=datetime(2030, 1, 1, tzinfo=UTC),
    )
    assert got["ContentType"] == "application/json"
    assert got["ContentDisposition"] == "attachment; filename=o.json"
    assert got["CacheControl"] == "no-cache"
    assert got["ContentLanguage"] == "de"
    assert got["ContentEncoding"] == "identity"
    assert got["Expires"] == datetime(2030, 1, 1, tzinfo=UTC)
    assert s3.head_object(Bucket=bucket, Key="o")["ContentType"] == "text/plain"


# --- delete, copy ----------------------------------------------------------------------------


def test_delete_objects(s3, bucket: str) -> None:
    for i in range(5):
        s3.put_object(Bucket=bucket, Key=f"d/{i}", Body=b"x")
    result = s3.delete_objects(
        Bucket=bucket,
        Delete={"Objects": [{"Key": f"d/{i}"} for i in range(3)] + [{"Key": "d/missing"}]},
    )
    assert sorted(d["Key"] for d in result["Deleted"]) == ["d/0", "d/1", "d/2", "d/missing"]
    assert not result.get("Errors")
    left = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert left == ["d/3", "d/4"]
    quiet = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "d/3"}], "Quiet": True})
    assert not quiet.get("Deleted")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["d/4"]


def test_copy_object(s3, bucket: str) -> None:
    src = s3.put_object(
        Bucket=bucket, Key="src", Body=b"copy me", ContentType="text/plain", Metadata={"a": "1"}
    )
    copied = s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
    assert copied["CopyObjectResult"]["ETag"] == src["ETag"]
    got = s3.get_object(Bucket=bucket, Key="dst")
    assert got["Body"].read() == b"copy me"
    assert got["Metadata"] == {"a": "1"}
    assert got["ContentType"] == "text/plain"
    s3.copy_object(
        Bucket=bucket,
        Key="dst2",
        CopySource=f"{bucket}/src",
        MetadataDirective="REPLACE",
        Metadata={"b": "2"},
        ContentType="application/x-new",
    )
    got = s3.get_object(Bucket=bucket, Key="dst2")
    assert got["Metadata"] == {"b": "2"}
    assert got["ContentType"] == "application/x-new"
    assert got["Body"].read() == b"copy me"
    # Metadata-only self copy with REPLACE is allowed; a plain self copy is not.
    s3.copy_object(
        Bucket=bucket,
        Key="src",
        CopySource={"Bucket": bucket, "Key": "src"},
        MetadataDirective="REPLACE",
        Metadata={"c": "3"},
    )
    assert s3.head_object(Bucket=bucket, Key="src")["Metadata"] == {"c": "3"}
    with pytest.raises(ClientError) as err:
        s3.copy_object(Bucket=bucket, Key="src", CopySource={"Bucket": bucket, "Key": "src"})
    assert code_of(err) == "InvalidRequest"
    s3.copy_object(
        Bucket=bucket,
        Key="dst3",
        CopySource={"Bucket": bucket, "Key": "src"},
        CopySourceIfMatch=src["ETag"],
    )
    with pytest.raises(ClientError) as err:
        s3.copy_object(
            Bucket=bucket,
            Key="dst4",
            CopySource={"Bucket": bucket, "Key": "src"},
            CopySourceIfMatch='"0123"',
        )
    assert status_of(err) == 412
    with pytest.raises(ClientError) as err:
        s3.copy_object(Bucket=bucket, Key="dst4", CopySource={"Bucket": bucket, "Key": "nope"})
    assert code_of(err) == "NoSuchKey"
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="dst4")
    # Keys that need escaping in the copy source header.
    s3.put_object(Bucket=bucket, Key="sp ace+ü%", Body=b"odd")
    s3.copy_object(Bucket=bucket, Key="odd-copy", CopySource={"Bucket": bucket, "Key": "sp ace+ü%"})
    assert s3.get_object(Bucket=bucket, Key="odd-copy")["Body"].read() == b"odd"


# --- listings --------------------------------------------------------------------------------


def test_list_objects_v2_paginator_with_delimiter_and_start_after(s3, bucket: str) -> None:
    keys = [f"a/{i:02d}" for i in range(7)] + [f"b/{i}/x" for i in range(4)] + ["c", "d", "e"]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"")
    paginator = s3.get_paginator("list_objects_v2")
    pages = list(paginator.paginate(Bucket=bucket, PaginationConfig={"PageSize": 2}))
    got = [o["Key"] for p in pages for o in p.get("Contents", [])]
    assert got == sorted(keys)
    assert len(pages) == 7
    pages = list(paginator.paginate(Bucket=bucket, Delimiter="/", PaginationConfig={"PageSize": 1}))
    prefixes = [cp["Prefix"] for p in pages for cp in p.get("CommonPrefixes", [])]
    objects = [o["Key"] for p in pages for o in p.get("Contents", [])]
    assert prefixes == ["a/", "b/"]
    assert objects == ["c", "d", "e"]
    # The paginator resends StartAfter with every token; the token must win.
    pages = list(
        paginator.paginate(Bucket=bucket, StartAfter="a/03", PaginationConfig={"PageSize": 3})
    )
    got = [o["Key"] for p in pages for o in p.get("Contents", [])]
    assert got == [k for k in sorted(keys) if k > "a/03"]
    assert all(p["StartAfter"] == "a/03" for p in pages)
    # StartAfter inside a group still reports the group (later keys roll up into it).
    pages = list(
        paginator.paginate(
            Bucket=bucket, Delimiter="/", StartAfter="a/03", PaginationConfig={"PageSize": 1}
        )
    )
    assert [cp["Prefix"] for p in pages for cp in p.get("CommonPrefixes", [])] == ["a/", "b/"]
    assert [o["Key"] for p in pages for o in p.get("Contents", [])] == ["c", "d", "e"]
    assert len(pages) == 5
    one = s3.list_objects_v2(Bucket=bucket, Prefix="b/", Delimiter="/")
    assert [cp["Prefix"] for cp in one["CommonPrefixes"]] == [f"b/{i}/" for i in range(4)]
    assert one["KeyCount"] == 4
    empty = s3.list_objects_v2(Bucket=bucket, MaxKeys=0)
    assert empty["KeyCount"] == 0 and not empty.get("Contents")


def test_list_objects_v1_markers(s3, bucket: str) -> None:
    keys = [f"k{i}" for i in range(5)]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"12")
    first = s3.list_objects(Bucket=bucket, MaxKeys=2)
    assert [o["Key"] for o in first["Contents"]] == ["k0", "k1"]
    assert first["IsTruncated"] is True
    second = s3.list_objects(Bucket=bucket, Marker="k1", MaxKeys=2)
    assert [o["Key"] for o in second["Contents"]] == ["k2", "k3"]
    assert second["Marker"] == "k1"
    pages = list(
        s3.get_paginator("list_objects").paginate(Bucket=bucket, PaginationConfig={"PageSize": 2})
    )
    assert [o["Key"] for p in pages for o in p["Contents"]] == keys
    assert first["Contents"][0]["Size"] == 2
    grouped = s3.list_objects(Bucket=bucket, Delimiter="/", Prefix="k", MaxKeys=3)
    assert grouped.get("NextMarker") == "k2"


def test_list_objects_v1_marker_after_a_common_prefix(s3, bucket: str) -> None:
    keys = ["a", "m/1", "m/2", "m/3/x", "n", "z/1"]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"")
    pages = list(
        s3.get_paginator("list_objects").paginate(
            Bucket=bucket, Delimiter="/", PaginationConfig={"PageSize": 1}
        )
    )
    # S3 names the last common prefix as NextMarker; sending it back skips the whole group.
    assert [p.get("NextMarker") for p in pages] == ["a", "m/", "n", None]
    entries = [o["Key"] for p in pages for o in p.get("Contents", [])]
    entries += [c["Prefix"] for p in pages for c in p.get("CommonPrefixes", [])]
    assert sorted(entries) == ["a", "m/", "n", "z/"]
    after = s3.list_objects(Bucket=bucket, Delimiter="/", Marker="m/")
    assert [o["Key"] for o in after["Contents"]] == ["n"]
    assert [c["Prefix"] for c in after["CommonPrefixes"]] == ["z/"]
    # Without a delimiter a marker is just a key.
    plain = s3.list_objects(Bucket=bucket, Marker="m/")
    assert [o["Key"] for o in plain["Contents"]] == ["m/1", "m/2", "m/3/x", "n", "z/1"]
    with pytest.raises(ClientError) as err:
        s3.list_objects_v2(Bucket=bucket, ContinuationToken="!!not-a-token")
    assert code_of(err) == "InvalidArgument"


def test_encoding_type_url_round_trips_odd_keys(s3, bucket: str) -> None:
    keys = ["a+b", "c%d", "e f", "ü/ñ", "tab\tkey", "g&h<i>"]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"")
    # boto3 asks for encoding-type=url and decodes what comes back.
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert sorted(listed) == sorted(keys)
    listed = [o["Key"] for o in s3.list_objects(Bucket=bucket)["Contents"]]
    assert sorted(listed) == sorted(keys)
    grouped = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [cp["Prefix"] for cp in grouped["CommonPrefixes"]] == ["ü/"]
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, PaginationConfig={"PageSize": 1}
    )
    assert sorted(o["Key"] for p in pages for o in p.get("Contents", [])) == sorted(keys)


def test_list_object_versions(s3, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="v1", Body=b"abc")
    s3.put_object(Bucket=bucket, Key="v2", Body=b"de")
    versions = s3.list_object_versions(Bucket=bucket)["Versions"]
    assert [(v["Key"], v["Size"], v["IsLatest"]) for v in versions] == [
        ("v1", 3, True),
        ("v2", 2, True),
    ]
    assert all(v["VersionId"] == "null" for v in versions)


# --- multipart -------------------------------------------------------------------------------


def test_upload_file_and_download_file_multipart(s3, bucket: str, tmp_path: Path) -> None:
    data = pattern(12 * MiB, seed=1)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    config = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB)
    s3.upload_file(str(src), bucket, "big.bin", Config=config)
    head = s3.head_object(Bucket=bucket, Key="big.bin")
    assert head["ContentLength"] == len(data)
    assert head["ETag"].endswith('-3"')
    part_md5s = [hashlib.md5(data[i : i + 5 * MiB]).digest() for i in range(0, len(data), 5 * MiB)]
    assert head["ETag"] == '"{}-3"'.format(hashlib.md5(b"".join(part_md5s)).hexdigest())
    dst = tmp_path / "back.bin"
    s3.download_file(bucket, "big.bin", str(dst), Config=config)
    assert dst.read_bytes() == data
    # Part-wise GET.
    part2 = s3.get_object(Bucket=bucket, Key="big.bin", PartNumber=2)
    assert part2["PartsCount"] == 3
    assert part2["ContentLength"] == 5 * MiB
    assert part2["Body"].read() == data[5 * MiB : 10 * MiB]
    part3 = s3.head_object(Bucket=bucket, Key="big.bin", PartNumber=3)
    assert part3["ContentLength"] == 2 * MiB
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="big.bin", PartNumber=4)
    assert status_of(err) == 416


def test_multipart_with_checksum_algorithm(s3, bucket: str, tmp_path: Path) -> None:
    data = pattern(11 * MiB, seed=4)
    src = tmp_path / "crc.bin"
    src.write_bytes(data)
    config = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB)
    s3.upload_file(
        str(src), bucket, "crc.bin", Config=config, ExtraArgs={"ChecksumAlgorithm": "CRC32C"}
    )
    got = s3.get_object(Bucket=bucket, Key="crc.bin", ChecksumMode="ENABLED")
    assert got["Body"].read() == data
    assert "ChecksumCRC32C" in got


def test_multipart_low_level_listing_and_errors(s3, bucket: str) -> None:
    big = pattern(5 * MiB, seed=2)
    create = s3.create_multipart_upload(
        Bucket=bucket, Key="mp", ContentType="text/x-mp", Metadata={"m": "1"}
    )
    upload_id = create["UploadId"]
    other = s3.create_multipart_upload(Bucket=bucket, Key="mp-other")["UploadId"]
    uploads = s3.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert {(u["Key"], u["UploadId"]) for u in uploads} == {("mp", upload_id), ("mp-other", other)}
    p1 = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload_id, PartNumber=1, Body=big)
    p2 = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload_id, PartNumber=2, Body=b"tail")
    p3 = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload_id, PartNumber=3, Body=b"more")
    parts = s3.list_parts(Bucket=bucket, Key="mp", UploadId=upload_id)["Parts"]
    assert [(p["PartNumber"], p["Size"], p["ETag"]) for p in parts] == [
        (1, len(big), p1["ETag"]),
        (2, 4, p2["ETag"]),
        (3, 4, p3["ETag"]),
    ]
    paged = s3.list_parts(Bucket=bucket, Key="mp", UploadId=upload_id, MaxParts=2)
    assert paged["IsTruncated"] is True and paged["NextPartNumberMarker"] == 2

    def complete(parts_list: list[dict]) -> dict:
        return s3.complete_multipart_upload(
            Bucket=bucket, Key="mp", UploadId=upload_id, MultipartUpload={"Parts": parts_list}
        )

    with pytest.raises(ClientError) as err:  # part 2 is below 5 MiB and not last
        complete(
            [
                {"PartNumber": 1, "ETag": p1["ETag"]},
                {"PartNumber": 2, "ETag": p2["ETag"]},
                {"PartNumber": 3, "ETag": p3["ETag"]},
            ]
        )
    assert code_of(err) == "EntityTooSmall"
    with pytest.raises(ClientError) as err:
        complete([{"PartNumber": 1, "ETag": p2["ETag"]}])
    assert code_of(err) == "InvalidPart"
    with pytest.raises(ClientError) as err:
        complete([{"PartNumber": 1, "ETag": p1["ETag"]}, {"PartNumber": 4, "ETag": p1["ETag"]}])
    assert code_of(err) == "InvalidPart"
    with pytest.raises(ClientError) as err:
        complete([{"PartNumber": 2, "ETag": p2["ETag"]}, {"PartNumber": 1, "ETag": p1["ETag"]}])
    assert code_of(err) == "InvalidPartOrder"
    done = complete([{"PartNumber": 1, "ETag": p1["ETag"]}, {"PartNumber": 3, "ETag": p3["ETag"]}])
    assert done["ETag"].endswith('-2"')
    got = s3.get_object(Bucket=bucket, Key="mp")
    assert got["Body"].read() == big + b"more"
    assert got["ContentType"] == "text/x-mp"
    assert got["Metadata"] == {"m": "1"}
    with pytest.raises(ClientError) as err:
        s3.list_parts(Bucket=bucket, Key="mp", UploadId=upload_id)
    assert code_of(err) == "NoSuchUpload"
    # A retried Complete (its first answer lost) succeeds again with the same ETag, and
    # changes nothing; once the key holds another version the upload is gone for good.
    again = complete([{"PartNumber": 1, "ETag": p1["ETag"]}, {"PartNumber": 3, "ETag": p3["ETag"]}])
    assert again["ETag"] == done["ETag"]
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == big + b"more"
    s3.put_object(Bucket=bucket, Key="mp", Body=b"replaced")
    with pytest.raises(ClientError) as err:
        complete([{"PartNumber": 1, "ETag": p1["ETag"]}, {"PartNumber": 3, "ETag": p3["ETag"]}])
    assert code_of(err) == "NoSuchUpload"
    s3.abort_multipart_upload(Bucket=bucket, Key="mp-other", UploadId=other)
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")
    with pytest.raises(ClientError) as err:
        s3.upload_part(Bucket=bucket, Key="mp-other", UploadId=other, PartNumber=1, Body=b"x")
    assert code_of(err) == "NoSuchUpload"
    with pytest.raises(ClientError) as err:
        s3.upload_part(Bucket=bucket, Key="mp", UploadId="nope", PartNumber=1, Body=b"x")
    assert code_of(err) == "NoSuchUpload"


def test_upload_part_copy_with_ranges(s3, bucket: str) -> None:
    source = pattern(7 * MiB, seed=5)
    s3.put_object(Bucket=bucket, Key="copy-src", Body=source)
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="assembled")["UploadId"]
    first = s3.upload_part_copy(
        Bucket=bucket,
        Key="assembled",
        UploadId=upload_id,
        PartNumber=1,
        CopySource={"Bucket": bucket, "Key": "copy-src"},
        CopySourceRange=f"bytes=0-{5 * MiB - 1}",
    )
    second = s3.upload_part_copy(
        Bucket=bucket,
        Key="assembled",
        UploadId=upload_id,
        PartNumber=2,
        CopySource={"Bucket": bucket, "Key": "copy-src"},
        CopySourceRange=f"bytes={5 * MiB}-{7 * MiB - 1}",
    )
    with pytest.raises(ClientError) as err:
        s3.upload_part_copy(
            Bucket=bucket,
            Key="assembled",
            UploadId=upload_id,
            PartNumber=3,
            CopySource={"Bucket": bucket, "Key": "copy-src"},
            CopySourceRange=f"bytes={8 * MiB}-{9 * MiB}",
        )
    assert code_of(err) in ("InvalidRange", "InvalidArgument")
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="assembled",
        UploadId=upload_id,
        MultipartUpload={
            "Parts": [
                {"PartNumber": 1, "ETag": first["CopyPartResult"]["ETag"]},
                {"PartNumber": 2, "ETag": second["CopyPartResult"]["ETag"]},
            ]
        },
    )
    assert s3.get_object(Bucket=bucket, Key="assembled")["Body"].read() == source


def test_managed_copy_of_a_multipart_object(s3, bucket: str) -> None:
    data = pattern(11 * MiB, seed=6)
    config = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB)
    import io

    s3.upload_fileobj(io.BytesIO(data), bucket, "mp-src", Config=config)
    s3.copy({"Bucket": bucket, "Key": "mp-src"}, bucket, "mp-dst", Config=config)
    assert s3.get_object(Bucket=bucket, Key="mp-dst")["Body"].read() == data


# --- presigned URLs --------------------------------------------------------------------------


def test_presigned_sigv4_get_and_put(jay: JayProcess, bucket: str) -> None:
    s3v4 = s3_client(jay, signature_version="s3v4")
    put_url = s3v4.generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": "presigned"}, ExpiresIn=300
    )
    assert "X-Amz-Signature=" in put_url
    status, _, _ = raw_request(put_url, "PUT", b"via presign")
    assert status == 200
    get_url = s3v4.generate_presigned_url(
        "get_object",
        Params={"Bucket": bucket, "Key": "presigned", "ResponseContentType": "text/x-presigned"},
        ExpiresIn=300,
    )
    status, headers, body = raw_request(get_url)
    assert (status, body) == (200, b"via presign")
    assert headers["content-type"] == "text/x-presigned"
    for tampered in (
        get_url.replace("/presigned?", "/presigneX?"),
        get_url.replace("text%2Fx-presigned", "text%2Fhtml"),
        get_url.replace("X-Amz-Expires=300", "X-Amz-Expires=301"),
    ):
        assert tampered != get_url
        status, _, body = raw_request(tampered)
        assert status == 403
        assert b"<Code>SignatureDoesNotMatch</Code>" in body
    # A presigned PUT does not let the holder write another key.
    status, _, _ = raw_request(put_url.replace("/presigned?", "/other?"), "PUT", b"x")
    assert status == 403
    assert raw_request(get_url)[2] == b"via presign"


def test_presigned_sigv2_get(s3, bucket: str) -> None:
    """boto3's default presign for S3 is still SigV2 query auth (AWSAccessKeyId/Signature/Expires)."""
    s3.put_object(Bucket=bucket, Key="v2", Body=b"sigv2")
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "v2"}, ExpiresIn=300
    )
    if "AWSAccessKeyId=" not in url:
        pytest.skip("this botocore presigns with SigV4 by default")
    assert raw_request(url)[:1] == (200,)
    assert raw_request(url)[2] == b"sigv2"
    status, _, body = raw_request(url.replace("/v2?", "/v3?"))
    assert status == 403 and b"SignatureDoesNotMatch" in body


# --- policies, sub-resources, bad input ------------------------------------------------------


def test_bucket_policy_put_get_delete_and_effect(s3, bucket: str, jay: JayProcess) -> None:
    with pytest.raises(ClientError) as err:
        s3.get_bucket_policy(Bucket=bucket)
    assert code_of(err) == "NoSuchBucketPolicy"
    s3.put_object(Bucket=bucket, Key="public/p.txt", Body=b"open")
    s3.put_object(Bucket=bucket, Key="private/q.txt", Body=b"closed")
    policy = {
        "version": "2024-01-01",
        "statements": [
            {
                "effect": "allow",
                "actions": ["object:get"],
                "prefixes": ["public/"],
                "subjects": ["*"],
            },
            {
                "effect": "deny",
                "actions": ["object:delete"],
                "prefixes": ["public/"],
                "subjects": ["*"],
            },
        ],
    }
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    assert json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]) == policy
    with urllib.request.urlopen(f"{jay.s3_url}/{bucket}/public/p.txt", timeout=10) as resp:
        assert resp.read() == b"open"
    with pytest.raises(urllib.error.HTTPError) as herr:
        urllib.request.urlopen(f"{jay.s3_url}/{bucket}/private/q.txt", timeout=10)
    assert herr.value.code == 403
    with pytest.raises(ClientError) as err:
        s3.delete_object(Bucket=bucket, Key="public/p.txt")
    assert code_of(err) == "AccessDenied"
    result = s3.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": "public/p.txt"}, {"Key": "private/gone"}]}
    )
    assert [(f["Key"], f["Code"]) for f in result["Errors"]] == [("public/p.txt", "AccessDenied")]
    assert [d["Key"] for d in result["Deleted"]] == ["private/gone"]
    with pytest.raises(ClientError) as err:
        s3.put_bucket_policy(Bucket=bucket, Policy="{not json")
    assert code_of(err) == "MalformedPolicy"
    s3.delete_bucket_policy(Bucket=bucket)
    with pytest.raises(ClientError) as err:
        s3.get_bucket_policy(Bucket=bucket)
    assert code_of(err) == "NoSuchBucketPolicy"
    s3.delete_object(Bucket=bucket, Key="public/p.txt")
    with pytest.raises(urllib.error.HTTPError) as herr:
        urllib.request.urlopen(f"{jay.s3_url}/{bucket}/private/q.txt", timeout=10)
    assert herr.value.code == 403


def test_unsupported_sub_resources_are_501_and_harmless(s3, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="keep", Body=b"keep me")
    with pytest.raises(ClientError) as err:
        s3.put_bucket_website(
            Bucket=bucket, WebsiteConfiguration={"IndexDocument": {"Suffix": "index.html"}}
        )
    assert status_of(err) == 501
    with pytest.raises(ClientError) as err:
        s3.delete_bucket_website(Bucket=bucket)  # upstream deleted the bucket here
    assert status_of(err) == 501
    assert code_of(err) == "NotImplemented"
    with pytest.raises(ClientError) as err:
        s3.put_bucket_encryption(
            Bucket=bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms:dsse"}}]
            },
        )
    assert status_of(err) == 501
    with pytest.raises(ClientError) as err:
        s3.delete_bucket_replication(Bucket=bucket)
    assert status_of(err) == 501
    with pytest.raises(ClientError) as err:  # no Object Lock on this bucket
        s3.get_object_retention(Bucket=bucket, Key="keep")
    assert (status_of(err), code_of(err)) == (400, "InvalidRequest")
    assert s3.get_object(Bucket=bucket, Key="keep")["Body"].read() == b"keep me"
    assert s3.head_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_default_acls_are_the_owners(s3, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="acl", Body=b"x")
    acl = s3.get_bucket_acl(Bucket=bucket)
    assert acl["Grants"][0]["Permission"] == "FULL_CONTROL"
    assert s3.get_object_acl(Bucket=bucket, Key="acl")["Grants"][0]["Permission"] == "FULL_CONTROL"


def test_malformed_xml(s3, bucket: str, jay: JayProcess) -> None:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="m")["UploadId"]

    def send_bad_complete(request, **kwargs) -> None:
        request.data = b"<CompleteMultipartUpload><Part><PartNumber>oops"
        for name in [
            n for n in request.headers if n.lower().startswith(("content-md5", "x-amz-checksum"))
        ]:
            del request.headers[name]

    events = s3.meta.events
    events.register_first("before-sign.s3.CompleteMultipartUpload", send_bad_complete)
    try:
        with pytest.raises(ClientError) as err:
            s3.complete_multipart_upload(
                Bucket=bucket,
                Key="m",
                UploadId=upload_id,
                MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"x"'}]},
            )
    finally:
        events.unregister("before-sign.s3.CompleteMultipartUpload", send_bad_complete)
    assert code_of(err) == "MalformedXML"
    # The upload survives a bad Complete.
    assert s3.list_parts(Bucket=bucket, Key="m", UploadId=upload_id)["UploadId"] == upload_id


def test_anonymous_requests_are_denied(jay: JayProcess, bucket: str, s3) -> None:
    s3.put_object(Bucket=bucket, Key="secret", Body=b"s")
    for url in (f"{jay.s3_url}/", f"{jay.s3_url}/{bucket}", f"{jay.s3_url}/{bucket}/secret"):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(url, timeout=10)
        assert err.value.code == 403
        assert b"<Code>AccessDenied</Code>" in err.value.read()
    req = urllib.request.Request(f"{jay.s3_url}/{bucket}/secret", data=b"overwrite", method="PUT")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    assert err.value.code == 403
    assert s3.get_object(Bucket=bucket, Key="secret")["Body"].read() == b"s"


def _object_bytes(jay: JayProcess, body: bytes) -> tuple[Path, int]:
    """Where the data dir holds exactly ``body``: the one file under buckets/ of that content,
    or the one 4 KiB-aligned range of a pack file (small objects: jay.storage.packs)."""
    found = [
        (path, 0)
        for path in (jay.workdir / "data" / "buckets").rglob("*")
        if path.is_file() and path.stat().st_size == len(body) and path.read_bytes() == body
    ]
    for pack in (jay.workdir / "data" / "packs").glob("*.pack"):
        data = pack.read_bytes()
        at = data.find(body)
        while at >= 0:
            if at % 4096 == 0:
                found.append((pack, at))
            at = data.find(body, at + 1)
    assert len(found) == 1, found
    return found[0]


@pytest.mark.parametrize("size", [4096, 300 * 1024])  # read with its lookup / streamed
def test_reads_are_verified_and_a_rotten_object_is_quarantined(
    s3, jay: JayProcess, size: int
) -> None:
    # This server verifies every read (read_verify_rate: 1.0). A healthy object reads back; one
    # whose file changed on disk (same size) fails its read (the connection is cut, never a
    # wrong body) and is quarantined: the key is gone afterwards.
    s3.create_bucket(Bucket=f"verified-{size}")
    good = hashlib.sha256(b"good%d" % size).digest() * (size // 32)
    bad = hashlib.sha256(b"bad%d" % size).digest() * (size // 32)
    s3.put_object(Bucket=f"verified-{size}", Key=f"good-{size}", Body=good)
    s3.put_object(Bucket=f"verified-{size}", Key=f"bad-{size}", Body=bad)
    for _ in range(2):
        assert s3.get_object(Bucket=f"verified-{size}", Key=f"good-{size}")["Body"].read() == good
    path, offset = _object_bytes(jay, bad)
    assert (offset > 0 or path.parent.name == "packs") == (size <= 16 * 1024)
    with path.open("r+b") as f:
        f.seek(offset + size // 2)
        f.write(bytes([bad[size // 2] ^ 0xFF]))
    with pytest.raises(Exception) as failed:
        s3.get_object(Bucket=f"verified-{size}", Key=f"bad-{size}")["Body"].read()
    assert not isinstance(failed.value, ClientError) or "NoSuchKey" not in str(failed.value)
    with pytest.raises(ClientError) as gone:
        s3.head_object(Bucket=f"verified-{size}", Key=f"bad-{size}")
    assert gone.value.response["Error"]["Code"] in ("404", "NoSuchKey")
    assert s3.get_object(Bucket=f"verified-{size}", Key=f"good-{size}")["Body"].read() == good


def test_cors_preflight_is_answered_as_for_a_bucket_without_cors(
    jay: JayProcess, bucket: str
) -> None:
    url = f"{jay.s3_url}/{bucket}/k"
    status, _, body = raw_request(url, "OPTIONS")
    assert status == 400 and b"<Code>BadRequest</Code>" in body and b"Origin" in body
    status, _, body = raw_request(
        url,
        "OPTIONS",
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "GET"},
    )
    assert status == 403 and b"<Code>AccessForbidden</Code>" in body


def test_features_jay_lacks_are_refused_not_ignored(s3, bucket: str) -> None:
    """DSSE-KMS and object lock are refused (nothing stored); SSE-S3, SSE-C, SSE-KMS accepted."""
    key_b64 = base64.b64encode(b"k" * 32).decode()
    refused = [
        ({"ServerSideEncryption": "aws:kms:dsse"}, 501, "NotImplemented"),
        (
            {"ObjectLockMode": "GOVERNANCE", "ObjectLockRetainUntilDate": datetime.now(UTC)},
            400,
            "InvalidRequest",
        ),
    ]
    for extra, status, code in refused:
        with pytest.raises(ClientError) as err:
            s3.put_object(Bucket=bucket, Key="refused", Body=b"x", **extra)
        assert (status_of(err), code_of(err)) == (status, code), extra
        with pytest.raises(ClientError) as err:
            s3.create_multipart_upload(Bucket=bucket, Key="refused", **extra)
        assert (status_of(err), code_of(err)) == (status, code), extra
    with pytest.raises(ClientError) as err:
        s3.head_object(Bucket=bucket, Key="refused")
    assert status_of(err) == 404
    s3.put_object(Bucket=bucket, Key="sse-s3", Body=b"x", ServerSideEncryption="AES256")
    with pytest.raises(ClientError) as err:
        s3.get_object(
            Bucket=bucket, Key="sse-s3", SSECustomerAlgorithm="AES256", SSECustomerKey=key_b64
        )
    assert status_of(err) == 400


def test_aws_format_bucket_policy(s3, bucket: str, jay: JayProcess) -> None:
    """The policy S3 tools write for "public download" (mc anonymous set download, the AWS
    docs' example) opens reads and listing to anonymous callers, nothing else."""
    s3.put_object(Bucket=bucket, Key="site/index.html", Body=b"<h1>hi</h1>")
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": ["*"]},
                "Action": ["s3:GetBucketLocation", "s3:ListBucket"],
                "Resource": [f"arn:aws:s3:::{bucket}"],
            },
            {
                "Effect": "Allow",
                "Principal": {"AWS": ["*"]},
                "Action": ["s3:GetObject"],
                "Resource": [f"arn:aws:s3:::{bucket}/*"],
            },
        ],
    }
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    assert json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]) == policy
    with urllib.request.urlopen(f"{jay.s3_url}/{bucket}/site/index.html", timeout=10) as resp:
        assert resp.read() == b"<h1>hi</h1>"
    with urllib.request.urlopen(f"{jay.s3_url}/{bucket}?list-type=2", timeout=10) as resp:
        assert b"<Key>site/index.html</Key>" in resp.read()
    status, _, _ = raw_request(f"{jay.s3_url}/{bucket}/site/new.html", "PUT", body=b"x")
    assert status == 403
    status, _, _ = raw_request(f"{jay.s3_url}/{bucket}/site/index.html", "DELETE")
    assert status == 403
    wrong = dict(policy, Statement=[dict(policy["Statement"][1], Resource="arn:aws:s3:::x/*")])
    with pytest.raises(ClientError) as err:
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(wrong))
    assert code_of(err) == "MalformedPolicy"
    s3.delete_bucket_policy(Bucket=bucket)
    with pytest.raises(urllib.error.HTTPError) as herr:
        urllib.request.urlopen(f"{jay.s3_url}/{bucket}/site/index.html", timeout=10)
    assert herr.value.code == 403


def test_expected_bucket_owner(s3, bucket: str) -> None:
    owner = s3.list_buckets()["Owner"]["ID"]
    s3.put_object(Bucket=bucket, Key="k", Body=b"v", ExpectedBucketOwner=owner)
    assert s3.get_object(Bucket=bucket, Key="k", ExpectedBucketOwner=owner)["Body"].read() == b"v"
    for call in (
        lambda: s3.put_object(Bucket=bucket, Key="k", Body=b"w", ExpectedBucketOwner="other"),
        lambda: s3.list_objects_v2(Bucket=bucket, ExpectedBucketOwner="other"),
        lambda: s3.copy_object(
            Bucket=bucket,
            Key="copy",
            CopySource={"Bucket": bucket, "Key": "k"},
            ExpectedSourceBucketOwner="other",
        ),
    ):
        with pytest.raises(ClientError) as err:
            call()
        assert code_of(err) == "AccessDenied"
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v"
    s3.copy_object(
        Bucket=bucket,
        Key="copy",
        CopySource={"Bucket": bucket, "Key": "k"},
        ExpectedSourceBucketOwner=owner,
        ExpectedBucketOwner=owner,
    )


def test_features_jay_lacks_read_as_never_configured(s3) -> None:
    """Tools that inspect a bucket (Terraform, s3cmd info) read these: S3's answers for a
    bucket without the feature, while setting one stays 501."""
    s3.create_bucket(Bucket="unconfigured")
    assert s3.get_bucket_logging(Bucket="unconfigured").get("LoggingEnabled") is None
    notification = s3.get_bucket_notification_configuration(Bucket="unconfigured")
    assert not notification.get("TopicConfigurations") and not notification.get(
        "QueueConfigurations"
    )
    assert s3.get_bucket_accelerate_configuration(Bucket="unconfigured").get("Status") is None
    assert s3.get_bucket_request_payment(Bucket="unconfigured")["Payer"] == "BucketOwner"
    for read, code in (
        (s3.get_bucket_website, "NoSuchWebsiteConfiguration"),
        (s3.get_bucket_replication, "ReplicationConfigurationNotFoundError"),
        (s3.get_object_lock_configuration, "ObjectLockConfigurationNotFoundError"),
    ):
        with pytest.raises(ClientError) as err:
            read(Bucket="unconfigured")
        assert code_of(err) == code and status_of(err) == 404
    with pytest.raises(ClientError) as err:
        s3.put_bucket_website(
            Bucket="unconfigured", WebsiteConfiguration={"IndexDocument": {"Suffix": "index.html"}}
        )
    assert code_of(err) == "NotImplemented"
    with pytest.raises(ClientError) as err:
        s3.get_bucket_logging(Bucket="no-such-bucket-here")
    assert code_of(err) == "NoSuchBucket"
