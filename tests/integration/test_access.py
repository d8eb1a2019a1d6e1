"""Access control end to end: scoped tokens, bucket ownership, bucket policies, anonymous access,
deny by IP, rate limits and proxy headers, against real jay processes (JAY_SPEC §3.7–3.12,
§8.2 items 11–18). Accounts and tokens come from the admin API."""

from __future__ import annotations

import inspect
import itertools
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from jay.s3.app import S3Api
from tests.integration.conftest import code_of, s3_client
from tests.integration.jayproc import CLEAN_EXIT, JayProcess

_names = itertools.count()

# The rate-limit and proxy tests need RequestLimits and ClientIPResolver hooked into the S3 app.
LIMITS_WIRED = "limits" in inspect.signature(S3Api).parameters
needs_limits = pytest.mark.skipif(
    not LIMITS_WIRED,
    reason="S3Api has no `limits` parameter yet: RequestLimits/ClientIPResolver not wired",
)


@dataclass(frozen=True)
class Token:
    token_id: str
    secret: str
    account_id: str


def request(
    url: str,
    method: str = "GET",
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def admin(jay: JayProcess, method: str, path: str, body: object = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    status, _, raw = request(
        jay.admin_url + path,
        method,
        data,
        {"Authorization": f"Bearer {jay.admin_token}", "Content-Type": "application/json"},
    )
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw


def admin_is_wired(jay: JayProcess) -> bool:
    status, _ = admin(jay, "GET", "/_jay/accounts")
    return status == 200


def new_account(jay: JayProcess, name: str) -> str:
    status, body = admin(jay, "POST", "/_jay/accounts", {"name": name})
    assert status == 201, body
    return str(body["account_id"])


def new_token(jay: JayProcess, account_id: str, actions: list[str], **scope: list[str]) -> Token:
    status, body = admin(
        jay,
        "POST",
        "/_jay/tokens",
        {"account_id": account_id, "name": "t", "allowed_actions": actions, **scope},
    )
    assert status == 201, body
    return Token(body["token_id"], body["secret"], account_id)


def client(jay: JayProcess, token: Token) -> Any:
    return s3_client(jay, token.token_id, token.secret)


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_names)}"


@dataclass(frozen=True)
class World:
    jay: JayProcess
    owner: Token  # account A, every action
    other: Token  # account B, every action


@pytest.fixture(scope="module")
def world(jay: JayProcess) -> World:
    if not admin_is_wired(jay):
        pytest.skip("admin API (/_jay/accounts, /_jay/tokens) is not wired into jay.service yet")
    a = new_account(jay, "owner")
    b = new_account(jay, "other")
    return World(jay, new_token(jay, a, ["*"]), new_token(jay, b, ["*"]))


@pytest.fixture
def owned(world: World) -> str:
    """A bucket of account A holding a few objects."""
    s3 = client(world.jay, world.owner)
    name = unique("acc")
    s3.create_bucket(Bucket=name)
    for key in ("team/a.txt", "team/sub/b.txt", "other/c.txt", "public/p.txt", "private/q.txt"):
        s3.put_object(Bucket=name, Key=key, Body=key.encode())
    return name


# --- ownership ----------------------------------------------------------------------------------


def test_another_accounts_bucket_is_neither_listed_nor_usable(world: World, owned: str) -> None:
    other = client(world.jay, world.other)
    assert owned not in [b["Name"] for b in other.list_buckets()["Buckets"]]
    assert owned in [b["Name"] for b in client(world.jay, world.owner).list_buckets()["Buckets"]]
    with pytest.raises(ClientError) as err:
        other.get_object(Bucket=owned, Key="team/a.txt")
    assert code_of(err) == "AccessDenied"
    with pytest.raises(ClientError) as err:
        other.put_object(Bucket=owned, Key="team/a.txt", Body=b"overwrite")
    assert code_of(err) == "AccessDenied"
    with pytest.raises(ClientError) as err:
        other.list_objects_v2(Bucket=owned)
    assert code_of(err) == "AccessDenied"
    with pytest.raises(ClientError) as err:
        other.delete_object(Bucket=owned, Key="team/a.txt")
    assert code_of(err) == "AccessDenied"
    with pytest.raises(ClientError) as err:
        other.delete_bucket(Bucket=owned)
    assert code_of(err) == "AccessDenied"
    with pytest.raises(ClientError) as err:
        other.head_bucket(Bucket=owned)
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    # Nothing was changed by the refused calls.
    body = client(world.jay, world.owner).get_object(Bucket=owned, Key="team/a.txt")["Body"]
    assert body.read() == b"team/a.txt"


def test_bucket_names_stay_global_across_accounts(world: World, owned: str) -> None:
    with pytest.raises(ClientError) as err:
        client(world.jay, world.other).create_bucket(Bucket=owned)
    assert code_of(err) == "BucketAlreadyExists"


# --- scoped tokens -----------------------------------------------------------------------------------


def test_action_scope(world: World, owned: str) -> None:
    reader = client(
        world.jay, new_token(world.jay, world.owner.account_id, ["object:get", "object:list"])
    )
    assert reader.get_object(Bucket=owned, Key="other/c.txt")["Body"].read() == b"other/c.txt"
    assert reader.list_objects_v2(Bucket=owned)["KeyCount"] == 5
    for call in (
        lambda: reader.put_object(Bucket=owned, Key="new.txt", Body=b"x"),
        lambda: reader.delete_object(Bucket=owned, Key="other/c.txt"),
        lambda: reader.create_multipart_upload(Bucket=owned, Key="mp"),
        lambda: reader.create_bucket(Bucket=unique("nope")),
        lambda: reader.list_buckets(),
    ):
        with pytest.raises(ClientError) as err:
            call()
        assert code_of(err) == "AccessDenied"


def test_bucket_scope(world: World, owned: str) -> None:
    s3 = client(world.jay, world.owner)
    second = unique("acc2")
    s3.create_bucket(Bucket=second)
    s3.put_object(Bucket=second, Key="k", Body=b"v")
    scoped = client(
        world.jay, new_token(world.jay, world.owner.account_id, ["*"], bucket_scope=[owned])
    )
    assert scoped.get_object(Bucket=owned, Key="team/a.txt")["Body"].read() == b"team/a.txt"
    with pytest.raises(ClientError) as err:
        scoped.get_object(Bucket=second, Key="k")
    assert code_of(err) == "AccessDenied"
    with pytest.raises(ClientError) as err:
        scoped.list_buckets()  # a bucket-less operation: never within a bucket scope
    assert code_of(err) == "AccessDenied"


def test_prefix_scope_limits_keys_and_listings(world: World, owned: str) -> None:
    token = new_token(
        world.jay,
        world.owner.account_id,
        ["object:get", "object:put", "object:list"],
        prefix_scope=["team/"],
    )
    scoped = client(world.jay, token)
    assert scoped.get_object(Bucket=owned, Key="team/a.txt")["Body"].read() == b"team/a.txt"
    scoped.put_object(Bucket=owned, Key="team/new.txt", Body=b"n")
    for key in ("other/c.txt", "team", "teamx/a"):
        with pytest.raises(ClientError) as err:
            scoped.get_object(Bucket=owned, Key=key)
        assert code_of(err) == "AccessDenied", key
    with pytest.raises(ClientError) as err:
        scoped.put_object(Bucket=owned, Key="other/new.txt", Body=b"n")
    assert code_of(err) == "AccessDenied"

    listing = scoped.list_objects_v2(Bucket=owned, Prefix="team/")
    assert [o["Key"] for o in listing["Contents"]] == [
        "team/a.txt",
        "team/new.txt",
        "team/sub/b.txt",
    ]
    # Listing outside the scope (the whole bucket included) would reveal other keys.
    for prefix in ("", "other/", "te"):
        with pytest.raises(ClientError) as err:
            scoped.list_objects_v2(Bucket=owned, Prefix=prefix)
        assert code_of(err) == "AccessDenied", prefix


# --- bucket policies and anonymous access -------------------------------------------------------------

PUBLIC_PREFIX_POLICY = {
    "version": "1",
    "statements": [
        {"effect": "allow", "actions": ["object:get"], "prefixes": ["public/"], "subjects": ["*"]}
    ],
}


def test_anonymous_callers_are_refused_without_a_policy(world: World, owned: str) -> None:
    base = f"{world.jay.s3_url}/{owned}"
    assert request(f"{base}/public/p.txt")[0] == 403
    assert request(base)[0] == 403
    # A bucket that does not exist is NoSuchBucket to anyone, as on S3.
    status, _, body = request(f"{world.jay.s3_url}/no-such-bucket-{next(_names)}/k")
    assert status == 404 and b"<Code>NoSuchBucket</Code>" in body


def test_public_prefix_by_policy(world: World, owned: str) -> None:
    owner = client(world.jay, world.owner)
    owner.put_bucket_policy(Bucket=owned, Policy=json.dumps(PUBLIC_PREFIX_POLICY))
    base = f"{world.jay.s3_url}/{owned}"

    status, _, body = request(f"{base}/public/p.txt")
    assert (status, body) == (200, b"public/p.txt")
    assert request(f"{base}/public/p.txt", "HEAD")[0] == 200
    assert request(f"{base}/public/missing.txt")[0] == 404  # readable prefix: existence shows

    status, _, body = request(f"{base}/private/q.txt")
    assert status == 403 and b"AccessDenied" in body
    assert request(f"{base}/public/new.txt", "PUT", b"x")[0] == 403
    assert request(f"{base}/public/p.txt", "DELETE")[0] == 403
    assert request(base)[0] == 403  # object:list was not granted
    assert request(f"{base}?list-type=2&prefix=public/")[0] == 403
    # "*" covers signed callers of other accounts too, for that action and prefix only.
    other = client(world.jay, world.other)
    assert other.get_object(Bucket=owned, Key="public/p.txt")["Body"].read() == b"public/p.txt"
    with pytest.raises(ClientError) as err:
        other.get_object(Bucket=owned, Key="private/q.txt")
    assert code_of(err) == "AccessDenied"
    # The object is untouched by the refused anonymous writes.
    assert owner.get_object(Bucket=owned, Key="public/p.txt")["Body"].read() == b"public/p.txt"

    owner.delete_bucket_policy(Bucket=owned)
    assert request(f"{base}/public/p.txt")[0] == 403


def test_policy_management_is_for_the_owner_only(world: World, owned: str) -> None:
    other = client(world.jay, world.other)
    with pytest.raises(ClientError) as err:
        other.put_bucket_policy(Bucket=owned, Policy=json.dumps(PUBLIC_PREFIX_POLICY))
    assert code_of(err) == "AccessDenied"
    with pytest.raises(ClientError) as err:
        client(world.jay, world.owner).put_bucket_policy(
            Bucket=owned,
            Policy=json.dumps({"statements": [{"effect": "allow", "actions": ["s3:*"]}]}),
        )
    assert code_of(err) == "MalformedPolicy"


def test_allow_for_one_token_of_another_account(world: World, owned: str) -> None:
    policy = {
        "statements": [
            {
                "effect": "allow",
                "actions": ["object:get", "object:list"],
                "prefixes": ["team/"],
                "subjects": [world.other.token_id],
            }
        ]
    }
    client(world.jay, world.owner).put_bucket_policy(Bucket=owned, Policy=json.dumps(policy))
    other = client(world.jay, world.other)
    assert other.get_object(Bucket=owned, Key="team/a.txt")["Body"].read() == b"team/a.txt"
    with pytest.raises(ClientError) as err:
        other.get_object(Bucket=owned, Key="other/c.txt")
    assert code_of(err) == "AccessDenied"
    assert request(f"{world.jay.s3_url}/{owned}/team/a.txt")[0] == 403  # not anonymous


def test_deny_by_ip_applies_only_to_the_listed_networks(world: World, owned: str) -> None:
    owner = client(world.jay, world.owner)
    policy = {
        "statements": [
            {
                "effect": "deny",
                "actions": ["object:delete"],
                "subjects": ["*"],
                "conditions": {"ip_whitelist": ["127.0.0.0/8"]},
            },
            {
                "effect": "deny",
                "actions": ["object:get"],
                "subjects": ["*"],
                "conditions": {"ip_whitelist": ["10.0.0.0/8"]},
            },
        ]
    }
    owner.put_bucket_policy(Bucket=owned, Policy=json.dumps(policy))
    # The test talks from 127.0.0.1: deletes are denied even to the owner, gets are not.
    with pytest.raises(ClientError) as err:
        owner.delete_object(Bucket=owned, Key="other/c.txt")
    assert code_of(err) == "AccessDenied"
    assert owner.get_object(Bucket=owned, Key="other/c.txt")["Body"].read() == b"other/c.txt"
    owner.delete_bucket_policy(Bucket=owned)
    owner.delete_object(Bucket=owned, Key="other/c.txt")
    with pytest.raises(ClientError) as err:
        owner.head_object(Bucket=owned, Key="other/c.txt")
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


# --- rate limits and proxy headers (their own process) -----------------------------------------------


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JayProcess]:
    if not LIMITS_WIRED:
        pytest.skip("S3Api has no `limits` parameter yet: RequestLimits not wired")
    workdir: Path = tmp_path_factory.mktemp("jay-limited")
    proc = JayProcess(
        workdir,
        {
            "rate_limit": 0.5,
            "rate_burst": 3,
            "trust_proxy_headers": True,
            "trusted_proxies": ["127.0.0.0/8"],
        },
    ).start()
    yield proc
    assert proc.stop() in CLEAN_EXIT, proc.log_text()[-5000:]


@needs_limits
def test_anonymous_requests_are_limited_per_client_ip(limited: JayProcess) -> None:
    url = f"{limited.s3_url}/some-bucket/k"
    xff = {"X-Forwarded-For": "203.0.113.7"}
    statuses = [request(url, headers=xff)[0] for _ in range(3)]
    assert statuses == [404, 404, 404]  # NoSuchBucket
    status, headers, body = request(url, headers=xff)
    assert status == 503 and b"SlowDown" in body
    assert headers.get("Retry-After") == "2"  # max(1, ceil(1 / 0.5))
    # Another client behind the same trusted proxy has its own budget.
    assert request(url, headers={"X-Forwarded-For": "203.0.113.8"})[0] == 404


@needs_limits
def test_failed_authentications_are_cut_off_before_bcrypt(limited: JayProcess) -> None:
    url = f"{limited.s3_url}/"
    guesses = [
        request(
            url,
            headers={"Authorization": "Bearer nobody:wrong", "X-Forwarded-For": "203.0.113.20"},
        )
        for _ in range(12)
    ]
    statuses = [status for status, _, _ in guesses]
    assert statuses[:3] == [403, 403, 403]
    # From the 4th on the IP's request budget is spent (SlowDown), but each guess that reached
    # bcrypt still counts; after 10 the address is refused before authentication is attempted.
    assert statuses[3:] == [503] * 9
    assert b"Rate limit exceeded" in guesses[3][2]
    assert b"Too many failed authentications" in guesses[-1][2]
    assert b"Too many failed authentications" not in guesses[9][2]
