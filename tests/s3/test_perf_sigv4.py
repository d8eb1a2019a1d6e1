"""SigV4 fast paths: the plain-path shortcut, lazy candidates, cached parsing, cached secrets."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import pytest_twisted
from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.defer import succeed
from twisted.internet.task import Clock

from jay.auth import sigv4
from jay.auth.authenticate import Authenticator
from jay.auth.secrets import encrypt_secret
from jay.auth.tokens import TokenVerifier
from jay.errors import AccessDenied, SignatureDoesNotMatch
from jay.storage.api import Account, TokenRecord

SECRET = "perf-secret-" + "z" * 30
DATE = "20240102T030405Z"
NOW = 1704164645.0  # DATE as Unix seconds


def _slow_candidates(raw: bytes) -> list[str]:
    path = raw or b"/"
    lenient = sigv4._encode_path(path, sigv4._PATH_LENIENT)
    strict = sigv4._encode_path(path, sigv4._PATH_STRICT)
    return [lenient] if lenient == strict else [lenient, strict]


@given(st.binary(max_size=40) | st.text(alphabet="ab/%2Fz~-_.!=+ ", max_size=20).map(str.encode))
def test_plain_path_shortcut_gives_the_same_candidates(raw: bytes) -> None:
    assert sigv4.canonical_uri_candidates(raw) == _slow_candidates(raw)


def test_plain_paths_take_the_shortcut() -> None:
    assert sigv4._PLAIN_PATH.fullmatch(b"/bucket/dir%2Fkey~v1.txt")
    assert not sigv4._PLAIN_PATH.fullmatch(b"/bucket/100%")
    assert not sigv4._PLAIN_PATH.fullmatch(b"/bucket/a=b")


def signed_headers(
    method: str, raw_path: bytes, raw_query: bytes, *, uri: str, query: str, secret: str = SECRET
) -> list[tuple[bytes, bytes]]:
    """Headers of a request whose signature covers exactly the given canonical uri and query."""
    names = ("host", "x-amz-content-sha256", "x-amz-date")
    headers = [
        (b"Host", b"127.0.0.1:9000"),
        (b"X-Amz-Content-Sha256", sigv4.EMPTY_SHA256.encode()),
        (b"X-Amz-Date", DATE.encode()),
    ]
    request = sigv4.canonical_request(
        method=method,
        canonical_uri=uri,
        canonical_query_string=query,
        canonical_header_block=sigv4.canonical_headers(headers, names),
        signed_headers=names,
        payload_hash=sigv4.EMPTY_SHA256,
    )
    scope = f"{DATE[:8]}/us-east-1/s3/aws4_request"
    key = sigv4.signing_key(secret, DATE[:8], "us-east-1")
    signature = sigv4.sign(key, sigv4.string_to_sign(DATE, scope, request))
    auth = (
        f"AWS4-HMAC-SHA256 Credential=perf/{scope}, SignedHeaders={';'.join(names)}, "
        f"Signature={signature}"
    )
    return [*headers, (b"Authorization", auth.encode())]


@pytest.mark.parametrize(
    ("raw_path", "raw_query", "uri", "query"),
    [
        (b"/b/k", b"", "/b/k", ""),
        (b"/b/a=b!", b"", "/b/a=b!", ""),  # lenient form, tried first
        (b"/b/a=b!", b"", "/b/a%3Db%21", ""),  # strict form, tried after a mismatch
        (b"/b/k", b"x=a+b", "/b/k", "x=a%2Bb"),
        (b"/b/k", b"x=a+b", "/b/k", "x=a%20b"),  # form-encoded plus, the last candidate
        (b"/b/a=b!", b"x=a+b", "/b/a%3Db%21", "x=a%20b"),
    ],
)
def test_every_candidate_still_verifies(
    raw_path: bytes, raw_query: bytes, uri: str, query: str
) -> None:
    headers = signed_headers("GET", raw_path, raw_query, uri=uri, query=query)
    parsed = sigv4.parse_header_request("GET", raw_path, raw_query, headers)
    context = sigv4.verify(parsed, SECRET, now=NOW)
    assert context.seed_signature == parsed.signature
    with pytest.raises(SignatureDoesNotMatch):
        sigv4.verify(parsed, SECRET + "x", now=NOW)


def test_a_signature_over_no_candidate_fails() -> None:
    headers = signed_headers("GET", b"/b/a=b!", b"", uri="/b/other", query="")
    parsed = sigv4.parse_header_request("GET", b"/b/a=b!", b"", headers)
    with pytest.raises(SignatureDoesNotMatch):
        sigv4.verify(parsed, SECRET, now=NOW)


def test_cached_request_time_matches_the_parser() -> None:
    for value in (DATE, "Tue, 02 Jan 2024 03:04:05 GMT", "Tue, 02 Jan 2024 05:04:05 +0200"):
        seconds, amz_date = sigv4._request_time(value)
        assert seconds == sigv4.parse_request_time(value) == int(NOW)
        assert amz_date == DATE
    with pytest.raises(ValueError):
        sigv4._request_time("yesterday")


def test_header_index_keeps_repeats_in_order_and_mixed_types() -> None:
    index = sigv4._index_headers([(b"X-A", b"1"), ("x-a ", "2"), (b"Host", b"h")])
    assert index == {"x-a": [b"1", b"2"], "host": [b"h"]}


# --- cached secrets ----------------------------------------------------------------------------

KEK = b"k" * 32


class CountingStorage:
    def __init__(self, token: TokenRecord) -> None:
        self.token = token
        self.loads = 0

    def get_token(self, token_id: str) -> Any:
        self.loads += 1
        return succeed(self.token)

    def get_account(self, account_id: str) -> Any:
        return succeed(Account(account_id=account_id, name="a", created_at=0.0))


def make_token(status: str = "active") -> TokenRecord:
    return TokenRecord(
        token_id="perf",
        account_id="acct",
        name="t",
        secret_hash="",
        secret_key=encrypt_secret(KEK, SECRET),
        allowed_actions=("*",),
        created_at=0.0,
        status=status,
    )


@pytest_twisted.ensureDeferred
async def test_sigv4_uses_the_cached_secret_without_loading_again() -> None:
    clock = Clock()
    clock.advance(NOW)
    storage = CountingStorage(make_token())
    verifier = TokenVerifier(storage, kek=KEK, clock=clock, reactor=None, pool=None)  # type: ignore[arg-type]
    auth = Authenticator(verifier, signing_secret="s", clock=clock)
    assert verifier.cached_secret("perf") is None
    headers = signed_headers("GET", b"/b/k", b"", uri="/b/k", query="")
    for _ in range(3):
        result = await auth.authenticate_async("GET", b"/b/k", b"", headers)
        assert result.principal.token_id == "perf"
        assert result.principal.account_id == "acct"
        assert result.principal.auth_method == "sigv4"
        assert result.signing is not None
    assert storage.loads == 1
    token, account, secret = verifier.cached_secret("perf")  # type: ignore[misc]
    assert (token.token_id, account.account_id, secret) == ("perf", "acct", SECRET)


@pytest_twisted.ensureDeferred
async def test_a_cached_secret_is_still_checked_for_usability() -> None:
    clock = Clock()
    clock.advance(NOW)
    storage = CountingStorage(make_token())
    verifier = TokenVerifier(storage, kek=KEK, clock=clock, reactor=None, pool=None)  # type: ignore[arg-type]
    await verifier.secret_for("perf")
    entry = verifier._secret_cache.get("perf")
    assert entry is not None
    entry.token = dataclasses.replace(entry.token, status="revoked")
    with pytest.raises(AccessDenied):
        verifier.cached_secret("perf")
