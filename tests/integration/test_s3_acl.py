"""S3 ACLs end to end: canned ACLs and grants set with boto3, then exercised by anonymous
callers (plain HTTP) and by a second account, against a real jay process."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.jayproc import JayProcess
from tests.integration.test_access import (
    Token,
    client,
    code_of,
    new_account,
    new_token,
    request,
)

_names = itertools.count()
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTHENTICATED = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"


pytestmark = pytest.mark.usefixtures("server_log_is_clean")


@dataclass(frozen=True)
class People:
    jay: JayProcess
    owner: Token
    other: Token


@pytest.fixture(scope="module")
def people(jay: JayProcess) -> People:
    a, b = new_account(jay, "acl-owner"), new_account(jay, "acl-other")
    return People(jay, new_token(jay, a, ["*"]), new_token(jay, b, ["*"]))


@pytest.fixture
def bucket(people: People) -> str:
    name = f"acl-{next(_names)}"
    client(people.jay, people.owner).create_bucket(Bucket=name)
    return name


def anonymous_get(people: People, bucket: str, key: str = "") -> int:
    status, _, _ = request(f"{people.jay.s3_url}/{bucket}/{key}")
    return status


def grants_of(response: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (g["Grantee"].get("URI") or g["Grantee"].get("ID") or "", g["Permission"])
        for g in response["Grants"]
    }


def test_public_read_object_is_readable_by_anyone_until_made_private(
    people: People, bucket: str
) -> None:
    s3 = client(people.jay, people.owner)
    s3.put_object(Bucket=bucket, Key="public.txt", Body=b"hello", ACL="public-read")
    s3.put_object(Bucket=bucket, Key="private.txt", Body=b"secret")
    assert anonymous_get(people, bucket, "public.txt") == 200
    assert anonymous_get(people, bucket, "private.txt") == 403
    assert anonymous_get(people, bucket) == 403  # an object's ACL does not open the bucket
    assert anonymous_get(people, bucket, "missing.txt") == 403  # nothing revealed
    acl = s3.get_object_acl(Bucket=bucket, Key="public.txt")
    assert acl["Owner"]["ID"] == people.owner.account_id
    assert grants_of(acl) == {(ALL_USERS, "READ"), (people.owner.account_id, "FULL_CONTROL")}
    s3.put_object_acl(Bucket=bucket, Key="public.txt", ACL="private")
    assert anonymous_get(people, bucket, "public.txt") == 403
    assert grants_of(s3.get_object_acl(Bucket=bucket, Key="public.txt")) == {
        (people.owner.account_id, "FULL_CONTROL")
    }
    # An overwrite is a new version: it starts with the ACL its own request asks for.
    s3.put_object_acl(Bucket=bucket, Key="public.txt", ACL="public-read")
    s3.put_object(Bucket=bucket, Key="public.txt", Body=b"v2")
    assert anonymous_get(people, bucket, "public.txt") == 403


def test_copy_and_multipart_take_the_requested_acl(people: People, bucket: str) -> None:
    s3 = client(people.jay, people.owner)
    s3.put_object(Bucket=bucket, Key="src", Body=b"data", ACL="public-read")
    s3.copy_object(Bucket=bucket, Key="copy-private", CopySource={"Bucket": bucket, "Key": "src"})
    s3.copy_object(
        Bucket=bucket,
        Key="copy-public",
        CopySource={"Bucket": bucket, "Key": "src"},
        ACL="public-read",
    )
    assert anonymous_get(people, bucket, "copy-private") == 403
    assert anonymous_get(people, bucket, "copy-public") == 200
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp", ACL="public-read")
    part = s3.upload_part(
        Bucket=bucket, Key="mp", UploadId=upload["UploadId"], PartNumber=1, Body=b"x" * 10
    )
    assert anonymous_get(people, bucket, "mp") == 403  # not there yet
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="mp",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    assert anonymous_get(people, bucket, "mp") == 200


def test_bucket_acls_grant_listing_and_writing(people: People, bucket: str) -> None:
    owner = client(people.jay, people.owner)
    other = client(people.jay, people.other)
    owner.put_object(Bucket=bucket, Key="k", Body=b"v")
    with pytest.raises(ClientError) as err:
        other.list_objects_v2(Bucket=bucket)
    assert code_of(err) == "AccessDenied"
    owner.put_bucket_acl(Bucket=bucket, ACL="public-read")
    assert anonymous_get(people, bucket) == 200
    assert anonymous_get(people, bucket, "k") == 403  # bucket READ lists, it does not read
    # Whoever may list learns that a key is missing (S3's rule), others only AccessDenied.
    assert anonymous_get(people, bucket, "missing") == 404
    assert [o["Key"] for o in other.list_objects_v2(Bucket=bucket)["Contents"]] == ["k"]
    with pytest.raises(ClientError) as err:
        other.put_object(Bucket=bucket, Key="theirs", Body=b"x")
    assert code_of(err) == "AccessDenied"
    # WRITE for the other account only, by grant header.
    owner.put_bucket_acl(
        Bucket=bucket,
        GrantWrite=f"id={people.other.account_id}",
        GrantFullControl=f'id="{people.owner.account_id}"',
    )
    assert anonymous_get(people, bucket) == 403
    other.put_object(Bucket=bucket, Key="theirs", Body=b"x")
    acl = owner.get_bucket_acl(Bucket=bucket)
    assert grants_of(acl) == {
        (people.other.account_id, "WRITE"),
        (people.owner.account_id, "FULL_CONTROL"),
    }
    # The writer owns what it wrote; the bucket owner keeps access to everything in it.
    theirs = other.get_object_acl(Bucket=bucket, Key="theirs")
    assert theirs["Owner"]["ID"] == people.other.account_id
    assert other.get_object(Bucket=bucket, Key="theirs")["Body"].read() == b"x"
    assert owner.get_object(Bucket=bucket, Key="theirs")["Body"].read() == b"x"
    with pytest.raises(ClientError) as err:
        other.get_object(Bucket=bucket, Key="k")  # the owner's object: not granted
    assert code_of(err) == "AccessDenied"


def test_acp_permissions_and_errors(people: People, bucket: str) -> None:
    owner = client(people.jay, people.owner)
    other = client(people.jay, people.other)
    with pytest.raises(ClientError) as err:
        other.get_bucket_acl(Bucket=bucket)
    assert code_of(err) == "AccessDenied"
    owner.put_bucket_acl(Bucket=bucket, GrantReadACP=f"id={people.other.account_id}")
    assert grants_of(other.get_bucket_acl(Bucket=bucket)) == {(people.other.account_id, "READ_ACP")}
    with pytest.raises(ClientError) as err:
        other.put_bucket_acl(Bucket=bucket, ACL="public-read-write")
    assert code_of(err) == "AccessDenied"
    for bad, code in (
        ({"GrantRead": "id=no-such-account"}, "InvalidArgument"),
        ({"GrantRead": 'emailAddress="a@example.com"'}, "UnresolvableGrantByEmailAddress"),
        ({"GrantRead": 'uri="http://example.com/everyone"'}, "InvalidArgument"),
        ({"ACL": "public-read", "GrantRead": "id=x"}, "InvalidRequest"),
    ):
        with pytest.raises(ClientError) as err:
            owner.put_bucket_acl(Bucket=bucket, **bad)
        assert code_of(err) == code, bad
    document = {
        "Owner": {"ID": people.owner.account_id},
        "Grants": [
            {"Grantee": {"Type": "Group", "URI": AUTHENTICATED}, "Permission": "READ"},
            {
                "Grantee": {"Type": "CanonicalUser", "ID": people.owner.account_id},
                "Permission": "FULL_CONTROL",
            },
        ],
    }
    owner.put_bucket_acl(Bucket=bucket, AccessControlPolicy=document)
    assert grants_of(owner.get_bucket_acl(Bucket=bucket)) == {
        (AUTHENTICATED, "READ"),
        (people.owner.account_id, "FULL_CONTROL"),
    }
    other.list_objects_v2(Bucket=bucket)  # any authenticated caller may list now
    assert anonymous_get(people, bucket) == 403
    wrong_owner = {**document, "Owner": {"ID": people.other.account_id}}
    with pytest.raises(ClientError) as err:
        owner.put_bucket_acl(Bucket=bucket, AccessControlPolicy=wrong_owner)
    assert code_of(err) == "AccessDenied"
    with pytest.raises(ClientError) as err:
        owner.get_object_acl(Bucket=bucket, Key="nope")
    assert code_of(err) == "NoSuchKey"


def test_canned_acl_at_bucket_creation_and_a_policy_deny_still_wins(people: People) -> None:
    import json

    owner = client(people.jay, people.owner)
    name = f"acl-{next(_names)}"
    owner.create_bucket(Bucket=name, ACL="public-read-write")
    status, _, _ = request(f"{people.jay.s3_url}/{name}/anon.txt", "PUT", b"from anyone")
    assert status == 200
    assert anonymous_get(people, name) == 200
    owner.put_bucket_policy(
        Bucket=name,
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:PutObject",
                        "Resource": f"arn:aws:s3:::{name}/*",
                    }
                ],
            }
        ),
    )
    status, _, _ = request(f"{people.jay.s3_url}/{name}/anon2.txt", "PUT", b"refused")
    assert status == 403
    assert anonymous_get(people, name) == 200
    with pytest.raises(ClientError) as err:
        owner.create_bucket(Bucket=f"acl-{next(_names)}", ACL="no-such-canned-acl")
    assert code_of(err) == "InvalidArgument"
