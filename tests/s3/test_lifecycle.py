"""Lifecycle configuration XML (jay.s3.lifecycle) and the rules it yields (jay.storage.lifecycle):
parsing, S3's validation errors, rendering back, due dates and rule matching. No sockets."""

from __future__ import annotations

import calendar
import json
from collections.abc import Iterator

import pytest

from jay import errors
from jay.auth.policy import parse_policy
from jay.s3.lifecycle import parse_lifecycle_configuration, render_lifecycle_configuration
from jay.s3.routing import route
from jay.storage.lifecycle import (
    FILTER_AND,
    FILTER_EMPTY,
    FILTER_LEGACY_PREFIX,
    FILTER_TAG,
    LifecycleRule,
    RuleFilter,
    cached_rules,
    days_after,
    decode_rules,
    encode_rules,
    object_expiration,
    upload_abort_due,
)

NS = ' xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'


def ids() -> Iterator[str]:
    n = 0
    while True:
        n += 1
        yield f"generated-{n}"


def parse(rules_xml: str) -> tuple[LifecycleRule, ...]:
    body = f"<LifecycleConfiguration{NS}>{rules_xml}</LifecycleConfiguration>".encode()
    return parse_lifecycle_configuration(body, new_rule_id=ids().__next__)


def rule(inner: str) -> str:
    return f"<Rule>{inner}</Rule>"


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> float:
    return float(calendar.timegm((year, month, day, hour, minute, 0)))


EXPIRE_1 = "<Expiration><Days>1</Days></Expiration>"


# --- routing --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "operation"),
    [
        ("GET", "GetBucketLifecycleConfiguration"),
        ("PUT", "PutBucketLifecycleConfiguration"),
        ("DELETE", "DeleteBucketLifecycle"),
        ("POST", "NotImplemented"),
    ],
)
def test_lifecycle_routes(method: str, operation: str) -> None:
    assert route(method, "localhost", "/b?lifecycle").operation == operation
    # On an object the sub-resource means nothing: never an object operation.
    assert route(method, "localhost", "/b/k?lifecycle").operation == "NotImplemented"


# --- parsing ---------------------------------------------------------------------------------


def test_legacy_prefix_rule_with_days() -> None:
    (r,) = parse(rule(f"<ID>r1</ID><Prefix>logs/</Prefix><Status>Enabled</Status>{EXPIRE_1}"))
    assert r.rule_id == "r1" and r.is_enabled
    assert r.filter == RuleFilter(form=FILTER_LEGACY_PREFIX, prefix="logs/")
    assert r.expiration_days == 1 and r.expiration_date is None


def test_every_filter_form() -> None:
    rules = parse(
        rule(f"<ID>a</ID><Filter/><Status>Enabled</Status>{EXPIRE_1}")
        + rule(
            f"<ID>b</ID><Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter>"
            f"<Status>Disabled</Status>{EXPIRE_1}"
        )
        + rule(
            "<ID>c</ID><Filter><And><Prefix>p/</Prefix><Tag><Key>k</Key><Value>v</Value></Tag>"
            "<Tag><Key>x</Key><Value></Value></Tag><ObjectSizeGreaterThan>10</ObjectSizeGreaterThan>"
            "<ObjectSizeLessThan>100</ObjectSizeLessThan></And></Filter>"
            f"<Status>Enabled</Status>{EXPIRE_1}"
        )
        + rule(
            "<ID>d</ID><Filter><ObjectSizeLessThan>5</ObjectSizeLessThan></Filter>"
            f"<Status>Enabled</Status>{EXPIRE_1}"
        )
    )
    assert rules[0].filter.form == FILTER_EMPTY
    assert rules[1].filter == RuleFilter(form=FILTER_TAG, tags=(("k", "v"),))
    assert not rules[1].is_enabled
    assert rules[2].filter == RuleFilter(
        form=FILTER_AND,
        prefix="p/",
        tags=(("k", "v"), ("x", "")),
        size_greater_than=10,
        size_less_than=100,
    )
    assert rules[3].filter.size_less_than == 5


def test_missing_id_is_generated_and_date_is_kept_as_midnight() -> None:
    (r,) = parse(
        rule(
            "<Filter><Prefix></Prefix></Filter><Status>Enabled</Status>"
            "<Expiration><Date>2030-01-01T00:00:00.000Z</Date></Expiration>"
        )
    )
    assert r.rule_id == "generated-1"
    assert r.expiration_date == int(utc(2030, 1, 1))


def test_noncurrent_actions_and_abort_are_stored() -> None:
    (r,) = parse(
        rule(
            "<ID>n</ID><Prefix>x/</Prefix><Status>Enabled</Status>"
            "<NoncurrentVersionExpiration><NoncurrentDays>2</NoncurrentDays>"
            "<NewerNoncurrentVersions>3</NewerNoncurrentVersions></NoncurrentVersionExpiration>"
            "<NoncurrentVersionTransition><NoncurrentDays>0</NoncurrentDays>"
            "<StorageClass>GLACIER</StorageClass></NoncurrentVersionTransition>"
            "<AbortIncompleteMultipartUpload><DaysAfterInitiation>7</DaysAfterInitiation>"
            "</AbortIncompleteMultipartUpload>"
        )
    )
    assert r.noncurrent_expiration is not None
    assert r.noncurrent_expiration.noncurrent_days == 2
    assert r.noncurrent_expiration.newer_noncurrent_versions == 3
    assert [(t.noncurrent_days, t.storage_class) for t in r.noncurrent_transitions] == [
        (0, "GLACIER")
    ]
    assert r.abort_days_after_initiation == 7
    assert not r.expires_objects


GOOD_TAIL = f"<Prefix>a/</Prefix><Status>Enabled</Status>{EXPIRE_1}"


@pytest.mark.parametrize(
    ("rules_xml", "error", "message"),
    [
        # schema violations
        ("", errors.MalformedXML, None),
        (
            rule("<ID>x</ID><Prefix>a/</Prefix><Status>enabled</Status>" + EXPIRE_1),
            errors.MalformedXML,
            None,
        ),
        (rule("<ID>x</ID><Prefix>a/</Prefix>" + EXPIRE_1), errors.MalformedXML, None),
        (rule(f"<ID>x</ID><Status>Enabled</Status>{EXPIRE_1}"), errors.MalformedXML, None),
        (
            rule(f"<ID>x</ID><Prefix>a</Prefix><Filter/><Status>Enabled</Status>{EXPIRE_1}"),
            errors.MalformedXML,
            None,
        ),
        (
            rule(
                "<ID>x</ID><Filter><Prefix>a</Prefix><ObjectSizeLessThan>5</ObjectSizeLessThan>"
                f"</Filter><Status>Enabled</Status>{EXPIRE_1}"
            ),
            errors.MalformedXML,
            None,
        ),
        (rule("<ID>x</ID>" + GOOD_TAIL + "<Bogus/>"), errors.MalformedXML, None),
        (rule("<ID>x</ID><ID>y</ID>" + GOOD_TAIL), errors.MalformedXML, None),
        (
            rule("<ID>x</ID><Prefix>a/</Prefix><Status>Enabled</Status><Expiration/>"),
            errors.MalformedXML,
            None,
        ),
        (
            rule(
                "<ID>x</ID><Prefix>a/</Prefix><Status>Enabled</Status><Expiration><Days>1</Days>"
                "<ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration>"
            ),
            errors.MalformedXML,
            None,
        ),
        (
            rule(
                "<ID>x</ID><Prefix>a/</Prefix><Status>Enabled</Status>"
                "<Expiration><Days>1.5</Days></Expiration>"
            ),
            errors.MalformedXML,
            None,
        ),
        (
            rule(
                "<ID>x</ID><Prefix>a/</Prefix><Status>Enabled</Status>"
                "<Expiration><Days>2147483648</Days></Expiration>"
            ),
            errors.MalformedXML,
            None,
        ),
        # values
        (rule("<ID>" + "a" * 256 + "</ID>" + GOOD_TAIL), errors.InvalidArgument, "ID length"),
        (rule("<ID>x</ID>" + GOOD_TAIL) * 2, errors.InvalidArgument, "Rule ID must be unique"),
        (
            rule(
                "<ID>x</ID><Prefix>a/</Prefix><Status>Enabled</Status>"
                "<Expiration><Days>0</Days></Expiration>"
            ),
            errors.InvalidArgument,
            "'Days' for Expiration action must be a positive integer",
        ),
        (
            rule(
                "<ID>x</ID><Prefix>a/</Prefix><Status>Enabled</Status>"
                "<Expiration><Date>1970-08-22T19:08:21Z</Date></Expiration>"
            ),
            errors.InvalidArgument,
            "'Date' must be at midnight GMT",
        ),
        (
            rule(
                "<ID>x</ID><Prefix>a/</Prefix><Status>Enabled</Status>"
                "<Expiration><Date>2030-01-01T00:00:00+02:00</Date></Expiration>"
            ),
            errors.InvalidArgument,
            "midnight GMT",
        ),
        (
            rule(
                "<ID>x</ID><Prefix>a/</Prefix><Status>Enabled</Status>"
                "<Expiration><Date>yesterday</Date></Expiration>"
            ),
            errors.InvalidArgument,
            "midnight GMT",
        ),
        (
            rule(
                "<ID>x</ID><Prefix>a/</Prefix><Status>Enabled</Status><AbortIncompleteMultipart"
                "Upload><DaysAfterInitiation>0</DaysAfterInitiation></AbortIncompleteMultipartUpload>"
            ),
            errors.InvalidArgument,
            "'DaysAfterInitiation' for AbortIncompleteMultipartUpload action must be a positive",
        ),
        (
            rule(
                "<ID>x</ID><Filter><And><ObjectSizeGreaterThan>10</ObjectSizeGreaterThan>"
                "<ObjectSizeLessThan>10</ObjectSizeLessThan></And></Filter>"
                f"<Status>Enabled</Status>{EXPIRE_1}"
            ),
            errors.InvalidArgument,
            "ObjectSizeGreaterThan must be less than ObjectSizeLessThan",
        ),
        # combinations S3 refuses
        (
            rule("<ID>x</ID><Prefix>a/</Prefix><Status>Enabled</Status>"),
            errors.InvalidRequest,
            "At least one action needs to be specified in a rule",
        ),
        (
            rule(
                "<ID>x</ID><Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter>"
                "<Status>Enabled</Status><AbortIncompleteMultipartUpload><DaysAfterInitiation>1"
                "</DaysAfterInitiation></AbortIncompleteMultipartUpload>"
            ),
            errors.InvalidRequest,
            "AbortIncompleteMultipartUpload cannot be specified with Tags.",
        ),
        (
            rule(
                "<ID>x</ID><Filter><And><Tag><Key>k</Key><Value>v</Value></Tag><Tag><Key>k</Key>"
                f"<Value>w</Value></Tag></And></Filter><Status>Enabled</Status>{EXPIRE_1}"
            ),
            errors.InvalidRequest,
            "Duplicate Tag Keys",
        ),
        # a storage class jay does not have: validated first, then refused
        (
            rule(
                "<ID>x</ID><Prefix>a/</Prefix><Status>Enabled</Status>"
                "<Transition><Date>2022-09-27T10:00:00Z</Date><StorageClass>GLACIER</StorageClass></Transition>"
            ),
            errors.InvalidArgument,
            None,
        ),
        (
            rule(
                "<ID>x</ID><Prefix>a/</Prefix><Status>Enabled</Status>"
                "<Transition><Days>30</Days><StorageClass>GLACIER</StorageClass></Transition>"
            ),
            errors.NotImplementedOperation,
            "single storage class",
        ),
    ],
)
def test_invalid_configurations(
    rules_xml: str, error: type[errors.JayError], message: str | None
) -> None:
    with pytest.raises(error) as raised:
        parse(rules_xml)
    assert type(raised.value) is error
    if message is not None:
        assert message in raised.value.message


def test_not_xml_and_wrong_root_are_malformed() -> None:
    new_id = ids().__next__
    for body in (b"<LifecycleConfiguration>", b"<Other/>", b"not xml"):
        with pytest.raises(errors.MalformedXML):
            parse_lifecycle_configuration(body, new_rule_id=new_id)


def test_at_most_1000_rules() -> None:
    one = rule(f"<Prefix>a/</Prefix><Status>Enabled</Status>{EXPIRE_1}")
    assert len(parse(one * 1000)) == 1000
    with pytest.raises(errors.InvalidRequest):
        parse(one * 1001)


# --- rendering and the stored form --------------------------------------------------------


def test_render_keeps_the_shape_it_was_given() -> None:
    rules = parse(
        rule(f"<ID>legacy</ID><Prefix>a/</Prefix><Status>Enabled</Status>{EXPIRE_1}")
        + rule(
            "<ID>and</ID><Filter><And><Prefix>p</Prefix><Tag><Key>k</Key><Value>&amp;v</Value>"
            "</Tag></And></Filter><Status>Disabled</Status>"
            "<Expiration><Date>2030-01-01T00:00:00Z</Date></Expiration>"
        )
        + rule(
            "<ID>m</ID><Filter/><Status>Enabled</Status>"
            "<Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration>"
            "<AbortIncompleteMultipartUpload><DaysAfterInitiation>3</DaysAfterInitiation>"
            "</AbortIncompleteMultipartUpload>"
        )
    )
    body = render_lifecycle_configuration(rules).decode()
    assert body.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<LifecycleConfiguration xmlns=')
    assert (
        "<Rule><ID>legacy</ID><Prefix>a/</Prefix><Status>Enabled</Status>"
        "<Expiration><Days>1</Days></Expiration></Rule>"
    ) in body
    assert (
        "<Rule><ID>and</ID><Filter><And><Prefix>p</Prefix><Tag><Key>k</Key><Value>&amp;v</Value>"
        "</Tag></And></Filter><Status>Disabled</Status><Expiration><Date>2030-01-01T00:00:00.000Z"
        "</Date></Expiration></Rule>"
    ) in body
    assert "<Filter></Filter>" in body
    assert (
        "<Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration>"
        "<AbortIncompleteMultipartUpload><DaysAfterInitiation>3</DaysAfterInitiation>"
        "</AbortIncompleteMultipartUpload></Rule>"
    ) in body
    # What is rendered parses back to the same rules.
    again = parse_lifecycle_configuration(render_lifecycle_configuration(rules), new_rule_id=str)
    assert again == rules


def test_stored_json_round_trips_and_is_canonical() -> None:
    rules = parse(
        rule(
            "<ID>a</ID><Filter><And><Tag><Key>k</Key><Value>v</Value></Tag>"
            "<ObjectSizeGreaterThan>0</ObjectSizeGreaterThan></And></Filter>"
            f"<Status>Enabled</Status>{EXPIRE_1}"
            "<NoncurrentVersionExpiration><NoncurrentDays>4</NoncurrentDays>"
            "</NoncurrentVersionExpiration>"
        )
    )
    text = encode_rules(rules)
    assert decode_rules(text) == rules
    assert cached_rules(text) == rules
    assert encode_rules(decode_rules(text)) == text
    assert " " not in text
    with pytest.raises(ValueError):
        decode_rules('{"version": 99, "rules": []}')
    with pytest.raises(ValueError):
        decode_rules('{"version": 1, "rules": [{}]}')


# --- due dates and matching ----------------------------------------------------------------


def test_days_round_up_to_the_next_midnight() -> None:
    # S3's example: created 2014-01-15 10:30 UTC with 3 days is due 2014-01-19 00:00 UTC.
    assert days_after(utc(2014, 1, 15, 10, 30), 3) == utc(2014, 1, 19)
    assert days_after(utc(2014, 1, 15, 23, 59), 1) == utc(2014, 1, 17)
    assert days_after(utc(2014, 12, 31, 0, 1), 1) == utc(2015, 1, 2)


def make_rule(rule_id: str, filter_: RuleFilter, **kw: object) -> LifecycleRule:
    return LifecycleRule(rule_id=rule_id, status="Enabled", filter=filter_, **kw)  # type: ignore[arg-type]


def test_filters_match_prefix_size_and_tags() -> None:
    f = RuleFilter(
        form=FILTER_AND,
        prefix="logs/",
        tags=(("env", "dev"),),
        size_greater_than=10,
        size_less_than=100,
    )
    assert f.matches("logs/a", 50, {"env": "dev", "other": "x"})
    assert not f.matches("data/a", 50, {"env": "dev"})
    assert not f.matches("logs/a", 10, {"env": "dev"})  # strictly greater
    assert not f.matches("logs/a", 100, {"env": "dev"})  # strictly less
    assert not f.matches("logs/a", 50, {"env": "prod"})
    assert not f.matches("logs/a", 50, {})
    assert RuleFilter().matches("anything", 0, {})


def test_object_expiration_picks_the_earliest_enabled_rule() -> None:
    created = utc(2024, 3, 1, 12)
    rules = (
        make_rule("slow", RuleFilter(prefix="a"), expiration_days=30),
        make_rule("fast", RuleFilter(prefix="a/"), expiration_days=2),
        LifecycleRule(rule_id="off", status="Disabled", filter=RuleFilter(), expiration_days=1),
        make_rule("dated", RuleFilter(prefix="b/"), expiration_date=int(utc(2024, 1, 1))),
        make_rule("marker", RuleFilter(), expired_object_delete_marker=True),
        make_rule("tagged", RuleFilter(tags=(("t", "1"),)), expiration_days=1),
    )
    assert object_expiration(rules, "a/x", 1, {}, created) == (utc(2024, 3, 4), "fast")
    assert object_expiration(rules, "ab", 1, {}, created) == (utc(2024, 4, 1), "slow")
    assert object_expiration(rules, "b/x", 1, {}, created) == (utc(2024, 1, 1), "dated")
    assert object_expiration(rules, "c", 1, {}, created) is None
    assert object_expiration(rules, "c", 1, {"t": "1"}, created) == (utc(2024, 3, 3), "tagged")


def test_upload_abort_due_by_prefix() -> None:
    rules = (
        make_rule("abort", RuleFilter(prefix="tmp/"), abort_days_after_initiation=2),
        make_rule("expire-only", RuleFilter(), expiration_days=1),
    )
    initiated = utc(2024, 5, 5, 8)
    assert upload_abort_due(rules, "tmp/x", initiated) == (utc(2024, 5, 8), "abort")
    assert upload_abort_due(rules, "other", initiated) is None


def test_aws_policies_cannot_grant_lifecycle_management() -> None:
    """Lifecycle rules delete objects: like the policy itself, owner only (jay.s3.app)."""
    policy = parse_policy(
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": "*",
                        "Action": ["s3:PutLifecycleConfiguration", "s3:GetLifecycleConfiguration"],
                        "Resource": "arn:aws:s3:::b",
                    }
                ],
            }
        )
    )
    assert policy.statements[0].actions == frozenset()
