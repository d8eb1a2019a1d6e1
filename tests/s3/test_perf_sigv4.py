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


# --- the request-path shortcuts --------------------------------------------------------------

_SIG = "0123456789abcdef" * 4


def _outcome(parse: Any, text: str) -> Any:
    try:
        return parse(text)
    except Exception as exc:  # noqa: BLE001 - the type and message are what is compared
        return (type(exc), str(exc))


@pytest.mark.parametrize(
    "text",
    [
        f"AWS4-HMAC-SHA256 Credential=AK/20240102/us-east-1/s3/aws4_request, "
        f"SignedHeaders=host;x-amz-date, Signature={_SIG}",
        f"AWS4-HMAC-SHA256 Credential=AK/20240102/us-east-1/s3/aws4_request,"
        f"SignedHeaders=x-amz-date;HOST;host,Signature={_SIG}",
        f"AWS4-HMAC-SHA256 Credential=AK/20240102/us-east-1/s3, SignedHeaders=host, "
        f"Signature={_SIG}",
        f"AWS4-HMAC-SHA256 Credential=a=b/20240102/eu/s3/aws4_request, SignedHeaders=host, "
        f"Signature={_SIG}",
        # Each of these fails inside the shortcut, with the general parser's error.
        f"AWS4-HMAC-SHA256 Credential=AK/2024010/us-east-1/s3/aws4_request, SignedHeaders=host, "
        f"Signature={_SIG}",
        f"AWS4-HMAC-SHA256 Credential=AK/20240102/us-east-1/s4/aws4_request, SignedHeaders=host, "
        f"Signature={_SIG}",
        f"AWS4-HMAC-SHA256 Credential=AK/20240102/us-east-1/s3/aws4_request, SignedHeaders=a;b, "
        f"Signature={_SIG}",
        f"AWS4-HMAC-SHA256 Credential=/20240102/us-east-1/s3/aws4_request, SignedHeaders=host, "
        f"Signature={_SIG}",
        # Not plain: the general parser decides.
        f"AWS4-HMAC-SHA256 Credential=AK/20240102/us-east-1/s3/aws4_request, SignedHeaders=host, "
        f"Signature={_SIG.upper()}",
        f"AWS4-HMAC-SHA256  Credential=AK/20240102/us-east-1/s3/aws4_request, "
        f"SignedHeaders=host, Signature={_SIG}",
        f"AWS4-HMAC-SHA256 Signature={_SIG}, Credential=AK/20240102/us-east-1/s3/aws4_request, "
        f"SignedHeaders=host",
        "AWS4-HMAC-SHA256 Credential=AK/20240102/us-east-1/s3/aws4_request, SignedHeaders=host",
        f"AWS4-HMAC-SHA256 Credential=AK/20240102/us-east-1/s3/aws4_request, Signature={_SIG}, "
        f"Signature={_SIG}, SignedHeaders=host",
        f"AWS4-HMAC-SHA256 Credential=AK/20240102/us-east-1/s3/aws4_request, SignedHeaders=host, "
        f"Signature={_SIG} ",
        "AWS4-HMAC-SHA256",
        "Bearer x",
    ],
)
def test_plain_authorization_shortcut_gives_the_general_result(text: str) -> None:
    assert _outcome(sigv4.parse_authorization_header, text) == _outcome(
        sigv4._parse_authorization_fields, text
    )


def test_plain_authorization_takes_the_shortcut() -> None:
    sigv4._parse_plain_head.cache_clear()
    head = "AWS4-HMAC-SHA256 Credential=AK/20240102/us-east-1/s3/aws4_request, SignedHeaders=host, "
    for signature in (_SIG, _SIG[::-1]):
        parsed = sigv4.parse_authorization_header(head + "Signature=" + signature)
        assert parsed.signature == signature
    assert sigv4._parse_plain_head.cache_info().hits == 1
    assert sigv4._parse_plain_head(head.replace(", Sig", ", X=1, Sig")) is None
    assert sigv4._parse_plain_head(head.rstrip(", ")) is None


@given(st.binary(max_size=100), st.binary(max_size=300))
def test_sign_is_hmac_sha256_hex(key: bytes, message: bytes) -> None:
    import hashlib
    import hmac

    text = message.decode("latin-1")
    expected = hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()
    assert sigv4.sign(key, text) == expected


def test_signing_key_is_cached_per_secret_date_region_and_service() -> None:
    sigv4.signing_key.cache_clear()
    first = sigv4.signing_key(SECRET, "20240102", "us-east-1", "s3")
    assert sigv4.signing_key(SECRET, "20240102", "us-east-1", "s3") is first
    assert sigv4.signing_key.cache_info().hits == 1
    assert sigv4.signing_key(SECRET, "20240103", "us-east-1", "s3") != first
    assert sigv4.signing_key(SECRET, "20240102", "eu-west-1", "s3") != first
    assert sigv4.signing_key(SECRET + "x", "20240102", "us-east-1", "s3") != first


def test_a_header_index_from_the_caller_parses_the_same() -> None:
    headers = [*signed_headers("GET", b"/b/k", b"", uri="/b/k", query=""), (b"X-A", b"1")]
    headers.append((b"x-a", b" 2  3 "))
    index = sigv4._index_headers(headers)
    given_index = sigv4.parse_header_request("GET", b"/b/k", b"", headers, header_index=index)
    own_index = sigv4.parse_header_request("GET", b"/b/k", b"", headers)
    assert given_index == own_index
    assert given_index.header_index is index
    assert sigv4.verify(given_index, SECRET, now=NOW).seed_signature == own_index.signature


def test_lowered_header_names_are_remembered_within_a_bound() -> None:
    sigv4._LOWER_NAMES.clear()
    assert sigv4.lower_name(b"X-Amz-Date") == "x-amz-date"
    assert sigv4._LOWER_NAMES == {b"X-Amz-Date": "x-amz-date"}
    for i in range(sigv4._MAX_LOWER_NAMES + 10):
        assert sigv4.lower_name(b"X-N-%d" % i) == f"x-n-{i}"
    assert len(sigv4._LOWER_NAMES) <= sigv4._MAX_LOWER_NAMES
    assert sigv4.lower_name(b" \xc9T ") == "\xc9t"  # ASCII lowered, latin-1, as the index did


def test_header_block_joins_repeats_and_keeps_absent_headers_empty() -> None:
    index = {"a": [b" x  y "], "b": [b"1", b" 2 "]}
    assert sigv4._header_block(index, ("a", "b", "c")) == b"a:x y\nb:1,2\nc:\n"


@pytest_twisted.ensureDeferred
async def test_authenticate_with_the_callers_header_index() -> None:
    clock = Clock()
    clock.advance(NOW)
    verifier = TokenVerifier(
        CountingStorage(make_token()),  # type: ignore[arg-type]
        kek=KEK,
        clock=clock,
        reactor=None,  # type: ignore[arg-type]
        pool=None,  # type: ignore[arg-type]
    )
    auth = Authenticator(verifier, signing_secret="s", clock=clock)
    headers = signed_headers("GET", b"/b/k", b"", uri="/b/k", query="")
    index = sigv4._index_headers(headers)
    result = await auth.authenticate_async("GET", b"/b/k", b"", headers, header_index=index)
    assert (result.principal.token_id, result.principal.auth_method) == ("perf", "sigv4")
    bad = [(n, v if n != b"X-Amz-Date" else b"20240102T030406Z") for n, v in headers]
    with pytest.raises(SignatureDoesNotMatch):
        await auth.authenticate_async(
            "GET", b"/b/k", b"", bad, header_index=sigv4._index_headers(bad)
        )
    unsigned = [(b"Host", b"h")]
    anonymous = await auth.authenticate_async(
        "GET", b"/b/k", b"", unsigned, header_index=sigv4._index_headers(unsigned)
    )
    assert anonymous.principal.token is None


_PIECES = st.sampled_from(
    ["AK", "/", "20240102", "us-east-1", "s3", "aws4_request", "host", ";", "x-amz-date", ",",
     " ", "=", "Signature=", "Credential=", "SignedHeaders=", _SIG, "a", "A"]
)  # fmt: skip


@given(st.lists(_PIECES, max_size=12).map("".join), st.lists(_PIECES, max_size=8).map("".join))
def test_any_authorization_text_parses_as_the_general_parser_does(middle: str, tail: str) -> None:
    for text in (
        f"AWS4-HMAC-SHA256 Credential={middle}, SignedHeaders={tail}, Signature={_SIG}",
        f"AWS4-HMAC-SHA256 Credential=AK/20240102/us-east-1/s3/aws4_request, {middle}{tail}",
        f"AWS4-HMAC-SHA256 {middle}Signature={tail}",
    ):
        assert _outcome(sigv4.parse_authorization_header, text) == _outcome(
            sigv4._parse_authorization_fields, text
        )
