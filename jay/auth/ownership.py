"""S3 Object Ownership: who owns the objects written into a bucket, and whether ACLs count.

A bucket's ``OwnershipControls`` (stored as bucket configuration ``BUCKET_CONFIG_OWNERSHIP``)
holds one of three settings:

* ``ObjectWriter``: the account that writes an object owns it (and gets FULL_CONTROL of it);
  ACLs grant access. This is what a bucket without the configuration does.
* ``BucketOwnerPreferred``: the same, except that an object written with the
  ``bucket-owner-full-control`` canned ACL is owned by the bucket's owner.
* ``BucketOwnerEnforced``: ACLs are disabled. The bucket owner owns every object, ACLs no
  longer grant anything (policies still do), reading an ACL shows the bucket owner's
  FULL_CONTROL only, and a request that would set any other ACL fails with 400
  ``AccessControlListNotSupported``; one asking for the bucket owner's full control (the
  ``bucket-owner-full-control`` canned ACL, or its equivalent) succeeds. The bucket's own ACL
  must grant nothing beyond its owner when the setting is applied
  (``InvalidBucketAclWithObjectOwnership``). Pure: no I/O.
"""

from __future__ import annotations

from jay.auth import acl
from jay.errors import AccessControlListNotSupported, InvalidBucketAclWithObjectOwnership
from jay.storage.api import BUCKET_CONFIG_ACL, BUCKET_CONFIG_OWNERSHIP, BucketInfo

OBJECT_WRITER = "ObjectWriter"
BUCKET_OWNER_PREFERRED = "BucketOwnerPreferred"
BUCKET_OWNER_ENFORCED = "BucketOwnerEnforced"
SETTINGS = frozenset({OBJECT_WRITER, BUCKET_OWNER_PREFERRED, BUCKET_OWNER_ENFORCED})


def setting_of(bucket: BucketInfo) -> str | None:
    """The bucket's stored setting; None when it has no OwnershipControls (ObjectWriter)."""
    return bucket.config(BUCKET_CONFIG_OWNERSHIP) if bucket.configs else None


def acls_disabled(bucket: BucketInfo) -> bool:
    return bool(bucket.configs) and bucket.config(BUCKET_CONFIG_OWNERSHIP) == (
        BUCKET_OWNER_ENFORCED
    )


def only_owner_full_control(grants: acl.Acl, owner_id: str) -> bool:
    """Whether ``grants`` give nothing to anyone but ``owner_id`` (ACLs disabled allow that)."""
    return all(g.kind == "CanonicalUser" and g.grantee == owner_id for g in grants)


def check_acl_allowed(bucket: BucketInfo, grants: acl.Acl | None) -> None:
    """A request setting ``grants`` on ``bucket`` or one of its objects (None: it sets no ACL):
    refused while ACLs are disabled unless it only gives the bucket owner full control."""
    if grants is None or not acls_disabled(bucket):
        return
    if not only_owner_full_control(grants, bucket.owner_account_id):
        raise AccessControlListNotSupported(bucket=bucket.name)


def check_can_enforce(bucket: BucketInfo) -> None:
    """Applying BucketOwnerEnforced needs a bucket ACL that grants only its owner."""
    stored = bucket.config(BUCKET_CONFIG_ACL)
    if stored is not None and not only_owner_full_control(
        acl.from_json(stored), bucket.owner_account_id
    ):
        raise InvalidBucketAclWithObjectOwnership(bucket=bucket.name)


def object_owner(setting: str | None, writer: str, bucket_owner: str, canned: str | None) -> str:
    """The account that owns an object ``writer`` writes (empty writer: anonymous)."""
    if not writer or setting == BUCKET_OWNER_ENFORCED:
        return bucket_owner
    if setting == BUCKET_OWNER_PREFERRED and canned == "bucket-owner-full-control":
        return bucket_owner
    return writer
