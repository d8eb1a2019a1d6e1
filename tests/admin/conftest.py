"""Fixtures for the admin API: a real StorageService on tmp_path, a real TokenVerifier and bcrypt
pool, an injected task.Clock for the API (lock-out, timestamps, presign expiry), and StubTreq
driving the Klein resource without sockets."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest_twisted
from treq.testing import StubTreq
from twisted.internet import reactor, task
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from jay.admin.app import AdminApi
from jay.auth.secrets import derive_kek
from jay.auth.tokens import TokenVerifier
from jay.lifecycle import Readiness
from jay.metrics.registry import Metrics

ADMIN_TOKEN = "admin-token-0123456789"
SIGNING_SECRET = "signing-secret-for-tests"
PRESIGN_BASE = "http://s3.test:9000"
START = 1_700_000_000.25


@dataclass
class Reply:
    code: int
    headers: Any
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        values = self.headers.getRawHeaders(name)
        return values[0] if values else None


class AdminClient:
    def __init__(self, resource: Any) -> None:
        self.stub = StubTreq(resource)

    async def _settle(self, d: Deferred[Any], timeout: float = 20.0) -> Any:
        deadline = time.monotonic() + timeout
        results: list[Any] = []

        def keep(result: Any) -> None:
            results.append(result)

        d.addBoth(keep)
        # Not ``d.called``: a Deferred paused on an inner one is "called" without a result.
        while not results:
            if time.monotonic() > deadline:
                raise AssertionError("admin request did not finish")
            self.stub.flush()
            await task.deferLater(reactor, 0.002, lambda: None)
        result = results[0]
        if isinstance(result, Failure):
            result.raiseException()
        return result

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        data: bytes | None = None,
        token: str | None = ADMIN_TOKEN,
        authorization: str | None = None,
    ) -> Reply:
        headers: dict[bytes, list[bytes]] = {}
        if authorization is not None:
            headers[b"Authorization"] = [authorization.encode()]
        elif token is not None:
            headers[b"Authorization"] = [b"Bearer " + token.encode()]
        if json_body is not None:
            data = json.dumps(json_body).encode()
        response = await self._settle(
            self.stub.request(
                method,
                "http://admin.test" + path,
                headers=headers,
                data=data,
                allow_redirects=False,
            )
        )
        body = await self._settle(self.stub.content(response))
        return Reply(response.code, response.headers, body)


@dataclass
class AdminEnv:
    storage: Any
    clock: task.Clock
    verifier: TokenVerifier
    metrics: Metrics
    api: AdminApi
    client: AdminClient
    pool: ThreadPool
    kek: bytes

    async def account(self, name: str = "acct") -> dict[str, Any]:
        reply = await self.client.request("POST", "/_jay/accounts", json_body={"name": name})
        assert reply.code == 201, reply.body
        return dict(reply.json)

    async def token(self, account_id: str, **extra: Any) -> dict[str, Any]:
        body = {"account_id": account_id, "name": "t", "allowed_actions": ["*"], **extra}
        reply = await self.client.request("POST", "/_jay/tokens", json_body=body)
        assert reply.code == 201, reply.body
        return dict(reply.json)


def make_api(env_storage: Any, clock: task.Clock, pool: ThreadPool, **overrides: Any) -> Any:
    kek = derive_kek(SIGNING_SECRET)
    verifier = TokenVerifier(env_storage, kek=kek, clock=clock, reactor=reactor, pool=pool)
    metrics = Metrics(clock)
    settings: dict[str, Any] = dict(
        readiness=Readiness(),
        storage=env_storage,
        verifier=verifier,
        kek=kek,
        admin_token=ADMIN_TOKEN,
        signing_secret=SIGNING_SECRET,
        presign_base_url=PRESIGN_BASE,
        clock=clock,
        reactor=reactor,
        bcrypt_pool=pool,
        metrics=metrics,
    )
    settings.update(overrides)
    return AdminApi(**settings), verifier, metrics, kek


@pytest_twisted.async_yield_fixture
async def env(tmp_path: Any) -> AsyncIterator[AdminEnv]:
    from jay.storage.service import StorageService

    storage = StorageService(str(tmp_path / "data"), reactor=reactor)
    storage.startService()
    await storage.when_ready()
    pool = ThreadPool(minthreads=0, maxthreads=2, name="test-bcrypt")
    pool.start()
    clock = task.Clock()
    clock.advance(START)
    api, verifier, metrics, kek = make_api(storage, clock, pool)
    try:
        yield AdminEnv(
            storage, clock, verifier, metrics, api, AdminClient(api.resource()), pool, kek
        )
    finally:
        pool.stop()
        await storage.stopService()
