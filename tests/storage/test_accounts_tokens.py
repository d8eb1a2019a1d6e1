"""Accounts and tokens in the storage contract (jay.storage.api.Storage)."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import pytest
import pytest_twisted

from jay.errors import NoSuchAccount, NoSuchToken
from jay.storage.api import TokenRecord


def token_record(token_id: str, account_id: str, **kw: Any) -> TokenRecord:
    fields: dict[str, Any] = dict(
        token_id=token_id,
        account_id=account_id,
        name="tok " + token_id,
        secret_hash="$2b$12$" + "x" * 53,
        secret_key="enc:v1:AAAA" + token_id,
        allowed_actions=("object:get", "object:put"),
        created_at=1700000000.5,
    )
    fields.update(kw)
    return TokenRecord(**fields)


@pytest_twisted.ensureDeferred
async def test_create_get_list_accounts(svc: Any) -> None:
    before = time.time()
    alice = await svc.create_account("alice")
    bob = await svc.create_account("bob")
    assert alice.name == "alice" and bob.name == "bob"
    assert alice.status == "active"
    assert alice.account_id and alice.account_id != bob.account_id
    assert before - 5 <= alice.created_at <= time.time() + 5
    assert await svc.get_account(alice.account_id) == alice
    listed = await svc.list_accounts()
    assert {a.account_id for a in listed} == {alice.account_id, bob.account_id}


@pytest_twisted.ensureDeferred
async def test_unknown_account(svc: Any) -> None:
    with pytest.raises(NoSuchAccount):
        await svc.get_account("no-such-account")
    with pytest.raises(NoSuchAccount):
        await svc.set_account_status("no-such-account", "suspended")


@pytest_twisted.ensureDeferred
async def test_set_account_status_persists(svc: Any) -> None:
    alice = await svc.create_account("alice")
    suspended = await svc.set_account_status(alice.account_id, "suspended")
    assert suspended.status == "suspended"
    assert suspended.account_id == alice.account_id
    assert (await svc.get_account(alice.account_id)).status == "suspended"
    again = await svc.set_account_status(alice.account_id, "active")
    assert again.status == "active"


@pytest_twisted.ensureDeferred
async def test_token_round_trip_and_listing(svc: Any) -> None:
    alice = await svc.create_account("alice")
    bob = await svc.create_account("bob")
    t1 = token_record(
        "tok-1",
        alice.account_id,
        bucket_scope=("photos", "docs"),
        prefix_scope=("a/",),
        expires_at=1800000000.25,
    )
    t2 = token_record("tok-2", alice.account_id)
    t3 = token_record("tok-3", bob.account_id, allowed_actions=("*",))
    for record in (t1, t2, t3):
        assert await svc.create_token(record) == record
    assert await svc.get_token("tok-1") == t1
    assert await svc.get_token("tok-3") == t3
    mine = await svc.list_tokens(alice.account_id)
    assert sorted(t.token_id for t in mine) == ["tok-1", "tok-2"]
    everyone = await svc.list_tokens()
    assert sorted(t.token_id for t in everyone) == ["tok-1", "tok-2", "tok-3"]
    assert await svc.list_tokens(bob.account_id) == [t3]


@pytest_twisted.ensureDeferred
async def test_token_status_and_unknown_token(svc: Any) -> None:
    alice = await svc.create_account("alice")
    record = token_record("tok-1", alice.account_id)
    await svc.create_token(record)
    revoked = await svc.set_token_status("tok-1", "revoked")
    assert revoked == replace(record, status="revoked")
    assert (await svc.get_token("tok-1")).status == "revoked"
    with pytest.raises(NoSuchToken):
        await svc.get_token("tok-missing")
    with pytest.raises(NoSuchToken):
        await svc.set_token_status("tok-missing", "revoked")


@pytest_twisted.ensureDeferred
async def test_replace_token_secret_keys(svc: Any) -> None:
    alice = await svc.create_account("alice")
    await svc.create_token(token_record("tok-1", alice.account_id, secret_key="plain1"))
    await svc.create_token(token_record("tok-2", alice.account_id, secret_key="plain2"))
    await svc.create_token(token_record("tok-3", alice.account_id, secret_key="enc:v1:keep"))
    await svc.replace_token_secret_keys({"tok-1": "enc:v1:one", "tok-2": "enc:v1:two"})
    assert (await svc.get_token("tok-1")).secret_key == "enc:v1:one"
    assert (await svc.get_token("tok-2")).secret_key == "enc:v1:two"
    assert (await svc.get_token("tok-3")).secret_key == "enc:v1:keep"
    # Everything else about the record is untouched.
    assert (await svc.get_token("tok-1")) == token_record(
        "tok-1", alice.account_id, secret_key="enc:v1:one"
    )
