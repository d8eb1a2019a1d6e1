"""Block Public Access and GetBucketPolicyStatus with boto3 against a real jay process:
Put/Get/DeletePublicAccessBlock, each switch's effect on anonymous callers and on another
account, and the policy status."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore import UNSIGNED
from botocore.exceptions import ClientError

from tests.integration.conftest import SEED_ACCOUNT, code_of, s3_client, status_of
from tests.integration.jayproc import JayProcess
from tests.integration.test_access import client, new_account, new_token, request
from tests.integration.test_s3_post_object import form_body, post, presigned

_names = itertools.count()
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTHENTICATED_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
NOTHING_BLOCKED = {
    "BlockPublicAcls": False,
    "IgnorePublicAcls": False,
    "BlockPublicPolicy": False,
    "RestrictPublicBuckets": False,
}


@pytest.fixture(scope="module", autouse=True)
def server_log_is_clean(jay: JayProcess) -> Iterator[None]:
    yield
    log = jay.log_text()
    assert "Unexpected error" not in log and "Traceback" not in log, log[-5000:]


@pytest.fixture(scope="module")
def other(jay: JayProcess) -> Any:
    """A client of a second account, every action."""
    return client(jay, new_token(jay, new_account(jay, "pab-other"), ["*"]))


@pytest.fixture(scope="module")
def anonymous(jay: JayProcess) -> Any:
    return s3_client(jay, signature_version=UNSIGNED)


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"pab-{next(_names)}"
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="k", Body=b"bytes of k")
    return name


def block(s3: Any, bucket: str, **switches: bool) -> None:
    config = NOTHING_BLOCKED | switches
    reply = s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=config)
    assert reply["ResponseMetadata"]["HTTPStatusCode"] == 200


def denied(call: Any, **kw: Any) -> None:
    with pytest.raises(ClientError) as err:
        call(**kw)
    assert (status_of(err), code_of(err)) == (403, "AccessDenied"), err.value.response


def readable(who: Any, bucket: str, key: str = "k") -> bool:
    try:
        who.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as err:
        assert err.response["Error"]["Code"] == "AccessDenied"
        return False
    return True


def listable(who: Any, bucket: str) -> bool:
    try:
        who.list_objects_v2(Bucket=bucket)
    except ClientError as err:
        assert err.response["Error"]["Code"] == "AccessDenied"
        return False
    return True


def aws_policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(
    bucket: str, principal: Any, action: str = "s3:GetObject", **extra: Any
) -> dict[str, Any]:
    resource = f"arn:aws:s3:::{bucket}" if action == "s3:ListBucket" else f"arn:aws:s3:::{bucket}/*"
    return {
        "Effect": "Allow",
        "Principal": principal,
        "Action": action,
        "Resource": resource,
    } | extra


def is_public(s3: Any, bucket: str) -> bool:
    return bool(s3.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"]["IsPublic"])


# --- the configuration ------------------------------------------------------------------------


def test_put_get_delete_configuration(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as err:
        s3.get_public_access_block(Bucket=bucket)
    assert (status_of(err), code_of(err)) == (404, "NoSuchPublicAccessBlockConfiguration")
    assert err.value.response["Error"]["BucketName"] == bucket

    first = {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": False,
    }
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=first)
    assert s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"] == first
    # A new configuration replaces the whole old one; switches left out are off.
    s3.put_public_access_block(
        Bucket=bucket, PublicAccessBlockConfiguration={"RestrictPublicBuckets": True}
    )
    got = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert got == NOTHING_BLOCKED | {"RestrictPublicBuckets": True}

    deleted = s3.delete_public_access_block(Bucket=bucket)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as err:
        s3.get_public_access_block(Bucket=bucket)
    assert code_of(err) == "NoSuchPublicAccessBlockConfiguration"
    assert s3.delete_public_access_block(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 204

    # An all-off configuration is still a configuration.
    block(s3, bucket)
    assert s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"] == (
        NOTHING_BLOCKED
    )


def test_malformed_configuration(s3: Any, bucket: str) -> None:
    def send_bad_xml(request: Any, **kwargs: Any) -> None:
        request.data = (
            b"<PublicAccessBlockConfiguration><BlockPublicAcls>yes</BlockPublicAcls>"
            b"</PublicAccessBlockConfiguration>"
        )
        for name in [
            n for n in request.headers if n.lower().startswith(("content-md5", "x-amz-c"))
        ]:
            del request.headers[name]

    events = s3.meta.events
    events.register_first("before-sign.s3.PutPublicAccessBlock", send_bad_xml)
    try:
        with pytest.raises(ClientError) as err:
            block(s3, bucket, BlockPublicAcls=True)
    finally:
        events.unregister("before-sign.s3.PutPublicAccessBlock", send_bad_xml)
    assert (status_of(err), code_of(err)) == (400, "MalformedXML")
    with pytest.raises(ClientError) as err:
        s3.get_public_access_block(Bucket=bucket)
    assert code_of(err) == "NoSuchPublicAccessBlockConfiguration"  # nothing was stored


def test_only_the_owner_manages_the_configuration(
    jay: JayProcess, s3: Any, other: Any, anonymous: Any, bucket: str
) -> None:
    # Even a policy granting everything to the other account does not let it in.
    s3.put_bucket_policy(Bucket=bucket, Policy=aws_policy(allow(bucket, "*", "s3:*")))
    block(s3, bucket, BlockPublicAcls=True)
    for who in (other, anonymous):
        denied(who.get_public_access_block, Bucket=bucket)
        denied(who.put_public_access_block, Bucket=bucket, PublicAccessBlockConfiguration={})
        denied(who.delete_public_access_block, Bucket=bucket)
        denied(who.get_bucket_policy_status, Bucket=bucket)
    assert s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"] == (
        NOTHING_BLOCKED | {"BlockPublicAcls": True}
    )
    assert request(f"{jay.s3_url}/{bucket}?publicAccessBlock")[0] == 403


def test_a_policy_deny_binds_the_owner(s3: Any, bucket: str) -> None:
    deny = {
        "Effect": "Deny",
        "Principal": "*",
        "Action": ["s3:GetBucketPublicAccessBlock", "s3:GetBucketPolicyStatus"],
        "Resource": f"arn:aws:s3:::{bucket}",
    }
    s3.put_bucket_policy(Bucket=bucket, Policy=aws_policy(deny))
    block(s3, bucket, BlockPublicAcls=True)  # s3:PutBucketPublicAccessBlock is not denied
    denied(s3.get_public_access_block, Bucket=bucket)
    denied(s3.get_bucket_policy_status, Bucket=bucket)
    s3.delete_bucket_policy(Bucket=bucket)
    assert s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"][
        "BlockPublicAcls"
    ]


# --- BlockPublicAcls --------------------------------------------------------------------------


def test_block_public_acls(jay: JayProcess, s3: Any, anonymous: Any, bucket: str) -> None:
    # A public ACL stored before the switch stays in force (S3: existing ACLs are kept).
    s3.put_object(Bucket=bucket, Key="old", Body=b"old", ACL="public-read")
    block(s3, bucket, BlockPublicAcls=True)
    assert readable(anonymous, bucket, "old")

    for canned in ("public-read", "public-read-write", "authenticated-read"):
        denied(s3.put_bucket_acl, Bucket=bucket, ACL=canned)
        denied(s3.put_object, Bucket=bucket, Key="new", Body=b"x", ACL=canned)
        denied(s3.put_object_acl, Bucket=bucket, Key="k", ACL=canned)
    denied(s3.put_bucket_acl, Bucket=bucket, GrantRead=f'uri="{AUTHENTICATED_USERS}"')
    denied(s3.put_object, Bucket=bucket, Key="new", Body=b"x", GrantRead=f'uri="{ALL_USERS}"')
    owner = {"ID": SEED_ACCOUNT}
    body = {
        "Owner": owner,
        "Grants": [
            {"Grantee": {"Type": "Group", "URI": ALL_USERS}, "Permission": "READ"},
            {
                "Grantee": {"Type": "CanonicalUser", "ID": SEED_ACCOUNT},
                "Permission": "FULL_CONTROL",
            },
        ],
    }
    denied(s3.put_bucket_acl, Bucket=bucket, AccessControlPolicy=body)
    denied(s3.put_object_acl, Bucket=bucket, Key="k", AccessControlPolicy=body)
    source = {"Bucket": bucket, "Key": "k"}
    denied(s3.copy_object, Bucket=bucket, Key="copy", CopySource=source, ACL="public-read")
    denied(s3.create_multipart_upload, Bucket=bucket, Key="mp", ACL="public-read")
    path, fields = presigned(
        s3, bucket, "form", Fields={"acl": "public-read"}, Conditions=[{"acl": "public-read"}]
    )
    refused = post(jay, path, form_body(fields, b"form"))
    assert (refused.status, refused.code) == (403, "AccessDenied")

    # Nothing was stored by the refused requests.
    for key in ("new", "copy", "form"):
        with pytest.raises(ClientError) as err:
            s3.head_object(Bucket=bucket, Key=key)
        assert status_of(err) == 404
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert not readable(anonymous, bucket, "k")
    assert not listable(anonymous, bucket)

    # ACLs that are not public still go through.
    s3.put_bucket_acl(Bucket=bucket, ACL="private")
    s3.put_object(Bucket=bucket, Key="private", Body=b"p", ACL="bucket-owner-full-control")
    s3.put_object_acl(Bucket=bucket, Key="k", ACL="private")
    s3.copy_object(Bucket=bucket, Key="copy", CopySource=source, ACL="private")
    path, fields = presigned(
        s3, bucket, "form", Fields={"acl": "private"}, Conditions=[{"acl": "private"}]
    )
    assert post(jay, path, form_body(fields, b"form")).status == 204

    # Without the switch, public ACLs are accepted again.
    block(s3, bucket, IgnorePublicAcls=False)
    s3.put_object(Bucket=bucket, Key="new", Body=b"x", ACL="public-read")
    assert readable(anonymous, bucket, "new")


# --- IgnorePublicAcls -------------------------------------------------------------------------


def test_ignore_public_acls(s3: Any, other: Any, anonymous: Any, bucket: str) -> None:
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read")
    s3.put_object(Bucket=bucket, Key="pub", Body=b"pub", ACL="public-read")
    s3.put_object(Bucket=bucket, Key="auth", Body=b"auth", ACL="authenticated-read")
    other_id = other.list_buckets()["Owner"]["ID"]
    s3.put_object(Bucket=bucket, Key="granted", Body=b"g", GrantRead=f'id="{other_id}"')
    assert listable(anonymous, bucket) and listable(other, bucket)
    assert readable(anonymous, bucket, "pub") and readable(other, bucket, "pub")
    assert readable(other, bucket, "auth") and not readable(anonymous, bucket, "auth")

    block(s3, bucket, IgnorePublicAcls=True)
    assert not listable(anonymous, bucket) and not listable(other, bucket)
    for key in ("pub", "auth"):
        assert not readable(anonymous, bucket, key)
        assert not readable(other, bucket, key)
    denied(anonymous.get_object_acl, Bucket=bucket, Key="pub")
    # A grant to an account is not public: it still counts.
    assert readable(other, bucket, "granted")
    # The ACLs themselves are kept, and a public one may still be stored.
    grants = s3.get_bucket_acl(Bucket=bucket)["Grants"]
    assert {"Type": "Group", "URI": ALL_USERS} in [g["Grantee"] for g in grants]
    s3.put_object(Bucket=bucket, Key="pub2", Body=b"pub2", ACL="public-read")
    assert not readable(anonymous, bucket, "pub2")
    # The owner is unaffected.
    assert readable(s3, bucket, "pub") and listable(s3, bucket)

    s3.delete_public_access_block(Bucket=bucket)
    assert listable(anonymous, bucket) and readable(anonymous, bucket, "pub2")
    assert readable(other, bucket, "auth")


# --- BlockPublicPolicy ------------------------------------------------------------------------


def test_block_public_policy(s3: Any, anonymous: Any, bucket: str) -> None:
    public = aws_policy(allow(bucket, "*"))
    s3.put_bucket_policy(Bucket=bucket, Policy=public)  # stored before the switch: kept
    block(s3, bucket, BlockPublicPolicy=True)
    assert readable(anonymous, bucket)
    s3.delete_bucket_policy(Bucket=bucket)

    for policy in (
        public,
        aws_policy(allow(bucket, {"AWS": "*"}, "s3:ListBucket")),
        aws_policy(allow(bucket, "*", Condition={"IpAddress": {"aws:SourceIp": "0.0.0.0/1"}})),
        aws_policy(allow(bucket, "*", Condition={"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}})),
        json.dumps(
            {"statements": [{"effect": "allow", "actions": ["object:get"], "subjects": ["*"]}]}
        ),
    ):
        denied(s3.put_bucket_policy, Bucket=bucket, Policy=policy)
        with pytest.raises(ClientError) as err:
            s3.get_bucket_policy(Bucket=bucket)
        assert code_of(err) == "NoSuchBucketPolicy"
    assert not readable(anonymous, bucket)

    for policy in (
        aws_policy(allow(bucket, {"AWS": "arn:aws:iam::some-account:root"})),
        aws_policy(allow(bucket, "*", Condition={"IpAddress": {"aws:SourceIp": "127.0.0.1/32"}})),
        aws_policy(allow(bucket, "*") | {"Effect": "Deny"}),
    ):
        s3.put_bucket_policy(Bucket=bucket, Policy=policy)
        assert s3.get_bucket_policy(Bucket=bucket)["Policy"] == policy


# --- RestrictPublicBuckets --------------------------------------------------------------------


def test_restrict_public_buckets(s3: Any, other: Any, anonymous: Any, bucket: str) -> None:
    other_id = other.list_buckets()["Owner"]["ID"]
    to_other = allow(bucket, {"AWS": f"arn:aws:iam::{other_id}:root"}, "s3:ListBucket")
    s3.put_bucket_policy(Bucket=bucket, Policy=aws_policy(allow(bucket, "*"), to_other))
    assert readable(anonymous, bucket) and readable(other, bucket) and listable(other, bucket)

    block(s3, bucket, RestrictPublicBuckets=True)
    assert not readable(anonymous, bucket)
    assert not readable(other, bucket)
    # AWS: "including non-public delegation to specific accounts".
    assert not listable(other, bucket)
    assert readable(s3, bucket) and listable(s3, bucket)
    assert is_public(s3, bucket)

    # A policy that is not public keeps working for the accounts it names.
    s3.put_bucket_policy(Bucket=bucket, Policy=aws_policy(to_other))
    assert listable(other, bucket) and not readable(other, bucket)
    assert not is_public(s3, bucket)

    s3.put_bucket_policy(Bucket=bucket, Policy=aws_policy(allow(bucket, "*")))
    assert not readable(anonymous, bucket)
    s3.delete_public_access_block(Bucket=bucket)
    assert readable(anonymous, bucket)


# --- GetBucketPolicyStatus --------------------------------------------------------------------


def test_policy_status(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as err:
        s3.get_bucket_policy_status(Bucket=bucket)
    assert (status_of(err), code_of(err)) == (404, "NoSuchBucketPolicy")
    # ACLs do not count: still no policy.
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read")
    with pytest.raises(ClientError) as err:
        s3.get_bucket_policy_status(Bucket=bucket)
    assert code_of(err) == "NoSuchBucketPolicy"

    cases = [
        (aws_policy(allow(bucket, {"AWS": "*"}, "s3:ListBucket")), True),
        (
            aws_policy(
                allow(bucket, "*", Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/32"}})
            ),
            False,
        ),
        (
            aws_policy(allow(bucket, "*", Condition={"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}})),
            True,
        ),
        (aws_policy(allow(bucket, {"AWS": "arn:aws:iam::tenant:root"})), False),
        (aws_policy(allow(bucket, "*") | {"Effect": "Deny"}), False),
        (
            json.dumps(
                {"statements": [{"effect": "allow", "actions": ["object:get"], "subjects": ["*"]}]}
            ),
            True,
        ),
        (
            json.dumps(
                {"statements": [{"effect": "allow", "actions": ["object:get"], "subjects": ["t1"]}]}
            ),
            False,
        ),
    ]
    for policy, expected in cases:
        s3.put_bucket_policy(Bucket=bucket, Policy=policy)
        reply = s3.get_bucket_policy_status(Bucket=bucket)
        assert reply["PolicyStatus"] == {"IsPublic": expected}, policy
