"""The maintenance lease and the auth generation on one database opened by two storage services
(what two worker processes do), in one process so each step can be awaited."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_twisted
from twisted.application.service import Service
from twisted.internet import reactor

from jay.storage.api import TokenRecord
from jay.storage.service import StorageService
from jay.workers import LeasedService


@pytest_twisted.async_yield_fixture
async def two(tmp_path: Path) -> AsyncIterator[tuple[StorageService, StorageService]]:
    first = StorageService(str(tmp_path), reactor=reactor)
    first.startService()
    await first.when_ready()
    second = StorageService(str(tmp_path), reactor=reactor, recover=False)
    second.startService()
    await second.when_ready()
    yield first, second
    await second.stopService()
    await first.stopService()


@pytest_twisted.ensureDeferred
async def test_one_holder_at_a_time_and_expiry(two: tuple[StorageService, StorageService]) -> None:
    first, second = two
    assert await first.acquire_lease("m", "a", 30.0)
    assert not await second.acquire_lease("m", "b", 30.0)
    assert await first.acquire_lease("m", "a", 30.0)  # renewal
    await first.release_lease("m", "b")  # not the holder: no effect
    assert not await second.acquire_lease("m", "b", 30.0)
    # A holder that stops renewing (crashed) loses the lease once it expires.
    assert await first.acquire_lease("m", "a", -1.0)
    assert await second.acquire_lease("m", "b", 30.0)
    assert not await first.acquire_lease("m", "a", 30.0)
    await second.release_lease("m", "b")
    assert await first.acquire_lease("m", "a", 30.0)


@pytest_twisted.ensureDeferred
async def test_leased_service_runs_in_one_process_and_moves_on_stop(
    two: tuple[StorageService, StorageService],
) -> None:
    first, second = two
    inner_a, inner_b = Service(), Service()
    a = LeasedService(inner_a, first, name="maintenance", clock=reactor, renew_seconds=3600)
    b = LeasedService(inner_b, second, name="maintenance", clock=reactor, renew_seconds=3600)
    a.startService()
    await a.renew_now()
    b.startService()
    await b.renew_now()
    assert inner_a.running and not inner_b.running
    await a.stopService()  # stops maintenance and releases the lease
    assert not inner_a.running
    await b.renew_now()
    assert inner_b.running
    await b.stopService()
    assert not inner_b.running


@pytest_twisted.ensureDeferred
async def test_status_changes_move_the_auth_generation(
    two: tuple[StorageService, StorageService],
) -> None:
    first, second = two
    account = await first.create_account("acct")
    await first.create_token(
        TokenRecord(
            token_id="t1",
            account_id=account.account_id,
            name="t",
            secret_hash="x",
            secret_key="",
            allowed_actions=("*",),
            created_at=0.0,
        )
    )
    seen = await second.auth_generation()
    await first.set_token_status("t1", "revoked")
    after_revoke = await second.auth_generation()
    assert after_revoke != seen
    await first.set_account_status(account.account_id, "suspended")
    assert await second.auth_generation() != after_revoke
