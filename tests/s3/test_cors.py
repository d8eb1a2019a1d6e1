"""CORS configurations without sockets: parsing, validation, storage form, matching."""

from __future__ import annotations

import pytest

from jay.errors import InvalidRequest, MalformedXML
from jay.s3 import cors

NS = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'


def doc(*rules: str, ns: str = NS) -> bytes:
    return f"<CORSConfiguration {ns}>{''.join(rules)}</CORSConfiguration>".encode()


RULE = (
    "<CORSRule><ID>web</ID><AllowedOrigin>https://*.example.com</AllowedOrigin>"
    "<AllowedMethod>GET</AllowedMethod><AllowedMethod>PUT</AllowedMethod>"
    "<AllowedHeader>x-amz-*</AllowedHeader><AllowedHeader>Content-Type</AllowedHeader>"
    "<ExposeHeader>ETag</ExposeHeader><MaxAgeSeconds>600</MaxAgeSeconds></CORSRule>"
)


def test_parse_keeps_every_field_and_round_trips_through_json_and_xml() -> None:
    rules = cors.parse_configuration(
        doc(
            RULE,
            "<CORSRule><AllowedOrigin>*</AllowedOrigin>"
            "<AllowedMethod>HEAD</AllowedMethod></CORSRule>",
        )
    )
    assert rules[0] == cors.CorsRule(
        allowed_origins=("https://*.example.com",),
        allowed_methods=("GET", "PUT"),
        allowed_headers=("x-amz-*", "Content-Type"),
        expose_headers=("ETag",),
        max_age_seconds=600,
        rule_id="web",
    )
    assert rules[1].max_age_seconds is None and rules[1].rule_id == ""
    assert cors.from_json(cors.to_json(rules)) == tuple(rules)
    assert cors.parse_configuration(cors.render_configuration(rules)) == rules
    # No namespace is fine too.
    assert cors.parse_configuration(doc(RULE, ns="")) == rules[:1]


@pytest.mark.parametrize(
    "body",
    [
        b"<CORSConfiguration",
        b"<Other/>",
        doc(),
        doc("<CORSRule><AllowedMethod>GET</AllowedMethod></CORSRule>"),
        doc("<CORSRule><AllowedOrigin>*</AllowedOrigin></CORSRule>"),
        doc(
            "<CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>"
            "<Bogus/></CORSRule>"
        ),
        doc(
            "<CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>"
            "<MaxAgeSeconds>-1</MaxAgeSeconds></CORSRule>"
        ),
        doc("<NotARule/>"),
        b'<!DOCTYPE x [<!ENTITY a "b">]><CORSConfiguration/>',
    ],
)
def test_malformed_documents(body: bytes) -> None:
    with pytest.raises(MalformedXML):
        cors.parse_configuration(body)


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (
            "<AllowedOrigin>*</AllowedOrigin><AllowedMethod>PATCH</AllowedMethod>",
            "Unsupported method is PATCH",
        ),
        (
            "<AllowedOrigin>*.a.*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>",
            "more than one wildcard",
        ),
        (
            "<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>"
            "<AllowedHeader>**</AllowedHeader>",
            "more than one wildcard",
        ),
        (
            "<AllowedOrigin>a&#13;&#10;Set-Cookie: x</AllowedOrigin><AllowedMethod>GET</AllowedMethod>",
            "control character",
        ),
        (
            f"<ID>{'i' * 256}</ID><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>",
            "at most 255",
        ),
    ],
)
def test_invalid_rules(rule: str, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        cors.parse_configuration(doc(f"<CORSRule>{rule}</CORSRule>"))


def test_at_most_100_rules_and_64_kb() -> None:
    one = "<CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule>"
    assert len(cors.parse_configuration(doc(one * 100))) == 100
    with pytest.raises(InvalidRequest):
        cors.parse_configuration(doc(one * 101))
    with pytest.raises(MalformedXML):
        cors.parse_configuration(doc(one) + b" " * cors.MAX_CONFIGURATION_BYTES)


RULES = cors.parse_configuration(
    doc(
        "<CORSRule><AllowedOrigin>*suffix</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule>",
        "<CORSRule><AllowedOrigin>start*end</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule>",
        "<CORSRule><AllowedOrigin>prefix*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule>",
        "<CORSRule><AllowedOrigin>*.put</AllowedOrigin><AllowedMethod>PUT</AllowedMethod>"
        "<AllowedHeader>X-Amz-*</AllowedHeader><AllowedHeader>content-type</AllowedHeader></CORSRule>",
    )
)


@pytest.mark.parametrize(
    ("origin", "method", "expected"),
    [
        ("foo.suffix", "GET", 0),
        ("suffix", "GET", 0),
        ("foo.suffix.get", "GET", None),
        ("startend", "GET", 1),
        ("start12end", "GET", 1),
        ("0start12end", "GET", None),
        ("prefix.suffix", "GET", 0),
        ("bla.prefix", "GET", None),
        ("foo.put", "GET", None),
        ("foo.put", "PUT", 3),
        ("foo.suffix", "PUT", None),
        ("FOO.SUFFIX", "GET", None),  # origins compare exactly
    ],
)
def test_first_matching_rule(origin: str, method: str, expected: int | None) -> None:
    found = cors.find_rule(RULES, origin, method)
    assert found is (RULES[expected] if expected is not None else None)


def test_requested_headers_must_all_be_allowed_case_insensitively() -> None:
    wanted = cors.requested_headers("x-amz-date, Content-Type,X-AMZ-META-A")
    assert wanted == ["x-amz-date", "Content-Type", "X-AMZ-META-A"]
    assert cors.find_rule(RULES, "a.put", "PUT", wanted) is RULES[3]
    assert cors.find_rule(RULES, "a.put", "PUT", ["x-amz-date", "authorization"]) is None
    # A rule without AllowedHeader admits no requested header at all.
    assert cors.find_rule(RULES, "startend", "GET", ["x-amz-date"]) is None


def test_response_headers() -> None:
    rule = cors.parse_configuration(doc(RULE))[0]
    got = dict(
        cors.response_headers(
            rule, "https://a.example.com", preflight=True, request_headers=["x-amz-date"]
        )
    )
    assert got == {
        b"Access-Control-Allow-Origin": b"https://a.example.com",
        b"Access-Control-Allow-Methods": b"GET, PUT",
        b"Access-Control-Allow-Credentials": b"true",
        b"Access-Control-Allow-Headers": b"x-amz-date",
        b"Access-Control-Expose-Headers": b"ETag",
        b"Access-Control-Max-Age": b"600",
        b"Vary": b"Origin, Access-Control-Request-Headers, Access-Control-Request-Method",
    }
    anyone = cors.parse_configuration(
        doc(
            "<CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule>"
        )
    )[0]
    actual = dict(cors.response_headers(anyone, "https://x.test", preflight=False))
    assert actual[b"Access-Control-Allow-Origin"] == b"*"
    assert b"Access-Control-Allow-Credentials" not in actual
    assert b"Access-Control-Allow-Headers" not in actual


def test_rules_of_caches_decoded_rules() -> None:
    stored = cors.to_json(RULES)
    assert cors.rules_of(stored) == tuple(RULES)
    assert cors.rules_of(stored) is cors.rules_of(stored)
