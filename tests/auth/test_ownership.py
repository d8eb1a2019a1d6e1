"""jay.auth.ownership (S3 Object Ownership) and its XML in jay.s3.ownership: pure, no sockets."""

from __future__ import annotations

import pytest

from jay import errors as e
from jay.auth import acl, ownership, public_access
from jay.s3.ownership import (
    parse_ownership_controls,
    render_ownership_controls,
    setting_from_header,
)
from jay.storage.api import BUCKET_CONFIG_ACL, BUCKET_CONFIG_OWNERSHIP, BucketInfo

OWNER, OTHER = "owner-account", "other-account"


def bucket(setting: str | None = None, grants: acl.Acl | None = None) -> BucketInfo:
    configs = []
    if setting is not None:
        configs.append((BUCKET_CONFIG_OWNERSHIP, setting))
    if grants is not None:
        configs.append((BUCKET_CONFIG_ACL, acl.to_json(grants)))
    return BucketInfo(
        bucket_id="b1",
        name="bkt",
        owner_account_id=OWNER,
        created_at=0.0,
        visibility="private",
        policy_json=None,
        configs=tuple(sorted(configs)),
    )


@pytest.mark.parametrize("setting", sorted(ownership.SETTINGS))
def test_xml_round_trip(setting: str) -> None:
    assert parse_ownership_controls(render_ownership_controls(setting)) == setting


@pytest.mark.parametrize(
    "body",
    [
        b"<OwnershipControls><Rule><ObjectOwnership>Owner</ObjectOwnership></Rule></OwnershipControls>",
        b"<OwnershipControls><Rule></Rule></OwnershipControls>",
        b"<OwnershipControls></OwnershipControls>",
        b"<OwnershipControls><Rule><ObjectOwnership>ObjectWriter</ObjectOwnership>"
        b"<ObjectOwnership>ObjectWriter</ObjectOwnership></Rule></OwnershipControls>",
        b"<OwnershipControls><Rule><ObjectOwnership>ObjectWriter</ObjectOwnership></Rule>"
        b"<Rule><ObjectOwnership>ObjectWriter</ObjectOwnership></Rule></OwnershipControls>",
        b"<Other><Rule><ObjectOwnership>ObjectWriter</ObjectOwnership></Rule></Other>",
        b"<OwnershipControls><Rule><ObjectOwnership>",
    ],
)
def test_malformed_documents(body: bytes) -> None:
    with pytest.raises(e.MalformedXML):
        parse_ownership_controls(body)


def test_whitespace_and_namespace_are_accepted() -> None:
    body = (
        b'<?xml version="1.0"?>\n<OwnershipControls xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        b"\n  <Rule>\n    <ObjectOwnership> BucketOwnerPreferred </ObjectOwnership>\n  </Rule>\n"
        b"</OwnershipControls>"
    )
    assert parse_ownership_controls(body) == "BucketOwnerPreferred"


def test_create_bucket_header() -> None:
    assert setting_from_header("BucketOwnerEnforced") == "BucketOwnerEnforced"
    with pytest.raises(e.InvalidArgument):
        setting_from_header("bucketownerenforced")


def test_object_owner() -> None:
    owner = ownership.object_owner
    for setting in (None, ownership.OBJECT_WRITER):
        assert owner(setting, OTHER, OWNER, "bucket-owner-full-control") == OTHER
    assert owner(ownership.BUCKET_OWNER_PREFERRED, OTHER, OWNER, "bucket-owner-full-control") == (
        OWNER
    )
    assert owner(ownership.BUCKET_OWNER_PREFERRED, OTHER, OWNER, "private") == OTHER
    assert owner(ownership.BUCKET_OWNER_PREFERRED, OTHER, OWNER, None) == OTHER
    assert owner(ownership.BUCKET_OWNER_ENFORCED, OTHER, OWNER, None) == OWNER
    assert owner(None, "", OWNER, None) == OWNER  # anonymous writers own nothing


def test_acls_disabled_only_when_enforced() -> None:
    assert not ownership.acls_disabled(bucket())
    assert not ownership.acls_disabled(bucket(ownership.BUCKET_OWNER_PREFERRED))
    assert ownership.acls_disabled(bucket(ownership.BUCKET_OWNER_ENFORCED))


def test_check_acl_allowed() -> None:
    enforced = bucket(ownership.BUCKET_OWNER_ENFORCED)
    ownership.check_acl_allowed(enforced, None)
    ownership.check_acl_allowed(enforced, acl.owner_full_control(OWNER))
    ownership.check_acl_allowed(enforced, acl.canned("bucket-owner-full-control", OWNER, OWNER))
    for grants in (
        acl.canned("public-read", OWNER),
        acl.canned("bucket-owner-full-control", OTHER, OWNER),  # the writer keeps a grant
        acl.owner_full_control(OTHER),
    ):
        with pytest.raises(e.AccessControlListNotSupported):
            ownership.check_acl_allowed(enforced, grants)
    ownership.check_acl_allowed(bucket(), acl.canned("public-read", OWNER))


def test_check_can_enforce() -> None:
    ownership.check_can_enforce(bucket())
    ownership.check_can_enforce(bucket(grants=acl.owner_full_control(OWNER)))
    with pytest.raises(e.InvalidBucketAclWithObjectOwnership):
        ownership.check_can_enforce(bucket(grants=acl.canned("public-read", OWNER)))


def test_stored_grants_count_for_nothing_while_enforced() -> None:
    stored = acl.to_json(acl.canned("public-read", OWNER))
    assert public_access.effective_acl(stored, bucket()) == acl.from_json(stored)
    assert public_access.effective_acl(stored, bucket(ownership.BUCKET_OWNER_ENFORCED)) == ()
