"""Tag sets: the Tagging body and x-amz-tagging parsers, S3's tag rules, the Tagging document
(read back with botocore's own parser) and the stored form of a bucket's tags."""

from __future__ import annotations

import urllib.parse
from typing import Any

import pytest
from botocore.parsers import RestXMLParser
from botocore.serialize import RestXMLSerializer
from botocore.session import get_session
from hypothesis import given
from hypothesis import strategies as st

from jay.errors import InvalidArgument, InvalidTag, MalformedXML
from jay.s3 import tagging

MODEL = get_session().get_service_model("s3")


def botocore_body(operation: str, tags: list[tuple[str, str]]) -> bytes:
    """The request body botocore sends for Put{Object,Bucket}Tagging."""
    params: dict[str, Any] = {
        "Bucket": "b",
        "Tagging": {"TagSet": [{"Key": k, "Value": v} for k, v in tags]},
    }
    if operation == "PutObjectTagging":
        params["Key"] = "k"
    request = RestXMLSerializer().serialize_to_request(params, MODEL.operation_model(operation))
    body = request["body"]
    return body if isinstance(body, bytes) else body.encode()


def botocore_tags(body: bytes) -> list[tuple[str, str]]:
    shape = MODEL.operation_model("GetObjectTagging").output_shape
    parsed = RestXMLParser().parse({"body": body, "headers": {}, "status_code": 200}, shape)
    return [(t["Key"], t["Value"]) for t in parsed["TagSet"]]


def xml(*tags: str, root: str = "Tagging") -> bytes:
    return f"<{root}><TagSet>{''.join(tags)}</TagSet></{root}>".encode()


def tag(key: str, value: str) -> str:
    return f"<Tag><Key>{key}</Key><Value>{value}</Value></Tag>"


# --- the body ----------------------------------------------------------------------------------


@pytest.mark.parametrize("operation", ["PutObjectTagging", "PutBucketTagging"])
def test_botocore_bodies_parse_sorted_by_key(operation: str) -> None:
    body = botocore_body(operation, [("zeta", "1"), ("Alpha", ""), ("m n", "a/b:c=d+e-f_g.h@i")])
    assert list(tagging.parse_tagging(body).items()) == [
        ("Alpha", ""),
        ("m n", "a/b:c=d+e-f_g.h@i"),
        ("zeta", "1"),
    ]


def test_namespace_comments_and_empty_sets() -> None:
    namespaced = (
        b'<?xml version="1.0" encoding="UTF-8"?>'
        b'<Tagging xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><TagSet><!-- c -->'
        b"<Tag><Value>v</Value><Key>k</Key></Tag></TagSet></Tagging>"
    )
    assert tagging.parse_tagging(namespaced) == {"k": "v"}
    assert tagging.parse_tagging(xml()) == {}
    assert tagging.parse_tagging(b"<Tagging><TagSet/></Tagging>") == {}
    assert tagging.parse_tagging(xml(tag("k", ""))) == {"k": ""}
    assert tagging.parse_tagging(xml("<Tag><Key>k</Key><Value/></Tag>")) == {"k": ""}


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not xml",
        b"<Tagging><TagSet>",
        xml(tag("k", "v"), root="Tags"),
        b"<Tagging></Tagging>",
        b"<Tagging><TagSet/><TagSet/></Tagging>",
        xml("<Tag><Key>k</Key></Tag>"),  # Value is required
        xml("<Tag><Value>v</Value></Tag>"),
        xml("<Tag><Key>a</Key><Key>b</Key><Value>v</Value></Tag>"),
        xml("<Other/>"),
        b'<!DOCTYPE t [<!ENTITY e "x">]><Tagging><TagSet/></Tagging>',
        b"<Tagging><TagSet>" + b" " * (tagging.MAX_TAGGING_BODY + 1) + b"</TagSet></Tagging>",
    ],
)
def test_malformed_bodies(body: bytes) -> None:
    with pytest.raises(MalformedXML):
        tagging.parse_tagging(body)


# --- the rules ----------------------------------------------------------------------------------


def pairs(count: int) -> list[tuple[str, str]]:
    return [(f"k{i}", str(i)) for i in range(count)]


def test_tag_count_limits() -> None:
    assert len(tagging.check_tags(pairs(10))) == 10
    with pytest.raises(InvalidTag, match="Object tags cannot be greater than 10"):
        tagging.check_tags(pairs(11))
    assert len(tagging.check_tags(pairs(50), for_bucket=True)) == 50
    with pytest.raises(InvalidTag):
        tagging.check_tags(pairs(51), for_bucket=True)
    with pytest.raises(InvalidTag):
        tagging.parse_tagging(xml(*(tag(f"k{i}", "v") for i in range(11))))
    assert len(tagging.parse_tagging(xml(*(tag(f"k{i}", "v") for i in range(11))), for_bucket=True))


def test_lengths_count_characters_not_bytes() -> None:
    key, value = "é" * 128, "鍵" * 256
    assert tagging.check_tags([(key, value)]) == {key: value}
    for bad in ([("é" * 129, "")], [("k", "鍵" * 257)], [("", "v")]):
        with pytest.raises(InvalidTag):
            tagging.check_tags(bad)


@pytest.mark.parametrize(
    "text",
    ["Ünïcödé", "ключ", "鍵", "٣", "a\u00a0b", "a\u3000b", "+-=._:/@", "Z9 z0"],
)
def test_letters_numbers_spaces_and_the_listed_punctuation_are_allowed(text: str) -> None:
    assert tagging.check_tags([(text, text)]) == {text: text}


@pytest.mark.parametrize("bad", ["a*b", "a\tb", "a\nb", "a#b", "a,b", "a&b", "a<b", "😀", "a%b"])
def test_other_characters_are_invalid_in_keys_and_values(bad: str) -> None:
    with pytest.raises(InvalidTag, match="TagKey"):
        tagging.check_tags([(bad, "v")])
    with pytest.raises(InvalidTag, match="TagValue"):
        tagging.check_tags([("k", bad)])


@pytest.mark.parametrize("key", ["aws:x", "AWS:x", "Aws:", "aws:"])
def test_the_aws_prefix_is_reserved(key: str) -> None:
    with pytest.raises(InvalidTag, match="System tags"):
        tagging.check_tags([(key, "v")])
    assert tagging.check_tags([("aws", "v"), ("xaws:", "v")]) == {"aws": "v", "xaws:": "v"}


def test_duplicate_keys_are_invalid_but_keys_are_case_sensitive() -> None:
    with pytest.raises(InvalidTag, match="same key"):
        tagging.parse_tagging(xml(tag("k", "1"), tag("k", "2")))
    assert tagging.parse_tagging(xml(tag("k", "1"), tag("K", "2"))) == {"K": "2", "k": "1"}


# --- x-amz-tagging -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "tags"),
    [
        ("", {}),
        ("foo=bar&bar", {"bar": "", "foo": "bar"}),
        ("a=&b=2", {"a": "", "b": "2"}),
        ("a%20b=c+d&e=f%2Bg", {"a b": "c d", "e": "f+g"}),
        ("k=a%3Db", {"k": "a=b"}),
        ("%C3%A9t%C3%A9=%E9%8D%B5", {"été": "鍵"}),
        ("a=1&&b=2&", {"a": "1", "b": "2"}),
    ],
)
def test_header_is_url_query_encoded(header: str, tags: dict[str, str]) -> None:
    assert tagging.parse_tagging_header(header) == tags


@pytest.mark.parametrize("header", ["a=1&a=2", "a=1&b&a", "a=%zz", "a=%C3", "%FF=1"])
def test_header_encoding_errors_and_repeats_are_invalid_arguments(header: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        tagging.parse_tagging_header(header)
    assert err.value.details["argument_name"] == "x-amz-tagging"


@pytest.mark.parametrize(
    "header", ["aws:k=v", "=v", "k=a*b", "&".join(f"k{i}=v" for i in range(11))]
)
def test_header_tags_follow_the_tag_rules(header: str) -> None:
    with pytest.raises(InvalidTag):
        tagging.parse_tagging_header(header)


# --- round trips -------------------------------------------------------------------------------

_ALLOWED = st.characters(categories=("L", "N", "Zs"), exclude_characters="\x85") | st.sampled_from(
    "_.:/=+-@"
)
tag_sets = st.dictionaries(
    st.text(_ALLOWED, min_size=1, max_size=128).filter(lambda k: not k.lower().startswith("aws:")),
    st.text(_ALLOWED, max_size=256),
    max_size=10,
)


@given(tag_sets)
def test_render_parse_and_header_round_trips(tags: dict[str, str]) -> None:
    ordered = dict(sorted(tags.items()))
    rendered = tagging.render_tagging(tags)
    assert botocore_tags(rendered) == list(ordered.items())
    assert tagging.parse_tagging(rendered) == ordered
    assert list(tagging.parse_tagging(botocore_body("PutObjectTagging", list(tags.items())))) == (
        list(ordered)
    )
    header = urllib.parse.urlencode(list(tags.items()), quote_via=urllib.parse.quote)
    assert tagging.parse_tagging_header(header) == ordered
    assert tagging.parse_tagging_header(urllib.parse.urlencode(list(tags.items()))) == ordered


@given(st.dictionaries(st.text(_ALLOWED, min_size=1), st.text(_ALLOWED), max_size=50))
def test_bucket_tags_are_stored_as_canonical_json(tags: dict[str, str]) -> None:
    stored = tagging.encode_bucket_tags(tags)
    assert tagging.decode_bucket_tags(stored) == tags
    assert stored == tagging.encode_bucket_tags(dict(reversed(list(tags.items()))))


def test_empty_tag_set_renders_an_empty_tag_set() -> None:
    body = tagging.render_tagging({})
    assert b"<TagSet></TagSet>" in body
    assert botocore_tags(body) == []
