"""Client address behind trusted proxies (JAY_SPEC §3.10, §8.2 item 18)."""

from __future__ import annotations

import pytest
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.web.http_headers import Headers

from jay.auth.clientip import ClientIPResolver, client_ip, parse_ip
from jay.config.model import ProxySettings
from jay.errors import ConfigError

TRUSTING = ClientIPResolver(
    ProxySettings(trust_proxy_headers=True, trusted_proxies=("10.0.0.0/8", "::1/128", "127.0.0.1"))
)
DEFAULTS = ClientIPResolver(ProxySettings())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.2.3.4", "1.2.3.4"),
        (" 1.2.3.4 ", "1.2.3.4"),
        ("1.2.3.4:8080", "1.2.3.4"),
        ("::1", "::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("2001:DB8:0:0::1", "2001:db8::1"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("fe80::1%eth0", "fe80::1"),
        ("", None),
        ("unknown", None),
        ("1.2.3", None),
        ("1.2.3.4.5", None),
        ("[::1", None),
        ("[::1]x", None),
        ("300.1.1.1", None),
        ("_hidden", None),
        ("1" * 100, None),
    ],
)
def test_parse_ip(text: str, expected: str | None) -> None:
    ip = parse_ip(text)
    assert (str(ip) if ip is not None else None) == expected


def test_headers_are_ignored_unless_trust_is_on() -> None:
    headers = {"x-forwarded-for": "203.0.113.9", "x-real-ip": "203.0.113.9"}
    assert DEFAULTS.resolve("127.0.0.1", headers) == "127.0.0.1"


def test_headers_are_ignored_from_an_untrusted_peer() -> None:
    headers = {"x-forwarded-for": "203.0.113.9"}
    assert TRUSTING.resolve("192.168.1.5", headers) == "192.168.1.5"


def test_peer_is_normalised() -> None:
    assert DEFAULTS.resolve("::ffff:192.0.2.7", {}) == "192.0.2.7"
    assert TRUSTING.resolve("::FFFF:10.0.0.1", {}) == "10.0.0.1"  # trusted, but no header


def test_right_most_untrusted_hop_wins() -> None:
    # The client forged "1.1.1.1"; the outer proxy 10.0.0.2 appended what it saw (203.0.113.9),
    # the inner proxy 10.0.0.1 appended 10.0.0.2 and connected to us.
    headers = {"x-forwarded-for": "1.1.1.1, 203.0.113.9, 10.0.0.2"}
    assert TRUSTING.resolve("10.0.0.1", headers) == "203.0.113.9"


def test_single_entry_and_mapped_entries() -> None:
    assert TRUSTING.resolve("10.0.0.1", {"x-forwarded-for": "203.0.113.9"}) == "203.0.113.9"
    assert TRUSTING.resolve("10.0.0.1", {"x-forwarded-for": "::ffff:203.0.113.9"}) == "203.0.113.9"
    assert TRUSTING.resolve("::1", {"x-forwarded-for": "[2001:db8::5]:1234"}) == "2001:db8::5"


def test_all_hops_trusted_gives_the_farthest() -> None:
    headers = {"x-forwarded-for": "10.9.9.9, 10.0.0.2"}
    assert TRUSTING.resolve("10.0.0.1", headers) == "10.9.9.9"


def test_empty_entries_are_skipped() -> None:
    headers = {"x-forwarded-for": " , 203.0.113.9,, "}
    assert TRUSTING.resolve("10.0.0.1", headers) == "203.0.113.9"


@pytest.mark.parametrize(
    "value", ["unknown", "203.0.113.9, garbage", "203.0.113.9, garbage, 10.0.0.2", "1.2.3.4.5"]
)
def test_invalid_entry_before_an_untrusted_hop_falls_back_to_the_peer(value: str) -> None:
    assert TRUSTING.resolve("10.0.0.1", {"x-forwarded-for": value}) == "10.0.0.1"


def test_garbage_left_of_the_untrusted_hop_does_not_matter() -> None:
    headers = {"x-forwarded-for": "garbage, 203.0.113.9"}
    assert TRUSTING.resolve("10.0.0.1", headers) == "203.0.113.9"


def test_x_real_ip_only_without_forwarded_for() -> None:
    assert TRUSTING.resolve("10.0.0.1", {"x-real-ip": "203.0.113.4"}) == "203.0.113.4"
    assert TRUSTING.resolve("10.0.0.1", {"x-real-ip": "nope"}) == "10.0.0.1"
    both = {"x-real-ip": "203.0.113.4", "x-forwarded-for": "203.0.113.9"}
    assert TRUSTING.resolve("10.0.0.1", both) == "203.0.113.9"


def test_long_chains_are_cut_to_their_right_end() -> None:
    chain = ", ".join(["10.0.0.3"] * 1000 + ["203.0.113.9"] + ["10.0.0.2"] * 3)
    assert TRUSTING.resolve("10.0.0.1", {"x-forwarded-for": chain}) == "203.0.113.9"


def test_non_ip_peer_is_returned_as_is() -> None:
    assert TRUSTING.resolve("", {"x-forwarded-for": "203.0.113.9"}) == ""


def test_invalid_trusted_proxy_cidr_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not-a-cidr"):
        ClientIPResolver(ProxySettings(trusted_proxies=("10.0.0.0/8", "not-a-cidr")))


def test_default_trusted_list_covers_loopback_and_private_ranges() -> None:
    resolver = ClientIPResolver(ProxySettings(trust_proxy_headers=True))
    for peer in ("127.0.0.1", "::1", "10.1.1.1", "172.20.0.1", "192.168.0.9", "fd00::1"):
        assert resolver.resolve(peer, {"x-forwarded-for": "203.0.113.9"}) == "203.0.113.9", peer
    assert resolver.resolve("172.32.0.1", {"x-forwarded-for": "203.0.113.9"}) == "172.32.0.1"


def test_function_form() -> None:
    assert (
        client_ip(
            "127.0.0.1",
            {"x-forwarded-for": "203.0.113.9"},
            trust_proxy_headers=True,
            trusted_proxies=["127.0.0.0/8"],
        )
        == "203.0.113.9"
    )
    assert (
        client_ip(
            "127.0.0.1",
            {"x-forwarded-for": "203.0.113.9"},
            trust_proxy_headers=False,
            trusted_proxies=["127.0.0.0/8"],
        )
        == "127.0.0.1"
    )


class _Request:
    def __init__(self, address: object, headers: dict[bytes, list[bytes]]) -> None:
        self._address = address
        self.requestHeaders = Headers(headers)

    def getClientAddress(self) -> object:
        return self._address


def test_for_request_joins_repeated_forwarded_for_lines_in_order() -> None:
    # A proxy that adds its own header line instead of appending: the last line is its own.
    request = _Request(
        IPv4Address("TCP", "10.0.0.1", 5555),
        {b"X-Forwarded-For": [b"1.1.1.1", b"203.0.113.9"]},
    )
    assert TRUSTING.for_request(request) == "203.0.113.9"
    assert DEFAULTS.for_request(request) == "10.0.0.1"


def test_for_request_handles_ipv6_and_unix_peers() -> None:
    assert DEFAULTS.for_request(_Request(IPv6Address("TCP", "::1", 1), {})) == "::1"
    assert DEFAULTS.for_request(_Request(UNIXAddress(b"/tmp/s"), {})) == ""
