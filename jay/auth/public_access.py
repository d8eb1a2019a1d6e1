"""S3 Block Public Access at bucket level, and what counts as "public". Pure.

A bucket's ``PublicAccessBlockConfiguration`` (stored as bucket configuration
``BUCKET_CONFIG_PUBLIC_ACCESS_BLOCK``) holds four switches, each off unless set:

* ``BlockPublicAcls``: a request that would store a public ACL (PutBucketAcl, PutObjectAcl, or a
  PUT, copy, multipart upload or form upload carrying one) is refused with AccessDenied;
* ``IgnorePublicAcls``: public grants in the bucket's and its objects' ACLs grant nothing;
* ``BlockPublicPolicy``: PutBucketPolicy with a public policy is refused with AccessDenied;
* ``RestrictPublicBuckets``: while the bucket's policy is public, the policy serves only the
  bucket owner's account: anonymous and cross-account access through it, "including non-public
  delegation to specific accounts" (AWS), is refused. Deny statements still apply.

What is public (AWS, "The meaning of 'public'"):

* an ACL is public when it grants anything to the AllUsers or AuthenticatedUsers group;
* a policy is public when one of its Allow statements names everyone (principal ``*``, or a
  principal with a wildcard in it; in Jay's format the subject ``*``) and is not fixed to
  non-public values by a condition. Of the condition keys AWS accepts for that, jay supports
  ``aws:SourceIp`` with ``IpAddress`` (Jay's ``ip_whitelist``): it fixes a statement when every
  range is no broader than /8 (IPv4) or /32 (IPv6). ``NotIpAddress`` excludes addresses and
  fixes nothing. Any statement this module does not recognise as fixed is public, as AWS assumes
  a policy public until shown otherwise;
* jay's legacy ``public-read`` bucket visibility (JAY_SPEC §3.9) grants reads to everyone like a
  public policy statement, and counts as one.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from jay.auth import acl, ownership
from jay.errors import AccessDenied
from jay.storage.api import BUCKET_CONFIG_PUBLIC_ACCESS_BLOCK, BucketInfo

if TYPE_CHECKING:  # jay.auth.policy imports this module; these names are for annotations only
    from jay.auth.policy import Policy, Statement

_WILDCARD_CHARS = ("*", "?")
# AWS: aws:SourceIp ranges "broader than /8 for IPv4 and /32 for IPv6" are public.
_MIN_FIXED_PREFIX = {4: 8, 6: 32}
_PUBLIC_GROUPS = frozenset({acl.ALL_USERS, acl.AUTHENTICATED_USERS})
_FIELDS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


@dataclass(frozen=True, slots=True)
class PublicAccessBlock:
    block_public_acls: bool = False
    ignore_public_acls: bool = False
    block_public_policy: bool = False
    restrict_public_buckets: bool = False


# A stored value that cannot be read blocks everything: the safe side.
_UNREADABLE = PublicAccessBlock(True, True, True, True)


def to_json(block: PublicAccessBlock) -> str:
    """The canonical stored form: the four S3 field names, sorted, each true or false."""
    return json.dumps(
        dict(zip(_FIELDS, _values(block), strict=True)), sort_keys=True, separators=(",", ":")
    )


def _values(block: PublicAccessBlock) -> tuple[bool, bool, bool, bool]:
    return (
        block.block_public_acls,
        block.ignore_public_acls,
        block.block_public_policy,
        block.restrict_public_buckets,
    )


@lru_cache(maxsize=256)
def from_json(text: str) -> PublicAccessBlock:
    try:
        raw = json.loads(text)
    except ValueError:
        return _UNREADABLE
    if not isinstance(raw, dict) or not all(isinstance(raw.get(f), bool) for f in _FIELDS):
        return _UNREADABLE
    return PublicAccessBlock(*(raw[f] for f in _FIELDS))


def block_of(bucket: BucketInfo) -> PublicAccessBlock | None:
    """The bucket's configuration; None when it has none (then nothing is blocked)."""
    if not bucket.configs:
        return None
    stored = bucket.config(BUCKET_CONFIG_PUBLIC_ACCESS_BLOCK)
    return from_json(stored) if stored is not None else None


# --- ACLs -------------------------------------------------------------------------------------


def is_public_grant(grant: acl.Grant) -> bool:
    return grant.kind == "Group" and grant.grantee in _PUBLIC_GROUPS


def is_public_acl(grants: acl.Acl) -> bool:
    return any(is_public_grant(g) for g in grants)


def effective_acl(stored: str, bucket: BucketInfo) -> acl.Acl:
    """The grants of a stored ACL of ``bucket`` or one of its objects that count in access
    decisions: none while the bucket's ACLs are disabled (Object Ownership
    BucketOwnerEnforced), and without the public ones while ``IgnorePublicAcls`` is on (the
    ACL itself is kept and still rendered)."""
    if ownership.acls_disabled(bucket):
        return ()
    grants = acl.from_json(stored)
    block = block_of(bucket)
    if block is None or not block.ignore_public_acls:
        return grants
    return tuple(g for g in grants if not is_public_grant(g))


def check_acl(bucket: BucketInfo, grants: acl.Acl) -> None:
    """BlockPublicAcls: refuse to store a public ACL on the bucket or one of its objects."""
    block = block_of(bucket)
    if block is not None and block.block_public_acls and is_public_acl(grants):
        raise AccessDenied(bucket=bucket.name, reason="public ACLs are blocked (BlockPublicAcls)")


# --- policies ---------------------------------------------------------------------------------


def _has_wildcard(name: str) -> bool:
    return any(ch in name for ch in _WILDCARD_CHARS)


def _is_fixed_range(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    return network.prefixlen >= _MIN_FIXED_PREFIX[network.version]


def is_public_statement(statement: Statement) -> bool:
    if statement.effect != "allow":
        return False
    names_everyone = any(_has_wildcard(s) for s in statement.subjects) or any(
        _has_wildcard(a) for a in statement.accounts
    )
    if not names_everyone:
        return False
    whitelist = statement.ip_whitelist
    return whitelist is None or not all(_is_fixed_range(n) for n in whitelist)


def is_public_policy(policy: Policy) -> bool:
    return any(is_public_statement(st) for st in policy.statements)


def is_public(bucket: BucketInfo, policy: Policy | None) -> bool:
    """Whether the bucket's policy (``policy``, parsed from ``bucket.policy_json``) or its
    legacy public-read visibility makes it public. ACLs do not count (as on S3)."""
    return bucket.visibility == "public-read" or (policy is not None and is_public_policy(policy))


def check_policy(bucket: BucketInfo, policy: Policy) -> None:
    """BlockPublicPolicy: refuse to store a public policy."""
    block = block_of(bucket)
    if block is not None and block.block_public_policy and is_public_policy(policy):
        raise AccessDenied(
            bucket=bucket.name, reason="public policies are blocked (BlockPublicPolicy)"
        )


def restricts(
    block: PublicAccessBlock, bucket: BucketInfo, policy: Policy | None, *, is_owner_account: bool
) -> bool:
    """RestrictPublicBuckets: whether the bucket's policy (and public-read visibility) must be
    disregarded for this caller: it is public and the caller is not of the owner's account."""
    return block.restrict_public_buckets and not is_owner_account and is_public(bucket, policy)
