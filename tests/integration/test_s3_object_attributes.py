"""GetObjectAttributes and CompleteMultipartUpload's whole-object checksum with boto3 against a
real jay process: simple and multipart objects, with and without checksums, part paging, S3's
errors, and a Complete whose checksum is right, wrong, or of another algorithm or type."""

from __future__ import annotations

import base64
import hashlib
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from boto3.s3.transfer import TransferConfig
from botocore import UNSIGNED
from botocore.exceptions import ClientError

from jay.checksums import checksum_of
from tests.integration.conftest import (
    SEED_ACCOUNT,
    SEED_SECRET,
    SEED_TOKEN_ID,
    code_of,
    s3_client,
    status_of,
)
from tests.integration.jayproc import CLEAN_EXIT, JayProcess

MiB = 1024 * 1024
ALL_ATTRIBUTES = ["ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"]
_names = itertools.count()


@pytest.fixture(scope="module")
def jay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JayProcess]:
    # Parts of any size, so multipart objects of a few bytes a part keep these tests fast.
    proc = JayProcess(
        tmp_path_factory.mktemp("jay"),
        {
            "seed_token": {"account": SEED_ACCOUNT, "id": SEED_TOKEN_ID, "secret": SEED_SECRET},
            "min_part_size": 0,
        },
    ).start()
    yield proc
    log = proc.log_text()
    assert "Unexpected error" not in log and "Traceback" not in log, log[-5000:]
    assert proc.stop() in CLEAN_EXIT, proc.log_text()[-5000:]


@pytest.fixture
def s3(jay: JayProcess) -> Any:
    return s3_client(jay)


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"attrs-{next(_names)}"
    s3.create_bucket(Bucket=name)
    return name


def composite(algorithm: str, parts: list[bytes]) -> str:
    raw = b"".join(base64.b64decode(checksum_of(algorithm, p)) for p in parts)
    return f"{checksum_of(algorithm, raw)}-{len(parts)}"


def upload_parts(
    s3: Any, bucket: str, key: str, parts: list[bytes], **create: Any
) -> tuple[str, list[dict[str, Any]]]:
    """Create an upload and upload ``parts``; (upload id, the Complete body's part list)."""
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, **create)["UploadId"]
    algorithm = create.get("ChecksumAlgorithm")
    listed = []
    for number, body in enumerate(parts, start=1):
        extra = {"ChecksumAlgorithm": algorithm} if algorithm else {}
        sent = s3.upload_part(
            Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body, **extra
        )
        entry = {"PartNumber": number, "ETag": sent["ETag"]}
        if algorithm:
            entry[f"Checksum{algorithm}"] = sent[f"Checksum{algorithm}"]
        listed.append(entry)
    return upload_id, listed


# --- GetObjectAttributes ---------------------------------------------------------------------


def test_attributes_of_a_simple_object(s3: Any, bucket: str) -> None:
    put = s3.put_object(Bucket=bucket, Key="plain", Body=b"hello")
    got = s3.get_object_attributes(Bucket=bucket, Key="plain", ObjectAttributes=ALL_ATTRIBUTES)
    assert got["ETag"] == put["ETag"].strip('"') == hashlib.md5(b"hello").hexdigest()
    assert got["ObjectSize"] == 5
    assert got["StorageClass"] == "STANDARD"
    assert "ObjectParts" not in got
    assert "VersionId" not in got
    head = s3.head_object(Bucket=bucket, Key="plain")
    assert got["LastModified"] == head["LastModified"]
    # Only what was asked for.
    some = s3.get_object_attributes(Bucket=bucket, Key="plain", ObjectAttributes=["ObjectSize"])
    assert some["ObjectSize"] == 5
    assert not {"ETag", "StorageClass", "Checksum", "ObjectParts"} & set(some)


def test_attributes_with_a_checksum(s3: Any, bucket: str) -> None:
    body = b"checksummed"
    sha = checksum_of("SHA256", body)
    s3.put_object(Bucket=bucket, Key="sum", Body=body, ChecksumSHA256=sha)
    got = s3.get_object_attributes(Bucket=bucket, Key="sum", ObjectAttributes=["Checksum"])
    assert got["Checksum"]["ChecksumSHA256"] == sha
    assert got["Checksum"]["ChecksumType"] == "FULL_OBJECT"


def test_attributes_of_a_multipart_object_without_checksums(s3: Any, bucket: str) -> None:
    upload_id, parts = upload_parts(s3, bucket, "mp", [b"a" * 10, b"b" * 7])
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="mp", UploadId=upload_id, MultipartUpload={"Parts": parts}
    )
    got = s3.get_object_attributes(Bucket=bucket, Key="mp", ObjectAttributes=ALL_ATTRIBUTES)
    assert got["ETag"] == done["ETag"].strip('"')
    assert got["ETag"].endswith("-2")
    assert got["ObjectSize"] == 17
    assert "Checksum" not in got
    # Sizes, and no checksum: none was given for these parts.
    assert got["ObjectParts"] == {
        "TotalPartsCount": 2,
        "PartNumberMarker": 0,
        "NextPartNumberMarker": 2,
        "MaxParts": 1000,
        "IsTruncated": False,
        "Parts": [{"PartNumber": 1, "Size": 10}, {"PartNumber": 2, "Size": 7}],
    }


@pytest.mark.parametrize("algorithm", ["CRC32", "SHA256"])
def test_attributes_of_a_composite_multipart_object(s3: Any, bucket: str, algorithm: str) -> None:
    bodies = [b"first part", b"second", b"third part!"]
    upload_id, parts = upload_parts(s3, bucket, "c", bodies, ChecksumAlgorithm=algorithm)
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="c", UploadId=upload_id, MultipartUpload={"Parts": parts}
    )
    expected = composite(algorithm, bodies)
    assert done[f"Checksum{algorithm}"] == expected
    got = s3.get_object_attributes(Bucket=bucket, Key="c", ObjectAttributes=ALL_ATTRIBUTES)
    assert got["Checksum"] == {f"Checksum{algorithm}": expected, "ChecksumType": "COMPOSITE"}
    object_parts = got["ObjectParts"]
    assert object_parts["TotalPartsCount"] == 3
    assert object_parts["IsTruncated"] is False
    assert object_parts["MaxParts"] == 1000
    assert [
        (p["PartNumber"], p["Size"], p[f"Checksum{algorithm}"]) for p in object_parts["Parts"]
    ] == [(n, len(b), checksum_of(algorithm, b)) for n, b in enumerate(bodies, start=1)]


def test_attributes_part_pagination(s3: Any, bucket: str) -> None:
    bodies = [bytes([65 + i]) * (i + 1) for i in range(5)]
    upload_id, parts = upload_parts(s3, bucket, "pages", bodies, ChecksumAlgorithm="CRC32C")
    s3.complete_multipart_upload(
        Bucket=bucket, Key="pages", UploadId=upload_id, MultipartUpload={"Parts": parts}
    )

    def page(**paging: int) -> dict[str, Any]:
        got = s3.get_object_attributes(
            Bucket=bucket, Key="pages", ObjectAttributes=["ObjectParts"], **paging
        )
        return dict(got["ObjectParts"])

    first = page(MaxParts=2)
    assert [p["PartNumber"] for p in first["Parts"]] == [1, 2]
    assert (first["IsTruncated"], first["NextPartNumberMarker"], first["MaxParts"]) == (
        True,
        2,
        2,
    )
    middle = page(MaxParts=2, PartNumberMarker=2)
    assert [(p["PartNumber"], p["Size"]) for p in middle["Parts"]] == [(3, 3), (4, 4)]
    assert middle["PartNumberMarker"] == 2 and middle["NextPartNumberMarker"] == 4
    last = page(MaxParts=2, PartNumberMarker=4)
    assert [p["PartNumber"] for p in last["Parts"]] == [5]
    assert last["IsTruncated"] is False and last["TotalPartsCount"] == 5
    assert "Parts" not in page(PartNumberMarker=5)


def test_attributes_errors(s3: Any, bucket: str, jay: JayProcess) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    with pytest.raises(ClientError) as err:
        s3.get_object_attributes(Bucket=bucket, Key="missing", ObjectAttributes=["ETag"])
    assert (status_of(err), code_of(err)) == (404, "NoSuchKey")
    with pytest.raises(ClientError) as err:
        s3.get_object_attributes(Bucket=bucket, Key="k", ObjectAttributes=["ETag", "Colour"])
    assert (status_of(err), code_of(err)) == (400, "InvalidArgument")
    assert err.value.response["Error"]["ArgumentValue"] == "Colour"
    # Without the header (botocore requires it, so the header is removed before signing).
    client = s3_client(jay)

    def drop_header(request: Any, **_: Any) -> None:
        del request.headers["x-amz-object-attributes"]

    client.meta.events.register("before-sign.s3.GetObjectAttributes", drop_header)
    with pytest.raises(ClientError) as err:
        client.get_object_attributes(Bucket=bucket, Key="k", ObjectAttributes=["ETag"])
    assert (status_of(err), code_of(err)) == (400, "InvalidRequest")


def test_attributes_conditional_headers(s3: Any, bucket: str, jay: JayProcess) -> None:
    etag = s3.put_object(Bucket=bucket, Key="cond", Body=b"abc")["ETag"]
    client = s3_client(jay)
    conditions: dict[str, str] = {}

    def add_conditions(request: Any, **_: Any) -> None:
        for name, value in conditions.items():
            request.headers[name] = value

    client.meta.events.register("before-sign.s3.GetObjectAttributes", add_conditions)
    conditions["If-Match"] = etag
    ok = client.get_object_attributes(Bucket=bucket, Key="cond", ObjectAttributes=["ObjectSize"])
    assert ok["ObjectSize"] == 3
    conditions["If-Match"] = '"0123"'
    with pytest.raises(ClientError) as err:
        client.get_object_attributes(Bucket=bucket, Key="cond", ObjectAttributes=["ObjectSize"])
    assert status_of(err) == 412


def test_attributes_need_read_access(jay: JayProcess, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="private", Body=b"x")
    s3.put_object(Bucket=bucket, Key="public", Body=b"yz", ACL="public-read")
    anonymous = s3_client(jay, signature_version=UNSIGNED)
    with pytest.raises(ClientError) as err:
        anonymous.get_object_attributes(
            Bucket=bucket, Key="private", ObjectAttributes=["ObjectSize"]
        )
    assert status_of(err) == 403
    # The object's ACL grants READ to everyone, as for GetObject.
    got = anonymous.get_object_attributes(
        Bucket=bucket, Key="public", ObjectAttributes=["ObjectSize"]
    )
    assert got["ObjectSize"] == 2


# --- CompleteMultipartUpload with a whole-object checksum --------------------------------------


@pytest.mark.parametrize("algorithm", ["CRC32", "CRC64NVME"])
def test_complete_full_object_checksum(s3: Any, bucket: str, algorithm: str) -> None:
    bodies = [b"0123456789" * 3, b"abcdefghij"]
    whole = checksum_of(algorithm, b"".join(bodies))
    key = f"full-{algorithm}"
    upload_id, parts = upload_parts(
        s3, bucket, key, bodies, ChecksumAlgorithm=algorithm, ChecksumType="FULL_OBJECT"
    )
    wrong = checksum_of(algorithm, b"something else")
    with pytest.raises(ClientError) as err:
        s3.complete_multipart_upload(
            Bucket=bucket,
            Key=key,
            UploadId=upload_id,
            MultipartUpload={"Parts": parts},
            ChecksumType="FULL_OBJECT",
            **{f"Checksum{algorithm}": wrong},
        )
    assert (status_of(err), code_of(err)) == (400, "BadDigest")
    with pytest.raises(ClientError):  # nothing was committed
        s3.head_object(Bucket=bucket, Key=key)
    with pytest.raises(ClientError) as err:  # the type must be the upload's
        s3.complete_multipart_upload(
            Bucket=bucket,
            Key=key,
            UploadId=upload_id,
            MultipartUpload={"Parts": parts},
            ChecksumType="COMPOSITE",
        )
    assert (status_of(err), code_of(err)) == (400, "BadDigest")
    # The upload is still open: the right checksum completes it.
    done = s3.complete_multipart_upload(
        Bucket=bucket,
        Key=key,
        UploadId=upload_id,
        MultipartUpload={"Parts": parts},
        ChecksumType="FULL_OBJECT",
        **{f"Checksum{algorithm}": whole},
    )
    assert done[f"Checksum{algorithm}"] == whole
    assert done["ChecksumType"] == "FULL_OBJECT"
    got = s3.get_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert got["Body"].read() == b"".join(bodies)
    assert got[f"Checksum{algorithm}"] == whole


def test_complete_composite_checksum(s3: Any, bucket: str) -> None:
    bodies = [b"part one", b"part two"]
    upload_id, parts = upload_parts(s3, bucket, "comp", bodies, ChecksumAlgorithm="CRC32")
    expected = composite("CRC32", bodies)
    for wrong, code in (
        (composite("CRC32", [b"x", b"y"]), "BadDigest"),
        (checksum_of("CRC32", b"".join(bodies)), "BadDigest"),
        ("bad", "InvalidRequest"),  # not even the shape of a checksum
    ):
        with pytest.raises(ClientError) as err:
            s3.complete_multipart_upload(
                Bucket=bucket,
                Key="comp",
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
                ChecksumCRC32=wrong,
            )
        assert (status_of(err), code_of(err)) == (400, code), wrong
    with pytest.raises(ClientError) as err:  # another algorithm than the upload's
        s3.complete_multipart_upload(
            Bucket=bucket,
            Key="comp",
            UploadId=upload_id,
            MultipartUpload={"Parts": parts},
            ChecksumSHA256=checksum_of("SHA256", b""),
        )
    assert (status_of(err), code_of(err)) == (400, "InvalidRequest")
    done = s3.complete_multipart_upload(
        Bucket=bucket,
        Key="comp",
        UploadId=upload_id,
        MultipartUpload={"Parts": parts},
        ChecksumCRC32=expected,
    )
    assert done["ChecksumCRC32"] == expected and done["ChecksumType"] == "COMPOSITE"


def test_complete_checksum_for_an_upload_without_one(s3: Any, bucket: str) -> None:
    upload_id, parts = upload_parts(s3, bucket, "none", [b"abc"])
    with pytest.raises(ClientError) as err:
        s3.complete_multipart_upload(
            Bucket=bucket,
            Key="none",
            UploadId=upload_id,
            MultipartUpload={"Parts": parts},
            ChecksumCRC32=checksum_of("CRC32", b"abc"),
        )
    assert (status_of(err), code_of(err)) == (400, "InvalidRequest")
    s3.complete_multipart_upload(
        Bucket=bucket, Key="none", UploadId=upload_id, MultipartUpload={"Parts": parts}
    )
    assert s3.get_object(Bucket=bucket, Key="none")["Body"].read() == b"abc"


def test_default_transfer_uploads_still_complete(s3: Any, bucket: str, tmp_path: Path) -> None:
    """boto3's managed transfer with its default integrity protection (CRC32 parts) and with
    CRC64NVME: the Complete it sends is accepted, and the attributes show the parts."""
    data = bytes(range(256)) * 4096 * 6  # 6 MiB: two parts (s3transfer's least is 5 MiB)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    config = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB)
    s3.upload_file(str(src), bucket, "default.bin", Config=config)
    s3.upload_file(
        str(src),
        bucket,
        "nvme.bin",
        Config=config,
        ExtraArgs={"ChecksumAlgorithm": "CRC64NVME"},
    )
    for key in ("default.bin", "nvme.bin"):
        got = s3.get_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        assert got["Body"].read() == data
        attributes = s3.get_object_attributes(
            Bucket=bucket, Key=key, ObjectAttributes=["ObjectParts", "ObjectSize"]
        )
        assert attributes["ObjectSize"] == len(data)
        assert attributes["ObjectParts"]["TotalPartsCount"] == 2
    chunks = [data[: 5 * MiB], data[5 * MiB :]]
    default = s3.get_object_attributes(
        Bucket=bucket, Key="default.bin", ObjectAttributes=["Checksum", "ObjectParts"]
    )
    assert default["Checksum"] == {
        "ChecksumCRC32": composite("CRC32", chunks),
        "ChecksumType": "COMPOSITE",
    }
    assert [p["ChecksumCRC32"] for p in default["ObjectParts"]["Parts"]] == [
        checksum_of("CRC32", c) for c in chunks
    ]
    nvme = s3.get_object_attributes(Bucket=bucket, Key="nvme.bin", ObjectAttributes=["Checksum"])
    assert nvme["Checksum"] == {
        "ChecksumCRC64NVME": checksum_of("CRC64NVME", data),
        "ChecksumType": "FULL_OBJECT",
    }


def test_complete_checks_each_parts_checksum(s3: Any, bucket: str) -> None:
    """An upload created with a checksum algorithm: Complete must list each part's checksum
    (InvalidRequest naming the part, as S3 words it); nothing is completed until it does."""
    bodies = [b"A" * (5 * 1024 * 1024), b"tail"]
    upload_id, parts = upload_parts(s3, bucket, "per-part", bodies, ChecksumAlgorithm="SHA256")
    missing = [parts[0], {k: v for k, v in parts[1].items() if k != "ChecksumSHA256"}]
    with pytest.raises(ClientError) as err:
        s3.complete_multipart_upload(
            Bucket=bucket, Key="per-part", UploadId=upload_id, MultipartUpload={"Parts": missing}
        )
    assert (status_of(err), code_of(err)) == (400, "InvalidRequest")
    assert "missing for part 2" in err.value.response["Error"]["Message"]
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="per-part", UploadId=upload_id, MultipartUpload={"Parts": parts}
    )
    assert done["ChecksumSHA256"] == composite("SHA256", bodies)
    assert s3.get_object(Bucket=bucket, Key="per-part")["Body"].read() == b"".join(bodies)
