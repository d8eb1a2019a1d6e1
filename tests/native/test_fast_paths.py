"""The native server's per-request shortcuts: requests answered without waiting run with no
Deferred around them, the bearer cache is asked synchronously with a key hashed once per
connection, and a small GetObject leaves in one write. Each must answer exactly as the slow path."""

# ruff: noqa: F811 - ``env`` is a fixture imported from test_server and taken as a parameter

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred

from jay import errors
from jay.auth.tokens import TokenVerifier, bearer_cache_key
from jay.native import codec
from jay.native.codec import HEADER_SIZE, ObjectRequest, Op
from tests.native.test_server import (  # noqa: F401 - env is a fixture
    KEK,
    SECRET,
    TOKEN_ID,
    Client,
    Env,
    connect,
    env,
    make_bucket,
    put,
    request,
)


class CountingClient(Client):
    """Counts transport writes, and how often a producer other than the server's own came in."""

    def __init__(self, factory: Any) -> None:
        super().__init__(factory)
        self.writes: list[bytes] = []
        self.producers: list[object] = []
        write, register = self.transport.write, self.transport.registerProducer

        def counting_write(data: bytes) -> None:
            self.writes.append(data)
            write(data)

        def counting_register(producer: object, streaming: bool) -> None:
            self.producers.append(producer)
            register(producer, streaming)

        self.transport.write = counting_write  # type: ignore[method-assign]
        self.transport.registerProducer = counting_register  # type: ignore[method-assign]


# --- the verifier's synchronous cache --------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_cached_bearer_misses_then_hits_after_verification(env: Env) -> None:
    key = bearer_cache_key(TOKEN_ID, SECRET)
    assert env.verifier.cached_bearer(key) is None
    verified = await env.verifier.verify_bearer(TOKEN_ID, SECRET)
    cached = env.verifier.cached_bearer(key)
    assert cached == verified
    assert (cached.token_id, cached.auth_method) == (TOKEN_ID, "bearer")
    assert env.verifier.cached_bearer(bearer_cache_key(TOKEN_ID, "wrong")) is None


@pytest_twisted.ensureDeferred
async def test_cached_bearer_checks_expiry_on_every_hit(env: Env) -> None:
    record = await env.storage.get_token(TOKEN_ID)
    await env.storage.create_token(replace(record, token_id="tok-exp2", expires_at=100.0))
    key = bearer_cache_key("tok-exp2", SECRET)
    await env.verifier.verify_bearer("tok-exp2", SECRET)
    assert env.verifier.cached_bearer(key) is not None
    env.clock.advance(100)
    with pytest.raises(errors.ExpiredToken):
        env.verifier.cached_bearer(key)
    with pytest.raises(errors.ExpiredToken):
        await env.verifier.verify_bearer("tok-exp2", SECRET)


@pytest_twisted.ensureDeferred
async def test_cached_bearer_drops_its_cache_when_the_auth_generation_moves(env: Env) -> None:
    """Another worker's revocation moves the generation: the next cache hit is not trusted."""
    verifier = TokenVerifier(
        env.storage,
        kek=KEK,
        clock=env.clock,
        reactor=reactor,
        pool=env.verifier._pool,
        generation=env.storage.current_auth_generation,
    )
    key = bearer_cache_key(TOKEN_ID, SECRET)
    await verifier.verify_bearer(TOKEN_ID, SECRET)
    assert verifier.cached_bearer(key) is not None
    await env.storage.set_token_status(TOKEN_ID, "revoked")  # no invalidate() on this verifier
    assert verifier.cached_bearer(key) is None
    with pytest.raises(errors.AccessDenied):
        await verifier.verify_bearer(TOKEN_ID, SECRET)


# --- requests that never wait ----------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_a_request_answered_from_caches_needs_no_deferred(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await connect(env)
    await make_bucket(client)
    assert (await put(client, "photos", "a.txt", b"hello")).status == 0
    assert (await client.call(Op.HEAD_OBJECT, ObjectRequest("photos", "a.txt"))).status == 0
    coroutines: list[object] = []
    from_coroutine = Deferred.fromCoroutine

    def counting(coro: Any) -> Deferred[Any]:
        coroutines.append(coro)
        return from_coroutine(coro)

    monkeypatch.setattr(Deferred, "fromCoroutine", staticmethod(counting))
    before = len(client.written())
    client.send(request(Op.HEAD_OBJECT, ObjectRequest("photos", "a.txt"), stream_id=5))
    monkeypatch.undo()
    assert coroutines == []  # not the exchange, the token check or the bucket lookup
    # Answered inside dataReceived, with no exchange (and no task) left behind.
    assert len(client.written()) > before
    assert client.protocol._exchange is None
    response = await client.response()
    assert (response.status, response.stream_id) == (0, 5)
    assert response.ok(Op.HEAD_OBJECT).size == 5


@pytest_twisted.ensureDeferred
async def test_a_request_that_waits_is_resumed_and_can_be_cancelled(env: Env) -> None:
    client = await connect(env)
    await make_bucket(client)
    frame = request(Op.PUT_OBJECT, codec.PutObjectRequest(bucket="photos", key="k"), b"x" * 100)
    client.send(frame[:-10])  # the handler now waits for the rest of the body
    exchange = client.protocol._exchange
    assert exchange is not None and exchange.task is not None and not exchange.task.called
    client.send(frame[-10:])
    response = await client.response()
    assert (response.status, response.ok(Op.PUT_OBJECT).etag) == (
        0,
        codec.PutResult.decode(response.meta).etag,
    )
    assert exchange.task.called
    client.send(frame[:-10])
    waiting = client.protocol._exchange
    assert waiting is not None and waiting.task is not None
    client.protocol.connectionLost()
    assert waiting.task.called and waiting.is_complete  # cancelled, not left hanging


@pytest_twisted.ensureDeferred
async def test_errors_on_the_synchronous_path_are_the_usual_frames(env: Env) -> None:
    client = await connect(env)
    await make_bucket(client)
    missing = await client.call(Op.HEAD_OBJECT, ObjectRequest("photos", "nope"), stream_id=3)
    assert (missing.status, missing.stream_id, missing.error().code) == (1, 3, "NoSuchKey")
    no_bucket = await client.call(Op.GET_OBJECT, ObjectRequest("nobucket", "k"), stream_id=4)
    assert (no_bucket.status, no_bucket.error().code) == (1, "NoSuchBucket")
    unknown = await client.call(0x7E, None, stream_id=6)
    assert (unknown.status, unknown.stream_id) == (3, 6)
    assert (await client.call(Op.PING, stream_id=7)).status == 0


@pytest_twisted.ensureDeferred
async def test_revocation_reaches_a_connection_answered_from_the_cache(env: Env) -> None:
    client = await connect(env)
    await make_bucket(client)
    assert (await put(client, "photos", "a", b"x")).status == 0
    assert (await client.call(Op.HEAD_OBJECT, ObjectRequest("photos", "a"))).status == 0
    await env.storage.set_token_status(TOKEN_ID, "revoked")
    env.verifier.invalidate(TOKEN_ID)
    denied = await client.call(Op.HEAD_OBJECT, ObjectRequest("photos", "a"), stream_id=2)
    assert (denied.status, denied.stream_id, denied.error().code) == (4, 2, "AccessDenied")
    assert client.is_closed


# --- small GetObject -------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_small_get_is_one_write_without_a_producer(env: Env) -> None:
    client = CountingClient(env.factory())
    assert await client.handshake() == 0
    await make_bucket(client)
    assert (await put(client, "photos", "a.txt", b"hello", content_type="text/plain")).status == 0
    client.writes.clear()
    client.producers.clear()
    got = await client.call(Op.GET_OBJECT, ObjectRequest("photos", "a.txt"), stream_id=9)
    assert got.data == b"hello" and got.stream_id == 9
    info = got.ok(Op.GET_OBJECT)
    assert (info.size, info.content_type) == (5, "text/plain")
    assert len(client.writes) == 1 and client.writes[0].endswith(b"hello")
    assert client.producers == []  # the server's write flow stayed registered throughout
    assert len(client.writes[0]) == HEADER_SIZE + len(got.meta) + 5


@pytest_twisted.ensureDeferred
async def test_verified_small_get_takes_the_checking_producer(env: Env) -> None:
    client = CountingClient(env.factory(read_verify_rate=1.0, random=lambda: 0.0))
    assert await client.handshake() == 0
    await make_bucket(client)
    assert (await put(client, "photos", "a.txt", b"hello")).status == 0
    client.producers.clear()
    got = await client.call(Op.GET_OBJECT, ObjectRequest("photos", "a.txt"))
    assert (got.status, got.data) == (0, b"hello")
    assert len(client.producers) == 2  # the storage's producer, then ours back
