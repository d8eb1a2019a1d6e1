"""Bucket policy conditions end to end with boto3 (and plain HTTP for anonymous callers) against
a real jay process: Referer, server-side encryption header, s3:prefix, aws:SecureTransport over
plain HTTP, existing and requested object tags, dates, principal keys, refused conditions."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.jayproc import JayProcess
from tests.integration.test_access import (
    Token,
    admin_is_wired,
    client,
    new_account,
    new_token,
    request,
)

_names = itertools.count()


@pytest.fixture(scope="module", autouse=True)
def server_log_is_clean(jay: JayProcess) -> Iterator[None]:
    yield
    log = jay.log_text()
    assert "Unexpected error" not in log and "Traceback" not in log, log[-5000:]


@dataclass(frozen=True)
class Parties:
    jay: JayProcess
    owner: Any  # boto3 client of account A (owns the buckets)
    other: Any  # boto3 client of account B
    other_token: Token


@pytest.fixture(scope="module")
def parties(jay: JayProcess) -> Parties:
    if not admin_is_wired(jay):
        pytest.skip("admin API is not wired")
    a = new_account(jay, "cond-owner")
    b = new_account(jay, "cond-other")
    other = new_token(jay, b, ["*"])
    return Parties(jay, client(jay, new_token(jay, a, ["*"])), client(jay, other), other)


@pytest.fixture
def bucket(parties: Parties) -> str:
    name = f"cond-{next(_names)}"
    parties.owner.create_bucket(Bucket=name)
    return name


def policy(bucket: str, *statements: dict[str, Any]) -> str:
    full = []
    for st in statements:
        st = dict(st)
        st.setdefault("Principal", "*")
        st.setdefault("Resource", f"arn:aws:s3:::{bucket}/*")
        full.append(st)
    return json.dumps({"Version": "2012-10-17", "Statement": full})


def denied(call: Any, **kwargs: Any) -> None:
    with pytest.raises(ClientError) as err:
        call(**kwargs)
    assert err.value.response["Error"]["Code"] == "AccessDenied", err.value.response


def test_anonymous_get_only_with_the_right_referer(parties: Parties, bucket: str) -> None:
    parties.owner.put_object(Bucket=bucket, Key="img.png", Body=b"png")
    parties.owner.put_bucket_policy(
        Bucket=bucket,
        Policy=policy(
            bucket,
            {
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Condition": {"StringLike": {"aws:Referer": "https://site.example/*"}},
            },
        ),
    )
    url = f"{parties.jay.s3_url}/{bucket}/img.png"
    status, _, body = request(url, headers={"Referer": "https://site.example/page.html"})
    assert (status, body) == (200, b"png")
    assert request(url, headers={"Referer": "https://evil.example/"})[0] == 403
    assert request(url)[0] == 403  # no Referer: the key is absent, the condition false
    assert request(url, "PUT", b"x", headers={"Referer": "https://site.example/"})[0] == 403


def test_deny_put_object_without_server_side_encryption(parties: Parties, bucket: str) -> None:
    parties.owner.put_bucket_policy(
        Bucket=bucket,
        Policy=policy(
            bucket,
            {"Effect": "Allow", "Action": "s3:PutObject"},
            {
                "Effect": "Deny",
                "Action": "s3:PutObject",
                "Condition": {"Null": {"s3:x-amz-server-side-encryption": "true"}},
            },
        ),
    )
    # The deny wins over ownership and over the allow.
    denied(parties.owner.put_object, Bucket=bucket, Key="plain", Body=b"x")
    denied(parties.other.put_object, Bucket=bucket, Key="plain", Body=b"x")
    parties.other.put_object(Bucket=bucket, Key="enc", Body=b"x", ServerSideEncryption="AES256")
    parties.owner.put_object(Bucket=bucket, Key="enc2", Body=b"x", ServerSideEncryption="AES256")
    keys = [o["Key"] for o in parties.owner.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["enc", "enc2"]


def test_list_bucket_only_under_a_prefix(parties: Parties, bucket: str) -> None:
    for key in ("home/a", "home/b", "etc/passwd"):
        parties.owner.put_object(Bucket=bucket, Key=key, Body=b"x")
    parties.owner.put_bucket_policy(
        Bucket=bucket,
        Policy=policy(
            bucket,
            {
                "Effect": "Allow",
                "Principal": {"AWS": [parties.other_token.account_id]},
                "Action": "s3:ListBucket",
                "Resource": f"arn:aws:s3:::{bucket}",
                "Condition": {"StringLike": {"s3:prefix": "home/*"}},
            },
        ),
    )
    listed = parties.other.list_objects_v2(Bucket=bucket, Prefix="home/")
    assert [o["Key"] for o in listed["Contents"]] == ["home/a", "home/b"]
    assert len(parties.other.list_objects(Bucket=bucket, Prefix="home/")["Contents"]) == 2
    denied(parties.other.list_objects_v2, Bucket=bucket, Prefix="etc/")
    denied(parties.other.list_objects_v2, Bucket=bucket)  # no prefix parameter at all
    denied(parties.other.get_object, Bucket=bucket, Key="home/a")  # only listing was granted


def test_deny_over_plain_http_with_secure_transport_false(parties: Parties, bucket: str) -> None:
    parties.owner.put_object(Bucket=bucket, Key="k", Body=b"x")
    parties.owner.put_bucket_policy(
        Bucket=bucket,
        Policy=policy(
            bucket,
            {
                "Effect": "Deny",
                "Action": ["s3:GetObject", "s3:PutObject", "s3:ListBucket"],
                "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
        ),
    )
    denied(parties.owner.get_object, Bucket=bucket, Key="k")
    denied(parties.owner.list_objects_v2, Bucket=bucket)
    denied(parties.owner.put_object, Bucket=bucket, Key="k2", Body=b"x")
    parties.owner.delete_bucket_policy(Bucket=bucket)
    assert parties.owner.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"


def test_get_object_allowed_by_an_existing_object_tag(parties: Parties, bucket: str) -> None:
    parties.owner.put_object(Bucket=bucket, Key="pub", Body=b"p", Tagging="security=public")
    parties.owner.put_object(Bucket=bucket, Key="priv", Body=b"q", Tagging="security=private")
    parties.owner.put_object(Bucket=bucket, Key="none", Body=b"r")
    parties.owner.put_bucket_policy(
        Bucket=bucket,
        Policy=policy(
            bucket,
            {
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObjectTagging"],
                "Condition": {"StringEquals": {"s3:ExistingObjectTag/security": "public"}},
            },
        ),
    )
    assert parties.other.get_object(Bucket=bucket, Key="pub")["Body"].read() == b"p"
    denied(parties.other.get_object, Bucket=bucket, Key="priv")
    denied(parties.other.get_object, Bucket=bucket, Key="none")
    denied(parties.other.get_object, Bucket=bucket, Key="missing")
    # Retagging is decided on the tags the object has now, not the ones being set.
    tagging = {"TagSet": [{"Key": "security", "Value": "private"}]}
    parties.other.put_object_tagging(Bucket=bucket, Key="pub", Tagging=tagging)
    denied(parties.other.get_object, Bucket=bucket, Key="pub")
    denied(parties.other.put_object_tagging, Bucket=bucket, Key="pub", Tagging=tagging)


def test_put_object_needs_the_requested_tags(parties: Parties, bucket: str) -> None:
    parties.owner.put_bucket_policy(
        Bucket=bucket,
        Policy=policy(
            bucket,
            {
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:PutObjectTagging"],
                "Condition": {
                    "StringEquals": {"s3:RequestObjectTag/team": "blue"},
                    "ForAllValues:StringEquals": {"s3:RequestObjectTagKeys": ["team", "env"]},
                },
            },
        ),
    )
    denied(parties.other.put_object, Bucket=bucket, Key="a", Body=b"x")
    denied(parties.other.put_object, Bucket=bucket, Key="a", Body=b"x", Tagging="team=red")
    denied(parties.other.put_object, Bucket=bucket, Key="a", Body=b"x", Tagging="team=blue&x=1")
    parties.other.put_object(Bucket=bucket, Key="a", Body=b"x", Tagging="team=blue&env=dev")
    # PutObjectTagging: the body's tag set is the request's.
    blue = {"TagSet": [{"Key": "team", "Value": "blue"}]}
    red = {"TagSet": [{"Key": "team", "Value": "red"}]}
    parties.other.put_object_tagging(Bucket=bucket, Key="a", Tagging=blue)
    denied(parties.other.put_object_tagging, Bucket=bucket, Key="a", Tagging=red)


def test_time_and_principal_conditions(parties: Parties, bucket: str) -> None:
    parties.owner.put_object(Bucket=bucket, Key="k", Body=b"x")
    parties.owner.put_bucket_policy(
        Bucket=bucket,
        Policy=policy(
            bucket,
            {
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Condition": {
                    "DateLessThan": {"aws:CurrentTime": "2999-01-01T00:00:00Z"},
                    "StringEquals": {"aws:PrincipalAccount": parties.other_token.account_id},
                },
            },
            {
                "Effect": "Allow",
                "Action": "s3:DeleteObject",
                "Condition": {"DateLessThan": {"aws:EpochTime": "946684800"}},  # year 2000
            },
        ),
    )
    assert parties.other.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"
    assert request(f"{parties.jay.s3_url}/{bucket}/k")[0] == 403  # anonymous: no account
    denied(parties.other.delete_object, Bucket=bucket, Key="k")


@pytest.mark.parametrize(
    ("condition", "named"),
    [
        ({"StringEquals": {"aws:SourceVpce": "vpce-1"}}, "aws:SourceVpce"),
        ({"ArnLike": {"aws:Referer": "x"}}, "ArnLike"),
        ({"NumericLessThan": {"s3:max-keys": "many"}}, "many"),
    ],
)
def test_conditions_jay_cannot_enforce_are_refused(
    parties: Parties, bucket: str, condition: dict[str, Any], named: str
) -> None:
    text = policy(bucket, {"Effect": "Allow", "Action": "s3:GetObject", "Condition": condition})
    with pytest.raises(ClientError) as err:
        parties.owner.put_bucket_policy(Bucket=bucket, Policy=text)
    assert err.value.response["Error"]["Code"] == "MalformedPolicy"
    assert named in err.value.response["Error"]["Message"]
    with pytest.raises(ClientError):
        parties.owner.get_bucket_policy(Bucket=bucket)  # nothing was stored
