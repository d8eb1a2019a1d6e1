"""AWS-format policy conditions: operator semantics, keys, malformed blocks, decide() with a
ConditionContext."""

from __future__ import annotations

import json
from collections.abc import Mapping

import pytest

from jay.auth.policy import (
    ConditionContext,
    conditions_hold,
    decide,
    parse_date,
    parse_policy,
    policy_condition_keys,
)
from jay.errors import MalformedPolicy
from jay.storage.api import BucketInfo

ANYONE_GET: dict[str, object] = {
    "Effect": "Allow",
    "Principal": "*",
    "Action": "s3:GetObject",
    "Resource": "arn:aws:s3:::bkt/*",
}


def policy_text(condition: object, **statement: object) -> str:
    st = dict(ANYONE_GET, Condition=condition)
    st.update(statement)
    return json.dumps({"Version": "2012-10-17", "Statement": [st]})


def holds(
    condition: object, values: Mapping[str, tuple[str, ...]] | None = None, ip: str = ""
) -> bool:
    policy = parse_policy(policy_text(condition))
    return conditions_hold(policy.statements[0].conditions, ConditionContext(values or {}), ip)


REFERER = "aws:referer"
TAG_KEYS = "s3:requestobjecttagkeys"

# (condition block, request values, expected)
CASES: list[tuple[dict[str, object], dict[str, tuple[str, ...]], bool]] = [
    # StringEquals: exact and case-sensitive; several values ORed; a missing key is false.
    ({"StringEquals": {"aws:Referer": "a"}}, {REFERER: ("a",)}, True),
    ({"StringEquals": {"aws:Referer": "a"}}, {REFERER: ("A",)}, False),
    ({"StringEquals": {"aws:Referer": ["x", "a"]}}, {REFERER: ("a",)}, True),
    ({"StringEquals": {"aws:Referer": "a"}}, {}, False),
    # Negated operators: values NORed; a missing key makes them true (AWS).
    ({"StringNotEquals": {"aws:Referer": ["x", "a"]}}, {REFERER: ("a",)}, False),
    ({"StringNotEquals": {"aws:Referer": ["x", "a"]}}, {REFERER: ("b",)}, True),
    ({"StringNotEquals": {"aws:Referer": "a"}}, {}, True),
    ({"StringNotLike": {"aws:Referer": "a*"}}, {}, True),
    # IgnoreCase
    ({"StringEqualsIgnoreCase": {"aws:Referer": "HeLLo"}}, {REFERER: ("hello",)}, True),
    ({"StringNotEqualsIgnoreCase": {"aws:Referer": "HeLLo"}}, {REFERER: ("HELLO",)}, False),
    ({"StringNotEqualsIgnoreCase": {"aws:Referer": "HeLLo"}}, {REFERER: ("bye",)}, True),
    # StringLike: * any run, ? one character, the rest literal, the whole value
    ({"StringLike": {"aws:Referer": "http://x/*"}}, {REFERER: ("http://x/a/b",)}, True),
    ({"StringLike": {"aws:Referer": "http://x/*"}}, {REFERER: ("http://y/a",)}, False),
    ({"StringLike": {"aws:Referer": "a?c"}}, {REFERER: ("abc",)}, True),
    ({"StringLike": {"aws:Referer": "a?c"}}, {REFERER: ("abbc",)}, False),
    ({"StringLike": {"aws:Referer": "a.c"}}, {REFERER: ("abc",)}, False),
    ({"StringLike": {"aws:Referer": "a"}}, {REFERER: ("ab",)}, False),
    ({"StringNotLike": {"aws:Referer": ["a*", "b*"]}}, {REFERER: ("bz",)}, False),
    ({"StringNotLike": {"aws:Referer": ["a*", "b*"]}}, {REFERER: ("cz",)}, True),
    # IfExists: true without the key, the operator otherwise
    ({"StringLikeIfExists": {"aws:Referer": "http://x/*"}}, {}, True),
    ({"StringLikeIfExists": {"aws:Referer": "http://x/*"}}, {REFERER: ("http://y",)}, False),
    ({"StringEqualsIfExists": {"aws:Referer": "a"}}, {REFERER: ("a",)}, True),
    # Null: true means "must be absent", false "must be present"
    ({"Null": {"s3:x-amz-server-side-encryption": "true"}}, {}, True),
    ({"Null": {"s3:x-amz-server-side-encryption": True}}, {}, True),
    (
        {"Null": {"s3:x-amz-server-side-encryption": "true"}},
        {"s3:x-amz-server-side-encryption": ("AES256",)},
        False,
    ),
    ({"Null": {"s3:x-amz-server-side-encryption": "false"}}, {}, False),
    # Numbers
    ({"NumericLessThanEquals": {"s3:max-keys": "10"}}, {"s3:max-keys": ("10",)}, True),
    ({"NumericLessThan": {"s3:max-keys": 10}}, {"s3:max-keys": ("10",)}, False),
    ({"NumericGreaterThan": {"s3:max-keys": "10"}}, {"s3:max-keys": ("11",)}, True),
    ({"NumericGreaterThanEquals": {"s3:max-keys": "10"}}, {"s3:max-keys": ("9",)}, False),
    ({"NumericEquals": {"s3:max-keys": ["5", "10"]}}, {"s3:max-keys": ("10.0",)}, True),
    ({"NumericNotEquals": {"s3:max-keys": ["5", "10"]}}, {"s3:max-keys": ("10",)}, False),
    ({"NumericNotEquals": {"s3:max-keys": ["5", "10"]}}, {"s3:max-keys": ("7",)}, True),
    ({"NumericEquals": {"s3:max-keys": "10"}}, {"s3:max-keys": ("ten",)}, False),
    # Dates: ISO 8601 or epoch seconds on either side
    (
        {"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}},
        {"aws:currenttime": ("2029-12-31T23:59:59Z",)},
        True,
    ),
    (
        {"DateGreaterThan": {"aws:CurrentTime": "2030-01-01"}},
        {"aws:currenttime": ("2029-12-31T23:59:59Z",)},
        False,
    ),
    (
        {"DateEquals": {"aws:EpochTime": "2030-01-01T00:00:00Z"}},
        {"aws:epochtime": ("1893456000",)},
        True,
    ),
    ({"DateNotEquals": {"aws:EpochTime": "1893456000"}}, {"aws:epochtime": ("1893456000",)}, False),
    (
        {"DateLessThanEquals": {"aws:EpochTime": "1893456000"}},
        {"aws:epochtime": ("1893456000",)},
        True,
    ),
    (
        {"DateGreaterThanEquals": {"aws:EpochTime": "1893456001"}},
        {"aws:epochtime": ("1893456000",)},
        False,
    ),
    # Bool
    ({"Bool": {"aws:SecureTransport": "false"}}, {"aws:securetransport": ("false",)}, True),
    ({"Bool": {"aws:SecureTransport": False}}, {"aws:securetransport": ("true",)}, False),
    ({"Bool": {"aws:SecureTransport": "false"}}, {}, False),
    # Several keys in one block are ANDed, as are several operators.
    (
        {"StringEquals": {"aws:Referer": "a", "aws:UserAgent": "ua"}},
        {REFERER: ("a",), "aws:useragent": ("ua",)},
        True,
    ),
    ({"StringEquals": {"aws:Referer": "a", "aws:UserAgent": "ua"}}, {REFERER: ("a",)}, False),
    (
        {"StringEquals": {"aws:Referer": "a"}, "StringLike": {"aws:UserAgent": "boto*"}},
        {REFERER: ("a",), "aws:useragent": ("curl",)},
        False,
    ),
    # Set operators over a multi-valued key
    (
        {"ForAllValues:StringEquals": {"s3:RequestObjectTagKeys": ["a", "b"]}},
        {TAG_KEYS: ("a",)},
        True,
    ),
    (
        {"ForAllValues:StringEquals": {"s3:RequestObjectTagKeys": ["a", "b"]}},
        {TAG_KEYS: ("a", "c")},
        False,
    ),
    ({"ForAllValues:StringEquals": {"s3:RequestObjectTagKeys": ["a"]}}, {}, True),
    (
        {"ForAnyValue:StringEquals": {"s3:RequestObjectTagKeys": ["a"]}},
        {TAG_KEYS: ("c", "a")},
        True,
    ),
    ({"ForAnyValue:StringEquals": {"s3:RequestObjectTagKeys": ["a"]}}, {TAG_KEYS: ("c",)}, False),
    ({"ForAnyValue:StringEquals": {"s3:RequestObjectTagKeys": ["a"]}}, {}, False),
    (
        {"ForAnyValue:StringNotEquals": {"s3:RequestObjectTagKeys": ["a"]}},
        {TAG_KEYS: ("a", "b")},
        True,
    ),
    (
        {"ForAllValues:StringNotEquals": {"s3:RequestObjectTagKeys": ["a"]}},
        {TAG_KEYS: ("a", "b")},
        False,
    ),
    (
        {"ForAllValues:StringLike": {"s3:RequestObjectTagKeys": ["x-*"]}},
        {TAG_KEYS: ("x-1", "x-2")},
        True,
    ),
    # A plain negated operator on several request values: none may match.
    ({"StringNotEquals": {"s3:RequestObjectTagKeys": ["a"]}}, {TAG_KEYS: ("b", "a")}, False),
    # Tag keys after the prefix are case-sensitive; the key name is not.
    (
        {"StringEquals": {"S3:ExistingObjectTag/Team": "x"}},
        {"s3:existingobjecttag/Team": ("x",)},
        True,
    ),
    (
        {"StringEquals": {"s3:existingobjecttag/team": "x"}},
        {"s3:existingobjecttag/Team": ("x",)},
        False,
    ),
    # aws:SourceIp comes from the client address
    ({"IpAddressIfExists": {"aws:SourceIp": "10.0.0.0/8"}}, {}, True),
]


@pytest.mark.parametrize(("condition", "values", "expected"), CASES)
def test_condition_operators(
    condition: dict[str, object], values: dict[str, tuple[str, ...]], expected: bool
) -> None:
    assert holds(condition, values, ip="") is expected


def test_source_ip_operators_read_the_client_address() -> None:
    block = {
        "NotIpAddressIfExists": {"aws:SourceIp": ["10.0.0.0/8"]},
        "Null": {"aws:Referer": "true"},
    }
    assert holds(block, ip="192.168.1.1")
    assert not holds(block, ip="10.1.2.3")
    assert holds({"IpAddressIfExists": {"aws:SourceIp": "10.0.0.0/8"}}, ip="10.1.2.3")
    assert not holds({"IpAddressIfExists": {"aws:SourceIp": "10.0.0.0/8"}}, ip="11.1.2.3")


@pytest.mark.parametrize(
    ("condition", "fragment"),
    [
        ({"StringEquals": {"aws:SourceArn": "x"}}, "unsupported condition key: aws:SourceArn"),
        ({"StringEquals": {"s3:VersionId": "x"}}, "unsupported condition key"),
        ({"StringEquals": {"s3:ExistingObjectTag/": "x"}}, "unsupported condition key"),
        ({"ArnLike": {"aws:Referer": "x"}}, "ArnLike is not supported"),
        ({"StringEqualsMaybe": {"aws:Referer": "x"}}, "StringEqualsMaybe is not supported"),
        ({"ForSomeValues:StringEquals": {"aws:Referer": "x"}}, "not supported"),
        ({"StringEquals": "aws:Referer"}, "Invalid StringEquals condition"),
        ({"StringEquals": {}}, "Invalid StringEquals condition"),
        ({"StringEquals": {"aws:Referer": []}}, "no values"),
        ({"StringEquals": {"aws:Referer": {"a": 1}}}, "Invalid value"),
        ({"NumericLessThan": {"s3:max-keys": "ten"}}, "Invalid numeric value"),
        ({"NumericLessThan": {"s3:max-keys": "nan"}}, "Invalid numeric value"),
        ({"DateLessThan": {"aws:CurrentTime": "tomorrow"}}, "Invalid date value"),
        ({"Bool": {"aws:SecureTransport": "yes"}}, "Invalid boolean value"),
        ({"Null": {"aws:Referer": "maybe"}}, "Null on aws:Referer takes true or false"),
        ({"NullIfExists": {"aws:Referer": "true"}}, "not supported"),
        ({"IpAddressIfExists": {"aws:Referer": "10.0.0.0/8"}}, "aws:referer is not supported"),
        ({"IpAddressIfExists": {"aws:SourceIp": "nope"}}, "Invalid IP address"),
        ([{"StringEquals": {"aws:Referer": "a"}}], "Condition must be a JSON object"),
        ({"StringLike": {"s3:prefix": "home/${aws:username}/*"}}, "Policy variables"),
    ],
)
def test_malformed_conditions_are_refused_naming_the_problem(
    condition: object, fragment: str
) -> None:
    with pytest.raises(MalformedPolicy, match=fragment):
        parse_policy(policy_text(condition))


def test_dates_parse_iso_forms_and_epoch_seconds() -> None:
    assert parse_date("2030-01-01") == parse_date("2030-01-01T00:00:00Z") == 1893456000
    assert parse_date("2030-01-01T01:00:00+01:00") == 1893456000
    assert parse_date("2030-01-01T00:00:00.500Z") == 1893456000.5
    assert parse_date("1893456000") == 1893456000
    assert parse_date("soon") is None


def test_condition_keys_are_collected_once_per_policy() -> None:
    text = policy_text(
        {
            "StringLike": {"aws:Referer": "x*"},
            "IpAddress": {"aws:SourceIp": "10.0.0.0/8"},
            "Null": {"s3:ExistingObjectTag/Team": "false"},
        }
    )
    assert policy_condition_keys(text) == {"aws:referer", "s3:existingobjecttag/Team"}
    # aws:SourceIp alone needs no context: decide() has the client address.
    ip_only = policy_text({"IpAddressIfExists": {"aws:SourceIp": "10.0.0.0/8"}})
    assert policy_condition_keys(ip_only) == frozenset()
    assert policy_condition_keys("not json") == frozenset()


def bucket(policy_json: str) -> BucketInfo:
    return BucketInfo(
        bucket_id="b1",
        name="bkt",
        owner_account_id="owner",
        created_at=0.0,
        visibility="private",
        policy_json=policy_json,
    )


def anonymous_get(b: BucketInfo, values: Mapping[str, tuple[str, ...]] | None) -> bool:
    context = ConditionContext(values) if values is not None else None
    return decide(
        token=None,
        account_id="",
        action="object:get",
        bucket=b,
        key="k",
        client_ip="1.2.3.4",
        context=context,
    ).allowed


def test_decide_allows_only_when_the_conditions_hold() -> None:
    b = bucket(policy_text({"StringLike": {"aws:Referer": "https://site.example/*"}}))
    assert anonymous_get(b, {REFERER: ("https://site.example/page",)})
    assert not anonymous_get(b, {REFERER: ("https://other.example/",)})
    assert not anonymous_get(b, {})
    assert not anonymous_get(b, None)  # no context: every key is absent


def test_decide_conditional_deny_beats_an_allow() -> None:
    deny = dict(
        ANYONE_GET,
        Effect="Deny",
        Condition={"Bool": {"aws:SecureTransport": "false"}},
    )
    text = json.dumps({"Version": "2012-10-17", "Statement": [ANYONE_GET, deny]})
    b = bucket(text)
    assert anonymous_get(b, {"aws:securetransport": ("true",)})
    assert not anonymous_get(b, {"aws:securetransport": ("false",)})


def test_dollar_brace_is_literal_in_2008_policies() -> None:
    st = dict(ANYONE_GET, Condition={"StringEquals": {"aws:Referer": "${x}"}})
    policy = parse_policy(json.dumps({"Version": "2008-10-17", "Statement": [st]}))
    context = ConditionContext({REFERER: ("${x}",)})
    assert conditions_hold(policy.statements[0].conditions, context, "")
