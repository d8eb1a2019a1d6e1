"""Block Public Access: the stored form, what counts as public (AWS, "The meaning of 'public'"),
the checks on stored ACLs and policies, and decide() with IgnorePublicAcls and
RestrictPublicBuckets."""

from __future__ import annotations

import itertools
import json

import pytest

from jay.auth import acl, public_access
from jay.auth.policy import decide, parse_policy
from jay.auth.public_access import PublicAccessBlock
from jay.errors import AccessDenied
from jay.storage.api import (
    BUCKET_CONFIG_ACL,
    BUCKET_CONFIG_PUBLIC_ACCESS_BLOCK,
    BucketInfo,
    TokenRecord,
)

OWNER = "acct-owner"
OTHER = "acct-other"
ALL = PublicAccessBlock(True, True, True, True)
IGNORE = PublicAccessBlock(ignore_public_acls=True)
RESTRICT = PublicAccessBlock(restrict_public_buckets=True)


def token(account_id: str, token_id: str, actions: tuple[str, ...] = ("*",)) -> TokenRecord:
    return TokenRecord(
        token_id=token_id,
        account_id=account_id,
        name="",
        secret_hash="",
        secret_key="",
        allowed_actions=actions,
        created_at=0.0,
    )


def bucket(
    *,
    policy: object = None,
    block: PublicAccessBlock | None = None,
    grants: acl.Acl | None = None,
    visibility: str = "private",
) -> BucketInfo:
    configs = []
    if grants is not None:
        configs.append((BUCKET_CONFIG_ACL, acl.to_json(grants)))
    if block is not None:
        configs.append((BUCKET_CONFIG_PUBLIC_ACCESS_BLOCK, public_access.to_json(block)))
    return BucketInfo(
        bucket_id="b1",
        name="bkt",
        owner_account_id=OWNER,
        created_at=0.0,
        visibility=visibility,
        policy_json=None if policy is None else json.dumps(policy),
        configs=tuple(sorted(configs)),
    )


# --- stored form ----------------------------------------------------------------------------


@pytest.mark.parametrize("flags", list(itertools.product((False, True), repeat=4)))
def test_json_round_trip(flags: tuple[bool, bool, bool, bool]) -> None:
    block = PublicAccessBlock(*flags)
    text = public_access.to_json(block)
    assert public_access.from_json(text) == block
    assert json.loads(text) == dict(
        zip(
            ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"),
            flags,
            strict=True,
        )
    )
    assert list(json.loads(text)) == sorted(json.loads(text))  # canonical: sorted, compact
    assert " " not in text


@pytest.mark.parametrize(
    "text", ["", "nope", "[]", '{"BlockPublicAcls": true}', '{"BlockPublicAcls": 1, "x": 2}']
)
def test_unreadable_stored_value_blocks_everything(text: str) -> None:
    assert public_access.from_json(text) == ALL


def test_block_of() -> None:
    assert public_access.block_of(bucket()) is None
    assert public_access.block_of(bucket(grants=acl.canned("public-read", OWNER))) is None
    assert public_access.block_of(bucket(block=IGNORE)) == IGNORE


# --- what is public ---------------------------------------------------------------------------

RESOURCE = ["arn:aws:s3:::bkt", "arn:aws:s3:::bkt/*"]


def aws(*statements: dict[str, object]) -> dict[str, object]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(principal: object, condition: object = None, effect: str = "Allow") -> dict[str, object]:
    statement: dict[str, object] = {
        "Effect": effect,
        "Principal": principal,
        "Action": "s3:GetObject",
        "Resource": RESOURCE,
    }
    if condition is not None:
        statement["Condition"] = condition
    return statement


def source_ip(*cidrs: str, operator: str = "IpAddress") -> dict[str, object]:
    return {operator: {"aws:SourceIp": list(cidrs)}}


def jay(subjects: list[str], cidrs: list[str] | None = None) -> dict[str, object]:
    statement: dict[str, object] = {
        "effect": "allow",
        "actions": ["object:get"],
        "subjects": subjects,
    }
    if cidrs is not None:
        statement["conditions"] = {"ip_whitelist": cidrs}
    return {"statements": [statement]}


@pytest.mark.parametrize(
    ("policy", "is_public"),
    [
        (aws(allow("*")), True),
        (aws(allow({"AWS": "*"})), True),
        (aws(allow({"AWS": ["arn:aws:iam::123456789012:root", "*"]})), True),
        (aws(allow({"AWS": "arn:aws:iam::123456789012:root"})), False),
        (aws(allow({"AWS": "arn:aws:iam::123456789012:user/t1"})), False),
        (aws(allow({"CanonicalUser": "acct-other"})), False),
        # A wildcard in a principal is not a fixed value.
        (aws(allow({"AWS": "arn:aws:iam::*:root"})), True),
        (aws(allow({"AWS": "acct-?"})), True),
        # Deny statements never make a policy public.
        (aws(allow("*", effect="Deny")), False),
        (aws(allow("*", effect="Deny"), allow({"AWS": "acct-other"})), False),
        # aws:SourceIp fixed to ranges no broader than /8 (IPv4) or /32 (IPv6).
        (aws(allow("*", source_ip("10.0.0.0/32"))), False),
        (aws(allow("*", source_ip("203.0.113.7"))), False),
        (aws(allow("*", source_ip("10.0.0.0/8"))), False),
        (aws(allow("*", source_ip("192.168.0.0/16", "172.16.0.0/12"))), False),
        (aws(allow("*", source_ip("2001:db8::/32"))), False),
        (aws(allow("*", source_ip("0.0.0.0/7"))), True),
        (aws(allow("*", source_ip("0.0.0.0/0"))), True),
        (aws(allow("*", source_ip("10.0.0.0/8", "128.0.0.0/1"))), True),
        (aws(allow("*", source_ip("2001::/16"))), True),
        (aws(allow("*", source_ip("::/0"))), True),
        # NotIpAddress excludes addresses: what is left is everyone else.
        (aws(allow("*", source_ip("10.0.0.0/8", operator="NotIpAddress"))), True),
        (
            aws(
                allow(
                    "*",
                    source_ip("10.0.0.0/24") | source_ip("10.0.0.5/32", operator="NotIpAddress"),
                )
            ),
            False,
        ),
        # One public statement is enough.
        (aws(allow({"AWS": "acct-other"}), allow("*")), True),
        # Jay's own format: the subject "*" is everyone.
        (jay(["*"]), True),
        (jay(["t1", "*"]), True),
        (jay(["t1", "t2"]), False),
        (jay(["*"], ["192.168.0.0/16"]), False),
        (jay(["*"], ["10.0.0.0/8", "0.0.0.0/0"]), True),
        (jay(["*"], ["2001:db8:1::/48"]), False),
    ],
)
def test_is_public_policy(policy: dict[str, object], is_public: bool) -> None:
    parsed = parse_policy(json.dumps(policy))
    assert public_access.is_public_policy(parsed) is is_public
    assert public_access.is_public(bucket(policy=policy), parsed) is is_public


def test_public_read_visibility_counts_as_public() -> None:
    assert public_access.is_public(bucket(visibility="public-read"), None)
    assert not public_access.is_public(bucket(), None)
    # ACLs do not count for the policy status.
    assert not public_access.is_public(bucket(grants=acl.canned("public-read", OWNER)), None)


@pytest.mark.parametrize(
    ("grants", "is_public"),
    [
        (acl.canned("private", OWNER), False),
        (acl.canned("public-read", OWNER), True),
        (acl.canned("public-read-write", OWNER), True),
        (acl.canned("authenticated-read", OWNER), True),
        (acl.canned("log-delivery-write", OWNER), False),
        (acl.canned("bucket-owner-full-control", OTHER, OWNER), False),
        ((acl.Grant("CanonicalUser", OTHER, acl.READ),), False),
        ((acl.Grant("Group", acl.AUTHENTICATED_USERS, acl.READ_ACP),), True),
    ],
)
def test_is_public_acl(grants: acl.Acl, is_public: bool) -> None:
    assert public_access.is_public_acl(grants) is is_public


def test_effective_acl_drops_public_grants_only_when_ignored() -> None:
    grants = (
        acl.Grant("Group", acl.ALL_USERS, acl.READ),
        acl.Grant("Group", acl.AUTHENTICATED_USERS, acl.WRITE),
        acl.Grant("Group", acl.LOG_DELIVERY, acl.WRITE),
        acl.Grant("CanonicalUser", OTHER, acl.READ),
        *acl.owner_full_control(OWNER),
    )
    stored = acl.to_json(grants)
    assert public_access.effective_acl(stored, bucket()) == grants
    assert public_access.effective_acl(stored, bucket(block=RESTRICT)) == grants
    assert public_access.effective_acl(stored, bucket(block=IGNORE)) == grants[2:]


# --- refusing to store public ACLs and policies ----------------------------------------------


def test_check_acl() -> None:
    public = acl.canned("public-read", OWNER)
    private = acl.canned("private", OWNER)
    public_access.check_acl(bucket(), public)
    public_access.check_acl(bucket(block=PublicAccessBlock(ignore_public_acls=True)), public)
    blocking = bucket(block=PublicAccessBlock(block_public_acls=True))
    public_access.check_acl(blocking, private)
    with pytest.raises(AccessDenied):
        public_access.check_acl(blocking, public)
    with pytest.raises(AccessDenied):
        public_access.check_acl(blocking, acl.canned("authenticated-read", OWNER))


def test_check_policy() -> None:
    public = parse_policy(json.dumps(aws(allow("*"))))
    fixed = parse_policy(json.dumps(aws(allow("*", source_ip("10.1.0.0/16")))))
    public_access.check_policy(bucket(), public)
    public_access.check_policy(bucket(block=PublicAccessBlock(block_public_acls=True)), public)
    blocking = bucket(block=PublicAccessBlock(block_public_policy=True))
    public_access.check_policy(blocking, fixed)
    with pytest.raises(AccessDenied):
        public_access.check_policy(blocking, public)


# --- decide() with the flags ------------------------------------------------------------------

OWNER_TOKEN = token(OWNER, "owner-t")
OTHER_TOKEN = token(OTHER, "other-t")


def allowed(
    b: BucketInfo,
    who: TokenRecord | None,
    action: str = "object:get",
    key: str = "k",
    client_ip: str = "203.0.113.9",
) -> bool:
    return decide(
        token=who,
        account_id=who.account_id if who is not None else "",
        action=action,
        bucket=b,
        key=key,
        client_ip=client_ip,
    ).allowed


@pytest.mark.parametrize("canned", ["public-read", "authenticated-read"])
def test_ignore_public_acls(canned: str) -> None:
    grants = acl.canned(canned, OWNER)
    without = bucket(grants=grants)
    ignoring = bucket(grants=grants, block=IGNORE)
    assert allowed(without, OTHER_TOKEN, "object:list")
    assert not allowed(ignoring, OTHER_TOKEN, "object:list")
    assert allowed(without, None, "object:list") is (canned == "public-read")
    assert not allowed(ignoring, None, "object:list")
    # The other switches leave public ACLs in force.
    others = PublicAccessBlock(True, False, True, True)
    assert allowed(bucket(grants=grants, block=others), OTHER_TOKEN, "object:list")
    # The owner is not affected.
    assert allowed(ignoring, OWNER_TOKEN, "object:list")


def test_ignore_public_acls_keeps_grants_to_accounts() -> None:
    grants = (acl.Grant("CanonicalUser", OTHER, acl.WRITE), *acl.canned("public-read", OWNER))
    b = bucket(grants=grants, block=IGNORE)
    assert allowed(b, OTHER_TOKEN, "object:put")
    assert not allowed(b, OTHER_TOKEN, "object:list")


def test_restrict_public_buckets_with_a_public_policy() -> None:
    policy = aws(allow("*"), allow({"AWS": OTHER}))
    open_bucket = bucket(policy=policy)
    restricted = bucket(policy=policy, block=RESTRICT)
    assert allowed(open_bucket, None) and allowed(open_bucket, OTHER_TOKEN)
    assert not allowed(restricted, None)
    # AWS: "including non-public delegation to specific accounts".
    assert not allowed(restricted, OTHER_TOKEN)
    assert allowed(restricted, OWNER_TOKEN)
    # Callers of the owner's account still get what the policy grants them.
    reader = token(OWNER, "reader", ("object:list",))
    named = aws(allow("*"), allow({"AWS": "arn:aws:iam::x:user/reader"}))
    assert allowed(bucket(policy=named, block=RESTRICT), reader)
    # Other switches do not restrict.
    assert allowed(bucket(policy=policy, block=PublicAccessBlock(True, True, True, False)), None)


def test_restrict_public_buckets_leaves_non_public_policies_alone() -> None:
    policy = aws(allow({"AWS": OTHER}), allow("*", source_ip("203.0.113.0/24")))
    restricted = bucket(policy=policy, block=RESTRICT)
    assert allowed(restricted, OTHER_TOKEN)
    assert allowed(restricted, None, client_ip="203.0.113.9")
    assert not allowed(restricted, None, client_ip="198.51.100.1")


def test_restrict_public_buckets_keeps_denies_and_acls() -> None:
    policy = aws(allow("*"), allow("*", effect="Deny") | {"Action": "s3:DeleteObject"})
    grants = (acl.Grant("CanonicalUser", OTHER, acl.WRITE), *acl.owner_full_control(OWNER))
    restricted = bucket(policy=policy, block=RESTRICT, grants=grants)
    assert not allowed(restricted, OWNER_TOKEN, "object:delete")
    assert allowed(restricted, OTHER_TOKEN, "object:put")  # the ACL's grant
    assert not allowed(restricted, OTHER_TOKEN, "object:get")


def test_restrict_public_buckets_covers_public_read_visibility() -> None:
    assert allowed(bucket(visibility="public-read"), None)
    restricted = bucket(visibility="public-read", block=RESTRICT)
    assert not allowed(restricted, None)
    assert not allowed(restricted, OTHER_TOKEN, "object:list")
    assert allowed(restricted, OWNER_TOKEN)


def test_a_deny_of_the_public_access_block_actions_binds_the_owner() -> None:
    deny = allow("*", effect="Deny") | {
        "Action": ["s3:GetBucketPublicAccessBlock", "s3:GetBucketPolicyStatus"],
        "Resource": "arn:aws:s3:::bkt",
    }
    b = bucket(policy=aws(deny))
    assert not allowed(b, OWNER_TOKEN, "bucket:get-public-access-block", key="")
    assert not allowed(b, OWNER_TOKEN, "bucket:get-policy-status", key="")
    assert allowed(b, OWNER_TOKEN, "bucket:put-public-access-block", key="")
    # A token scoped to the parent actions covers them.
    reader = token(OWNER, "r", ("bucket:read-meta",))
    assert allowed(bucket(), reader, "bucket:get-public-access-block", key="")
    assert not allowed(bucket(), reader, "bucket:put-public-access-block", key="")
