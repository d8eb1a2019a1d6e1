"""Token changes made by another process reach a verifier's caches on its very next lookup.

Two StorageService instances on one data directory stand for two workers: tokens are created
and revoked through one, verified (and cached) through the other.
"""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor, task
from twisted.python.threadpool import ThreadPool

from jay.auth.secrets import encrypt_secret, hash_secret
from jay.auth.tokens import TokenVerifier
from jay.errors import AccessDenied
from jay.storage.api import TokenRecord

from .conftest import start_service, stop_service

KEK = b"k" * 32
SECRET = "s" * 40


@pytest_twisted.async_yield_fixture
async def pair(data_dir: str) -> Any:
    writer = await start_service(data_dir)
    reader = await start_service(data_dir)
    pool = ThreadPool(minthreads=0, maxthreads=2, name="test-bcrypt")
    pool.start()
    verifier = TokenVerifier(
        reader,
        kek=KEK,
        clock=task.Clock(),
        reactor=reactor,
        pool=pool,
        generation=reader.current_auth_generation,
    )
    try:
        yield writer, reader, verifier
    finally:
        pool.stop()
        await stop_service(reader)
        await stop_service(writer)


async def _token(storage: Any, token_id: str) -> TokenRecord:
    account = await storage.create_account(f"acct-{token_id}")
    return await storage.create_token(
        TokenRecord(
            token_id=token_id,
            account_id=account.account_id,
            name=token_id,
            secret_hash=hash_secret(SECRET, cost=4),
            secret_key=encrypt_secret(KEK, SECRET),
            allowed_actions=("*",),
            created_at=0.0,
        )
    )


@pytest_twisted.ensureDeferred
async def test_revocation_elsewhere_is_seen_by_the_next_bearer_check(pair: Any) -> None:
    writer, _, verifier = pair
    token = await _token(writer, "tok-bearer")
    assert (await verifier.verify_bearer(token.token_id, SECRET)).token_id == token.token_id
    assert (await verifier.verify_bearer(token.token_id, SECRET)).token_id == token.token_id
    await writer.set_token_status(token.token_id, "revoked")
    with pytest.raises(AccessDenied):
        await verifier.verify_bearer(token.token_id, SECRET)


@pytest_twisted.ensureDeferred
async def test_suspension_elsewhere_is_seen_by_the_next_sigv4_lookup(pair: Any) -> None:
    writer, _, verifier = pair
    token = await _token(writer, "tok-sigv4")
    _, _, secret = await verifier.secret_for(token.token_id)
    assert secret == SECRET
    assert verifier.cached_secret(token.token_id) is not None
    await writer.set_account_status(token.account_id, "suspended")
    # The cache entry is gone (the generation moved), so the lookup goes to the database.
    assert verifier.cached_secret(token.token_id) is None
    with pytest.raises(AccessDenied):
        await verifier.secret_for(token.token_id)


@pytest_twisted.ensureDeferred
async def test_unrelated_writes_keep_the_cache(pair: Any) -> None:
    writer, _, verifier = pair
    token = await _token(writer, "tok-keep")
    await verifier.secret_for(token.token_id)
    await writer.create_bucket("unrelated", token.account_id)
    assert verifier.cached_secret(token.token_id) is not None
