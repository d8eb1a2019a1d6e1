"""Object and bucket tagging with boto3 against a real jay process: Put/Get/DeleteObjectTagging,
x-amz-tagging on PutObject, multipart and CopyObject, x-amz-tagging-count on GET/HEAD, S3's
limits and error codes, bucket tagging, who may tag, native writes, and a restart."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from botocore.exceptions import ClientError
from twisted.internet import reactor

from jay.client import connect
from tests.integration.conftest import SEED_SECRET, SEED_TOKEN_ID, code_of, s3_client, status_of
from tests.integration.jayproc import JayProcess
from tests.integration.test_access import client, new_account, new_token
from tests.integration.test_s3_awscli import AWS, aws

_names = itertools.count()
MiB = 1024 * 1024


pytestmark = pytest.mark.usefixtures("server_log_is_clean")


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"tags-{next(_names)}"
    s3.create_bucket(Bucket=name)
    return name


def tag_set(tags: dict[str, str]) -> dict[str, Any]:
    return {"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]}


def tags_of(s3: Any, bucket: str, key: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]}


def tag_count(response: dict[str, Any]) -> str | None:
    return response["ResponseMetadata"]["HTTPHeaders"].get("x-amz-tagging-count")


def test_put_get_delete_object_tagging(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"payload", Metadata={"who": "me"})
    before = s3.head_object(Bucket=bucket, Key="k")  # cached in the server from here on
    assert tag_count(before) is None
    assert s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"] == []

    put = s3.put_object_tagging(
        Bucket=bucket, Key="k", Tagging=tag_set({"zeta": "1", "Alpha": "", "team": "a b"})
    )
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 200
    got = s3.get_object_tagging(Bucket=bucket, Key="k")
    assert got["TagSet"] == tag_set({"Alpha": "", "team": "a b", "zeta": "1"})["TagSet"]
    head = s3.head_object(Bucket=bucket, Key="k")
    assert tag_count(head) == "3"
    assert (head["ETag"], head["LastModified"], head["Metadata"]) == (
        before["ETag"],
        before["LastModified"],
        {"who": "me"},
    )
    response = s3.get_object(Bucket=bucket, Key="k")
    assert tag_count(response) == "3" and response["TagCount"] == 3
    assert response["Body"].read() == b"payload"

    s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=tag_set({"only": "one"}))
    assert tags_of(s3, bucket, "k") == {"only": "one"}
    assert tag_count(s3.head_object(Bucket=bucket, Key="k")) == "1"

    deleted = s3.delete_object_tagging(Bucket=bucket, Key="k")
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert tags_of(s3, bucket, "k") == {}
    head = s3.head_object(Bucket=bucket, Key="k")
    assert tag_count(head) is None and head["ETag"] == before["ETag"]
    assert head["LastModified"] == before["LastModified"]


def test_missing_objects_and_versions(s3: Any, bucket: str) -> None:
    for call in (
        lambda: s3.get_object_tagging(Bucket=bucket, Key="absent"),
        lambda: s3.put_object_tagging(Bucket=bucket, Key="absent", Tagging=tag_set({"a": "1"})),
        lambda: s3.delete_object_tagging(Bucket=bucket, Key="absent"),
    ):
        with pytest.raises(ClientError) as err:
            call()
        assert (status_of(err), code_of(err)) == (404, "NoSuchKey")
    with pytest.raises(ClientError) as err:
        s3.get_object_tagging(Bucket="no-such-bucket-here", Key="k")
    assert code_of(err) == "NoSuchBucket"
    s3.put_object(Bucket=bucket, Key="v", Body=b"v")
    s3.put_object_tagging(Bucket=bucket, Key="v", VersionId="null", Tagging=tag_set({"a": "1"}))
    assert s3.get_object_tagging(Bucket=bucket, Key="v", VersionId="null")["TagSet"] == [
        {"Key": "a", "Value": "1"}
    ]
    with pytest.raises(ClientError) as err:  # not a version id jay hands out
        s3.get_object_tagging(Bucket=bucket, Key="v", VersionId="3HL4kqtJlcpXroDTDmJ")
    assert (status_of(err), code_of(err)) == (400, "InvalidArgument")
    with pytest.raises(ClientError) as err:  # well-formed, but no such version
        s3.get_object_tagging(
            Bucket=bucket, Key="v", VersionId="0b5a7c3e-1111-4222-8333-444455556666"
        )
    assert (status_of(err), code_of(err)) == (404, "NoSuchVersion")


def test_x_amz_tagging_on_put_and_overwrite(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"1", Tagging="foo=bar&bar&sp=a+b%2Bc")
    assert tags_of(s3, bucket, "k") == {"bar": "", "foo": "bar", "sp": "a b+c"}
    assert tag_count(s3.head_object(Bucket=bucket, Key="k")) == "3"
    s3.put_object(Bucket=bucket, Key="k", Body=b"2")  # an overwrite without tags has none
    assert tags_of(s3, bucket, "k") == {}
    assert tag_count(s3.get_object(Bucket=bucket, Key="k")) is None
    for header, code in (
        ("a=1&a=2", "InvalidArgument"),
        ("a=%zz", "InvalidArgument"),
        ("aws:x=1", "InvalidTag"),
        ("&".join(f"k{i}=v" for i in range(11)), "InvalidTag"),
    ):
        with pytest.raises(ClientError) as err:
            s3.put_object(Bucket=bucket, Key="bad", Body=b"x", Tagging=header)
        assert (status_of(err), code_of(err)) == (400, code), header
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="bad")


def test_x_amz_tagging_on_multipart_upload(s3: Any, bucket: str) -> None:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="mp", Tagging="Hello=World&foo=bar")[
        "UploadId"
    ]
    etags = [
        s3.upload_part(
            Bucket=bucket, Key="mp", UploadId=upload_id, PartNumber=n, Body=bytes([n]) * size
        )["ETag"]
        for n, size in ((1, 5 * MiB), (2, 10))
    ]
    with pytest.raises(ClientError):
        s3.get_object_tagging(Bucket=bucket, Key="mp")  # nothing there before Complete
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="mp",
        UploadId=upload_id,
        MultipartUpload={
            "Parts": [{"PartNumber": n, "ETag": e} for n, e in zip((1, 2), etags, strict=True)]
        },
    )
    assert tags_of(s3, bucket, "mp") == {"Hello": "World", "foo": "bar"}
    assert tag_count(s3.head_object(Bucket=bucket, Key="mp")) == "2"
    with pytest.raises(ClientError) as err:
        s3.create_multipart_upload(Bucket=bucket, Key="mp2", Tagging="k=a*b")
    assert code_of(err) == "InvalidTag"


def test_copy_object_tagging_directives(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="src", Body=b"source", Tagging="a=1&b=2")
    source = {"Bucket": bucket, "Key": "src"}
    s3.copy_object(Bucket=bucket, Key="default", CopySource=source)
    s3.copy_object(Bucket=bucket, Key="copy", CopySource=source, TaggingDirective="COPY")
    s3.copy_object(
        Bucket=bucket,
        Key="copy-new-meta",
        CopySource=source,
        MetadataDirective="REPLACE",
        Metadata={"m": "1"},
    )
    s3.copy_object(
        Bucket=bucket, Key="replace", CopySource=source, TaggingDirective="REPLACE", Tagging="c=3"
    )
    s3.copy_object(Bucket=bucket, Key="replace-none", CopySource=source, TaggingDirective="REPLACE")
    s3.copy_object(Bucket=bucket, Key="copy-ignores-header", CopySource=source, Tagging="ignored=1")
    assert tags_of(s3, bucket, "default") == {"a": "1", "b": "2"}
    assert tags_of(s3, bucket, "copy") == {"a": "1", "b": "2"}
    assert tags_of(s3, bucket, "copy-new-meta") == {"a": "1", "b": "2"}
    assert tags_of(s3, bucket, "replace") == {"c": "3"}
    assert tags_of(s3, bucket, "replace-none") == {}
    assert tags_of(s3, bucket, "copy-ignores-header") == {"a": "1", "b": "2"}
    assert s3.get_object(Bucket=bucket, Key="replace")["Body"].read() == b"source"
    with pytest.raises(ClientError) as err:
        s3.copy_object(Bucket=bucket, Key="x", CopySource=source, TaggingDirective="MOVE")
    assert code_of(err) == "InvalidArgument"
    with pytest.raises(ClientError) as err:
        s3.copy_object(
            Bucket=bucket, Key="x", CopySource=source, TaggingDirective="REPLACE", Tagging="aws:a=1"
        )
    assert code_of(err) == "InvalidTag"


def test_limits_and_error_codes(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=tag_set({"old": "1"}))
    longest = {f"{i}" + "k" * 127: "v" * 256 for i in range(10)}
    s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=tag_set(longest))
    assert tags_of(s3, bucket, "k") == longest
    cases: list[tuple[Any, str]] = [
        (tag_set({f"k{i}": "v" for i in range(11)}), "InvalidTag"),
        (tag_set({"k" * 129: "v"}), "InvalidTag"),
        (tag_set({"k": "v" * 257}), "InvalidTag"),
        (tag_set({"aws:cost": "1"}), "InvalidTag"),
        (tag_set({"a#b": "v"}), "InvalidTag"),
        ({"TagSet": [{"Key": "d", "Value": "1"}, {"Key": "d", "Value": "2"}]}, "InvalidTag"),
    ]
    for tagging, code in cases:
        with pytest.raises(ClientError) as err:
            s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=tagging)
        assert (status_of(err), code_of(err)) == (400, code)
    assert tags_of(s3, bucket, "k") == longest  # nothing changed by a refused request

    def send_bad_xml(request: Any, **kwargs: Any) -> None:
        request.data = b"<Tagging><TagSet><Tag><Key>k</Key></Tag>"
        for name in [
            n for n in request.headers if n.lower().startswith(("content-md5", "x-amz-c"))
        ]:
            del request.headers[name]

    events = s3.meta.events
    events.register_first("before-sign.s3.PutObjectTagging", send_bad_xml)
    try:
        with pytest.raises(ClientError) as err:
            s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=tag_set({"a": "1"}))
    finally:
        events.unregister("before-sign.s3.PutObjectTagging", send_bad_xml)
    assert (status_of(err), code_of(err)) == (400, "MalformedXML")

    def break_md5(request: Any, **kwargs: Any) -> None:
        request.headers["Content-MD5"] = "1B2M2Y8AsgTpgAmY7PhCfg=="  # the MD5 of nothing

    events.register("before-sign.s3.PutObjectTagging", break_md5)
    try:
        with pytest.raises(ClientError) as err:
            s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=tag_set({"a": "1"}))
    finally:
        events.unregister("before-sign.s3.PutObjectTagging", break_md5)
    assert code_of(err) == "BadDigest"
    assert tags_of(s3, bucket, "k") == longest


def test_bucket_tagging(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as err:
        s3.get_bucket_tagging(Bucket=bucket)
    assert (status_of(err), code_of(err)) == (404, "NoSuchTagSet")
    put = s3.put_bucket_tagging(Bucket=bucket, Tagging=tag_set({"project": "x", "cost": "12"}))
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert (
        s3.get_bucket_tagging(Bucket=bucket)["TagSet"]
        == tag_set({"cost": "12", "project": "x"})["TagSet"]
    )
    fifty = {f"t{i:02d}": str(i) for i in range(50)}
    s3.put_bucket_tagging(Bucket=bucket, Tagging=tag_set(fifty))
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == tag_set(fifty)["TagSet"]
    for tagging in (
        tag_set({f"t{i}": "v" for i in range(51)}),
        tag_set({"aws:x": "v"}),
        {"TagSet": [{"Key": "d", "Value": "1"}, {"Key": "d", "Value": "2"}]},
    ):
        with pytest.raises(ClientError) as err:
            s3.put_bucket_tagging(Bucket=bucket, Tagging=tagging)
        assert code_of(err) == "InvalidTag"
    assert len(s3.get_bucket_tagging(Bucket=bucket)["TagSet"]) == 50
    deleted = s3.delete_bucket_tagging(Bucket=bucket)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as err:
        s3.get_bucket_tagging(Bucket=bucket)
    assert code_of(err) == "NoSuchTagSet"
    with pytest.raises(ClientError) as err:
        s3.get_bucket_tagging(Bucket="no-such-bucket-here")
    assert code_of(err) == "NoSuchBucket"


def test_who_may_tag(jay: JayProcess, s3: Any, bucket: str) -> None:
    """Tagging rights come with the object rights of the owner's tokens; other accounts need
    the S3 tagging actions in a bucket policy, which grant nothing else."""
    s3.put_object(Bucket=bucket, Key="k", Body=b"secret", Tagging="a=1")
    guest = client(jay, new_token(jay, new_account(jay, f"guest-{bucket}"), ["*"]))
    reader = client(jay, new_token(jay, new_account(jay, f"reader-{bucket}"), ["*"]))
    owner_reads_only = client(
        jay, new_token(jay, s3.list_buckets()["Owner"]["ID"], ["object:get", "object:list"])
    )
    assert tags_of(owner_reads_only, bucket, "k") == {"a": "1"}
    with pytest.raises(ClientError) as err:
        owner_reads_only.put_object_tagging(Bucket=bucket, Key="k", Tagging=tag_set({"b": "2"}))
    assert code_of(err) == "AccessDenied"
    with pytest.raises(ClientError) as err:
        guest.get_object_tagging(Bucket=bucket, Key="k")
    assert code_of(err) == "AccessDenied"

    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": ["s3:GetObjectTagging", "s3:PutObjectTagging"],
                "Resource": f"arn:aws:s3:::{bucket}/*",
            },
            {
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": "s3:PutObject",
                "Resource": f"arn:aws:s3:::{bucket}/uploads/*",
            },
        ],
    }
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    assert tags_of(guest, bucket, "k") == {"a": "1"}
    guest.put_object_tagging(Bucket=bucket, Key="k", Tagging=tag_set({"by": "guest"}))
    assert tags_of(s3, bucket, "k") == {"by": "guest"}
    with pytest.raises(ClientError) as err:
        guest.get_object(Bucket=bucket, Key="k")  # tagging rights are not read rights
    assert code_of(err) == "AccessDenied"
    with pytest.raises(ClientError) as err:
        guest.delete_object_tagging(Bucket=bucket, Key="k")
    assert code_of(err) == "AccessDenied"
    with pytest.raises(ClientError) as err:
        guest.get_bucket_tagging(Bucket=bucket)
    assert code_of(err) == "AccessDenied"
    guest.put_object(Bucket=bucket, Key="uploads/a", Body=b"a", Tagging="t=1")  # both granted
    # Copying a tagged object copies its tags: reading them needs s3:GetObjectTagging.
    own = f"{bucket}-guest"
    guest.create_bucket(Bucket=own)
    readable = {
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bucket}/readable/*",
    }
    s3.put_object(Bucket=bucket, Key="readable/tagged", Body=b"t", Tagging="c=1")
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({**policy, "Statement": [readable]}))
    source = {"Bucket": bucket, "Key": "readable/tagged"}
    with pytest.raises(ClientError) as err:
        guest.copy_object(Bucket=own, Key="copy", CopySource=source)
    assert code_of(err) == "AccessDenied"
    guest.copy_object(Bucket=own, Key="copy", CopySource=source, TaggingDirective="REPLACE")
    assert tags_of(guest, own, "copy") == {}
    assert guest.get_object(Bucket=own, Key="copy")["Body"].read() == b"t"
    s3.put_bucket_policy(
        Bucket=bucket,
        Policy=json.dumps({**policy, "Statement": [dict(policy["Statement"][1], Principal="*")]}),
    )
    reader.put_object(Bucket=bucket, Key="uploads/b", Body=b"b")
    with pytest.raises(ClientError) as err:
        reader.put_object(Bucket=bucket, Key="uploads/c", Body=b"c", Tagging="t=1")
    assert code_of(err) == "AccessDenied"
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="uploads/c")


@pytest_twisted.ensureDeferred
async def test_native_writes_set_no_tags_and_reads_still_work(jay: JayProcess, s3: Any) -> None:
    bucket = f"tags-native-{next(_names)}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"from s3", Tagging="a=1")
    native = await connect(
        f"127.0.0.1:{jay.native_port}", SEED_TOKEN_ID, SEED_SECRET, reactor=reactor
    )
    try:
        got = await native.get_object(bucket, "k")
        assert got.data == b"from s3"
        assert "a" not in got.info.metadata and not any("tag" in k for k in got.info.metadata)
        await native.put_object(bucket, "k", b"from native", metadata={"x-amz-meta-n": "1"})
    finally:
        await native.close()
    assert tags_of(s3, bucket, "k") == {}
    head = s3.head_object(Bucket=bucket, Key="k")
    assert tag_count(head) is None and head["Metadata"] == {"n": "1"}


@pytest.mark.skipif(not AWS.exists(), reason="awscli is not installed in the venv")
def test_readme_aws_cli_example(jay: JayProcess, tmp_path: Path) -> None:
    """The commands of README.rst's Tagging example, as written there."""
    (tmp_path / "report.txt").write_text("quarterly numbers")
    aws(jay, tmp_path, "s3", "mb", "s3://docs")
    aws(jay, tmp_path, "s3api", "put-object", "--bucket", "docs", "--key", "report.txt",
        "--body", "report.txt", "--tagging", "project=apollo&draft")  # fmt: skip
    first = json.loads(
        aws(
            jay, tmp_path, "s3api", "get-object-tagging", "--bucket", "docs", "--key", "report.txt"
        ).stdout
    )
    assert first["TagSet"] == [{"Key": "draft", "Value": ""}, {"Key": "project", "Value": "apollo"}]
    aws(jay, tmp_path, "s3api", "put-object-tagging", "--bucket", "docs", "--key", "report.txt",
        "--tagging", "TagSet=[{Key=project,Value=apollo},{Key=stage,Value=final}]")  # fmt: skip
    second = json.loads(
        aws(
            jay, tmp_path, "s3api", "get-object-tagging", "--bucket", "docs", "--key", "report.txt"
        ).stdout
    )
    assert second["TagSet"] == [
        {"Key": "project", "Value": "apollo"},
        {"Key": "stage", "Value": "final"},
    ]
    aws(jay, tmp_path, "s3api", "put-bucket-tagging", "--bucket", "docs",
        "--tagging", "TagSet=[{Key=cost-center,Value=42}]")  # fmt: skip
    bucket = json.loads(
        aws(jay, tmp_path, "s3api", "get-bucket-tagging", "--bucket", "docs").stdout
    )
    assert bucket["TagSet"] == [{"Key": "cost-center", "Value": "42"}]


def test_tags_survive_a_restart(jay: JayProcess, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", Tagging="kept=yes")
    s3.put_bucket_tagging(Bucket=bucket, Tagging=tag_set({"bucket": "tag"}))
    jay.stop()
    jay.start()
    again = s3_client(jay)
    assert tags_of(again, bucket, "k") == {"kept": "yes"}
    assert tag_count(again.head_object(Bucket=bucket, Key="k")) == "1"
    assert again.get_bucket_tagging(Bucket=bucket)["TagSet"] == [{"Key": "bucket", "Value": "tag"}]
