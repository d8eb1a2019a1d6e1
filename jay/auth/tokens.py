"""Token verification shared by every front end, with the caches that keep bcrypt off hot paths.

Bearer/native credentials are checked with bcrypt once; afterwards a positive cache keyed by
SHA-256(token_id:secret) answers (JAY_SPEC §3.5). SigV4 needs the plaintext secret, decrypted once
per token and cached. Both caches re-check the token's status and expiry from the cached record on
every hit, are bounded, expire after ``cache_ttl_seconds``, and drop a token at once on revoke.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool

from jay.auth.secrets import check_secret, decrypt_secret
from jay.errors import AccessDenied, ExpiredToken, InvalidAccessKeyId, NoSuchAccount, NoSuchToken
from jay.storage.api import Account, Storage, TokenRecord

log = Logger(namespace="jay.auth")

CACHE_TTL_SECONDS = 300.0
MAX_CACHE_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling. ``token`` is None for anonymous requests."""

    token: TokenRecord | None
    account_id: str = ""
    auth_method: str = "anonymous"  # bearer | sigv4 | sigv4-presigned | sigv2 | jay-presigned

    @property
    def is_anonymous(self) -> bool:
        return self.token is None

    @property
    def token_id(self) -> str:
        return self.token.token_id if self.token is not None else ""


ANONYMOUS = Principal(token=None)


@dataclass(slots=True)
class _Entry:
    token: TokenRecord
    account: Account
    secret: str  # plaintext (SigV4 cache) or "" (bearer cache: the key proves the secret)
    stored_at: float


class _TTLCache:
    def __init__(self, clock: IReactorTime, ttl: float, max_entries: int) -> None:
        self._clock = clock
        self._ttl = ttl
        self._max = max_entries
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def get(self, key: str) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if self._clock.seconds() - entry.stored_at > self._ttl:
            del self._entries[key]
            return None
        return entry

    def put(self, key: str, entry: _Entry) -> None:
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def drop_token(self, token_id: str) -> None:
        for key in [k for k, e in self._entries.items() if e.token.token_id == token_id]:
            del self._entries[key]

    def clear(self) -> None:
        self._entries.clear()


class TokenVerifier:
    def __init__(
        self,
        storage: Storage,
        *,
        kek: bytes,
        clock: IReactorTime,
        reactor: Any,
        pool: ThreadPool,
        cache_ttl_seconds: float = CACHE_TTL_SECONDS,
        generation: Callable[[], int | None] | None = None,
    ) -> None:
        self._storage = storage
        self._kek = kek
        self._clock = clock
        self._reactor = reactor
        self._pool = pool
        self._bearer_cache = _TTLCache(clock, cache_ttl_seconds, MAX_CACHE_ENTRIES)
        self._secret_cache = _TTLCache(clock, cache_ttl_seconds, MAX_CACHE_ENTRIES)
        # Tokens and accounts may change in another process (a worker, an admin call served
        # elsewhere): ``generation()`` moves whenever one did, and every lookup first compares it
        # with the last value seen, so a revocation is never answered from a stale cache.
        self._generation = generation
        self._seen_generation: int | None = None

    # --- cache control -----------------------------------------------------------------------
    def invalidate(self, token_id: str) -> None:
        """Forget a token at once (revocation, scope change)."""
        self._bearer_cache.drop_token(token_id)
        self._secret_cache.drop_token(token_id)

    def invalidate_all(self) -> None:
        self._bearer_cache.clear()
        self._secret_cache.clear()

    def _drop_if_changed(self) -> None:
        if self._generation is None:
            return
        current = self._generation()
        if current is None:
            return
        if self._seen_generation is not None and current != self._seen_generation:
            self.invalidate_all()
        self._seen_generation = current

    # --- checks ------------------------------------------------------------------------------
    def _check_usable(self, token: TokenRecord, account: Account) -> None:
        if token.status != "active":
            raise AccessDenied("The token has been revoked")
        if token.expires_at is not None and token.expires_at <= self._clock.seconds():
            raise ExpiredToken()
        if account.status != "active":
            raise AccessDenied("The account is not active")

    async def _load(self, token_id: str) -> tuple[TokenRecord, Account]:
        try:
            token = await self._storage.get_token(token_id)
        except NoSuchToken:
            raise InvalidAccessKeyId() from None
        try:
            account = await self._storage.get_account(token.account_id)
        except NoSuchAccount:
            raise InvalidAccessKeyId() from None
        return token, account

    # --- bearer / native ---------------------------------------------------------------------
    def verify_bearer(self, token_id: str, secret: str) -> Deferred[Principal]:
        return Deferred.fromCoroutine(self._verify_bearer(token_id, secret))

    def cached_bearer(self, cache_key: str) -> Principal | None:
        """``verify_bearer`` answered from the cache alone (None on a miss): no Deferred at all.

        ``cache_key`` is ``bearer_cache_key(token_id, secret)``, which a native connection
        computes once for its credentials instead of hashing them on every request. A hit is
        checked exactly as ``verify_bearer`` checks it (auth generation first, then status,
        expiry and account) and raises the same errors.
        """
        self._drop_if_changed()
        entry = self._bearer_cache.get(cache_key)
        if entry is None:
            return None
        self._check_usable(entry.token, entry.account)
        return Principal(entry.token, entry.account.account_id, "bearer")

    async def _verify_bearer(self, token_id: str, secret: str) -> Principal:
        cache_key = bearer_cache_key(token_id, secret)
        principal = self.cached_bearer(cache_key)
        if principal is not None:
            return principal
        token, account = await self._load(token_id)
        self._check_usable(token, account)
        ok = await deferToThreadPool(
            self._reactor, self._pool, check_secret, secret, token.secret_hash
        )
        if not ok:
            raise AccessDenied("Invalid credentials")
        self._bearer_cache.put(cache_key, _Entry(token, account, "", self._clock.seconds()))
        return Principal(token, account.account_id, "bearer")

    # --- SigV4 / SigV2 ------------------------------------------------------------------------
    def secret_for(self, token_id: str) -> Deferred[tuple[TokenRecord, Account, str]]:
        """The token, its account and its plaintext secret, after the usability checks."""
        return Deferred.fromCoroutine(self._secret_for(token_id))

    def cached_secret(self, token_id: str) -> tuple[TokenRecord, Account, str] | None:
        """``secret_for`` answered from the cache alone (None on a miss): no Deferred at all.

        A hit is checked for usability exactly as ``secret_for`` checks it.
        """
        self._drop_if_changed()
        entry = self._secret_cache.get(token_id)
        if entry is None:
            return None
        self._check_usable(entry.token, entry.account)
        return entry.token, entry.account, entry.secret

    async def _secret_for(self, token_id: str) -> tuple[TokenRecord, Account, str]:
        self._drop_if_changed()
        entry = self._secret_cache.get(token_id)
        if entry is None:
            token, account = await self._load(token_id)
            try:
                secret = decrypt_secret(self._kek, token.secret_key) if token.secret_key else ""
            except ValueError:
                log.warn(
                    "Token {token_id} has a secret key that does not decrypt with the current "
                    "signing secret (run jay-rekey after changing it)",
                    token_id=token_id,
                )
                raise InvalidAccessKeyId() from None
            entry = _Entry(token, account, secret, self._clock.seconds())
            self._secret_cache.put(token_id, entry)
        self._check_usable(entry.token, entry.account)
        return entry.token, entry.account, entry.secret

    async def principal_for(self, token_id: str, auth_method: str) -> Principal:
        """A Principal for a token already proven by a signature over its secret."""
        token, account, _ = await self._secret_for(token_id)
        return Principal(token, account.account_id, auth_method)


def bearer_cache_key(token_id: str, secret: str) -> str:
    """The bearer cache's key for these credentials: holding it proves the secret was given."""
    return hashlib.sha256(f"{token_id}:{secret}".encode()).hexdigest()


def constant_time_equals(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
