"""Every admin endpoint through StubTreq over the Klein resource, with a real StorageService
(JAY_SPEC §4.1, §3.12, §3.6, §9.6, §8.2 items 12, 16, 19, 22, 23)."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

import pytest
import pytest_twisted
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet import task

import jay
from jay.auth.presign import verify_jay_url
from jay.auth.secrets import check_secret, decrypt_secret
from jay.errors import AccessDenied
from jay.storage.api import ObjectAttributes

from .conftest import ADMIN_TOKEN, PRESIGN_BASE, SIGNING_SECRET, START, AdminClient, make_api

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
START_TEXT = "2023-11-14T22:13:20.25Z"
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z")
POLICY = {
    "version": "1",
    "statements": [{"effect": "deny", "actions": ["object:delete"], "subjects": ["*"]}],
}


def assert_error(reply: Any, status: int, message: str) -> None:
    assert reply.code == status, reply.body
    assert reply.body == json.dumps({"error": message}, separators=(",", ":")).encode() + b"\n"
    assert reply.header("Content-Type") == "text/plain; charset=utf-8"
    assert reply.header("X-Content-Type-Options") == "nosniff"


def assert_json(reply: Any, status: int) -> Any:
    assert reply.code == status, reply.body
    assert reply.header("Content-Type") == "application/json"
    assert reply.body.endswith(b"\n")
    return reply.json


# --- routing, health, authentication ----------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_health_stays_open_and_other_paths_are_go_404(env: Any) -> None:
    live = await env.client.request("GET", "/health/live", token=None)
    assert (live.code, live.body) == (200, b'{"status":"alive"}\n')
    ready = await env.client.request("GET", "/health/ready", token=None)
    assert ready.code == 503
    assert ready.body == b'{"reason":"recovery in progress","status":"not_ready"}\n'
    other = await env.client.request("GET", "/nowhere", token=None)
    assert (other.code, other.body) == (404, b"404 page not found\n")
    assert other.header("Content-Type") == "text/plain; charset=utf-8"


@pytest_twisted.ensureDeferred
async def test_jay_without_slash_redirects(env: Any) -> None:
    reply = await env.client.request("GET", "/_jay", token=None)
    assert reply.code == 301
    assert reply.header("Location") == "/_jay/"


@pytest_twisted.ensureDeferred
async def test_missing_or_wrong_token_is_401(env: Any) -> None:
    assert_error(await env.client.request("GET", "/_jay/accounts", token=None), 401, "unauthorized")
    assert_error(
        await env.client.request("GET", "/_jay/accounts", token="nope"), 401, "unauthorized"
    )
    # The whole header is compared: another scheme or extra space fails.
    for header in (f"bearer {ADMIN_TOKEN}", f"Bearer  {ADMIN_TOKEN}", ADMIN_TOKEN):
        reply = await env.client.request("GET", "/_jay/accounts", authorization=header)
        assert_error(reply, 401, "unauthorized")


@pytest_twisted.ensureDeferred
async def test_unknown_jay_path_is_401_then_404(env: Any) -> None:
    assert_error(await env.client.request("GET", "/_jay/nope", token=None), 401, "unauthorized")
    assert_error(await env.client.request("GET", "/_jay/nope"), 404, "not found")
    assert_error(await env.client.request("GET", "/_jay/"), 404, "not found")
    assert_error(await env.client.request("GET", "/_jay/", token=None), 401, "unauthorized")
    reply = await env.client.request("PATCH", "/_jay/accounts")
    assert_error(reply, 405, "method not allowed")
    assert "POST" in (reply.header("Allow") or "")


@pytest_twisted.ensureDeferred
async def test_lockout_after_five_failures_then_reset(env: Any) -> None:
    for _ in range(5):
        await env.client.request("GET", "/_jay/version", token="wrong")
    assert env.api.lockout.failures("127.0.0.1") == 5
    # Locked: even the right token is refused, and the refusals are not counted.
    assert_error(await env.client.request("GET", "/_jay/version"), 401, "unauthorized")
    assert_error(await env.client.request("GET", "/_jay/nope"), 401, "unauthorized")
    assert env.api.lockout.failures("127.0.0.1") == 5
    env.clock.advance(899)
    assert_error(await env.client.request("GET", "/_jay/version"), 401, "unauthorized")
    env.clock.advance(1)
    ok = await env.client.request("GET", "/_jay/version")
    assert assert_json(ok, 200) == {"version": jay.__version__}
    assert env.api.lockout.failures("127.0.0.1") == 0


@pytest_twisted.ensureDeferred
async def test_success_clears_failures(env: Any) -> None:
    for _ in range(4):
        await env.client.request("GET", "/_jay/version", token="wrong")
    assert (await env.client.request("GET", "/_jay/version")).code == 200
    for _ in range(4):
        await env.client.request("GET", "/_jay/version", token="wrong")
    assert (await env.client.request("GET", "/_jay/version")).code == 200


@pytest_twisted.ensureDeferred
async def test_no_admin_token_configured_refuses_everything(env: Any) -> None:
    api, *_ = make_api(env.storage, env.clock, env.pool, admin_token="")
    client = AdminClient(api.resource())
    assert_error(
        await client.request("GET", "/_jay/version", authorization="Bearer "), 401, "unauthorized"
    )


# --- accounts ----------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_create_account(env: Any) -> None:
    reply = await env.client.request("POST", "/_jay/accounts", json_body={"name": "myapp"})
    body = assert_json(reply, 201)
    assert list(body) == ["account_id", "name", "created_at", "status"]
    assert UUID.fullmatch(body["account_id"])
    assert body["name"] == "myapp"
    assert RFC3339.fullmatch(body["created_at"])  # storage stamps accounts with its own clock
    assert body["status"] == "active"
    stored = await env.storage.get_account(body["account_id"])
    assert stored.name == "myapp"


@pytest_twisted.ensureDeferred
async def test_create_account_field_names_are_case_insensitive(env: Any) -> None:
    reply = await env.client.request("POST", "/_jay/accounts", json_body={"NAME": "x"})
    assert assert_json(reply, 201)["name"] == "x"


@pytest.mark.parametrize("data", [b"", b"not json", b"[]", b'{"name": 5}', b"\xff"])
@pytest_twisted.ensureDeferred
async def test_create_account_invalid_body(env: Any, data: bytes) -> None:
    reply = await env.client.request("POST", "/_jay/accounts", data=data)
    assert_error(reply, 400, "invalid request body")


@pytest_twisted.ensureDeferred
async def test_list_and_get_accounts(env: Any) -> None:
    assert assert_json(await env.client.request("GET", "/_jay/accounts"), 200) == []
    a = await env.account("a")
    b = await env.account("b")
    listed = assert_json(await env.client.request("GET", "/_jay/accounts"), 200)
    assert sorted(x["account_id"] for x in listed) == sorted([a["account_id"], b["account_id"]])
    got = assert_json(await env.client.request("GET", f"/_jay/accounts/{a['account_id']}"), 200)
    assert got == a
    missing = await env.client.request("GET", "/_jay/accounts/no-such-id")
    assert_error(missing, 404, "account not found")


@pytest_twisted.ensureDeferred
async def test_suspend_blocks_cached_tokens_and_reactivate_restores(env: Any) -> None:
    account = await env.account()
    token = await env.token(account["account_id"])
    principal = await env.verifier.verify_bearer(token["token_id"], token["secret"])
    assert principal.account_id == account["account_id"]  # now cached
    reply = await env.client.request("POST", f"/_jay/accounts/{account['account_id']}/suspend")
    assert assert_json(reply, 200)["status"] == "suspended"
    with pytest.raises(AccessDenied):
        await env.verifier.verify_bearer(token["token_id"], token["secret"])
    reply = await env.client.request("POST", f"/_jay/accounts/{account['account_id']}/reactivate")
    assert assert_json(reply, 200)["status"] == "active"
    principal = await env.verifier.verify_bearer(token["token_id"], token["secret"])
    assert principal.token_id == token["token_id"]
    assert_error(
        await env.client.request("POST", "/_jay/accounts/nope/suspend"), 404, "account not found"
    )


# --- tokens ------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_create_token_stores_hash_and_encrypted_secret(env: Any) -> None:
    account = await env.account()
    body = {
        "account_id": account["account_id"],
        "name": "ci",
        "allowed_actions": ["object:get", "object:put"],
        "bucket_scope": ["b1"],
        "prefix_scope": ["p/"],
    }
    created = assert_json(await env.client.request("POST", "/_jay/tokens", json_body=body), 201)
    assert list(created) == ["token_id", "secret"]
    assert UUID.fullmatch(created["token_id"])
    assert re.fullmatch(r"[0-9a-f]{64}", created["secret"])
    record = await env.storage.get_token(created["token_id"])
    assert check_secret(created["secret"], record.secret_hash)
    assert decrypt_secret(env.kek, record.secret_key) == created["secret"]
    assert record.allowed_actions == ("object:get", "object:put")
    assert record.bucket_scope == ("b1",)
    assert record.prefix_scope == ("p/",)
    assert record.created_at == START
    assert record.expires_at is None


@pytest_twisted.ensureDeferred
async def test_create_token_errors(env: Any) -> None:
    account = await env.account()
    aid = account["account_id"]

    async def post(body: Any) -> Any:
        return await env.client.request("POST", "/_jay/tokens", json_body=body)

    assert_error(
        await env.client.request("POST", "/_jay/tokens", data=b""), 400, "invalid request body"
    )
    assert_error(
        await post({"account_id": aid, "allowed_actions": "*"}), 400, "invalid request body"
    )
    assert_error(await post({"allowed_actions": ["*"]}), 400, "account_id required")
    assert_error(
        await post({"account_id": "nope", "allowed_actions": ["*"]}), 400, "account not found"
    )
    assert_error(await post({"account_id": aid}), 400, "allowed_actions is required")
    assert_error(
        await post({"account_id": aid, "allowed_actions": []}), 400, "allowed_actions is required"
    )
    assert_error(
        await post({"account_id": aid, "allowed_actions": ["object:get", "object:*", "x"]}),
        400,
        "unknown action(s): object:*, x",
    )
    bad_time = {"account_id": aid, "allowed_actions": ["*"], "expires_at": "tomorrow"}
    assert_error(await post(bad_time), 400, "expires_at must be an RFC 3339 timestamp")
    no_zone = {"account_id": aid, "allowed_actions": ["*"], "expires_at": "2030-01-01T00:00:00"}
    assert_error(await post(no_zone), 400, "expires_at must be an RFC 3339 timestamp")
    past = {"account_id": aid, "allowed_actions": ["*"], "expires_at": "2020-01-01T00:00:00Z"}
    assert_error(await post(past), 400, "expires_at must be in the future")
    assert await env.storage.list_tokens(aid) == []


@pytest_twisted.ensureDeferred
async def test_token_expires_at_is_stored_listed_and_honoured(env: Any) -> None:
    account = await env.account()
    token = await env.token(account["account_id"], expires_at="2023-11-14T23:13:20.5+00:00")
    record = await env.storage.get_token(token["token_id"])
    assert record.expires_at == START + 3600.25
    listed = assert_json(await env.client.request("GET", "/_jay/tokens"), 200)
    assert listed[0]["expires_at"] == "2023-11-14T23:13:20.5Z"
    await env.verifier.verify_bearer(token["token_id"], token["secret"])
    env.clock.advance(3601)
    with pytest.raises(Exception) as info:
        await env.verifier.verify_bearer(token["token_id"], token["secret"])
    assert type(info.value).__name__ == "ExpiredToken"


@pytest_twisted.ensureDeferred
async def test_list_tokens(env: Any) -> None:
    reply = await env.client.request("GET", "/_jay/tokens")
    assert assert_json(reply, 200) is None and reply.body == b"null\n"
    a = await env.account("a")
    b = await env.account("b")
    ta = await env.token(a["account_id"], allowed_actions=["object:get"])
    tb = await env.token(b["account_id"], bucket_scope=["x"])
    everything = assert_json(await env.client.request("GET", "/_jay/tokens"), 200)
    assert {t["token_id"] for t in everything} == {ta["token_id"], tb["token_id"]}
    only_a = assert_json(
        await env.client.request("GET", f"/_jay/tokens?account_id={a['account_id']}"), 200
    )
    assert only_a == [
        {
            "token_id": ta["token_id"],
            "account_id": a["account_id"],
            "name": "t",
            "secret_hash": "",
            "allowed_actions": ["object:get"],
            "created_at": START_TEXT,
            "status": "active",
        }
    ]
    only_b = assert_json(
        await env.client.request("GET", f"/_jay/tokens?account_id={b['account_id']}"), 200
    )
    assert list(only_b[0]) == [
        "token_id", "account_id", "name", "secret_hash", "allowed_actions", "bucket_scope",
        "created_at", "status",
    ]  # fmt: skip
    assert ta["secret"] not in (await env.client.request("GET", "/_jay/tokens")).body.decode()
    one = assert_json(await env.client.request("GET", f"/_jay/tokens/{ta['token_id']}"), 200)
    assert one == only_a[0]


@pytest_twisted.ensureDeferred
async def test_revoke_token_drops_cache(env: Any) -> None:
    account = await env.account()
    token = await env.token(account["account_id"])
    await env.verifier.verify_bearer(token["token_id"], token["secret"])
    reply = await env.client.request("DELETE", f"/_jay/tokens/{token['token_id']}")
    assert (reply.code, reply.body) == (204, b"")
    assert (await env.storage.get_token(token["token_id"])).status == "revoked"
    with pytest.raises(AccessDenied):
        await env.verifier.verify_bearer(token["token_id"], token["secret"])
    again = await env.client.request("DELETE", f"/_jay/tokens/{token['token_id']}")
    assert again.code == 204
    assert_error(await env.client.request("DELETE", "/_jay/tokens/nope"), 404, "token not found")


# --- presign -----------------------------------------------------------------------------------


async def _presign(env: Any, **body: Any) -> Any:
    return await env.client.request("POST", "/_jay/presign", json_body=body)


@pytest_twisted.ensureDeferred
async def test_presign_generates_a_verifiable_url(env: Any) -> None:
    account = await env.account()
    token = await env.token(account["account_id"])
    reply = await _presign(
        env, token_id=token["token_id"], method="get", bucket="photos", key="my file.txt"
    )
    url = assert_json(reply, 200)["url"]
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == PRESIGN_BASE
    assert parts.path == "/photos/my%20file.txt"
    assert parts.query.startswith(f"X-Jay-Expires={int(START) + 3600}&X-Jay-Signature=")
    assert parts.query.endswith(f"&X-Jay-Token={token['token_id']}")
    # The method was upper-cased before signing, so a real GET verifies.
    signed = verify_jay_url(
        signing_secret=SIGNING_SECRET,
        method="GET",
        raw_path="/photos/my file.txt",
        raw_query=parts.query,
        now=START + 10,
    )
    assert (signed.token_id, signed.expires) == (token["token_id"], int(START) + 3600)


@pytest_twisted.ensureDeferred
async def test_presign_bucket_only_and_explicit_expiry(env: Any) -> None:
    account = await env.account()
    token = await env.token(account["account_id"])
    reply = await _presign(
        env, token_id=token["token_id"], method="PUT", bucket="b", expires_seconds=604800
    )
    url = assert_json(reply, 200)["url"]
    assert urlsplit(url).path == "/b"
    assert f"X-Jay-Expires={int(START) + 604800}&" in url


@pytest_twisted.ensureDeferred
async def test_presign_errors(env: Any) -> None:
    account = await env.account()
    token = await env.token(account["account_id"])
    tid = token["token_id"]
    required = "token_id, method, and bucket are required"
    assert_error(await _presign(env, method="GET", bucket="b"), 400, required)
    assert_error(await _presign(env, token_id=tid, bucket="b"), 400, required)
    assert_error(await _presign(env, token_id=tid, method="GET"), 400, required)
    assert_error(
        await _presign(env, token_id=tid, method="GET", bucket="b", expires_seconds="60"),
        400,
        "invalid request body",
    )
    assert_error(
        await _presign(env, token_id=tid, method="GET", bucket="b", expires_seconds=1.5),
        400,
        "invalid request body",
    )
    assert_error(
        await _presign(env, token_id=tid, method="GET", bucket="b", expires_seconds=604801),
        400,
        "expiration exceeds maximum of 604800 seconds",
    )
    assert_error(
        await _presign(env, token_id=tid, method="BREW", bucket="b"),
        400,
        "unsupported method: BREW",
    )
    assert_error(
        await _presign(env, token_id="nope", method="GET", bucket="b"), 400, "token not found"
    )
    await env.client.request("POST", f"/_jay/accounts/{account['account_id']}/suspend")
    assert_error(
        await _presign(env, token_id=tid, method="GET", bucket="b"), 400, "account is not active"
    )
    await env.client.request("DELETE", f"/_jay/tokens/{tid}")
    assert_error(
        await _presign(env, token_id=tid, method="GET", bucket="b"), 400, "token is revoked"
    )


@pytest_twisted.ensureDeferred
async def test_presign_refuses_expired_token(env: Any) -> None:
    account = await env.account()
    token = await env.token(account["account_id"], expires_at="2023-11-14T22:14:20Z")
    ok = await _presign(env, token_id=token["token_id"], method="GET", bucket="b")
    assert ok.code == 200
    env.clock.advance(60)
    assert_error(
        await _presign(env, token_id=token["token_id"], method="GET", bucket="b"),
        400,
        "token has expired",
    )


# --- metrics and version -----------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_metrics_json_in_spec_order(env: Any) -> None:
    env.clock.advance(12.9)
    env.metrics.observe_request("s3", "PutObject", 200, 0.01, bytes_in=10)
    env.metrics.observe_request("native", "GetObject", 206, 0.01, bytes_out=4)
    env.metrics.auth_failure()
    reply = await env.client.request("GET", "/_jay/metrics")
    assert assert_json(reply, 200) is not None
    assert reply.body == (
        b'{"uptime_seconds":12,"put_object_total":1,"get_object_total":1,"delete_object_total":0,'
        b'"head_object_total":0,"list_objects_total":0,"create_bucket_total":0,'
        b'"delete_bucket_total":0,"auth_failures":1,"checksum_failures":0,"fsync_failures":0,'
        b'"objects_quarantined":0,"bytes_uploaded":10,"bytes_downloaded":4}\n'
    )
    assert_error(await env.client.request("GET", "/_jay/metrics", token=None), 401, "unauthorized")


@pytest_twisted.ensureDeferred
async def test_prometheus_endpoint_requires_token_unless_public(env: Any) -> None:
    env.metrics.observe_request("s3", "HeadObject", 404, 0.002)
    assert_error(await env.client.request("GET", "/metrics", token=None), 401, "unauthorized")
    reply = await env.client.request("GET", "/metrics")
    assert reply.code == 200
    assert (reply.header("Content-Type") or "").startswith("text/plain; version=")
    names = {f.name for f in text_string_to_metric_families(reply.body.decode())}
    assert {"jay_uptime_seconds", "jay_requests", "jay_request_duration_seconds"} <= names
    api, *_ = make_api(env.storage, env.clock, env.pool, metrics_public=True)
    public = await AdminClient(api.resource()).request("GET", "/metrics", token=None)
    assert public.code == 200 and b"jay_put_object_total 0.0" in public.body


@pytest_twisted.ensureDeferred
async def test_metrics_unavailable(env: Any) -> None:
    api, *_ = make_api(env.storage, env.clock, env.pool, metrics=None)
    client = AdminClient(api.resource())
    assert_error(await client.request("GET", "/_jay/metrics"), 503, "metrics not available")


@pytest_twisted.ensureDeferred
async def test_version(env: Any) -> None:
    reply = await env.client.request("GET", "/_jay/version")
    assert (
        reply.body
        == json.dumps({"version": jay.__version__}, separators=(",", ":")).encode() + b"\n"
    )


# --- buckets and policies ----------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_list_buckets_with_owner(env: Any) -> None:
    a = await env.account("a")
    b = await env.account("b")
    await env.storage.create_bucket("zeta", a["account_id"])
    await env.storage.create_bucket("alpha", b["account_id"])
    listed = assert_json(await env.client.request("GET", "/_jay/buckets"), 200)
    assert [(x["name"], x["owner_account_id"]) for x in listed] == [
        ("alpha", b["account_id"]),
        ("zeta", a["account_id"]),
    ]
    assert listed[0]["visibility"] == "private" and listed[0]["has_policy"] is False
    assert RFC3339.fullmatch(listed[0]["created_at"])


@pytest_twisted.ensureDeferred
async def test_bucket_policy_lifecycle(env: Any) -> None:
    account = await env.account()
    await env.storage.create_bucket("pol", account["account_id"])
    path = "/_jay/buckets/pol/policy"
    assert_error(await env.client.request("GET", path), 404, "bucket has no policy")
    put = await env.client.request("PUT", path, json_body=POLICY)
    assert put.code == 204
    stored = (await env.storage.get_bucket("pol")).policy_json
    assert json.loads(stored) == POLICY
    got = await env.client.request("GET", path)
    assert json.loads(assert_json(got, 200) and got.body) == POLICY
    deleted = await env.client.request("DELETE", path)
    assert deleted.code == 204
    assert (await env.storage.get_bucket("pol")).policy_json is None


@pytest_twisted.ensureDeferred
async def test_bucket_policy_errors(env: Any) -> None:
    account = await env.account()
    await env.storage.create_bucket("pol", account["account_id"])
    bad_action = {"statements": [{"effect": "deny", "actions": ["object:eat"], "subjects": ["*"]}]}
    reply = await env.client.request("PUT", "/_jay/buckets/pol/policy", json_body=bad_action)
    assert_error(reply, 400, "Unknown action(s): object:eat")
    reply = await env.client.request("PUT", "/_jay/buckets/pol/policy", data=b"{")
    assert reply.code == 400 and reply.json["error"].startswith("Policies must be valid JSON")
    assert (await env.storage.get_bucket("pol")).policy_json is None
    for method in ("GET", "PUT", "DELETE"):
        missing = await env.client.request(method, "/_jay/buckets/none/policy", json_body=POLICY)
        assert_error(missing, 404, "bucket not found")
    assert_error(
        await env.client.request("PUT", "/_jay/buckets/pol/policy", json_body=POLICY, token=None),
        401,
        "unauthorized",
    )


# --- quarantine --------------------------------------------------------------------------------


async def _quarantined_object(env: Any, key: str = "k") -> Any:
    account = await env.account()
    bucket = await env.storage.create_bucket("qbkt", account["account_id"])
    writer = env.storage.begin_write()
    writer.write(b"hello")
    staged = await writer.finish()
    await env.storage.put_object("qbkt", key, staged, ObjectAttributes())
    info = await env.storage.quarantine_object(bucket.bucket_id, key, "test")
    assert info is not None
    return info


@pytest_twisted.ensureDeferred
async def test_list_quarantine(env: Any) -> None:
    empty = await env.client.request("GET", "/_jay/quarantine")
    assert empty.body == b"null\n"
    info = await _quarantined_object(env)
    listed = assert_json(await env.client.request("GET", "/_jay/quarantine"), 200)
    assert listed == [
        {
            "bucket_id": info.bucket_id,
            "bucket_name": "qbkt",
            "key": "k",
            "object_id": info.object_id,
            "size_bytes": 5,
            "expected_checksum": info.sha256_hex,
            "location_ref": info.location_ref,
        }
    ]


class QuarantineStub:
    """The real storage plus scripted revalidate/purge answers, recording calls, for the
    admin-side mapping until StorageService grows the methods."""

    def __init__(self, storage: Any) -> None:
        self._storage = storage
        self.calls: list[tuple[str, ...]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._storage, name)

    def revalidate_object(self, bucket_id: str, key: str) -> Any:
        from twisted.internet.defer import fail, succeed

        from jay.errors import NoSuchKey

        self.calls.append(("revalidate", bucket_id, key))
        if key == "missing":
            return fail(NoSuchKey())
        return succeed(key == "good")

    def purge_object(self, bucket_id: str, key: str) -> Any:
        from twisted.internet.defer import fail, succeed

        from jay.errors import NoSuchKey

        self.calls.append(("purge", bucket_id, key))
        return fail(NoSuchKey()) if key == "missing" else succeed(None)

    def purge_quarantined(self) -> Any:
        from twisted.internet.defer import succeed

        self.calls.append(("purge_all",))
        return succeed(3)


@pytest_twisted.ensureDeferred
async def test_quarantine_actions_map_to_storage(env: Any) -> None:
    stub = QuarantineStub(env.storage)
    api, *_ = make_api(stub, env.clock, env.pool)
    client = AdminClient(api.resource())
    good = await client.request(
        "POST", "/_jay/quarantine/revalidate", json_body={"bucket_id": "b", "key": "good"}
    )
    assert assert_json(good, 200) == {"restored": True}
    bad = await client.request(
        "POST", "/_jay/quarantine/revalidate", json_body={"bucket_id": "b", "key": "bad"}
    )
    assert bad.body == b'{"restored":false}\n'
    missing = await client.request(
        "POST", "/_jay/quarantine/revalidate", json_body={"bucket_id": "b", "key": "missing"}
    )
    assert_error(missing, 404, "object not found")
    one = await client.request(
        "DELETE", "/_jay/quarantine", json_body={"bucket_id": "b", "key": "k"}
    )
    assert (one.code, one.body) == (204, b"")
    gone = await client.request(
        "DELETE", "/_jay/quarantine", json_body={"bucket_id": "b", "key": "missing"}
    )
    assert_error(gone, 404, "object not found")
    every = await client.request("DELETE", "/_jay/quarantine", json_body={"mode": "all"})
    assert assert_json(every, 200) == {"purged": 3}
    assert stub.calls == [
        ("revalidate", "b", "good"),
        ("revalidate", "b", "bad"),
        ("revalidate", "b", "missing"),
        ("purge", "b", "k"),
        ("purge", "b", "missing"),
        ("purge_all",),
    ]


@pytest_twisted.ensureDeferred
async def test_quarantine_body_errors(env: Any) -> None:
    stub = QuarantineStub(env.storage)
    api, *_ = make_api(stub, env.clock, env.pool)
    client = AdminClient(api.resource())
    assert_error(
        await client.request("DELETE", "/_jay/quarantine", data=b""), 400, "invalid request body"
    )
    assert_error(
        await client.request("DELETE", "/_jay/quarantine", json_body={"bucket_id": "b"}),
        400,
        "specify bucket_id+key for single purge, or mode=all for purge all",
    )
    assert_error(
        await client.request("POST", "/_jay/quarantine/revalidate", data=b"x"),
        400,
        "invalid request body",
    )
    assert_error(
        await client.request("POST", "/_jay/quarantine/revalidate", json_body={"key": "k"}),
        400,
        "bucket_id and key are required",
    )
    assert stub.calls == []


@pytest_twisted.ensureDeferred
async def test_real_storage_purge_and_revalidate(env: Any) -> None:
    info = await _quarantined_object(env, "a")
    restored = await env.client.request(
        "POST", "/_jay/quarantine/revalidate", json_body={"bucket_id": info.bucket_id, "key": "a"}
    )
    assert assert_json(restored, 200) == {"restored": True}
    assert (await env.storage.bucket_stats("qbkt")).object_count == 1
    await env.storage.quarantine_object(info.bucket_id, "a", "again")
    purged = await env.client.request("DELETE", "/_jay/quarantine", json_body={"mode": "all"})
    assert assert_json(purged, 200) == {"purged": 1}
    assert (await env.client.request("GET", "/_jay/quarantine")).body == b"null\n"
    assert (await env.storage.bucket_stats("qbkt")).object_count == 0


# --- unexpected failures -----------------------------------------------------------------------


class BrokenStorage:
    def __getattr__(self, name: str) -> Any:
        def broken(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("/secret/path exploded")

        return broken


@pytest_twisted.ensureDeferred
async def test_unexpected_error_is_500_without_details(env: Any) -> None:
    api, *_ = make_api(BrokenStorage(), env.clock, env.pool)
    client = AdminClient(api.resource())
    reply = await client.request("GET", "/_jay/accounts")
    assert_error(reply, 500, "internal error")
    assert b"secret" not in reply.body
    _ = task  # the clock module is used through env
