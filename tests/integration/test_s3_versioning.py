"""S3 bucket versioning with boto3 against a real jay process, following what ceph/s3-tests
(s3tests_boto3/functional/test_s3.py, ``test_versioning_*``, ``test_versioned_*``,
``test_delete_marker_*``) expects: versions kept, read, copied and deleted by id, delete markers,
suspended buckets and the "null" version, DeleteObjects with versions, ListObjectVersions
paging, version-specific ACLs and tags, the native protocol on a versioned bucket, a restart.
"""

from __future__ import annotations

import itertools
import json
import urllib.parse
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
import pytest_twisted
from botocore.exceptions import ClientError
from twisted.internet import reactor

from jay.client import connect
from tests.integration.conftest import (
    SEED_SECRET,
    SEED_TOKEN_ID,
    code_of,
    raw_request,
    s3_client,
    status_of,
)
from tests.integration.jayproc import CLEAN_EXIT, JayProcess
from tests.integration.test_s3_awscli import AWS, aws

_names = itertools.count()
MiB = 1024 * 1024

pytestmark = pytest.mark.usefixtures("server_log_is_clean")


def new_bucket(s3: Any, status: str | None = "Enabled") -> str:
    name = f"ver-{next(_names)}"
    s3.create_bucket(Bucket=name)
    if status is not None:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": status})
    return name


def body_of(s3: Any, bucket: str, key: str, **kw: Any) -> bytes:
    return bytes(s3.get_object(Bucket=bucket, Key=key, **kw)["Body"].read())


def versions_of(s3: Any, bucket: str, **kw: Any) -> list[tuple[str, str, bool, bool]]:
    """(key, version id, is latest, is delete marker) in the order the server listed them
    (boto3 splits Version and DeleteMarker entries into two lists: read the XML itself)."""
    bodies: list[bytes] = []

    def keep(response_dict: dict[str, Any], **_: Any) -> None:
        bodies.append(response_dict["body"])

    s3.meta.events.register("before-parse.s3.ListObjectVersions", keep)
    try:
        s3.list_object_versions(Bucket=bucket, **kw)
    finally:
        s3.meta.events.unregister("before-parse.s3.ListObjectVersions", keep)
    ns = "{http://s3.amazonaws.com/doc/2006-03-01/}"
    out = []
    for entry in ElementTree.fromstring(bodies[-1]):
        if entry.tag in (ns + "Version", ns + "DeleteMarker"):
            out.append(
                (
                    urllib.parse.unquote(entry.findtext(ns + "Key") or ""),  # botocore: url
                    entry.findtext(ns + "VersionId") or "",
                    entry.findtext(ns + "IsLatest") == "true",
                    entry.tag == ns + "DeleteMarker",
                )
            )
    return out


def test_bucket_versioning_states(s3: Any) -> None:
    bucket = new_bucket(s3, None)
    assert "Status" not in s3.get_bucket_versioning(Bucket=bucket)
    for status in ("Enabled", "Suspended", "Enabled", "Suspended"):
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": status})
        assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == status
    with pytest.raises(ClientError) as err:
        s3.put_bucket_versioning(
            Bucket=bucket, VersioningConfiguration={"Status": "Enabled", "MFADelete": "Enabled"}
        )
    assert code_of(err) == "NotImplemented"
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Suspended"


def test_versions_are_kept_read_and_removed_by_id(s3: Any) -> None:
    bucket = new_bucket(s3)
    ids = []
    for n in range(3):
        put = s3.put_object(Bucket=bucket, Key="obj", Body=b"data %d" % n)
        ids.append(put["VersionId"])
    assert len(set(ids)) == 3
    got = s3.get_object(Bucket=bucket, Key="obj")
    assert got["VersionId"] == ids[2] and got["Body"].read() == b"data 2"
    for n, version_id in enumerate(ids):
        assert body_of(s3, bucket, "obj", VersionId=version_id) == b"data %d" % n
        head = s3.head_object(Bucket=bucket, Key="obj", VersionId=version_id)
        assert head["VersionId"] == version_id and head["ContentLength"] == 6
    listed = versions_of(s3, bucket)
    assert listed == [("obj", ids[2], True, False), ("obj", ids[1], False, False),
                      ("obj", ids[0], False, False)]  # fmt: skip
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["obj"]

    # Remove the latest by id: the previous one becomes current.
    removed = s3.delete_object(Bucket=bucket, Key="obj", VersionId=ids[2])
    assert removed["VersionId"] == ids[2] and "DeleteMarker" not in removed
    assert body_of(s3, bucket, "obj") == b"data 1"
    s3.delete_object(Bucket=bucket, Key="obj", VersionId=ids[0])
    assert versions_of(s3, bucket) == [("obj", ids[1], True, False)]
    s3.delete_object(Bucket=bucket, Key="obj", VersionId=ids[1])
    assert "Versions" not in s3.list_object_versions(Bucket=bucket)
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="obj")
    assert code_of(err) == "NoSuchKey"
    s3.delete_bucket(Bucket=bucket)


def test_delete_markers(s3: Any) -> None:
    bucket = new_bucket(s3)
    first = s3.put_object(Bucket=bucket, Key="k", Body=b"one")["VersionId"]
    deleted = s3.delete_object(Bucket=bucket, Key="k")
    assert deleted["DeleteMarker"] is True
    marker = deleted["VersionId"]
    assert marker != first
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="k")
    assert (status_of(err), code_of(err)) == (404, "NoSuchKey")
    headers = err.value.response["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-amz-delete-marker"] == "true" and headers["x-amz-version-id"] == marker
    with pytest.raises(ClientError) as err:
        s3.head_object(Bucket=bucket, Key="k")
    assert status_of(err) == 404
    assert err.value.response["ResponseMetadata"]["HTTPHeaders"]["x-amz-delete-marker"] == "true"
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="k", VersionId=marker)
    assert (status_of(err), code_of(err)) == (405, "MethodNotAllowed")
    assert "k" not in [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert s3.list_objects(Bucket=bucket).get("Contents") is None
    assert versions_of(s3, bucket) == [("k", marker, True, True), ("k", first, False, False)]
    with pytest.raises(ClientError) as err:
        s3.delete_bucket(Bucket=bucket)
    assert code_of(err) == "BucketNotEmpty"
    # Removing the marker brings the object back.
    again = s3.delete_object(Bucket=bucket, Key="k", VersionId=marker)
    assert again["DeleteMarker"] is True and again["VersionId"] == marker
    assert body_of(s3, bucket, "k") == b"one"
    # A delete of a missing key still leaves a marker, as S3 does.
    assert s3.delete_object(Bucket=bucket, Key="never")["DeleteMarker"] is True


def test_version_id_errors(s3: Any) -> None:
    bucket = new_bucket(s3)
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="k", VersionId="not-a-version")
    assert (status_of(err), code_of(err)) == (400, "InvalidArgument")
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="k", VersionId="0b5a7c3e-1111-4222-8333-444455556666")
    assert (status_of(err), code_of(err)) == (404, "NoSuchVersion")
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="k", VersionId="null")  # s3-tests: read_not_exist_null
    assert code_of(err) == "NoSuchVersion"
    with pytest.raises(ClientError) as err:
        s3.delete_object(Bucket=bucket, Key="k", VersionId="bad id")
    assert code_of(err) == "InvalidArgument"


def test_null_version_before_versioning_and_suspended(s3: Any) -> None:
    bucket = new_bucket(s3, None)
    s3.put_object(Bucket=bucket, Key="k", Body=b"plain")
    assert "VersionId" not in s3.head_object(Bucket=bucket, Key="k")
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    assert s3.head_object(Bucket=bucket, Key="k")["VersionId"] == "null"
    new = s3.put_object(Bucket=bucket, Key="k", Body=b"versioned")["VersionId"]
    assert body_of(s3, bucket, "k", VersionId="null") == b"plain"
    s3.delete_object(Bucket=bucket, Key="k", VersionId=new)
    assert body_of(s3, bucket, "k") == b"plain"
    # Suspended: writes replace the null version, no version id answered; others are kept.
    kept = s3.put_object(Bucket=bucket, Key="k", Body=b"kept")["VersionId"]
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    put = s3.put_object(Bucket=bucket, Key="k", Body=b"suspended 1")
    assert "VersionId" not in put
    s3.put_object(Bucket=bucket, Key="k", Body=b"suspended 2")
    assert versions_of(s3, bucket) == [("k", "null", True, False), ("k", kept, False, False)]
    assert body_of(s3, bucket, "k") == b"suspended 2"
    marker = s3.delete_object(Bucket=bucket, Key="k")
    assert marker["DeleteMarker"] is True and marker["VersionId"] == "null"
    assert versions_of(s3, bucket) == [("k", "null", True, True), ("k", kept, False, False)]
    s3.delete_object(Bucket=bucket, Key="k", VersionId="null")
    assert body_of(s3, bucket, "k") == b"kept"


def test_copy_multipart_and_post_make_versions(s3: Any) -> None:
    bucket = new_bucket(s3)
    old = s3.put_object(Bucket=bucket, Key="src", Body=b"old source")["VersionId"]
    s3.put_object(Bucket=bucket, Key="src", Body=b"new source")
    copied = s3.copy_object(
        Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src", "VersionId": old}
    )
    assert copied["CopySourceVersionId"] == old and copied["VersionId"]
    assert body_of(s3, bucket, "dst") == b"old source"

    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    part = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload, PartNumber=1, Body=b"p")
    done = s3.complete_multipart_upload(
        Bucket=bucket,
        Key="mp",
        UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    assert done["VersionId"]
    s3.put_object(Bucket=bucket, Key="mp", Body=b"after")
    assert body_of(s3, bucket, "mp", VersionId=done["VersionId"]) == b"p"
    attributes = s3.get_object_attributes(
        Bucket=bucket, Key="mp", VersionId=done["VersionId"], ObjectAttributes=["ObjectSize"]
    )
    assert attributes["ObjectSize"] == 1 and attributes["VersionId"] == done["VersionId"]


def test_delete_objects_with_versions_and_markers(s3: Any) -> None:
    bucket = new_bucket(s3)
    ids = [s3.put_object(Bucket=bucket, Key=f"k{n % 2}", Body=b"%d" % n)["VersionId"]
           for n in range(4)]  # fmt: skip
    result = s3.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": "k0"}, {"Key": "k1", "VersionId": ids[3]}]}
    )
    by_key = {d["Key"]: d for d in result["Deleted"]}
    assert by_key["k0"]["DeleteMarker"] is True
    marker = by_key["k0"]["DeleteMarkerVersionId"]
    assert by_key["k1"]["VersionId"] == ids[3] and "DeleteMarker" not in by_key["k1"]
    assert body_of(s3, bucket, "k1") == b"1"
    # The marker by its id: DeleteMarker and DeleteMarkerVersionId name it.
    result = s3.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": "k0", "VersionId": marker}]}
    )
    assert result["Deleted"][0]["DeleteMarker"] is True
    assert result["Deleted"][0]["DeleteMarkerVersionId"] == marker
    everything = [{"Key": f"k{n % 2}", "VersionId": ids[n]} for n in range(3)]
    for _ in range(2):  # a second time: the versions are gone, still no error
        result = s3.delete_objects(Bucket=bucket, Delete={"Objects": everything})
        assert len(result["Deleted"]) == 3 and "Errors" not in result
    assert "Versions" not in s3.list_object_versions(Bucket=bucket)
    s3.delete_bucket(Bucket=bucket)


def test_list_object_versions_paging_prefixes_and_encoding(s3: Any) -> None:
    bucket = new_bucket(s3)
    keys = ["a", "dir/x", "dir/y", "sp ace", "z"]
    made = {k: [s3.put_object(Bucket=bucket, Key=k, Body=b"%d" % n)["VersionId"]
                for n in range(2)] for k in keys}  # fmt: skip
    s3.delete_object(Bucket=bucket, Key="z")
    everything = versions_of(s3, bucket)
    assert len(everything) == 11
    assert [v[1] for v in everything if v[0] == "a"] == made["a"][::-1]
    seen = []
    kw: dict[str, str] = {}
    while True:
        page = s3.list_object_versions(Bucket=bucket, MaxKeys=3, **kw)
        entries = page.get("Versions", []) + page.get("DeleteMarkers", [])
        assert 0 < len(entries) <= 3
        seen += [(v["Key"], v["VersionId"]) for v in entries]
        if not page["IsTruncated"]:
            break
        kw = {"KeyMarker": page["NextKeyMarker"], "VersionIdMarker": page["NextVersionIdMarker"]}
    assert sorted(seen) == sorted((v[0], v[1]) for v in everything)
    page = s3.list_object_versions(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in page["CommonPrefixes"]] == ["dir/"]
    page = s3.list_object_versions(Bucket=bucket, Prefix="dir/", KeyMarker="dir/x")
    assert {v["Key"] for v in page["Versions"]} == {"dir/y"}
    page = s3.list_object_versions(Bucket=bucket, Prefix="sp", EncodingType="url")
    assert page["Versions"][0]["Key"] == "sp%20ace"  # asked for explicitly: left encoded
    status, _, raw = raw_request(f"{s3.meta.endpoint_url}/{bucket}?versions&prefix=sp")
    assert status == 403  # anonymous: the listing is not public
    del raw


def test_versioned_acls_and_tags(s3: Any) -> None:
    bucket = new_bucket(s3)
    old = s3.put_object(Bucket=bucket, Key="k", Body=b"old", ACL="public-read")["VersionId"]
    new = s3.put_object(Bucket=bucket, Key="k", Body=b"new")["VersionId"]
    grants = s3.get_object_acl(Bucket=bucket, Key="k", VersionId=old)["Grants"]
    assert any(g["Grantee"].get("URI", "").endswith("AllUsers") for g in grants)
    grants = s3.get_object_acl(Bucket=bucket, Key="k")["Grants"]
    assert not any(g["Grantee"].get("URI", "").endswith("AllUsers") for g in grants)
    s3.put_object_acl(Bucket=bucket, Key="k", VersionId=old, ACL="private")
    grants = s3.get_object_acl(Bucket=bucket, Key="k", VersionId=old)["Grants"]
    assert not any(g["Grantee"].get("URI", "").endswith("AllUsers") for g in grants)
    s3.put_object_tagging(
        Bucket=bucket, Key="k", VersionId=old, Tagging={"TagSet": [{"Key": "t", "Value": "1"}]}
    )
    assert s3.get_object_tagging(Bucket=bucket, Key="k", VersionId=old)["TagSet"] == [
        {"Key": "t", "Value": "1"}
    ]
    tagged = s3.get_object_tagging(Bucket=bucket, Key="k")
    assert tagged["TagSet"] == [] and tagged["VersionId"] == new


@pytest_twisted.ensureDeferred
async def test_native_protocol_writes_versions_and_deletes_with_markers(
    jay: JayProcess, s3: Any
) -> None:
    bucket = new_bucket(s3)
    first = s3.put_object(Bucket=bucket, Key="k", Body=b"from s3")["VersionId"]
    native = await connect(
        f"127.0.0.1:{jay.native_port}", SEED_TOKEN_ID, SEED_SECRET, reactor=reactor
    )
    try:
        await native.put_object(bucket, "k", b"from native")
        assert (await native.get_object(bucket, "k")).data == b"from native"
        await native.delete_object(bucket, "k")
    finally:
        await native.close()
    listed = versions_of(s3, bucket)
    assert [(v[2], v[3]) for v in listed] == [(True, True), (False, False), (False, False)]
    assert listed[2][1] == first
    assert body_of(s3, bucket, "k", VersionId=listed[1][1]) == b"from native"


def test_versions_survive_a_restart(jay: JayProcess) -> None:
    s3 = s3_client(jay)
    bucket = new_bucket(s3)
    old = s3.put_object(Bucket=bucket, Key="k", Body=b"x" * (2 * MiB))["VersionId"]
    small = s3.put_object(Bucket=bucket, Key="k", Body=b"small")["VersionId"]
    s3.delete_object(Bucket=bucket, Key="k")
    assert jay.stop() in CLEAN_EXIT
    jay.start()
    s3 = s3_client(jay)
    assert body_of(s3, bucket, "k", VersionId=old) == b"x" * (2 * MiB)
    assert body_of(s3, bucket, "k", VersionId=small) == b"small"
    assert versions_of(s3, bucket)[0][3] is True


def test_readme_boto3_example(s3: Any) -> None:
    """README.rst's Versioning example, as written there (in a bucket of its own)."""
    s3.create_bucket(Bucket="docs-versioned")
    bucket = "docs-versioned"
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    first = s3.put_object(Bucket=bucket, Key="a.txt", Body=b"one")["VersionId"]
    s3.put_object(Bucket=bucket, Key="a.txt", Body=b"two")
    assert s3.get_object(Bucket=bucket, Key="a.txt", VersionId=first)["Body"].read() == b"one"
    marker = s3.delete_object(Bucket=bucket, Key="a.txt")["VersionId"]
    s3.delete_object(Bucket=bucket, Key="a.txt", VersionId=marker)
    assert body_of(s3, bucket, "a.txt") == b"two"


@pytest.mark.skipif(not AWS.exists(), reason="awscli is not installed in the venv")
def test_readme_aws_cli_example(jay: JayProcess, tmp_path: Path) -> None:
    """README.rst's AWS CLI commands for versioning and the noncurrent-version lifecycle rule."""
    (tmp_path / "a.txt").write_text("first")
    aws(jay, tmp_path, "s3", "mb", "s3://docs-cli")
    aws(jay, tmp_path, "s3api", "put-bucket-versioning", "--bucket", "docs-cli",
        "--versioning-configuration", "Status=Enabled")  # fmt: skip
    for text in ("first", "second"):
        (tmp_path / "a.txt").write_text(text)
        aws(jay, tmp_path, "s3api", "put-object", "--bucket", "docs-cli", "--key", "a.txt",
            "--body", "a.txt")  # fmt: skip
    listed = json.loads(
        aws(jay, tmp_path, "s3api", "list-object-versions", "--bucket", "docs-cli").stdout
    )
    assert [v["IsLatest"] for v in listed["Versions"]] == [True, False]
    aws(jay, tmp_path, "s3api", "put-bucket-lifecycle-configuration", "--bucket", "docs-cli",
        "--lifecycle-configuration", '{"Rules": [{"ID": "old-versions", "Filter": {}, '
        '"Status": "Enabled", "Expiration": {"ExpiredObjectDeleteMarker": true}, '
        '"NoncurrentVersionExpiration": {"NoncurrentDays": 30, "NewerNoncurrentVersions": 3}}]}')  # fmt: skip
    rules = json.loads(
        aws(
            jay, tmp_path, "s3api", "get-bucket-lifecycle-configuration", "--bucket", "docs-cli"
        ).stdout  # fmt: skip
    )["Rules"]
    assert rules[0]["NoncurrentVersionExpiration"] == {
        "NoncurrentDays": 30,
        "NewerNoncurrentVersions": 3,
    }


def test_list_versions_of_an_unversioned_bucket_with_a_delimiter(s3: Any) -> None:
    """s3-tests' versioning_bucket_list_filtering_all: common prefixes take max-keys too."""
    bucket = new_bucket(s3, None)
    for key in ("test1/f1", "test2/f2", "test3", "test4/f3", "testF4"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    page = s3.list_object_versions(Bucket=bucket, Delimiter="/", MaxKeys=3)
    assert page["IsTruncated"] is True and page["NextKeyMarker"] == "test3"
    assert [v["Key"] for v in page["Versions"]] == ["test3"]
    assert page["Versions"][0]["VersionId"] == "null" and page["Versions"][0]["IsLatest"]
    assert [p["Prefix"] for p in page["CommonPrefixes"]] == ["test1/", "test2/"]
    rest = s3.list_object_versions(Bucket=bucket, Delimiter="/", MaxKeys=3, KeyMarker="test3")
    assert rest["IsTruncated"] is False
    assert [v["Key"] for v in rest["Versions"]] == ["testF4"]
    assert [p["Prefix"] for p in rest["CommonPrefixes"]] == ["test4/"]
    with pytest.raises(ClientError) as err:
        s3.list_object_versions(Bucket="no-such-bucket-versions")
    assert (status_of(err), code_of(err)) == (404, "NoSuchBucket")


def test_upload_part_copy_and_anonymous_reads_follow_the_named_version(s3: Any) -> None:
    bucket = new_bucket(s3)
    old = s3.put_object(Bucket=bucket, Key="src", Body=b"old" * 10, ACL="public-read")
    s3.put_object(Bucket=bucket, Key="src", Body=b"new" * 10)  # private
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    part = s3.upload_part_copy(
        Bucket=bucket,
        Key="mp",
        UploadId=upload,
        PartNumber=1,
        CopySource={"Bucket": bucket, "Key": "src", "VersionId": old["VersionId"]},
    )
    assert part["CopySourceVersionId"] == old["VersionId"]
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="mp",
        UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["CopyPartResult"]["ETag"]}]},
    )
    assert body_of(s3, bucket, "mp") == b"old" * 10
    # Anonymous: the old version's own ACL (public-read) decides, not the current one's.
    url = f"{s3.meta.endpoint_url}/{bucket}/src"
    status, headers, body = raw_request(f"{url}?versionId={old['VersionId']}")
    assert (status, body) == (200, b"old" * 10)
    assert headers["x-amz-version-id"] == old["VersionId"]
    assert raw_request(url)[0] == 403
