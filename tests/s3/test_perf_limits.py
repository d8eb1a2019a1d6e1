"""Per-request caches on the auth path: client address text, rate-limit keys, header index."""

from __future__ import annotations

from jay.auth import sigv4
from jay.auth.clientip import _peer_text, parse_ip
from jay.auth.ratelimit import ip_key


def test_cached_address_parsing_gives_the_same_answers_each_time() -> None:
    for _ in range(2):
        assert _peer_text("127.0.0.1") == "127.0.0.1"
        assert _peer_text("::ffff:10.0.0.1") == "10.0.0.1"
        assert _peer_text("not-an-ip") == "not-an-ip"
        assert parse_ip("[::1]:80") == parse_ip("::1")
        assert parse_ip("nonsense") is None


def test_cached_ip_keys() -> None:
    for _ in range(2):
        assert ip_key("10.1.2.3") == "ip:10.1.2.3"
        assert ip_key("2001:db8::1") == ip_key("2001:db8::2") == "ip:2001:db8::/64"
        assert ip_key("::ffff:10.1.2.3") == "ip:10.1.2.3"
        assert ip_key("weird") == "ip:weird"


def test_the_header_index_is_not_part_of_a_parsed_request_value() -> None:
    auth = (
        b"AWS4-HMAC-SHA256 Credential=a/20240102/us-east-1/s3/aws4_request, "
        b"SignedHeaders=host;x-amz-date, Signature=" + b"0" * 64
    )
    headers = [(b"Host", b"h"), (b"X-Amz-Date", b"20240102T030405Z"), (b"Authorization", auth)]
    parsed = sigv4.parse_header_request("GET", b"/b/k", b"", headers)
    assert parsed.header_index is not None
    assert parsed.header_index["host"] == [b"h"]
    without = sigv4.ParsedRequest(
        **{
            name: getattr(parsed, name)
            for name in sigv4.ParsedRequest.__dataclass_fields__
            if name != "header_index"
        }
    )
    assert without == parsed
    # Both paths build the same canonical requests.
    assert sigv4.canonical_requests(without) == sigv4.canonical_requests(parsed)
