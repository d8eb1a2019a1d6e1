"""S3 Object Ownership (Put/Get/DeleteBucketOwnershipControls, CreateBucket's
``x-amz-object-ownership``) end to end with boto3, a second account and anonymous callers,
against a real jay process."""

from __future__ import annotations

import itertools

import pytest
from botocore.exceptions import ClientError

from tests.integration.jayproc import JayProcess
from tests.integration.test_access import client, code_of, new_account, new_token, request
from tests.integration.test_s3_acl import ALL_USERS, People

_names = itertools.count()

pytestmark = pytest.mark.usefixtures("server_log_is_clean")


@pytest.fixture(scope="module")
def people(jay: JayProcess) -> People:
    a, b = new_account(jay, "own-owner"), new_account(jay, "own-other")
    return People(jay, new_token(jay, a, ["*"]), new_token(jay, b, ["*"]))


def new_bucket(people: People, **create: str) -> str:
    name = f"own-{next(_names)}"
    client(people.jay, people.owner).create_bucket(Bucket=name, **create)
    return name


def setting(people: People, bucket: str) -> str:
    got = client(people.jay, people.owner).get_bucket_ownership_controls(Bucket=bucket)
    return got["OwnershipControls"]["Rules"][0]["ObjectOwnership"]


def put_setting(people: People, bucket: str, value: str) -> None:
    client(people.jay, people.owner).put_bucket_ownership_controls(
        Bucket=bucket, OwnershipControls={"Rules": [{"ObjectOwnership": value}]}
    )


def open_writes_to(people: People, bucket: str) -> None:
    """Let the other account write into ``bucket`` (a bucket ACL grant of WRITE)."""
    client(people.jay, people.owner).put_bucket_acl(
        Bucket=bucket,
        GrantFullControl=f"id={people.owner.account_id}",
        GrantWrite=f"id={people.other.account_id}",
    )


def test_configuration_round_trip_and_errors(people: People) -> None:
    s3 = client(people.jay, people.owner)
    bucket = new_bucket(people)
    with pytest.raises(ClientError) as err:
        s3.get_bucket_ownership_controls(Bucket=bucket)
    assert code_of(err) == "OwnershipControlsNotFoundError"
    for value in ("BucketOwnerPreferred", "ObjectWriter", "BucketOwnerEnforced"):
        put_setting(people, bucket, value)
        assert setting(people, bucket) == value
    s3.delete_bucket_ownership_controls(Bucket=bucket)
    with pytest.raises(ClientError) as err:
        s3.get_bucket_ownership_controls(Bucket=bucket)
    assert code_of(err) == "OwnershipControlsNotFoundError"
    with pytest.raises(ClientError) as err:
        put_setting(people, bucket, "BucketOwnerSometimes")
    assert code_of(err) == "MalformedXML"
    # Only the bucket's owner reads or changes it.
    other = client(people.jay, people.other)
    with pytest.raises(ClientError) as err:
        other.get_bucket_ownership_controls(Bucket=bucket)
    assert code_of(err) == "AccessDenied"
    with pytest.raises(ClientError) as err:
        other.put_bucket_ownership_controls(
            Bucket=bucket, OwnershipControls={"Rules": [{"ObjectOwnership": "ObjectWriter"}]}
        )
    assert code_of(err) == "AccessDenied"


def test_create_bucket_with_object_ownership(people: People) -> None:
    s3 = client(people.jay, people.owner)
    assert setting(people, new_bucket(people, ObjectOwnership="BucketOwnerEnforced")) == (
        "BucketOwnerEnforced"
    )
    with pytest.raises(ClientError) as err:
        s3.create_bucket(
            Bucket="own-bad-acl", ObjectOwnership="BucketOwnerEnforced", ACL="public-read"
        )
    assert code_of(err) == "InvalidBucketAclWithObjectOwnership"
    with pytest.raises(ClientError) as err:
        s3.head_bucket(Bucket="own-bad-acl")  # nothing was created
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(ClientError) as err:
        s3.create_bucket(Bucket="own-bad-value", ObjectOwnership="Everyone")  # type: ignore[arg-type]
    assert code_of(err) == "InvalidArgument"


def test_enforced_disables_acls_but_not_policies(people: People) -> None:
    s3 = client(people.jay, people.owner)
    bucket = new_bucket(people)
    s3.put_object(Bucket=bucket, Key="was-public", Body=b"p", ACL="public-read")
    assert request(f"{people.jay.s3_url}/{bucket}/was-public")[0] == 200
    put_setting(people, bucket, "BucketOwnerEnforced")
    # The stored public grant no longer counts, and reading the ACL shows only the owner.
    assert request(f"{people.jay.s3_url}/{bucket}/was-public")[0] == 403
    grants = s3.get_object_acl(Bucket=bucket, Key="was-public")["Grants"]
    assert [(g["Grantee"]["ID"], g["Permission"]) for g in grants] == [
        (people.owner.account_id, "FULL_CONTROL")
    ]
    for write in (
        lambda: s3.put_object(Bucket=bucket, Key="k", Body=b"x", ACL="public-read"),
        lambda: s3.put_object_acl(Bucket=bucket, Key="was-public", ACL="public-read"),
        lambda: s3.put_bucket_acl(Bucket=bucket, ACL="public-read"),
        lambda: s3.create_multipart_upload(Bucket=bucket, Key="m", ACL="authenticated-read"),
        lambda: s3.copy_object(
            Bucket=bucket, Key="c", CopySource=f"{bucket}/was-public", ACL="public-read"
        ),
    ):
        with pytest.raises(ClientError) as err:
            write()
        assert code_of(err) == "AccessControlListNotSupported"
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    # The bucket owner's full control, or no ACL at all, is still accepted.
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", ACL="bucket-owner-full-control")
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    s3.put_bucket_acl(Bucket=bucket, ACL="private")
    # A policy still grants what it says.
    s3.put_bucket_policy(
        Bucket=bucket,
        Policy=(
            '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*",'
            f'"Action":"s3:GetObject","Resource":"arn:aws:s3:::{bucket}/*"}}]}}'
        ),
    )
    assert request(f"{people.jay.s3_url}/{bucket}/k")[0] == 200
    # Back to ACLs: a public bucket ACL, then no return to BucketOwnerEnforced while it stands.
    s3.delete_bucket_ownership_controls(Bucket=bucket)
    s3.put_bucket_acl(
        Bucket=bucket,
        GrantFullControl=f"id={people.owner.account_id}",
        GrantRead=f"uri={ALL_USERS}",
    )
    assert request(f"{people.jay.s3_url}/{bucket}")[0] == 200  # anyone may list again
    with pytest.raises(ClientError) as err:
        put_setting(people, bucket, "BucketOwnerEnforced")
    assert code_of(err) == "InvalidBucketAclWithObjectOwnership"


def test_who_owns_what_another_account_writes(people: People) -> None:
    owner, other = client(people.jay, people.owner), client(people.jay, people.other)

    def owner_of(bucket: str, key: str) -> str:
        return owner.get_object_acl(Bucket=bucket, Key=key)["Owner"]["ID"]

    writer = new_bucket(people)  # no configuration: the writer owns its object
    open_writes_to(people, writer)
    other.put_object(Bucket=writer, Key="k", Body=b"x", ACL="bucket-owner-full-control")
    assert owner_of(writer, "k") == people.other.account_id

    preferred = new_bucket(people)
    open_writes_to(people, preferred)
    put_setting(people, preferred, "BucketOwnerPreferred")
    other.put_object(Bucket=preferred, Key="given", Body=b"x", ACL="bucket-owner-full-control")
    other.put_object(Bucket=preferred, Key="kept", Body=b"x")
    assert owner_of(preferred, "given") == people.owner.account_id
    assert owner_of(preferred, "kept") == people.other.account_id

    enforced = new_bucket(people)
    open_writes_to(people, enforced)
    with pytest.raises(ClientError) as err:  # its bucket ACL grants another account
        put_setting(people, enforced, "BucketOwnerEnforced")
    assert code_of(err) == "InvalidBucketAclWithObjectOwnership"
    owner.put_bucket_acl(Bucket=enforced, ACL="private")
    put_setting(people, enforced, "BucketOwnerEnforced")
    owner.put_bucket_policy(
        Bucket=enforced,
        Policy=(
            '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":'
            f'{{"AWS":"{people.other.account_id}"}},"Action":"s3:PutObject",'
            f'"Resource":"arn:aws:s3:::{enforced}/*"}}]}}'
        ),
    )
    other.put_object(Bucket=enforced, Key="k", Body=b"x")
    assert owner_of(enforced, "k") == people.owner.account_id
    assert owner.get_object(Bucket=enforced, Key="k")["Body"].read() == b"x"
    with pytest.raises(ClientError) as err:  # the writer keeps no access of its own
        other.get_object(Bucket=enforced, Key="k")
    assert code_of(err) == "AccessDenied"
