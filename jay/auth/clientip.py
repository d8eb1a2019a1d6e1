"""The client's IP address for rate limits and policy ``ip_whitelist`` conditions.

Upstream believed the left-most ``X-Forwarded-For`` entry from any private peer, which lets any
client pick its own address (JAY_SPEC §3.10). jay (§8.2 item 18) uses the socket peer unless
``trust_proxy_headers`` is on **and** the peer is in ``trusted_proxies``; then it walks
``X-Forwarded-For`` from the right, past entries that are themselves trusted proxies, and takes
the first untrusted hop: the left part of the header is whatever the client sent and proves
nothing. Without ``X-Forwarded-For``, ``X-Real-IP`` (set by the proxy) is used. Anything that is
not an IP address makes the whole header worthless: the peer is used.

Addresses come back normalised: ``::ffff:10.0.0.1`` → ``10.0.0.1``, IPv6 compressed.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any

from jay.config.model import ProxySettings
from jay.errors import ConfigError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# A proxy chain longer than this is not a chain anyone runs; it only costs parsing time.
MAX_FORWARDED_HOPS = 32


@functools.lru_cache(maxsize=4096)
def parse_ip(text: str) -> IPAddress | None:
    """An address from a peer host or a header entry, or None.

    Accepts ``1.2.3.4``, ``1.2.3.4:5678``, ``::1``, ``[::1]`` and ``[::1]:5678`` (some proxies add
    ports); IPv4-mapped IPv6 becomes IPv4. Zone ids (``fe80::1%eth0``) are dropped. Cached
    (bounded): a client sends many requests from one address, and parsing showed in profiles.
    """
    text = text.strip()
    if not text or len(text) > 64:
        return None
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or (end + 1 < len(text) and text[end + 1] != ":"):
            return None
        text = text[1:end]
    elif text.count(":") == 1:
        text = text.partition(":")[0]  # IPv4 with a port
    text = text.partition("%")[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def parse_networks(cidrs: Sequence[str]) -> tuple[IPNetwork, ...]:
    networks = []
    for cidr in cidrs:
        try:
            networks.append(ipaddress.ip_network(cidr.strip(), strict=False))
        except ValueError:
            raise ConfigError(f"proxy.trusted_proxies: not a CIDR: {cidr!r}") from None
    return tuple(networks)


class ClientIPResolver:
    """Built once from ``ProxySettings``; ``resolve`` runs per request."""

    def __init__(self, settings: ProxySettings) -> None:
        self.trust_proxy_headers = settings.trust_proxy_headers
        self._networks = parse_networks(settings.trusted_proxies)

    def is_trusted(self, ip: IPAddress) -> bool:
        return any(ip.version == n.version and ip in n for n in self._networks)

    def resolve(self, peer_host: str, headers: Mapping[str, str]) -> str:
        """The client address. ``headers`` is keyed by lower-case name; several
        ``X-Forwarded-For`` lines must be passed joined with "," in arrival order."""
        peer = parse_ip(peer_host)
        if peer is None:
            return peer_host  # a UNIX socket or an odd transport: nothing better to say
        if not self.trust_proxy_headers or not self.is_trusted(peer):
            return str(peer)
        forwarded = headers.get("x-forwarded-for")
        if forwarded is not None and forwarded.strip():
            return str(self._from_forwarded_for(forwarded, peer))
        real_ip = headers.get("x-real-ip")
        if real_ip is not None and real_ip.strip():
            return str(parse_ip(real_ip) or peer)
        return str(peer)

    def _from_forwarded_for(self, value: str, peer: IPAddress) -> IPAddress:
        entries = [e for e in value.split(",") if e.strip()]
        if len(entries) > MAX_FORWARDED_HOPS:
            entries = entries[-MAX_FORWARDED_HOPS:]
        hop: IPAddress | None = None
        for entry in reversed(entries):
            hop = parse_ip(entry)
            if hop is None:
                return peer
            if not self.is_trusted(hop):
                return hop
        # Every hop is a trusted proxy: the farthest one is the best answer there is.
        return hop if hop is not None else peer

    def for_request(self, request: Any) -> str:
        """``resolve`` for a twisted.web request (the shape ``S3Api(client_ip=...)`` takes)."""
        address = request.getClientAddress()
        peer_host = getattr(address, "host", "")
        if not self.trust_proxy_headers:
            return _peer_text(peer_host)
        headers: dict[str, str] = {}
        for name in (b"x-forwarded-for", b"x-real-ip"):
            values = request.requestHeaders.getRawHeaders(name)
            if values:
                headers[name.decode()] = ",".join(v.decode("latin-1") for v in values)
        return self.resolve(peer_host, headers)


@functools.lru_cache(maxsize=4096)
def _peer_text(peer_host: str) -> str:
    return str(parse_ip(peer_host) or peer_host)


def client_ip(
    peer_host: str,
    headers: Mapping[str, str],
    *,
    trust_proxy_headers: bool,
    trusted_proxies: Sequence[str],
) -> str:
    """One-off form of ``ClientIPResolver.resolve``; servers build a resolver once instead."""
    settings = ProxySettings(
        trust_proxy_headers=trust_proxy_headers, trusted_proxies=tuple(trusted_proxies)
    )
    return ClientIPResolver(settings).resolve(peer_host, headers)
