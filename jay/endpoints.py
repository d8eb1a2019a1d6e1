"""Listening endpoints (TCP, or TLS with the configured certificate) from ``host:port`` strings."""

from __future__ import annotations

from typing import Any

from twisted.internet.endpoints import SSL4ServerEndpoint, TCP4ServerEndpoint, TCP6ServerEndpoint
from twisted.internet.interfaces import IStreamServerEndpoint

from jay.config.model import TLSSettings
from jay.errors import ConfigError


def parse_address(addr: str, *, key: str = "address") -> tuple[str, int]:
    """``":9000"`` → ("", 9000); ``"127.0.0.1:9000"``; ``"[::1]:9000"``."""
    host, sep, port_text = addr.rpartition(":")
    if not sep:
        raise ConfigError(f"{key}: expected [host]:port, got {addr!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigError(f"{key}: port must be a number, got {addr!r}") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"{key}: port out of range in {addr!r}")
    return host, port


def load_tls_options(tls: TLSSettings) -> Any:
    """Load the certificate and key now so an unusable pair stops startup (JAY_SPEC §5.5 gap)."""
    from twisted.internet import ssl

    try:
        with open(tls.cert_path, "rb") as f:
            cert_pem = f.read()
        with open(tls.key_path, "rb") as f:
            key_pem = f.read()
    except OSError as e:
        raise ConfigError(f"tls_cert/tls_key: cannot read {e.filename}: {e.strerror}") from None
    try:
        cert = ssl.PrivateCertificate.loadPEM(key_pem + b"\n" + cert_pem)
        chain = [
            ssl.Certificate.loadPEM(b"-----BEGIN CERTIFICATE-----" + block)
            for block in cert_pem.split(b"-----BEGIN CERTIFICATE-----")[2:]
        ]
        return ssl.CertificateOptions(
            privateKey=cert.privateKey.original,
            certificate=cert.original,
            extraCertChain=[c.original for c in chain],
        )
    except Exception as e:  # OpenSSL raises several types for bad PEM / mismatched key
        raise ConfigError(f"tls_cert/tls_key: unusable certificate or key: {e}") from None


def server_endpoint(
    reactor: Any, addr: str, *, key: str, tls_options: Any = None
) -> IStreamServerEndpoint:
    host, port = parse_address(addr, key=key)
    if tls_options is not None:
        return SSL4ServerEndpoint(reactor, port, tls_options, interface=host or "")
    if ":" in host:
        return TCP6ServerEndpoint(reactor, port, interface=host)
    return TCP4ServerEndpoint(reactor, port, interface=host or "")
