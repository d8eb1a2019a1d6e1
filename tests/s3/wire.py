"""Feeding raw HTTP to a site over a StringTransport (for the byte-for-byte tests)."""

from __future__ import annotations

from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.web.server import Site

NOW = 1704164645.75  # Tue, 02 Jan 2024 03:04:05 GMT (and a fraction)


def exchange(site: Site, raw: bytes) -> tuple[bytes, Any, StringTransport]:
    """Send ``raw`` on a new connection to ``site``: (bytes written back, the connection's
    protocol, its transport). The site's access log is switched off."""
    site.log = lambda request: None  # type: ignore[method-assign]
    protocol = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1))
    assert protocol is not None
    transport = StringTransport()
    protocol.makeConnection(transport)
    protocol.dataReceived(raw)
    return transport.value(), protocol, transport
