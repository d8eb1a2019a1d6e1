"""parse_policy, scope_allows and list_prefix_allowed (JAY_SPEC §3.7, §3.8)."""

from __future__ import annotations

import ipaddress
import json

import pytest

from jay.auth.policy import (
    MAX_POLICY_BYTES,
    decide,
    list_prefix_allowed,
    parse_policy,
    scope_allows,
)
from jay.errors import MalformedPolicy
from jay.storage.api import BucketInfo, TokenRecord


def token(
    actions: tuple[str, ...] = ("*",),
    buckets: tuple[str, ...] = (),
    prefixes: tuple[str, ...] = (),
    token_id: str = "t1",
    account_id: str = "acct1",
) -> TokenRecord:
    return TokenRecord(
        token_id=token_id,
        account_id=account_id,
        name="",
        secret_hash="",
        secret_key="",
        allowed_actions=actions,
        bucket_scope=buckets,
        prefix_scope=prefixes,
        created_at=0.0,
    )


def bucket(policy: object = None, owner: str = "acct1", visibility: str = "private") -> BucketInfo:
    text = policy if isinstance(policy, str) or policy is None else json.dumps(policy)
    return BucketInfo(
        bucket_id="b1",
        name="bkt",
        owner_account_id=owner,
        created_at=0.0,
        visibility=visibility,
        policy_json=text,
    )


def stmt(effect: str = "allow", **fields: object) -> dict[str, object]:
    doc: dict[str, object] = {"effect": effect, "actions": ["object:get"], "subjects": ["*"]}
    doc.update(fields)
    return doc


# --- parse_policy -------------------------------------------------------------------------------


def test_parse_full_statement() -> None:
    policy = parse_policy(
        json.dumps(
            {
                "version": "2024-01-01",
                "statements": [
                    stmt(
                        "Deny",
                        actions=["object:put", "*"],
                        prefixes=["a/", ""],
                        subjects=["t1", "*"],
                        conditions={"ip_whitelist": ["10.0.0.0/8", "2001:db8::/32"]},
                    )
                ],
            }
        )
    )
    (st,) = policy.statements
    assert st.effect == "deny"
    assert st.actions == frozenset({"object:put", "*"})
    assert st.prefixes == ("a/", "")
    assert st.subjects == frozenset({"t1", "*"})
    assert st.ip_whitelist == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("2001:db8::/32"),
    )


def test_field_names_are_case_insensitive_and_unknown_fields_ignored() -> None:
    policy = parse_policy(
        '{"Version":"1","STATEMENTS":[{"Effect":"ALLOW","Actions":["object:get"],'
        '"Subjects":["*"],"Prefixes":["p/"],"Sid":"x","Conditions":{"IP_Whitelist":["1.2.3.4"]}}]}'
    )
    (st,) = policy.statements
    assert (st.effect, st.prefixes) == ("allow", ("p/",))
    assert st.ip_whitelist == (ipaddress.ip_network("1.2.3.4/32"),)


def test_host_bits_in_a_cidr_are_accepted() -> None:
    st = parse_policy(
        json.dumps({"statements": [stmt(conditions={"ip_whitelist": ["10.1.2.3/8"]})]})
    ).statements[0]
    assert st.ip_whitelist == (ipaddress.ip_network("10.0.0.0/8"),)


@pytest.mark.parametrize("conditions", [{}, {"ip_whitelist": []}, {"ip_whitelist": None}])
def test_empty_conditions_mean_no_condition(conditions: object) -> None:
    st = parse_policy(json.dumps({"statements": [stmt(conditions=conditions)]})).statements[0]
    assert st.ip_whitelist is None


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("{not json", "valid JSON"),
        ("", "valid JSON"),
        ("[]", "JSON object"),
        ('"x"', "JSON object"),
        ("{}", "statements"),
        ('{"statements": []}', "statements"),
        ('{"statements": {}}', "statements"),
        ('{"statements": ["x"]}', "JSON object"),
        (json.dumps({"statements": [stmt("permit")]}), "effect"),
        (json.dumps({"statements": [stmt(effect=None)]}), "effect"),
        (json.dumps({"statements": [stmt(actions=["object:fly"])]}), "object:fly"),
        (json.dumps({"statements": [stmt(actions=["s3:GetObject"])]}), "s3:GetObject"),
        (json.dumps({"statements": [stmt(actions=["object:*"])]}), "object:*"),
        (json.dumps({"statements": [stmt(actions=[])]}), "action"),
        (json.dumps({"statements": [stmt(actions="object:get")]}), "actions"),
        (json.dumps({"statements": [stmt(actions=[1])]}), "actions"),
        (json.dumps({"statements": [stmt(subjects=[])]}), "subject"),
        (json.dumps({"statements": [stmt(subjects="*")]}), "subjects"),
        (json.dumps({"statements": [stmt(prefixes="a/")]}), "prefixes"),
        (json.dumps({"statements": [stmt(conditions=[])]}), "conditions"),
        (json.dumps({"statements": [stmt(conditions={"ip_whitelist": ["10.0.0.0/33"]})]}), "CIDR"),
        (json.dumps({"statements": [stmt(conditions={"ip_whitelist": ["nope"]})]}), "CIDR"),
        (
            json.dumps({"statements": [stmt(conditions={"ip_whitelist": "10.0.0.0/8"})]}),
            "ip_whitelist",
        ),
    ],
)
def test_malformed_policies_are_refused(text: str, fragment: str) -> None:
    with pytest.raises(MalformedPolicy) as info:
        parse_policy(text)
    assert fragment in info.value.message


@pytest.mark.parametrize(
    "text",
    ["[" * 15000, '{"statements": [' + "[" * 5000 + "]" * 5000 + "]}", '{"n": ' + "9" * 5000 + "}"],
)
def test_hostile_json_is_malformed_not_an_internal_error(text: str) -> None:
    with pytest.raises(MalformedPolicy, match="valid JSON"):
        parse_policy(text)


def test_lone_surrogates_do_not_crash_the_size_check() -> None:
    with pytest.raises(MalformedPolicy):
        parse_policy("\ud800")


def test_oversized_policy_is_refused() -> None:
    statements = [stmt(prefixes=["p" * 100]) for _ in range(MAX_POLICY_BYTES // 100)]
    with pytest.raises(MalformedPolicy, match="limited"):
        parse_policy(json.dumps({"statements": statements}))


# --- scopes ---------------------------------------------------------------------------------------


def test_scope_action_list_is_exact_or_wildcard() -> None:
    assert scope_allows(token(("object:get",)), "object:get", "b", "k")
    assert not scope_allows(token(("object:get",)), "object:put", "b", "k")
    assert not scope_allows(token(("object:*",)), "object:get", "b", "k")
    assert scope_allows(token(("*",)), "multipart:abort", "b", "k")
    assert not scope_allows(token(()), "object:get", "b", "k")


def test_bucket_scope_refuses_other_buckets_and_bucketless_operations() -> None:
    t = token(buckets=("b",))
    assert scope_allows(t, "object:get", "b", "k")
    assert not scope_allows(t, "object:get", "bb", "k")
    assert not scope_allows(t, "bucket:list", "", "")


def test_prefix_scope_applies_to_keys_only() -> None:
    t = token(prefixes=("a/", "c"))
    assert scope_allows(t, "object:get", "b", "a/x")
    assert scope_allows(t, "object:get", "b", "cat")
    assert not scope_allows(t, "object:get", "b", "b/a/x")
    assert not scope_allows(t, "object:get", "b", "a")
    assert scope_allows(t, "bucket:read-meta", "b", "")


def test_listing_prefix_must_lie_inside_the_prefix_scope() -> None:
    t = token(prefixes=("a/",))
    assert list_prefix_allowed(t, "a/")
    assert list_prefix_allowed(t, "a/sub/")
    assert not list_prefix_allowed(t, "a")
    assert not list_prefix_allowed(t, "")
    assert list_prefix_allowed(token(), "")
    assert list_prefix_allowed(None, "anything")


# --- decide: the documented consequences ------------------------------------------------------------


def test_owner_with_scope_is_allowed_and_other_accounts_are_not() -> None:
    assert decide(
        token=token(),
        account_id="acct1",
        action="object:get",
        bucket=bucket(),
        key="k",
        client_ip="",
    ).allowed
    d = decide(
        token=token(account_id="acct2"),
        account_id="acct2",
        action="object:get",
        bucket=bucket(),
        key="k",
        client_ip="",
    )
    assert not d.allowed and d.reason == "access denied"


def test_anonymous_is_refused_on_a_private_bucket() -> None:
    d = decide(
        token=None, account_id="", action="object:get", bucket=bucket(), key="k", client_ip=""
    )
    assert (d.allowed, d.reason) == (False, "authentication required")


def anonymous_allowed(b: BucketInfo, action: str, key: str = "") -> bool:
    return decide(
        token=None, account_id="", action=action, bucket=b, key=key, client_ip="1.2.3.4"
    ).allowed


PUBLIC_PREFIX_JAY = {"statements": [stmt(actions=["object:get"], prefixes=["public/"])]}
PUBLIC_READ: dict[str, object] = {
    "Sid": "PublicRead",
    "Effect": "Allow",
    "Principal": {"AWS": ["*"]},
    "Action": ["s3:GetObject"],
    "Resource": ["arn:aws:s3:::bkt/public/*"],
}
PUBLIC_PREFIX_AWS = {"Version": "2012-10-17", "Statement": PUBLIC_READ}  # one statement alone


@pytest.mark.parametrize("policy", [PUBLIC_PREFIX_JAY, PUBLIC_PREFIX_AWS])
def test_star_allow_opens_a_prefix_to_anonymous_callers_only_for_its_action(
    policy: dict[str, object],
) -> None:
    b = bucket(policy)
    assert anonymous_allowed(b, "object:get", "public/a.txt")
    assert not anonymous_allowed(b, "object:get", "private/a.txt")
    assert not anonymous_allowed(b, "object:put", "public/a.txt")
    assert not anonymous_allowed(b, "object:list")


def test_deny_wins_over_ownership_and_is_limited_to_its_ips() -> None:
    b = bucket(
        {
            "statements": [
                stmt(
                    "deny", actions=["object:delete"], conditions={"ip_whitelist": ["127.0.0.0/8"]}
                )
            ]
        }
    )

    def delete_from(ip: str) -> bool:
        return decide(
            token=token(),
            account_id="acct1",
            action="object:delete",
            bucket=b,
            key="k",
            client_ip=ip,
        ).allowed

    assert not delete_from("127.0.0.1")
    assert not delete_from("::ffff:127.0.0.5")
    assert delete_from("10.0.0.1")
    assert delete_from("")  # an unknown address matches no CIDR condition


def test_unreadable_stored_policy_fails_closed_even_for_the_owner() -> None:
    d = decide(
        token=token(),
        account_id="acct1",
        action="object:get",
        bucket=bucket("{broken"),
        key="k",
        client_ip="",
    )
    assert not d.allowed and "unreadable" in d.reason


def test_public_read_grants_get_and_list_to_everyone_but_deny_still_applies() -> None:
    b = bucket(visibility="public-read")
    for action in ("object:get", "object:list"):
        assert decide(
            token=None, account_id="", action=action, bucket=b, key="k", client_ip=""
        ).allowed
        assert decide(
            token=token(token_id="t9", account_id="acct9"),
            account_id="acct9",
            action=action,
            bucket=b,
            key="k",
            client_ip="",
        ).allowed
    assert not decide(
        token=None, account_id="", action="object:put", bucket=b, key="k", client_ip=""
    ).allowed
    denied = bucket({"statements": [stmt("deny", subjects=["*"])]}, visibility="public-read")
    assert not decide(
        token=None, account_id="", action="object:get", bucket=denied, key="k", client_ip=""
    ).allowed


# --- the AWS policy format ---------------------------------------------------------------------


def aws(*statements: dict[str, object]) -> dict[str, object]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def test_aws_resource_naming_another_bucket_grants_nothing() -> None:
    other = bucket(aws(dict(PUBLIC_READ, Resource="arn:aws:s3:::other/*")))
    assert not anonymous_allowed(other, "object:get", "public/a")


def test_aws_list_bucket_is_bucket_level_and_wildcard_actions_expand() -> None:
    b = bucket(
        aws(
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": ["s3:ListBucket", "s3:Get*"],
                "Resource": ["arn:aws:s3:::bkt", "arn:aws:s3:::bkt/exact.txt"],
            }
        )
    )

    assert anonymous_allowed(b, "object:list") and anonymous_allowed(b, "bucket:read-meta")
    assert anonymous_allowed(b, "object:get", "exact.txt")
    assert not anonymous_allowed(b, "object:get", "exact.txt.bak")  # no *: exactly one key
    assert not anonymous_allowed(b, "object:delete", "exact.txt")


def test_aws_principals_name_accounts_and_deny_with_ip_conditions() -> None:
    owner = token(token_id="t1", account_id="acct1")
    guest = token(token_id="g1", account_id="acct2")
    b = bucket(
        aws(
            {
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::acct2:root"},
                "Action": "s3:PutObject",
                "Resource": "arn:aws:s3:::bkt/*",
            },
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:DeleteObject",
                "Resource": "arn:aws:s3:::bkt/*",
                "Condition": {"NotIpAddress": {"aws:SourceIp": ["10.0.0.0/8"]}},
            },
        )
    )

    def allowed(tok: TokenRecord, action: str, ip: str = "10.1.2.3") -> bool:
        return decide(
            token=tok, account_id=tok.account_id, action=action, bucket=b, key="k", client_ip=ip
        ).allowed

    assert allowed(guest, "object:put") and allowed(guest, "multipart:complete")
    assert not allowed(guest, "object:get")
    assert allowed(owner, "object:delete", "10.9.9.9")
    assert not allowed(owner, "object:delete", "192.168.1.1")  # deny wins over ownership


@pytest.mark.parametrize(
    ("statement", "fragment"),
    [
        ({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"}, "Resource"),
        (dict(PUBLIC_READ, Effect="Maybe"), "Effect"),
        (dict(PUBLIC_READ, Resource="arn:aws:s3:::other/*"), "invalid resource"),
        (dict(PUBLIC_READ, Resource="bkt/*"), "invalid resource"),
        (dict(PUBLIC_READ, Action="iam:PassRole"), "invalid action"),
        (dict(PUBLIC_READ, Principal={"Service": "x"}), "principal"),
        (dict(PUBLIC_READ, NotAction="s3:PutObject"), "notaction"),
        (
            dict(PUBLIC_READ, Condition={"ArnLike": {"aws:SourceArn": "a"}}),
            "unsupported condition key: aws:SourceArn",
        ),
        (
            dict(PUBLIC_READ, Condition={"BinaryEquals": {"s3:prefix": "a"}}),
            "BinaryEquals is not supported",
        ),
        (dict(PUBLIC_READ, Condition={"IpAddress": {"aws:SourceIp": "nope"}}), "IP address"),
    ],
)
def test_aws_policies_jay_cannot_enforce_are_refused(
    statement: dict[str, object], fragment: str
) -> None:
    with pytest.raises(MalformedPolicy, match=fragment):
        parse_policy(json.dumps(aws(statement)), bucket="bkt")


# --- tagging actions ---------------------------------------------------------------------------

TAGGING_ACTIONS = {
    "object:get-tagging": "object:get",
    "object:put-tagging": "object:put",
    "object:delete-tagging": "object:put",
    "bucket:get-tagging": "bucket:read-meta",
    "bucket:put-tagging": "bucket:write-meta",
}


@pytest.mark.parametrize(("action", "parent"), sorted(TAGGING_ACTIONS.items()))
def test_a_token_action_covers_its_tagging_action(action: str, parent: str) -> None:
    assert scope_allows(token((parent,)), action, "bkt", "k")
    assert scope_allows(token(("*",)), action, "bkt", "k")
    others = tuple(a for a in set(TAGGING_ACTIONS.values()) if a != parent)
    assert not scope_allows(token(others), action, "bkt", "k")
    assert not scope_allows(token((parent,), buckets=("other",)), action, "bkt", "k")


def test_aws_tagging_actions_grant_tagging_and_nothing_else() -> None:
    b = bucket(
        aws(
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": ["s3:GetObjectTagging", "s3:PutObjectTagging"],
                "Resource": "arn:aws:s3:::bkt/*",
            },
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetBucketTagging",
                "Resource": "arn:aws:s3:::bkt",
            },
        )
    )
    assert anonymous_allowed(b, "object:get-tagging", "k")
    assert anonymous_allowed(b, "object:put-tagging", "k")
    assert anonymous_allowed(b, "bucket:get-tagging")
    # Tagging rights are not rights to the object's bytes, nor to delete its tags.
    assert not anonymous_allowed(b, "object:get", "k")
    assert not anonymous_allowed(b, "object:put", "k")
    assert not anonymous_allowed(b, "object:delete-tagging", "k")
    assert not anonymous_allowed(b, "bucket:put-tagging")
    # …and object rights on S3 are not tagging rights.
    readable = bucket(aws(dict(PUBLIC_READ, Resource="arn:aws:s3:::bkt/*")))
    assert anonymous_allowed(readable, "object:get", "k")
    assert not anonymous_allowed(readable, "object:get-tagging", "k")
    assert not anonymous_allowed(bucket(visibility="public-read"), "object:get-tagging", "k")


def test_aws_object_acl_actions_grant_the_acl_only() -> None:
    b = bucket(
        aws(
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": ["s3:GetObjectAcl", "s3:PutObjectAcl"],
                "Resource": "arn:aws:s3:::bkt/*",
            }
        )
    )
    assert anonymous_allowed(b, "object:get-acl", "k")
    assert anonymous_allowed(b, "object:put-acl", "k")
    assert not anonymous_allowed(b, "object:get", "k")
    assert not anonymous_allowed(b, "object:put", "k")
    readable = bucket(aws(dict(PUBLIC_READ, Resource="arn:aws:s3:::bkt/*")))
    assert not anonymous_allowed(readable, "object:get-acl", "k")
    assert not anonymous_allowed(bucket(visibility="public-read"), "object:get-acl", "k")
    # A token's object:get / object:put scope and Jay-format statements cover them.
    assert scope_allows(token(actions=("object:get",)), "object:get-acl", "bkt", "k")
    assert scope_allows(token(actions=("object:put",)), "object:put-acl", "bkt", "k")
    jay_format = bucket({"statements": [stmt(actions=["object:get"])]})
    assert anonymous_allowed(jay_format, "object:get-acl", "k")


def test_aws_delete_object_tagging_and_bucket_tagging_resources() -> None:
    b = bucket(
        aws(
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": ["s3:DeleteObjectTagging", "s3:PutBucketTagging"],
                "Resource": ["arn:aws:s3:::bkt/public/*", "arn:aws:s3:::bkt"],
            }
        )
    )
    assert anonymous_allowed(b, "object:delete-tagging", "public/x")
    assert not anonymous_allowed(b, "object:delete-tagging", "private/x")
    assert anonymous_allowed(b, "bucket:put-tagging")


def test_jay_statements_and_denies_cover_tagging_through_the_object_action() -> None:
    readable = bucket({"statements": [stmt(actions=["object:get"], prefixes=["public/"])]})
    assert anonymous_allowed(readable, "object:get-tagging", "public/a")
    assert not anonymous_allowed(readable, "object:get-tagging", "private/a")
    assert not anonymous_allowed(readable, "object:put-tagging", "public/a")
    no_writes = bucket({"statements": [stmt("deny", actions=["object:put"])]})
    d = decide(
        token=token(),
        account_id="acct1",
        action="object:put-tagging",
        bucket=no_writes,
        key="k",
        client_ip="",
    )
    assert not d.allowed
    # An AWS-format deny of s3:PutObject leaves tagging alone, as on S3.
    aws_no_writes = bucket(
        aws(
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:PutObject",
                "Resource": "arn:aws:s3:::bkt/*",
            }
        )
    )
    for action, allowed in (("object:put", False), ("object:put-tagging", True)):
        d = decide(
            token=token(),
            account_id="acct1",
            action=action,
            bucket=aws_no_writes,
            key="k",
            client_ip="",
        )
        assert d.allowed is allowed
