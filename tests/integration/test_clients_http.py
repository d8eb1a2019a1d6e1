"""Wire shapes that simple S3 clients (curl scripts, s3cmd, older SDKs) rely on, sent as raw
HTTP/1.1 over a socket to a real jay process: SigV2 header auth, chunked PUT without
Content-Length, ``Expect: 100-continue``, HEAD errors, and lengths on XML replies.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import socket
import time
from collections.abc import Mapping

import pytest

from tests.integration.conftest import SEED_SECRET, SEED_TOKEN_ID
from tests.integration.jayproc import JayProcess

pytestmark = pytest.mark.usefixtures("server_log_is_clean")


def sigv2(
    method: str,
    resource: str,
    headers: Mapping[str, str] | None = None,
    *,
    secret: str = SEED_SECRET,
    when: float | None = None,
) -> dict[str, str]:
    """Headers for ``Authorization: AWS id:sig`` (AWS's SigV2 REST authentication)."""
    out = dict(headers or {})
    out["Date"] = email.utils.formatdate(when, usegmt=True)
    lowered = {k.lower(): v for k, v in out.items()}
    amz = "".join(f"{k}:{lowered[k]}\n" for k in sorted(lowered) if k.startswith("x-amz-"))
    to_sign = "\n".join(
        [
            method,
            lowered.get("content-md5", ""),
            lowered.get("content-type", ""),
            out["Date"],
            amz + resource,
        ]
    )
    digest = hmac.new(secret.encode(), to_sign.encode(), hashlib.sha1).digest()
    out["Authorization"] = f"AWS {SEED_TOKEN_ID}:{base64.b64encode(digest).decode()}"
    return out


class Response:
    def __init__(self, raw: bytes) -> None:
        head, _, self.body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()


def _read_response(sock: socket.socket, *, head: bool = False) -> Response:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    response = Response(data)
    length = response.headers.get("content-length")
    if head:
        response.body = b""
    elif length is not None:
        while len(response.body) < int(length):
            chunk = sock.recv(65536)
            if not chunk:
                break
            response.body += chunk
    elif response.headers.get("transfer-encoding") == "chunked":
        while not response.body.endswith(b"0\r\n\r\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            response.body += chunk
    return response


def request(
    jay: JayProcess,
    method: str,
    target: str,
    headers: Mapping[str, str],
    body: bytes = b"",
    *,
    chunked: bool = False,
    expect_continue: bool = False,
) -> tuple[Response, Response | None]:
    """One request on a fresh connection; returns (final response, interim 100 if any)."""
    with socket.create_connection(("127.0.0.1", jay.s3_port), timeout=10) as sock:
        lines = [f"{method} {target} HTTP/1.1", f"Host: 127.0.0.1:{jay.s3_port}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if chunked:
            lines.append("Transfer-Encoding: chunked")
        elif body or method in ("PUT", "POST"):
            lines.append(f"Content-Length: {len(body)}")
        if expect_continue:
            lines.append("Expect: 100-continue")
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        interim = None
        if expect_continue:
            interim = _read_response(sock, head=True)
            if interim.status != 100:
                return interim, None
        if chunked:
            half = len(body) // 2
            for piece in (body[:half], body[half:]):
                if piece:
                    sock.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
            sock.sendall(b"0\r\n\r\n")
        else:
            sock.sendall(body)
        return _read_response(sock, head=method == "HEAD"), interim


def test_sigv2_header_auth_round_trip(jay: JayProcess) -> None:
    response, _ = request(jay, "PUT", "/raw-v2", sigv2("PUT", "/raw-v2"))
    assert response.status == 200
    headers = sigv2(
        "PUT",
        "/raw-v2/k%20ey",
        {"Content-Type": "text/plain", "x-amz-meta-Color": "blue"},
    )
    response, _ = request(jay, "PUT", "/raw-v2/k%20ey", headers, b"v2 body")
    assert response.status == 200, response.body
    response, _ = request(jay, "GET", "/raw-v2/k%20ey", sigv2("GET", "/raw-v2/k%20ey"))
    assert response.status == 200 and response.body == b"v2 body"
    assert response.headers["content-type"] == "text/plain"
    assert response.headers["x-amz-meta-color"] == "blue"
    response, _ = request(jay, "GET", "/raw-v2?location", sigv2("GET", "/raw-v2?location"))
    assert response.status == 200 and b"LocationConstraint" in response.body

    wrong, _ = request(jay, "GET", "/raw-v2/k%20ey", sigv2("GET", "/raw-v2/k%20ey", secret="no"))
    assert wrong.status == 403 and b"<Code>SignatureDoesNotMatch</Code>" in wrong.body
    stale = sigv2("GET", "/raw-v2/k%20ey", when=time.time() - 3600)
    skewed, _ = request(jay, "GET", "/raw-v2/k%20ey", stale)
    assert skewed.status == 403 and b"<Code>RequestTimeTooSkewed</Code>" in skewed.body
    # The bucket is part of the signed resource: a signature for another path fails.
    moved, _ = request(jay, "GET", "/raw-v2/k%20ey", sigv2("GET", "/raw-v2/other"))
    assert moved.status == 403


def test_chunked_put_without_content_length(jay: JayProcess) -> None:
    assert request(jay, "PUT", "/raw-chunked", sigv2("PUT", "/raw-chunked"))[0].status == 200
    body = bytes(range(256)) * 4000
    response, _ = request(
        jay, "PUT", "/raw-chunked/obj", sigv2("PUT", "/raw-chunked/obj"), body, chunked=True
    )
    assert response.status == 200, response.body
    assert response.headers["etag"] == f'"{hashlib.md5(body).hexdigest()}"'
    got, _ = request(jay, "GET", "/raw-chunked/obj", sigv2("GET", "/raw-chunked/obj"))
    assert got.body == body


def test_expect_continue(jay: JayProcess) -> None:
    assert request(jay, "PUT", "/raw-expect", sigv2("PUT", "/raw-expect"))[0].status == 200
    body = b"e" * 300_000
    response, interim = request(
        jay, "PUT", "/raw-expect/obj", sigv2("PUT", "/raw-expect/obj"), body, expect_continue=True
    )
    assert interim is not None and interim.status == 100
    assert response.status == 200
    # Rejected on its headers: the final status comes instead of 100, before any body byte.
    bad = sigv2("PUT", "/raw-expect/obj2", secret="wrong")
    response, interim = request(jay, "PUT", "/raw-expect/obj2", bad, body, expect_continue=True)
    assert interim is None and response.status == 403


def test_head_errors_and_xml_lengths(jay: JayProcess) -> None:
    missing, _ = request(jay, "HEAD", "/raw-absent", sigv2("HEAD", "/raw-absent"))
    assert missing.status == 404 and missing.body == b""
    assert request(jay, "PUT", "/raw-head", sigv2("PUT", "/raw-head"))[0].status == 200
    assert request(jay, "HEAD", "/raw-head", sigv2("HEAD", "/raw-head"))[0].status == 200
    no_key, _ = request(jay, "HEAD", "/raw-head/nope", sigv2("HEAD", "/raw-head/nope"))
    assert no_key.status == 404

    # Error and listing bodies carry Content-Length, not chunked framing.
    error, _ = request(jay, "GET", "/raw-absent/x", sigv2("GET", "/raw-absent/x"))
    assert error.status == 404 and b"<Code>NoSuchBucket</Code>" in error.body
    assert int(error.headers["content-length"]) == len(error.body)
    assert error.headers["content-type"] == "application/xml"
    listing, _ = request(jay, "GET", "/raw-head", sigv2("GET", "/raw-head"))
    assert listing.status == 200 and b"<ListBucketResult" in listing.body
    assert int(listing.headers["content-length"]) == len(listing.body)

    # An object stored without a Content-Type is served as binary.
    put, _ = request(jay, "PUT", "/raw-head/plain", sigv2("PUT", "/raw-head/plain"), b"abc")
    assert put.status == 200
    head, _ = request(jay, "HEAD", "/raw-head/plain", sigv2("HEAD", "/raw-head/plain"))
    assert head.headers["content-type"] == "application/octet-stream"
    assert head.headers["content-length"] == "3"
