"""POST Object policies and form signatures: parsing, conditions, coverage, sizes."""

from __future__ import annotations

import base64
import calendar
import hashlib
import hmac
import json
from typing import Any

import pytest

from jay import errors
from jay.auth import sigv4
from jay.auth.postpolicy import (
    FormCredentials,
    parse_expiration,
    parse_form_credentials,
    parse_post_policy,
    sigv2_form_signature,
    sigv4_form_signature,
    verify_form_signature,
)

NOW = calendar.timegm((2026, 11, 28, 12, 0, 0, 0, 0, 0))


def encoded(document: Any) -> str:
    return base64.b64encode(json.dumps(document).encode()).decode()


def policy(*conditions: Any, expiration: str = "2026-11-28T13:00:00Z") -> Any:
    return parse_post_policy(encoded({"expiration": expiration, "conditions": list(conditions)}))


BASE = {"bucket": "b", "key": "uploads/a.txt"}


def test_exact_and_prefix_conditions_hold() -> None:
    p = policy(
        {"bucket": "b"},
        ["starts-with", "$key", "uploads/"],
        ["eq", "$Content-Type", "text/plain"],
        ["content-length-range", 1, 10],
    )
    p.check_expiration(NOW)
    p.check_fields({**BASE, "content-type": "text/plain"})


@pytest.mark.parametrize(
    ("conditions", "fields", "message"),
    [
        ([{"bucket": "other"}], BASE, 'Policy Condition failed: {"bucket": "other"}'),
        (
            [{"bucket": "b"}, ["starts-with", "$key", "x/"]],
            BASE,
            'Policy Condition failed: ["starts-with", "$key", "x/"]',
        ),
        (
            [{"bucket": "b"}, ["starts-with", "$key", ""]],
            {**BASE, "acl": "x"},
            "Extra input fields: acl",
        ),
        ([["starts-with", "$key", ""]], BASE, "Extra input fields: bucket"),
        (
            [{"bucket": "b"}, ["starts-with", "$key", ""], ["eq", "$x-amz-meta-a", "1"]],
            BASE,
            "Policy Condition failed",
        ),
    ],
)
def test_conditions_and_coverage_deny(
    conditions: list[Any], fields: dict[str, str], message: str
) -> None:
    with pytest.raises(errors.AccessDenied) as raised:
        policy(*conditions).check_fields(fields)
    assert raised.value.message.startswith("Invalid according to Policy: ")
    assert message in raised.value.message


def test_exempt_and_ignored_fields_need_no_condition() -> None:
    p = policy({"bucket": "b"}, ["starts-with", "$key", ""])
    p.check_fields(
        {
            **BASE,
            "policy": "...",
            "signature": "...",
            "x-amz-signature": "...",
            "awsaccesskeyid": "...",
            "file": "",
            "x-ignore-anything": "1",
            "x-amz-checksum-sha256": "abc",
        }
    )


def test_operators_and_field_names_are_case_insensitive_values_are_not() -> None:
    p = policy({"BuCkEt": "b"}, ["StArTs-WiTh", "$KeY", "uploads/"])
    p.check_fields(BASE)
    with pytest.raises(errors.AccessDenied):
        policy({"bucket": "B"}, ["starts-with", "$key", ""]).check_fields(BASE)


def test_empty_prefix_allows_anything_even_a_missing_field() -> None:
    policy({"bucket": "b"}, ["starts-with", "$key", ""], ["starts-with", "$acl", ""]).check_fields(
        BASE
    )


def test_content_type_prefix_applies_to_every_listed_type() -> None:
    p = policy(
        {"bucket": "b"}, ["starts-with", "$key", ""], ["starts-with", "$content-type", "image/"]
    )
    p.check_fields({**BASE, "content-type": "image/png, image/jpeg"})
    with pytest.raises(errors.AccessDenied):
        p.check_fields({**BASE, "content-type": "image/png, text/html"})


def test_expired_policy() -> None:
    p = policy({"bucket": "b"}, expiration="2026-11-28T11:59:59.000Z")
    with pytest.raises(errors.AccessDenied) as raised:
        p.check_expiration(NOW)
    assert raised.value.message == "Invalid according to Policy: Policy expired."


def test_content_length_range() -> None:
    p = policy(["content-length-range", 10, 20])
    p.check_size(10)
    p.check_size(20)
    with pytest.raises(errors.EntityTooLarge):
        p.check_size(21)
    with pytest.raises(errors.EntityTooSmall):
        p.check_size(9)
    policy().check_size(10**12)  # no range, no limit here


@pytest.mark.parametrize(
    "document",
    [
        {"conditions": []},
        {"expiration": "2026-11-28 13:00:00.123+00:00", "conditions": []},
        {"expiration": "2026-13-28T13:00:00Z", "conditions": []},
        {"EXPIRATION": "2026-11-28T13:00:00Z", "conditions": []},
        {"expiration": "2026-11-28T13:00:00Z"},
        {"expiration": "2026-11-28T13:00:00Z", "CONDITIONS": []},
        {"expiration": "2026-11-28T13:00:00Z", "conditions": [{}]},
        {"expiration": "2026-11-28T13:00:00Z", "conditions": [{"key": "a", "acl": "b"}]},
        {"expiration": "2026-11-28T13:00:00Z", "conditions": [["content-length-range", 0]]},
        {"expiration": "2026-11-28T13:00:00Z", "conditions": [["content-length-range", -1, 0]]},
        {"expiration": "2026-11-28T13:00:00Z", "conditions": [["content-length-range", 5, 1]]},
        {"expiration": "2026-11-28T13:00:00Z", "conditions": [["content-length-range", "a", 1]]},
        {"expiration": "2026-11-28T13:00:00Z", "conditions": [["eq", "key", "x"]]},
        {"expiration": "2026-11-28T13:00:00Z", "conditions": [["in", "$key", "x"]]},
        {"expiration": "2026-11-28T13:00:00Z", "conditions": [["eq", "$key"]]},
        {"expiration": "2026-11-28T13:00:00Z", "conditions": [{"key": 5}]},
        {"expiration": "2026-11-28T13:00:00Z", "conditions": ["key"]},
        ["not", "an", "object"],
    ],
)
def test_malformed_policies(document: Any) -> None:
    with pytest.raises(errors.InvalidPolicyDocument):
        parse_post_policy(encoded(document))


@pytest.mark.parametrize("text", ["not base64!", base64.b64encode(b"{not json").decode(), ""])
def test_policy_that_is_not_base64_json(text: str) -> None:
    with pytest.raises(errors.InvalidPolicyDocument):
        parse_post_policy(text)


def test_expiration_formats() -> None:
    assert parse_expiration("2026-11-28T12:00:00Z") == NOW
    assert parse_expiration("2026-11-28T12:00:00.123Z") == NOW
    assert parse_expiration("2026-11-28T13:00:00+01:00") == NOW
    with pytest.raises(ValueError):
        parse_expiration("2026-02-30T12:00:00Z")


# --- credentials and signatures ------------------------------------------------------------

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
POLICY = encoded({"expiration": "2026-11-28T13:00:00Z", "conditions": [{"bucket": "b"}]})


def test_anonymous_form_has_no_credentials() -> None:
    assert parse_form_credentials({"key": "k", "policy": POLICY}) is None


def test_sigv2_form_signature_is_hmac_sha1_of_the_policy() -> None:
    expected = base64.b64encode(
        hmac.new(SECRET.encode(), POLICY.encode(), hashlib.sha1).digest()
    ).decode()
    assert sigv2_form_signature(SECRET, POLICY) == expected
    creds = parse_form_credentials(
        {"awsaccesskeyid": "AKID", "signature": expected, "policy": POLICY}
    )
    assert creds == FormCredentials("AKID", expected, POLICY)
    assert creds.auth_method == "sigv2-post"
    assert verify_form_signature(creds, SECRET)
    assert not verify_form_signature(creds, SECRET + "x")
    assert not verify_form_signature(creds, "")


def test_sigv4_form_signature_uses_the_day_signing_key() -> None:
    fields = {
        "x-amz-algorithm": "AWS4-HMAC-SHA256",
        "x-amz-credential": "AKID/20261128/us-east-1/s3/aws4_request",
        "x-amz-date": "20261128T120000Z",
        "policy": POLICY,
    }
    key = sigv4.signing_key(SECRET, "20261128", "us-east-1", "s3")
    signature = hmac.new(key, POLICY.encode(), hashlib.sha256).hexdigest()
    creds = parse_form_credentials({**fields, "x-amz-signature": signature})
    assert creds is not None and creds.access_key == "AKID"
    assert sigv4_form_signature(SECRET, creds.credential, POLICY) == signature  # type: ignore[arg-type]
    assert verify_form_signature(creds, SECRET)
    assert creds.auth_method == "sigv4-post"
    tampered = parse_form_credentials({**fields, "x-amz-signature": "0" * 64})
    assert tampered is not None and not verify_form_signature(tampered, SECRET)


@pytest.mark.parametrize(
    "fields",
    [
        {"awsaccesskeyid": "AKID", "policy": POLICY},  # no signature
        {"signature": "x", "policy": POLICY},  # no access key
        {"awsaccesskeyid": "AKID", "signature": "x"},  # no policy
        {"x-amz-signature": "a" * 64, "policy": POLICY},  # v4 without the other fields
        {
            "x-amz-algorithm": "AWS4-HMAC-SHA1",
            "x-amz-credential": "AKID/20261128/us-east-1/s3/aws4_request",
            "x-amz-date": "20261128T120000Z",
            "x-amz-signature": "a" * 64,
            "policy": POLICY,
        },
        {
            "x-amz-algorithm": "AWS4-HMAC-SHA256",
            "x-amz-credential": "AKID/20261128/us-east-1/s3/aws4_request",
            "x-amz-date": "yesterday",
            "x-amz-signature": "a" * 64,
            "policy": POLICY,
        },
        {
            "x-amz-algorithm": "AWS4-HMAC-SHA256",
            "x-amz-credential": "AKID/20261128/us-east-1/ec2/aws4_request",
            "x-amz-date": "20261128T120000Z",
            "x-amz-signature": "a" * 64,
            "policy": POLICY,
        },
    ],
)
def test_partial_credentials_are_invalid_argument(fields: dict[str, str]) -> None:
    with pytest.raises(errors.InvalidArgument):
        parse_form_credentials(fields)
