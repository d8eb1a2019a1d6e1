"""Object Lock documents and headers (jay.s3.objectlock) and the lock rules
(jay.storage.objectlock), without sockets."""

from __future__ import annotations

import calendar

import pytest

from jay import errors
from jay.s3 import headers as h
from jay.s3 import objectlock as lw
from jay.storage import objectlock as ol
from jay.storage.api import ObjectAttributes

NS = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'
Y2030 = float(calendar.timegm((2030, 1, 1, 0, 0, 0)))
NOW = float(calendar.timegm((2026, 1, 1, 0, 0, 0)))


def config_doc(inner: str) -> bytes:
    return f"<ObjectLockConfiguration {NS}>{inner}</ObjectLockConfiguration>".encode()


def rule(retention: str) -> str:
    return (
        "<ObjectLockEnabled>Enabled</ObjectLockEnabled>"
        f"<Rule><DefaultRetention>{retention}</DefaultRetention></Rule>"
    )


def test_configuration_round_trip() -> None:
    parsed = lw.parse_configuration(config_doc(rule("<Mode>GOVERNANCE</Mode><Days>7</Days>")))
    assert parsed == ol.LockConfiguration(mode="GOVERNANCE", days=7)
    assert lw.parse_configuration(lw.render_configuration(parsed)) == parsed
    years = ol.LockConfiguration(mode="COMPLIANCE", years=2)
    assert lw.parse_configuration(lw.render_configuration(years)) == years
    only = config_doc("<ObjectLockEnabled>Enabled</ObjectLockEnabled>")
    assert lw.parse_configuration(only) == ol.ENABLED_ONLY
    assert b"<Rule>" not in lw.render_configuration(ol.ENABLED_ONLY)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (config_doc("<ObjectLockEnabled>Disabled</ObjectLockEnabled>"), errors.MalformedXML),
        (config_doc(""), errors.MalformedXML),
        (
            config_doc(rule("<Mode>GOVERNANCE</Mode><Days>1</Days><Years>1</Years>")),
            errors.MalformedXML,
        ),  # fmt: skip
        (config_doc(rule("<Mode>GOVERNANCE</Mode>")), errors.MalformedXML),
        (config_doc(rule("<Mode>governance</Mode><Days>1</Days>")), errors.MalformedXML),
        (config_doc(rule("<Mode>GOVERNANCE</Mode><Days>x</Days>")), errors.MalformedXML),
        (config_doc(rule("<Mode>GOVERNANCE</Mode><Days>0</Days>")), errors.InvalidRetentionPeriod),
        (
            config_doc(rule("<Mode>GOVERNANCE</Mode><Years>-1</Years>")),
            errors.InvalidRetentionPeriod,
        ),  # fmt: skip
        (
            config_doc(rule("<Mode>GOVERNANCE</Mode><Years>101</Years>")),
            errors.InvalidRetentionPeriod,
        ),  # fmt: skip
        (b"<Other/>", errors.MalformedXML),
    ],
)
def test_configuration_errors(body: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        lw.parse_configuration(body)


def test_retention_and_legal_hold_documents() -> None:
    body = (
        f"<Retention {NS}><Mode>COMPLIANCE</Mode>"
        "<RetainUntilDate>2030-01-01T00:00:00Z</RetainUntilDate></Retention>"
    ).encode()
    assert lw.parse_retention(body) == ("COMPLIANCE", Y2030)
    assert lw.parse_retention(f"<Retention {NS}/>".encode()) == (None, None)
    rendered = lw.render_retention(ObjectAttributes(lock_mode="COMPLIANCE", lock_until=Y2030))
    assert b"<RetainUntilDate>2030-01-01T00:00:00.000Z</RetainUntilDate>" in rendered
    assert lw.parse_retention(rendered) == ("COMPLIANCE", Y2030)
    for bad in (
        b"<Retention><Mode>abc</Mode><RetainUntilDate>2030-01-01T00:00:00Z</RetainUntilDate>"
        b"</Retention>",
        b"<Retention><Mode>GOVERNANCE</Mode></Retention>",
        b"<Retention><Mode>GOVERNANCE</Mode><RetainUntilDate>soon</RetainUntilDate></Retention>",
    ):
        with pytest.raises(errors.MalformedXML):
            lw.parse_retention(bad)
    assert lw.parse_legal_hold(lw.render_legal_hold("ON")) == "ON"
    with pytest.raises(errors.MalformedXML):
        lw.parse_legal_hold(b"<LegalHold><Status>on</Status></LegalHold>")


def test_request_headers() -> None:
    plain = ObjectAttributes()
    assert lw.requested_lock({}, plain, NOW) is plain
    got = lw.requested_lock(
        {
            lw.MODE_HEADER: "GOVERNANCE",
            lw.UNTIL_HEADER: "2030-01-01T00:00:00.000Z",
            lw.LEGAL_HOLD_HEADER: "OFF",
        },
        plain,
        NOW,
    )
    assert (got.lock_mode, got.lock_until, got.legal_hold) == ("GOVERNANCE", Y2030, "OFF")
    assert lw.response_headers(got) == [
        (b"x-amz-object-lock-mode", b"GOVERNANCE"),
        (b"x-amz-object-lock-retain-until-date", b"2030-01-01T00:00:00.000Z"),
        (b"x-amz-object-lock-legal-hold", b"OFF"),
    ]
    for bad in (
        {lw.MODE_HEADER: "GOVERNANCE"},
        {lw.UNTIL_HEADER: "2030-01-01T00:00:00Z"},
        {lw.MODE_HEADER: "X", lw.UNTIL_HEADER: "2030-01-01T00:00:00Z"},
        {lw.MODE_HEADER: "GOVERNANCE", lw.UNTIL_HEADER: "tomorrow"},
        {lw.MODE_HEADER: "GOVERNANCE", lw.UNTIL_HEADER: "2020-01-01T00:00:00Z"},
        {lw.LEGAL_HOLD_HEADER: "yes"},
    ):
        with pytest.raises(errors.InvalidArgument):
            lw.requested_lock(bad, plain, NOW)
    # Lock headers: refused unless the bucket has Object Lock.
    with pytest.raises(errors.InvalidRequest):
        h.check_write_features({lw.LEGAL_HOLD_HEADER: "ON"})
    h.check_write_features({lw.LEGAL_HOLD_HEADER: "ON"}, is_lock_enabled=True)


def test_integrity_headers() -> None:
    assert lw.has_integrity_header({"content-md5": "x"})
    assert lw.has_integrity_header({"x-amz-checksum-crc32": "x"})
    assert lw.has_integrity_header({"x-amz-trailer": "x-amz-checksum-crc64nvme"})
    assert not lw.has_integrity_header({"x-amz-content-sha256": "UNSIGNED-PAYLOAD"})


def test_rules() -> None:
    governance = ObjectAttributes(lock_mode="GOVERNANCE", lock_until=Y2030)
    compliance = ObjectAttributes(lock_mode="COMPLIANCE", lock_until=Y2030)
    held = ObjectAttributes(legal_hold="ON")
    kw = {"bucket": "b", "key": "k"}
    ol.check_delete(ObjectAttributes(legal_hold="OFF"), NOW, bypass_governance=False, **kw)
    ol.check_delete(governance, Y2030 + 1, bypass_governance=False, **kw)  # passed
    ol.check_delete(governance, NOW, bypass_governance=True, **kw)
    for attributes, bypass in ((governance, False), (compliance, True), (held, True)):
        with pytest.raises(errors.AccessDenied):
            ol.check_delete(attributes, NOW, bypass_governance=bypass, **kw)
    ol.check_retention_change(
        compliance, "COMPLIANCE", Y2030 + 1, NOW, bypass_governance=False, **kw
    )
    with pytest.raises(errors.AccessDenied):
        ol.check_retention_change(compliance, None, None, NOW, bypass_governance=True, **kw)
    ol.check_retention_change(governance, None, None, NOW, bypass_governance=True, **kw)
    # An expired retention may be replaced by anything.
    ol.check_retention_change(compliance, "GOVERNANCE", Y2030 + 9, Y2030 + 1,
                              bypass_governance=False, **kw)  # fmt: skip
    config = ol.LockConfiguration(mode="GOVERNANCE", years=1)
    defaulted = ol.with_default(ObjectAttributes(), config, NOW)
    assert defaulted.lock_until == NOW + 365 * 86400
    assert ol.with_default(compliance, config, NOW) is compliance
    assert ol.without_lock(compliance) == ObjectAttributes()
    with pytest.raises(errors.InvalidRequest):
        ol.check_new_version(held, None)
    assert ol.decode_configuration(ol.encode_configuration(config)) == config
