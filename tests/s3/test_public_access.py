"""PublicAccessBlockConfiguration and PolicyStatus XML (jay.s3.public_access)."""

from __future__ import annotations

import itertools

import pytest
from defusedxml.ElementTree import fromstring

from jay.auth.public_access import PublicAccessBlock
from jay.errors import MalformedXML
from jay.s3.public_access import (
    MAX_PUBLIC_ACCESS_BLOCK_BODY,
    parse_public_access_block,
    render_policy_status,
    render_public_access_block,
)

NS = "http://s3.amazonaws.com/doc/2006-03-01/"
ELEMENTS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


def document(inner: str, root: str = "PublicAccessBlockConfiguration") -> bytes:
    return f'<?xml version="1.0" encoding="UTF-8"?><{root} xmlns="{NS}">{inner}</{root}>'.encode()


@pytest.mark.parametrize("flags", list(itertools.product((False, True), repeat=4)))
def test_render_then_parse(flags: tuple[bool, bool, bool, bool]) -> None:
    block = PublicAccessBlock(*flags)
    body = render_public_access_block(block)
    root = fromstring(body)
    assert root.tag == f"{{{NS}}}PublicAccessBlockConfiguration"
    assert [(child.tag.rpartition("}")[2], child.text) for child in root] == [
        (name, "true" if flag else "false") for name, flag in zip(ELEMENTS, flags, strict=True)
    ]
    assert parse_public_access_block(body) == block


def test_missing_elements_are_false() -> None:
    assert parse_public_access_block(document("")) == PublicAccessBlock()
    assert parse_public_access_block(
        document("<RestrictPublicBuckets>true</RestrictPublicBuckets>")
    ) == PublicAccessBlock(restrict_public_buckets=True)
    # Without a namespace, with whitespace, comments and any letter case of the values.
    body = (
        b"<PublicAccessBlockConfiguration>\n  <!-- mine -->\n"
        b"  <IgnorePublicAcls> TRUE </IgnorePublicAcls>\n"
        b"  <BlockPublicPolicy>False</BlockPublicPolicy>\n"
        b"</PublicAccessBlockConfiguration>"
    )
    assert parse_public_access_block(body) == PublicAccessBlock(ignore_public_acls=True)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not xml",
        b"<PublicAccessBlockConfiguration>",
        document("", root="PublicAccessBlock"),
        document("<BlockPublicAcls>yes</BlockPublicAcls>"),
        document("<BlockPublicAcls>1</BlockPublicAcls>"),
        document("<BlockPublicAcls></BlockPublicAcls>"),
        document("<BlockPublicAcls>true</BlockPublicAcls><BlockPublicAcls>true</BlockPublicAcls>"),
        document("<BlockPublicAcl>true</BlockPublicAcl>"),
        document("<BlockPublicAcls><Value>true</Value></BlockPublicAcls>"),
        b'<!DOCTYPE x [<!ENTITY e "true">]><PublicAccessBlockConfiguration>'
        b"<BlockPublicAcls>&e;</BlockPublicAcls></PublicAccessBlockConfiguration>",
        document(" " * MAX_PUBLIC_ACCESS_BLOCK_BODY),
    ],
)
def test_malformed(body: bytes) -> None:
    with pytest.raises(MalformedXML):
        parse_public_access_block(body)


@pytest.mark.parametrize("is_public", [True, False])
def test_policy_status(is_public: bool) -> None:
    root = fromstring(render_policy_status(is_public))
    assert root.tag == f"{{{NS}}}PolicyStatus"
    (child,) = list(root)
    assert (child.tag, child.text) == (f"{{{NS}}}IsPublic", "true" if is_public else "false")
