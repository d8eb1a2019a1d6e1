"""jay.s3.conditions.request_values: an S3 request's policy condition values."""

from __future__ import annotations

from typing import Any

import pytest

from jay.errors import InvalidArgument
from jay.s3.conditions import request_values

ALL = frozenset(
    {
        "aws:securetransport",
        "aws:referer",
        "aws:useragent",
        "s3:prefix",
        "s3:delimiter",
        "s3:max-keys",
        "s3:x-amz-acl",
        "s3:x-amz-server-side-encryption",
        "s3:signatureversion",
        "s3:authtype",
        "s3:requestobjecttagkeys",
        "s3:requestobjecttag/team",
    }
)


def values(keys: frozenset[str] = ALL, **kw: Any) -> dict[str, tuple[str, ...]]:
    args: dict[str, Any] = {
        "operation": "PutObject",
        "headers": {},
        "params": {},
        "auth_method": "anonymous",
        "is_secure": False,
    }
    args.update(kw)
    return request_values(keys, **args)


def test_only_the_asked_keys_the_request_has() -> None:
    got = values(
        headers={"referer": "https://a/", "user-agent": "boto3", "x-amz-acl": "private"},
        auth_method="sigv4",
        is_secure=True,
    )
    assert got == {
        "aws:securetransport": ("true",),
        "aws:referer": ("https://a/",),
        "aws:useragent": ("boto3",),
        "s3:x-amz-acl": ("private",),
        "s3:signatureversion": ("AWS4-HMAC-SHA256",),
        "s3:authtype": ("REST-HEADER",),
    }
    assert values(frozenset({"aws:referer"}), headers={"user-agent": "x"}) == {}
    assert values(frozenset({"aws:securetransport"})) == {"aws:securetransport": ("false",)}


@pytest.mark.parametrize(
    ("auth_method", "headers", "expected"),
    [
        ("sigv4", {"authorization": "AWS4-HMAC-SHA256 …"}, ("AWS4-HMAC-SHA256", "REST-HEADER")),
        ("sigv4-presigned", {}, ("AWS4-HMAC-SHA256", "REST-QUERY-STRING")),
        ("sigv4-post", {}, ("AWS4-HMAC-SHA256", "POST")),
        ("sigv2", {"authorization": "AWS k:s"}, ("AWS", "REST-HEADER")),
        ("sigv2", {}, ("AWS", "REST-QUERY-STRING")),
        ("sigv2-post", {}, ("AWS", "POST")),
        ("bearer", {}, None),
        ("jay-presigned", {}, None),
        ("anonymous", {}, None),
    ],
)
def test_signature_keys(
    auth_method: str, headers: dict[str, str], expected: tuple[str, str] | None
) -> None:
    got = values(auth_method=auth_method, headers=headers)
    if expected is None:
        assert "s3:signatureversion" not in got and "s3:authtype" not in got
    else:
        assert (got["s3:signatureversion"][0], got["s3:authtype"][0]) == expected


def test_listing_parameters_only_on_listings() -> None:
    params = {"prefix": "home/", "max-keys": "10"}
    got = values(operation="ListObjectsV2", params=params)
    assert got == {
        "aws:securetransport": ("false",),
        "s3:prefix": ("home/",),
        "s3:max-keys": ("10",),
    }
    assert "s3:prefix" not in values(operation="GetObject", params=params)
    assert values(operation="ListObjects", params={"prefix": ""})["s3:prefix"] == ("",)


def test_request_tags_from_the_header_the_body_or_a_form() -> None:
    got = values(headers={"x-amz-tagging": "team=blue&env=dev"})
    assert sorted(got["s3:requestobjecttagkeys"]) == ["env", "team"]
    assert got["s3:requestobjecttag/team"] == ("blue",)
    body = values(headers={"x-amz-tagging": "team=red"}, body_tags={"team": "green"})
    assert body["s3:requestobjecttag/team"] == ("green",)
    assert "s3:requestobjecttagkeys" not in values()
    with pytest.raises(InvalidArgument):
        values(headers={"x-amz-tagging": "a=1&a=2"})
    tagging = "<Tagging><TagSet><Tag><Key>team</Key><Value>x</Value></Tag></TagSet></Tagging>"
    form = values(
        form_fields={"tagging": tagging, "acl": "public-read", "referer": "spoofed"},
        headers={"referer": "https://real/"},
    )
    assert form["s3:requestobjecttag/team"] == ("x",)
    assert form["s3:x-amz-acl"] == ("public-read",)
    assert form["aws:referer"] == ("https://real/",)  # a form field is no request header
