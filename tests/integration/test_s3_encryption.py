"""Server-side encryption at rest against a real jay process with boto3: SSE-C and SSE-S3 on
PUT, GET (ranges, partNumber), HEAD, copies, multipart uploads and GetObjectAttributes; bucket
default encryption; S3's errors (as ceph/s3-tests expects them); bytes on disk never the
plaintext; the customer key never in the log."""

from __future__ import annotations

import base64
import datetime
import hashlib
import itertools
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from botocore.exceptions import ClientError
from twisted.internet import reactor

from jay.checksums import checksum_of
from jay.client import connect
from jay.client.protocol import BadRequest
from tests.integration.conftest import (
    SEED_ACCOUNT,
    SEED_SECRET,
    SEED_TOKEN_ID,
    code_of,
    raw_request,
    s3_client,
    status_of,
)
from tests.integration.jayproc import CLEAN_EXIT, JayProcess

KiB = 1024
KEY_A = base64.b64decode("pO3upElrwuEXSoFwCfnZPdSsmt/xWeFa0N9KgDijwVs=")
KEY_B = base64.b64decode("6b+WOZ1T3cqZMxgThRcXAQBrS5mXKdDUphvpxptl9/4=")
_names = itertools.count()


def sse_c(key: bytes) -> dict[str, str]:
    return {
        "SSECustomerAlgorithm": "AES256",
        "SSECustomerKey": base64.b64encode(key).decode(),
        "SSECustomerKeyMD5": base64.b64encode(hashlib.md5(key).digest()).decode(),
    }


def copy_source_sse_c(key: bytes) -> dict[str, str]:
    return {f"CopySource{name}": value for name, value in sse_c(key).items()}


@pytest.fixture(scope="module")
def jay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JayProcess]:
    proc = JayProcess(
        tmp_path_factory.mktemp("jay"),
        {
            "seed_token": {"account": SEED_ACCOUNT, "id": SEED_TOKEN_ID, "secret": SEED_SECRET},
            "min_part_size": 0,
            "read_verify_rate": 1.0,  # verified reads must cope with encrypted objects too
            "sse_kms_key_ids": ["backups-key"],
        },
    ).start()
    yield proc
    log = proc.log_text()
    assert "Unexpected error" not in log and "Traceback" not in log, log[-5000:]
    for key in (KEY_A, KEY_B):
        assert base64.b64encode(key).decode() not in log
    assert proc.stop() in CLEAN_EXIT, proc.log_text()[-5000:]


@pytest.fixture
def s3(jay: JayProcess) -> Any:
    return s3_client(jay)


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"sse-{next(_names)}"
    s3.create_bucket(Bucket=name)
    return name


def data_dir(jay: JayProcess) -> Path:
    return jay.workdir / "data"


def stored_files_contain(jay: JayProcess, needle: bytes) -> bool:
    for path in data_dir(jay).rglob("*"):
        if path.is_file() and "meta" not in path.parts:
            if needle in path.read_bytes():
                return True
    return False


def body(size: int, marker: bytes = b"") -> bytes:
    return (marker + os.urandom(size))[:size]


# --- SSE-C ---------------------------------------------------------------------------------


def test_sse_c_round_trip_and_headers(s3: Any, bucket: str, jay: JayProcess) -> None:
    marker = b"sse-c-plaintext-marker-" + os.urandom(8).hex().encode()
    data = body(200 * KiB, marker)
    put = s3.put_object(Bucket=bucket, Key="c", Body=data, **sse_c(KEY_A))
    assert put["SSECustomerAlgorithm"] == "AES256"
    assert put["SSECustomerKeyMD5"] == sse_c(KEY_A)["SSECustomerKeyMD5"]
    # S3: the ETag of an SSE-C object is not the MD5 of its plaintext.
    assert put["ETag"].strip('"') != hashlib.md5(data).hexdigest()
    got = s3.get_object(Bucket=bucket, Key="c", **sse_c(KEY_A))
    assert got["Body"].read() == data
    assert got["ETag"] == put["ETag"] and got["ContentLength"] == len(data)
    assert got["SSECustomerKeyMD5"] == sse_c(KEY_A)["SSECustomerKeyMD5"]
    head = s3.head_object(Bucket=bucket, Key="c", **sse_c(KEY_A))
    assert head["ContentLength"] == len(data) and head["SSECustomerAlgorithm"] == "AES256"
    assert not stored_files_contain(jay, marker)
    listed = s3.list_objects_v2(Bucket=bucket)["Contents"]
    assert [(o["Key"], o["Size"]) for o in listed] == [("c", len(data))]


def test_sse_c_errors(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="c", Body=b"A" * 1000, **sse_c(KEY_A))
    s3.put_object(Bucket=bucket, Key="plain", Body=b"plain")
    for call in (s3.get_object, s3.head_object):
        with pytest.raises(ClientError) as err:
            call(Bucket=bucket, Key="c")  # no key: test_encryption_sse_c_present
        assert status_of(err) == 400
        with pytest.raises(ClientError) as err:
            call(Bucket=bucket, Key="c", **sse_c(KEY_B))  # test_encryption_sse_c_other_key
        assert status_of(err) == 403
        with pytest.raises(ClientError) as err:
            call(Bucket=bucket, Key="plain", **sse_c(KEY_A))  # SSE-C on a plain object
        assert status_of(err) == 400
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="c")
    assert code_of(err) == "InvalidRequest"
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="c", **sse_c(KEY_B))
    assert code_of(err) == "AccessDenied"

    def put_with(headers: dict[str, str]) -> tuple[int, bytes]:
        status, _, answer = raw_request(
            f"{s3.meta.endpoint_url}/{bucket}/bad",
            "PUT",
            b"x",
            {"Authorization": "Bearer x", **headers},
        )
        return status, answer

    good = {
        "x-amz-server-side-encryption-customer-algorithm": "AES256",
        "x-amz-server-side-encryption-customer-key": base64.b64encode(KEY_A).decode(),
        "x-amz-server-side-encryption-customer-key-md5": base64.b64encode(
            hashlib.md5(KEY_A).digest()
        ).decode(),
    }
    bad_cases = [
        # test_encryption_sse_c_invalid_md5, _no_md5, _no_key, test_encryption_key_no_sse_c
        {**good, "x-amz-server-side-encryption-customer-key-md5": "AAAAAAAAAAAAAAAAAAAAAA=="},
        {k: v for k, v in good.items() if not k.endswith("-md5")},
        {k: v for k, v in good.items() if not k.endswith("-key")},
        {k: v for k, v in good.items() if not k.endswith("-algorithm")},
        {**good, "x-amz-server-side-encryption-customer-algorithm": "AES128"},
        {**good, "x-amz-server-side-encryption-customer-key": "c2hvcnQ="},
    ]
    for headers in bad_cases:
        with pytest.raises(ClientError) as err:
            s3.put_object(
                Bucket=bucket,
                Key="bad",
                Body=b"x",
                **{
                    {
                        "x-amz-server-side-encryption-customer-algorithm": "SSECustomerAlgorithm",
                        "x-amz-server-side-encryption-customer-key": "SSECustomerKey",
                        "x-amz-server-side-encryption-customer-key-md5": "SSECustomerKeyMD5",
                    }[k]: v
                    for k, v in headers.items()
                },
            )
        assert (status_of(err), code_of(err)) == (400, "InvalidArgument"), headers
        assert base64.b64encode(KEY_A).decode() not in str(err.value.response)
    with pytest.raises(ClientError) as err:
        s3.head_object(Bucket=bucket, Key="bad")
    assert status_of(err) == 404


def test_sse_c_ranges(s3: Any, bucket: str) -> None:
    data = body(300 * KiB + 17)
    s3.put_object(Bucket=bucket, Key="r", Body=data, **sse_c(KEY_A))
    segment = 64 * KiB
    for first, last in [
        (0, 0),
        (0, segment - 1),
        (segment - 1, segment),
        (segment + 5, 3 * segment + 9),
        (len(data) - 10, len(data) - 1),
        (100, len(data) + 1000),
    ]:
        got = s3.get_object(Bucket=bucket, Key="r", Range=f"bytes={first}-{last}", **sse_c(KEY_A))
        assert got["Body"].read() == data[first : last + 1], (first, last)
        assert got["ContentRange"].startswith(f"bytes {first}-")
    suffix = s3.get_object(Bucket=bucket, Key="r", Range="bytes=-1000", **sse_c(KEY_A))
    assert suffix["Body"].read() == data[-1000:]
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="r", Range=f"bytes={len(data)}-", **sse_c(KEY_A))
    assert status_of(err) == 416


def test_sse_c_multipart(s3: Any, bucket: str) -> None:
    """test_encryption_sse_c_multipart_upload and its invalid_chunks / bad_download cousins."""
    parts = [body(150 * KiB), body(70 * KiB), body(5)]
    metadata = {"foo": "bar"}
    created = s3.create_multipart_upload(
        Bucket=bucket, Key="mp", Metadata=metadata, ContentType="text/plain", **sse_c(KEY_A)
    )
    assert created["SSECustomerKeyMD5"] == sse_c(KEY_A)["SSECustomerKeyMD5"]
    upload_id = created["UploadId"]
    with pytest.raises(ClientError) as err:
        s3.upload_part(
            Bucket=bucket, Key="mp", UploadId=upload_id, PartNumber=1, Body=b"x", **sse_c(KEY_B)
        )
    assert status_of(err) == 400
    with pytest.raises(ClientError) as err:
        s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload_id, PartNumber=1, Body=b"x")
    assert (status_of(err), code_of(err)) == (400, "InvalidRequest")
    listed = []
    # Upload part numbers 2, 4, 7: each part's number is bound into its key.
    for number, data in zip((2, 4, 7), parts, strict=True):
        sent = s3.upload_part(
            Bucket=bucket,
            Key="mp",
            UploadId=upload_id,
            PartNumber=number,
            Body=data,
            **sse_c(KEY_A),
        )
        assert sent["SSECustomerAlgorithm"] == "AES256"
        assert sent["ETag"].strip('"') != hashlib.md5(data).hexdigest()
        listed.append({"PartNumber": number, "ETag": sent["ETag"]})
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="mp", UploadId=upload_id, MultipartUpload={"Parts": listed}
    )
    assert done["ETag"].endswith('-3"')
    whole = b"".join(parts)
    head = s3.head_object(Bucket=bucket, Key="mp", **sse_c(KEY_A))
    assert head["ContentLength"] == len(whole) and head["Metadata"] == metadata
    assert head["ContentType"] == "text/plain"
    got = s3.get_object(Bucket=bucket, Key="mp", **sse_c(KEY_A))
    assert got["Body"].read() == whole
    for first, last in [(0, 10), (150 * KiB - 3, 150 * KiB + 3), (len(whole) - 7, len(whole) - 1)]:
        ranged = s3.get_object(
            Bucket=bucket, Key="mp", Range=f"bytes={first}-{last}", **sse_c(KEY_A)
        )
        assert ranged["Body"].read() == whole[first : last + 1]
    for number, data in enumerate(parts, start=1):
        part = s3.get_object(Bucket=bucket, Key="mp", PartNumber=number, **sse_c(KEY_A))
        assert part["Body"].read() == data
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="mp", **sse_c(KEY_B))
    assert status_of(err) == 403


def test_sse_c_object_attributes(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="c", Body=b"12345", **sse_c(KEY_A))
    with pytest.raises(ClientError) as err:
        s3.get_object_attributes(Bucket=bucket, Key="c", ObjectAttributes=["ObjectSize"])
    assert status_of(err) == 400
    attrs = s3.get_object_attributes(
        Bucket=bucket, Key="c", ObjectAttributes=["ObjectSize", "ETag"], **sse_c(KEY_A)
    )
    assert attrs["ObjectSize"] == 5


# --- SSE-S3 --------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 1000, 1024 * KiB, 3 * 1024 * KiB + 1])
def test_sse_s3_round_trip(s3: Any, bucket: str, jay: JayProcess, size: int) -> None:
    """test_sse_s3_encrypted_upload_1b / _1kb / _1mb / _8mb."""
    marker = b"sse-s3-marker-" + os.urandom(8).hex().encode()
    data = body(size, marker) if size >= len(marker) else b"z"
    put = s3.put_object(Bucket=bucket, Key="s", Body=data, ServerSideEncryption="AES256")
    assert put["ServerSideEncryption"] == "AES256"
    assert put["ETag"].strip('"') == hashlib.md5(data).hexdigest()  # SSE-S3: the MD5, as S3
    got = s3.get_object(Bucket=bucket, Key="s")
    assert got["ServerSideEncryption"] == "AES256"
    assert got["Body"].read() == data
    assert s3.head_object(Bucket=bucket, Key="s")["ServerSideEncryption"] == "AES256"
    if size >= len(marker):
        assert not stored_files_contain(jay, marker)
    key_file = data_dir(jay) / "sse-master.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    if size > 64 * KiB:
        ranged = s3.get_object(Bucket=bucket, Key="s", Range="bytes=65530-70000")
        assert ranged["Body"].read() == data[65530:70001]


def test_sse_s3_multipart_with_full_object_checksum(s3: Any, bucket: str) -> None:
    parts = [body(100 * KiB), body(3)]
    upload_id = s3.create_multipart_upload(
        Bucket=bucket,
        Key="m",
        ServerSideEncryption="AES256",
        ChecksumAlgorithm="CRC32",
        ChecksumType="FULL_OBJECT",
    )["UploadId"]
    listed = []
    for number, data in enumerate(parts, start=1):
        sent = s3.upload_part(
            Bucket=bucket,
            Key="m",
            UploadId=upload_id,
            PartNumber=number,
            Body=data,
            ChecksumAlgorithm="CRC32",
        )
        assert sent["ServerSideEncryption"] == "AES256"
        listed.append(
            {"PartNumber": number, "ETag": sent["ETag"], "ChecksumCRC32": sent["ChecksumCRC32"]}
        )
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="m", UploadId=upload_id, MultipartUpload={"Parts": listed}
    )
    assert done["ChecksumCRC32"] == checksum_of("CRC32", b"".join(parts))
    assert done["ServerSideEncryption"] == "AES256"
    assert s3.get_object(Bucket=bucket, Key="m")["Body"].read() == b"".join(parts)


# --- SSE-KMS (local keyring) ---------------------------------------------------------------


def test_sse_kms_round_trip_keys_and_context(s3: Any, bucket: str, jay: JayProcess) -> None:
    marker = b"sse-kms-marker-" + os.urandom(8).hex().encode()
    data = body(100 * KiB, marker)
    context = base64.b64encode(b'{"team": "ops"}').decode()
    put = s3.put_object(
        Bucket=bucket,
        Key="k",
        Body=data,
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId="backups-key",
        SSEKMSEncryptionContext=context,
    )
    assert (put["ServerSideEncryption"], put["SSEKMSKeyId"]) == ("aws:kms", "backups-key")
    assert put["SSEKMSEncryptionContext"] == context
    assert put["ETag"].strip('"') != hashlib.md5(data).hexdigest()  # as S3: not the MD5
    got = s3.get_object(Bucket=bucket, Key="k", Range="bytes=65530-65545")
    assert got["Body"].read() == data[65530:65546]
    assert (got["ServerSideEncryption"], got["SSEKMSKeyId"]) == ("aws:kms", "backups-key")
    assert not stored_files_contain(jay, marker)
    default = s3.put_object(Bucket=bucket, Key="d", Body=b"d", ServerSideEncryption="aws:kms")
    assert default["SSEKMSKeyId"] == "aws/s3"
    assert s3.get_object(Bucket=bucket, Key="d")["Body"].read() == b"d"
    with pytest.raises(ClientError) as err:
        s3.put_object(
            Bucket=bucket, Key="x", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId="nope"
        )
    assert (status_of(err), code_of(err)) == (400, "KMS.NotFoundException")
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="k", **sse_c(KEY_A))
    assert status_of(err) == 400
    # Multipart and a copy into SSE-KMS.
    upload_id = s3.create_multipart_upload(
        Bucket=bucket, Key="m", ServerSideEncryption="aws:kms", SSEKMSKeyId="backups-key"
    )["UploadId"]
    sent = s3.upload_part(Bucket=bucket, Key="m", UploadId=upload_id, PartNumber=1, Body=data)
    assert sent["SSEKMSKeyId"] == "backups-key"
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="m",
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": sent["ETag"]}]},
    )
    assert s3.get_object(Bucket=bucket, Key="m")["Body"].read() == data
    s3.copy_object(
        Bucket=bucket,
        Key="copy",
        CopySource={"Bucket": bucket, "Key": "m"},
        ServerSideEncryption="aws:kms",
    )
    copy = s3.head_object(Bucket=bucket, Key="copy")
    assert (copy["ServerSideEncryption"], copy["SSEKMSKeyId"]) == ("aws:kms", "aws/s3")


def test_bucket_default_sse_kms(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as err:
        s3.put_bucket_encryption(
            Bucket=bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [
                    {
                        "ApplyServerSideEncryptionByDefault": {
                            "SSEAlgorithm": "aws:kms",
                            "KMSMasterKeyID": "unknown",
                        }
                    }
                ]
            },
        )
    assert code_of(err) == "KMS.NotFoundException"
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [
                {
                    "ApplyServerSideEncryptionByDefault": {
                        "SSEAlgorithm": "aws:kms",
                        "KMSMasterKeyID": "backups-key",
                    },
                    "BucketKeyEnabled": True,
                }
            ]
        },
    )
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": "backups-key",
    }
    assert rule["BucketKeyEnabled"] is True
    put = s3.put_object(Bucket=bucket, Key="o", Body=b"by default")
    assert (put["ServerSideEncryption"], put["SSEKMSKeyId"]) == ("aws:kms", "backups-key")
    assert s3.get_object(Bucket=bucket, Key="o")["Body"].read() == b"by default"


# --- bucket default encryption -------------------------------------------------------------


def test_bucket_default_encryption(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as err:
        s3.get_bucket_encryption(Bucket=bucket)
    assert (status_of(err), code_of(err)) == (404, "ServerSideEncryptionConfigurationNotFoundError")
    s3.put_object(Bucket=bucket, Key="before", Body=b"plain")
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    put = s3.put_object(Bucket=bucket, Key="after", Body=b"now encrypted")
    assert put["ServerSideEncryption"] == "AES256"
    assert s3.head_object(Bucket=bucket, Key="after")["ServerSideEncryption"] == "AES256"
    assert "ServerSideEncryption" not in s3.head_object(Bucket=bucket, Key="before")
    # SSE-C asked for explicitly wins over the default.
    s3.put_object(Bucket=bucket, Key="c", Body=b"c", **sse_c(KEY_A))
    assert s3.get_object(Bucket=bucket, Key="c", **sse_c(KEY_A))["Body"].read() == b"c"
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    sent = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload_id, PartNumber=1, Body=b"p")
    assert sent["ServerSideEncryption"] == "AES256"
    s3.abort_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload_id)
    s3.delete_bucket_encryption(Bucket=bucket)
    with pytest.raises(ClientError) as err:
        s3.get_bucket_encryption(Bucket=bucket)
    assert status_of(err) == 404
    assert "ServerSideEncryption" not in s3.put_object(Bucket=bucket, Key="later", Body=b"x")
    assert s3.get_object(Bucket=bucket, Key="after")["Body"].read() == b"now encrypted"


# --- copies --------------------------------------------------------------------------------


def test_copies_between_plain_sse_c_and_sse_s3(s3: Any, bucket: str) -> None:
    data = body(130 * KiB)
    s3.put_object(Bucket=bucket, Key="plain", Body=data)
    copied = s3.copy_object(
        Bucket=bucket, Key="to-c", CopySource={"Bucket": bucket, "Key": "plain"}, **sse_c(KEY_A)
    )
    assert copied["SSECustomerKeyMD5"] == sse_c(KEY_A)["SSECustomerKeyMD5"]
    assert s3.get_object(Bucket=bucket, Key="to-c", **sse_c(KEY_A))["Body"].read() == data
    # An SSE-C source needs its key (x-amz-copy-source-server-side-encryption-customer-*).
    with pytest.raises(ClientError) as err:
        s3.copy_object(Bucket=bucket, Key="x", CopySource={"Bucket": bucket, "Key": "to-c"})
    assert status_of(err) == 400
    with pytest.raises(ClientError) as err:
        s3.copy_object(
            Bucket=bucket,
            Key="x",
            CopySource={"Bucket": bucket, "Key": "to-c"},
            **copy_source_sse_c(KEY_B),
        )
    assert status_of(err) == 403
    s3.copy_object(
        Bucket=bucket,
        Key="to-s3",
        CopySource={"Bucket": bucket, "Key": "to-c"},
        ServerSideEncryption="AES256",
        **copy_source_sse_c(KEY_A),
    )
    got = s3.get_object(Bucket=bucket, Key="to-s3")
    assert got["ServerSideEncryption"] == "AES256" and got["Body"].read() == data
    s3.copy_object(
        Bucket=bucket,
        Key="to-c-b",
        CopySource={"Bucket": bucket, "Key": "to-c"},
        **copy_source_sse_c(KEY_A),
        **sse_c(KEY_B),
    )
    assert s3.get_object(Bucket=bucket, Key="to-c-b", **sse_c(KEY_B))["Body"].read() == data
    s3.copy_object(Bucket=bucket, Key="back", CopySource={"Bucket": bucket, "Key": "to-s3"})
    back = s3.get_object(Bucket=bucket, Key="back")
    assert "ServerSideEncryption" not in back and back["Body"].read() == data
    # Changing an object's encryption in place is a copy onto itself (S3 allows it).
    s3.copy_object(
        Bucket=bucket,
        Key="plain",
        CopySource={"Bucket": bucket, "Key": "plain"},
        ServerSideEncryption="AES256",
    )
    assert s3.head_object(Bucket=bucket, Key="plain")["ServerSideEncryption"] == "AES256"


def test_upload_part_copy_from_sse_c_into_sse_s3(s3: Any, bucket: str) -> None:
    data = body(140 * KiB)
    s3.put_object(Bucket=bucket, Key="src", Body=data, **sse_c(KEY_A))
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="dst", ServerSideEncryption="AES256")[
        "UploadId"
    ]
    with pytest.raises(ClientError) as err:
        s3.upload_part_copy(
            Bucket=bucket,
            Key="dst",
            UploadId=upload_id,
            PartNumber=1,
            CopySource={"Bucket": bucket, "Key": "src"},
        )
    assert status_of(err) == 400
    part = s3.upload_part_copy(
        Bucket=bucket,
        Key="dst",
        UploadId=upload_id,
        PartNumber=1,
        CopySource={"Bucket": bucket, "Key": "src"},
        CopySourceRange="bytes=1000-80000",
        **copy_source_sse_c(KEY_A),
    )
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="dst",
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["CopyPartResult"]["ETag"]}]},
    )
    got = s3.get_object(Bucket=bucket, Key="dst")
    assert got["ServerSideEncryption"] == "AES256"
    assert got["Body"].read() == data[1000:80001]


# --- the native protocol -------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_native_protocol_reads_sse_s3_and_refuses_sse_c(jay: JayProcess) -> None:
    s3 = s3_client(jay)
    bucket = f"sse-native-{next(_names)}"
    s3.create_bucket(Bucket=bucket)
    data = body(200 * KiB)
    s3.put_object(Bucket=bucket, Key="s3", Body=data, ServerSideEncryption="AES256")
    s3.put_object(Bucket=bucket, Key="c", Body=b"secret", **sse_c(KEY_A))
    client = await connect(
        f"127.0.0.1:{jay.native_port}", SEED_TOKEN_ID, SEED_SECRET, reactor=reactor
    )
    try:
        got = await client.get_object(bucket, "s3")
        assert got.data == data and got.info.size == len(data)
        with pytest.raises(BadRequest) as refused:
            await client.get_object(bucket, "c")
        assert "SSE-C" in refused.value.message
        # A bucket with default encryption encrypts native writes as well.
        s3.put_bucket_encryption(
            Bucket=bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            },
        )
        marker = b"native-marker-" + os.urandom(8).hex().encode()
        await client.put_object(bucket, "n", marker + b"!" * 100)
        assert s3.head_object(Bucket=bucket, Key="n")["ServerSideEncryption"] == "AES256"
        assert not stored_files_contain(jay, marker)
        assert (await client.get_object(bucket, "n")).data == marker + b"!" * 100
    finally:
        await client.close()


def test_sse_c_multipart_full_object_checksum_needs_the_key_on_complete(
    s3: Any, bucket: str
) -> None:
    """S3 reads SSE-C headers on CompleteMultipartUpload only to compute a FULL_OBJECT
    checksum of the plaintext; without them such a Complete fails and can be retried."""
    parts = [body(70 * KiB), body(9)]
    upload_id = s3.create_multipart_upload(
        Bucket=bucket,
        Key="f",
        ChecksumAlgorithm="CRC32",
        ChecksumType="FULL_OBJECT",
        **sse_c(KEY_A),
    )["UploadId"]
    listed = []
    for number, data in enumerate(parts, start=1):
        sent = s3.upload_part(
            Bucket=bucket,
            Key="f",
            UploadId=upload_id,
            PartNumber=number,
            Body=data,
            ChecksumAlgorithm="CRC32",
            **sse_c(KEY_A),
        )
        listed.append(
            {"PartNumber": number, "ETag": sent["ETag"], "ChecksumCRC32": sent["ChecksumCRC32"]}
        )
    with pytest.raises(ClientError) as err:
        s3.complete_multipart_upload(
            Bucket=bucket, Key="f", UploadId=upload_id, MultipartUpload={"Parts": listed}
        )
    assert status_of(err) == 400
    done = s3.complete_multipart_upload(
        Bucket=bucket,
        Key="f",
        UploadId=upload_id,
        MultipartUpload={"Parts": listed},
        **sse_c(KEY_A),
    )
    assert done["ChecksumCRC32"] == checksum_of("CRC32", b"".join(parts))
    got = s3.get_object(Bucket=bucket, Key="f", ChecksumMode="ENABLED", **sse_c(KEY_A))
    assert got["Body"].read() == b"".join(parts)
    assert got["ChecksumCRC32"] == done["ChecksumCRC32"]


def test_encrypted_noncurrent_versions_are_kept_readable_and_survive_a_restart(
    jay: JayProcess,
) -> None:
    """Versioning and encryption together: each version keeps its own encryption, an old
    version reads back decrypted by its id (SSE-C only with its key), and recovery and the
    scrubber take the larger encrypted files of noncurrent versions for healthy ones."""
    s3 = s3_client(jay)
    bucket = f"sse-versions-{next(_names)}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    first = os.urandom(200 * KiB + 7)
    second = os.urandom(70 * KiB)
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=first, ServerSideEncryption="AES256")
    v2 = s3.put_object(Bucket=bucket, Key="k", Body=second, **sse_c(KEY_A))
    v3 = s3.put_object(Bucket=bucket, Key="k", Body=b"plain now")

    def read(version: str, **extra: str) -> bytes:
        got = s3.get_object(Bucket=bucket, Key="k", VersionId=version, **extra)
        return got["Body"].read()

    def check() -> None:
        assert read(v1["VersionId"]) == first
        assert read(v1["VersionId"], Range="bytes=70000-70009") == first[70000:70010]
        assert read(v2["VersionId"], **sse_c(KEY_A)) == second
        with pytest.raises(ClientError) as err:
            read(v2["VersionId"])
        assert status_of(err) == 400
        assert read(v3["VersionId"]) == b"plain now"

    check()
    assert jay.stop() in CLEAN_EXIT
    jay.start()
    s3 = s3_client(jay)
    check()
    recovery = jay.log_text().split("Recovery in")[-1].split("\n")[0]
    assert " 0 records with missing or short files quarantined" in recovery, recovery
    assert " 0 orphan files quarantined" in recovery, recovery


def test_locked_encrypted_versions(s3: Any) -> None:
    """Object Lock and encryption together: a retained SSE-C version reads back with its key,
    answers its lock, and cannot be deleted by id."""
    bucket = f"sse-lock-{next(_names)}"
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    until = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1)
    body = os.urandom(100 * KiB)
    put = s3.put_object(
        Bucket=bucket,
        Key="k",
        Body=body,
        ChecksumAlgorithm="SHA256",
        ObjectLockMode="GOVERNANCE",
        ObjectLockRetainUntilDate=until,
        **sse_c(KEY_B),
    )
    got = s3.get_object(Bucket=bucket, Key="k", VersionId=put["VersionId"], **sse_c(KEY_B))
    assert got["Body"].read() == body
    assert got["ObjectLockMode"] == "GOVERNANCE"
    assert got["SSECustomerAlgorithm"] == "AES256"
    with pytest.raises(ClientError) as err:
        s3.delete_object(Bucket=bucket, Key="k", VersionId=put["VersionId"])
    assert code_of(err) == "AccessDenied"
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="k", VersionId=put["VersionId"], **sse_c(KEY_A))
    assert status_of(err) == 403


def test_policy_can_require_sse_c(s3: Any) -> None:
    """s3:x-amz-server-side-encryption-customer-algorithm in a policy condition: a bucket that
    refuses uploads not encrypted under a customer key (from the owner too)."""
    bucket = f"sse-policy-{next(_names)}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_policy(
        Bucket=bucket,
        Policy=(
            '{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*",'
            f'"Action":"s3:PutObject","Resource":"arn:aws:s3:::{bucket}/*","Condition":'
            '{"StringNotEquals":{"s3:x-amz-server-side-encryption-customer-algorithm":"AES256"}}'
            "}]}"
        ),
    )
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=bucket, Key="plain", Body=b"x")
    assert code_of(err) == "AccessDenied"
    s3.put_object(Bucket=bucket, Key="sealed", Body=b"x", **sse_c(KEY_A))
    assert s3.get_object(Bucket=bucket, Key="sealed", **sse_c(KEY_A))["Body"].read() == b"x"
