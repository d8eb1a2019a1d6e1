"""Startup steps on the token store: the seed token (JAY_SPEC §5.4) and the migration of legacy
plaintext token secrets to the encrypted form (§3.4)."""

from __future__ import annotations

from typing import Any

from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool

from jay.auth.secrets import check_secret, encrypt_secret, hash_secret, is_encrypted
from jay.config.model import SeedToken
from jay.errors import NoSuchToken
from jay.storage.api import Storage, TokenRecord

log = Logger(namespace="jay.seed")


async def encrypt_legacy_secrets(storage: Storage, kek: bytes) -> int:
    tokens = await storage.list_tokens()
    updates = {
        t.token_id: encrypt_secret(kek, t.secret_key)
        for t in tokens
        if t.secret_key and not is_encrypted(t.secret_key)
    }
    if updates:
        await storage.replace_token_secret_keys(updates)
        log.info("Encrypted {count} legacy plaintext token secret(s)", count=len(updates))
    return len(updates)


async def apply_seed_token(
    storage: Storage, seed: SeedToken, *, kek: bytes, reactor: Any, pool: ThreadPool, now: float
) -> str:
    """Create the seed account and token if missing; never overwrite a differing token.

    Returns "created", "reused" or "kept" (exists with another secret: warned, unchanged).
    """
    accounts = [a for a in await storage.list_accounts() if a.name == seed.account]
    account = accounts[-1] if accounts else await storage.create_account(seed.account)
    try:
        existing = await storage.get_token(seed.id)
    except NoSuchToken:
        existing = None
    if existing is not None:
        matches = await deferToThreadPool(
            reactor, pool, check_secret, seed.secret, existing.secret_hash
        )
        if matches:
            return "reused"
        log.warn(
            "Seed token {token_id} exists with a different secret; keeping the stored token",
            token_id=seed.id,
        )
        return "kept"
    secret_hash = await deferToThreadPool(reactor, pool, hash_secret, seed.secret)
    await storage.create_token(
        TokenRecord(
            token_id=seed.id,
            account_id=account.account_id,
            name=seed.account,
            secret_hash=secret_hash,
            secret_key=encrypt_secret(kek, seed.secret),
            allowed_actions=("*",),
            created_at=now,
        )
    )
    log.info(
        "Seed token {token_id} created for account {account}",
        token_id=seed.id,
        account=seed.account,
    )
    return "created"
