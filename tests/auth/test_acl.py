"""S3 ACLs without sockets: canned ACLs, grant headers, documents, decisions, rendering."""

from __future__ import annotations

import pytest

from jay.auth import acl
from jay.auth.policy import decide
from jay.errors import (
    AccessDenied,
    InvalidArgument,
    InvalidRequest,
    MalformedACLError,
    UnresolvableGrantByEmailAddress,
)
from jay.storage.api import BucketInfo, TokenRecord

OWNER, OTHER = "acct-owner", "acct-other"
XSI = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'


def test_canned_acls() -> None:
    assert acl.canned("private", OWNER) == acl.owner_full_control(OWNER)
    assert acl.is_default(acl.canned("private", OWNER), OWNER)
    public = acl.canned("public-read-write", OWNER)
    assert acl.Grant("Group", acl.ALL_USERS, "READ") in public
    assert acl.Grant("Group", acl.ALL_USERS, "WRITE") in public
    assert acl.canned("authenticated-read", OWNER)[0].grantee == acl.AUTHENTICATED_USERS
    # The uploader is the bucket owner: nothing to add.
    assert acl.is_default(acl.canned("bucket-owner-full-control", OWNER, OWNER), OWNER)
    other = acl.canned("bucket-owner-read", OTHER, OWNER)
    assert acl.Grant("CanonicalUser", OWNER, "READ") in other
    with pytest.raises(InvalidArgument):
        acl.canned("public", OWNER)


def test_grant_headers() -> None:
    grants = acl.from_headers(
        {
            "x-amz-grant-read": f'uri="{acl.ALL_USERS}", id="{OTHER}"',
            "x-amz-grant-write-acp": f"id={OTHER}",
        },
        OWNER,
    )
    assert grants == (
        acl.Grant("Group", acl.ALL_USERS, "READ"),
        acl.Grant("CanonicalUser", OTHER, "READ"),
        acl.Grant("CanonicalUser", OTHER, "WRITE_ACP"),
    )
    assert acl.account_ids(grants) == [OTHER]
    assert acl.from_headers({"content-type": "x"}, OWNER) is None
    assert not acl.has_acl_headers({"content-type": "x"})
    assert acl.has_acl_headers({"x-amz-grant-full-control": "id=x"})
    with pytest.raises(InvalidRequest):
        acl.from_headers({"x-amz-acl": "private", "x-amz-grant-read": "id=x"}, OWNER)
    with pytest.raises(UnresolvableGrantByEmailAddress):
        acl.from_headers({"x-amz-grant-read": 'emailAddress="a@b.c"'}, OWNER)
    with pytest.raises(InvalidArgument):
        acl.from_headers({"x-amz-grant-read": 'uri="http://example.com/group"'}, OWNER)
    with pytest.raises(InvalidArgument):
        acl.from_headers({"x-amz-grant-read": "nonsense"}, OWNER)


def policy_document(*grants: str, owner: str = OWNER) -> bytes:
    return (
        '<AccessControlPolicy xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        f"<Owner><ID>{owner}</ID></Owner><AccessControlList>{''.join(grants)}"
        "</AccessControlList></AccessControlPolicy>"
    ).encode()


def user(account: str, permission: str) -> str:
    return (
        f'<Grant><Grantee {XSI} xsi:type="CanonicalUser"><ID>{account}</ID></Grantee>'
        f"<Permission>{permission}</Permission></Grant>"
    )


def group(uri: str, permission: str) -> str:
    return (
        f'<Grant><Grantee {XSI} xsi:type="Group"><URI>{uri}</URI></Grantee>'
        f"<Permission>{permission}</Permission></Grant>"
    )


def test_policy_documents_round_trip() -> None:
    grants = acl.parse_policy_document(
        policy_document(group(acl.ALL_USERS, "READ"), user(OWNER, "FULL_CONTROL")), OWNER
    )
    assert grants == acl.canned("public-read", OWNER)
    assert acl.parse_policy_document(acl.render(OWNER, grants), OWNER) == grants
    assert acl.from_json(acl.to_json(grants)) == grants


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"<AccessControlPolicy", MalformedACLError),
        (b"<Other/>", MalformedACLError),
        (policy_document(user(OWNER, "EVERYTHING")), MalformedACLError),
        (policy_document(user(OWNER, "READ"), owner=OTHER), AccessDenied),
        (
            policy_document(
                f'<Grant><Grantee {XSI} xsi:type="AmazonCustomerByEmail"><EmailAddress>a@b.c'
                "</EmailAddress></Grantee><Permission>READ</Permission></Grant>"
            ),
            UnresolvableGrantByEmailAddress,
        ),
        (policy_document(group("http://example.com/x", "READ")), InvalidArgument),
        (policy_document(user(OWNER, "READ") * 101), MalformedACLError),
    ],
)
def test_bad_policy_documents(body: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        acl.parse_policy_document(body, OWNER)


def test_duplicate_grants_collapse_and_101_distinct_are_refused() -> None:
    grants = acl.parse_policy_document(policy_document(user(OWNER, "READ") * 3), OWNER)
    assert grants == (acl.Grant("CanonicalUser", OWNER, "READ"),)
    many = "".join(user(f"a{i}", "READ") for i in range(101))
    with pytest.raises(MalformedACLError):
        acl.parse_policy_document(policy_document(many), OWNER)


def test_permissions() -> None:
    public = acl.canned("public-read", OWNER)
    assert acl.has_permission(public, None, "READ")
    assert not acl.has_permission(public, None, "WRITE")
    assert acl.has_permission(public, OWNER, "WRITE_ACP")  # FULL_CONTROL
    authenticated = acl.canned("authenticated-read", OWNER)
    assert not acl.has_permission(authenticated, None, "READ")
    assert acl.has_permission(authenticated, OTHER, "READ")
    writable = acl.canned("public-read-write", OWNER)
    assert acl.bucket_allows(writable, None, "object:put")
    assert acl.bucket_allows(writable, None, "object:list")
    assert not acl.bucket_allows(public, None, "object:put")
    assert not acl.bucket_allows(public, None, "object:get")  # bucket READ is listing only


def token(account: str) -> TokenRecord:
    return TokenRecord(
        token_id=f"tok-{account}",
        account_id=account,
        name="t",
        secret_hash="",
        secret_key="",
        allowed_actions=("*",),
        created_at=0.0,
    )


def bucket(stored_acl: acl.Acl | None, policy_json: str | None = None) -> BucketInfo:
    configs = (("acl", acl.to_json(stored_acl)),) if stored_acl is not None else ()
    return BucketInfo(
        bucket_id="b1",
        name="b",
        owner_account_id=OWNER,
        created_at=0.0,
        policy_json=policy_json,
        configs=configs,
    )


def allowed(b: BucketInfo, account: str | None, action: str) -> bool:
    return decide(
        token=token(account) if account else None,
        account_id=account or "",
        action=action,
        bucket=b,
        key="k",
        client_ip="10.0.0.1",
    ).allowed


def test_bucket_acls_in_access_decisions() -> None:
    assert not allowed(bucket(None), None, "object:list")
    assert allowed(bucket(acl.canned("public-read", OWNER)), None, "object:list")
    assert not allowed(bucket(acl.canned("public-read", OWNER)), None, "object:put")
    assert allowed(bucket(acl.canned("public-read-write", OWNER)), OTHER, "object:delete")
    assert allowed(bucket(acl.canned("authenticated-read", OWNER)), OTHER, "object:list")
    assert not allowed(bucket(acl.canned("authenticated-read", OWNER)), None, "object:list")
    granted = (acl.Grant("CanonicalUser", OTHER, "WRITE"),)
    assert allowed(bucket(granted), OTHER, "object:put")
    assert allowed(bucket(granted), OTHER, "object:put-tagging")  # tagging what it writes
    assert not allowed(bucket(granted), OTHER, "object:get-tagging")
    assert not allowed(bucket(granted), "acct-third", "object:put")
    # A policy's deny wins over any grant.
    deny = (
        '{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*",'
        '"Action":"s3:ListBucket","Resource":"arn:aws:s3:::b"}]}'
    )
    assert not allowed(bucket(acl.canned("public-read", OWNER), deny), None, "object:list")


def test_rendered_document_escapes() -> None:
    body = acl.render("a&b", None)
    assert b"<ID>a&amp;b</ID>" in body
