"""Seed token (JAY_SPEC §5.4) and the legacy-secret migration (§3.4) on a real StorageService."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.logger import LogLevel, globalLogPublisher
from twisted.python.threadpool import ThreadPool

from jay.auth.secrets import check_secret, decrypt_secret, derive_kek
from jay.config.model import SeedToken
from jay.core.seed import apply_seed_token, encrypt_legacy_secrets
from jay.storage.api import TokenRecord
from tests.storage.conftest import start_service

KEK = derive_kek("k" * 40)
SEED = SeedToken(account="ops", id="seed-id", secret="first-secret")


@pytest_twisted.async_yield_fixture
async def env(tmp_path: Path) -> AsyncIterator[tuple[Any, ThreadPool]]:
    svc = await start_service(str(tmp_path / "data"))
    pool = ThreadPool(0, 2, name="test-bcrypt")
    pool.start()
    try:
        yield svc, pool
    finally:
        pool.stop()
        await svc.stopService()


async def _seed(svc: Any, pool: ThreadPool, seed: SeedToken = SEED) -> str:
    return await apply_seed_token(svc, seed, kek=KEK, reactor=reactor, pool=pool, now=1.0)


@pytest_twisted.ensureDeferred
async def test_seed_creates_account_and_token_once(env: tuple[Any, ThreadPool]) -> None:
    svc, pool = env
    assert await _seed(svc, pool) == "created"
    assert await _seed(svc, pool) == "reused"
    accounts = await svc.list_accounts()
    assert [a.name for a in accounts] == ["ops"]
    token = await svc.get_token("seed-id")
    assert token.account_id == accounts[0].account_id
    assert token.allowed_actions == ("*",)
    assert check_secret("first-secret", token.secret_hash)
    assert decrypt_secret(KEK, token.secret_key) == "first-secret"


@pytest_twisted.ensureDeferred
async def test_seed_with_other_secret_keeps_stored_token_and_warns(
    env: tuple[Any, ThreadPool],
) -> None:
    svc, pool = env
    await _seed(svc, pool)
    before = await svc.get_token("seed-id")
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)
    try:
        result = await _seed(svc, pool, SeedToken(account="ops", id="seed-id", secret="other"))
    finally:
        globalLogPublisher.removeObserver(events.append)
    assert result == "kept"
    assert await svc.get_token("seed-id") == before
    warnings = [e for e in events if e.get("log_level") == LogLevel.warn]
    assert any(e.get("token_id") == "seed-id" for e in warnings)
    assert not any("other" in str(e.get("log_format", "")) for e in events)


@pytest_twisted.ensureDeferred
async def test_seed_reuses_existing_account_by_name(env: tuple[Any, ThreadPool]) -> None:
    svc, pool = env
    existing = await svc.create_account("ops")
    await _seed(svc, pool)
    assert (await svc.get_token("seed-id")).account_id == existing.account_id
    assert len(await svc.list_accounts()) == 1


@pytest_twisted.ensureDeferred
async def test_legacy_plaintext_secrets_are_encrypted(env: tuple[Any, ThreadPool]) -> None:
    svc, _ = env
    account = await svc.create_account("legacy")
    await svc.create_token(
        TokenRecord(
            token_id="old",
            account_id=account.account_id,
            name="old",
            secret_hash="x",
            secret_key="plain-secret",
            allowed_actions=("*",),
            created_at=1.0,
        )
    )
    assert await encrypt_legacy_secrets(svc, KEK) == 1
    stored = (await svc.get_token("old")).secret_key
    assert stored.startswith("enc:v1:")
    assert decrypt_secret(KEK, stored) == "plain-secret"
    assert await encrypt_legacy_secrets(svc, KEK) == 0


def test_partial_seed_is_refused_by_configuration() -> None:
    from jay.config.loader import load_config
    from jay.errors import ConfigError

    with pytest.raises(ConfigError, match="seed_token"):
        load_config(None, {"JAY_SEED_TOKEN_ID": "x", "JAY_SEED_TOKEN_SECRET": "y"})
