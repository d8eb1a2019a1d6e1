"""Admin API on the admin port: health probes, the /_jay/ operator API and /metrics.

JAY_SPEC §4.1 for endpoints, shapes and statuses; §3.12 for the admin lock-out. Authentication
runs before routing, so an unknown /_jay/ path is 401 without the admin token and 404 with it.
Success bodies are JSON + newline (application/json); errors are ``{"error": "..."}`` + newline
as text/plain with nosniff, as upstream writes them. Never a traceback.

Where jay deliberately differs from upstream (JAY_SPEC §8.2): unknown token/account ids are 404,
not 500; presign normalises the method, refuses revoked/expired tokens and suspended accounts,
and a too-long expiry is 400; token ``expires_at`` is honoured and actions are validated; plus
account listing/suspension, bucket listing, Jay policy management, /_jay/version and /metrics.
"""

from __future__ import annotations

import functools
import hmac
import uuid
from collections.abc import Callable
from typing import Any, Protocol, TypeVar, cast

from klein import Klein
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from twisted.web.iweb import IRequest
from werkzeug.exceptions import HTTPException, MethodNotAllowed

import jay
from jay.admin.bodies import (
    MAX_BODY_BYTES,
    InvalidBody,
    account_json,
    bucket_json,
    decode_object,
    encode_json,
    error_body,
    field_int,
    field_str,
    field_str_list,
    parse_rfc3339,
    quarantined_json,
    token_json,
)
from jay.admin.health import live_body, ready_body
from jay.admin.lockout import AdminLockout
from jay.auth.policy import ACTIONS, WILDCARD, parse_policy
from jay.auth.presign import MAX_JAY_EXPIRES_AHEAD_SECONDS, generate_jay_url
from jay.auth.secrets import encrypt_secret, hash_secret, new_token_secret
from jay.errors import (
    AccessDenied,
    JayError,
    MalformedPolicy,
    NoSuchAccount,
    NoSuchBucket,
    NoSuchKey,
    NoSuchToken,
)
from jay.lifecycle import Readiness
from jay.metrics.registry import PROMETHEUS_CONTENT_TYPE, Metrics
from jay.storage.api import Storage, TokenRecord

log = Logger(namespace="jay.admin")

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_PRESIGN_SECONDS = 3600
PRESIGN_METHODS = frozenset({"GET", "HEAD", "PUT", "POST", "DELETE"})
ACCOUNT_STATUSES = ("active", "suspended")
# Quarantine records fetched per storage call while listing.
QUARANTINE_PAGE = 1000
ANY_METHOD = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]


class AdminError(Exception):
    """An answer other than success: status and the message for ``{"error": ...}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# Domain exceptions the admin handlers let through → (status, message).
ADMIN_ERRORS: dict[type[JayError], tuple[int, str]] = {
    NoSuchAccount: (404, "account not found"),
    NoSuchToken: (404, "token not found"),
    NoSuchBucket: (404, "bucket not found"),
    NoSuchKey: (404, "object not found"),
    # Purges refuse a version under S3 Object Lock (jay.storage.metadata._check_purge).
    AccessDenied: (409, "object is under Object Lock (legal hold or retention)"),
}


class QuarantineStore(Protocol):
    """What the quarantine endpoints need from storage besides ``list_quarantined``.

    ``revalidate_object``: load the record in any state, hash its file (at ``location_ref``, or
    the copy the scrubber moved into ``quarantine/``); on a SHA-256 match put the file back at
    ``location_ref``, make the record active (counters adjusted) and fire True, else False.
    ``purge_object``: delete the record in any state, its file at ``location_ref`` and any copy
    in ``quarantine/``, adjusting counters if it was active. Both raise NoSuchBucket/NoSuchKey.
    ``purge_quarantined``: purge every quarantined record that way; fires with the count.
    """

    def revalidate_object(self, bucket_id: str, key: str) -> Deferred[bool]: ...
    def purge_object(self, bucket_id: str, key: str) -> Deferred[None]: ...
    def purge_quarantined(self) -> Deferred[int]: ...


def _authenticated(handler: F) -> F:
    """Check the admin token (and the lock-out) before the handler runs."""

    @functools.wraps(handler)
    def wrapper(self: AdminApi, request: IRequest, *args: Any, **kwargs: Any) -> Any:
        self._authenticate(request)
        return handler(self, request, *args, **kwargs)

    return cast(F, wrapper)


def _client_ip(request: IRequest) -> str:
    # JAY_SPEC §3.10: the admin port uses the TCP peer, never proxy headers.
    address = request.getClientAddress()
    return str(getattr(address, "host", "") or "")


class AdminApi:
    app = Klein()

    def __init__(
        self,
        *,
        readiness: Readiness,
        storage: Storage | None = None,
        verifier: Any = None,
        kek: bytes = b"",
        admin_token: str = "",
        signing_secret: str = "",
        presign_base_url: str = "http://localhost:9000",
        clock: IReactorTime | None = None,
        reactor: Any = None,
        bcrypt_pool: ThreadPool | None = None,
        metrics: Metrics | None = None,
        metrics_public: bool = False,
        lockout: AdminLockout | None = None,
    ) -> None:
        """Everything but ``readiness`` is optional only so a health-only instance can exist;
        without ``admin_token`` every /_jay/ request is 401. ``lockout`` defaults to one on
        ``clock``: add ``api.lockout`` to the service tree so its sweep runs."""
        self._readiness = readiness
        self._storage = storage
        self._verifier = verifier
        self._kek = kek
        self._expected_auth = b"Bearer " + admin_token.encode("utf-8") if admin_token else b""
        self._signing_secret = signing_secret
        self._presign_base_url = presign_base_url
        self._clock = clock
        self._reactor = reactor
        self._bcrypt_pool = bcrypt_pool
        self._metrics = metrics
        self._metrics_public = metrics_public
        if lockout is None and clock is not None:
            lockout = AdminLockout(clock)
        self.lockout = lockout

    def resource(self) -> Any:
        return self.app.resource()

    # --- plumbing --------------------------------------------------------------------------
    @property
    def _store(self) -> Storage:
        if self._storage is None:
            raise AdminError(503, "admin API not configured")
        return self._storage

    def _now(self) -> float:
        if self._clock is None:
            raise AdminError(503, "admin API not configured")
        return float(self._clock.seconds())

    def _authenticate(self, request: IRequest) -> None:
        ip = _client_ip(request)
        if self.lockout is not None and self.lockout.is_locked(ip):
            raise AdminError(401, "unauthorized")
        header = request.getHeader(b"authorization") or b""
        if isinstance(header, str):
            header = header.encode("latin-1")
        # Whole-header constant-time comparison (JAY_SPEC §4.1, §8.2 item 16).
        is_valid = bool(self._expected_auth) and hmac.compare_digest(header, self._expected_auth)
        if not is_valid:
            if self.lockout is not None:
                self.lockout.record_failure(ip)
            raise AdminError(401, "unauthorized")
        if self.lockout is not None:
            self.lockout.record_success(ip)

    def _json(self, request: IRequest, status: int, value: Any) -> bytes:
        request.setResponseCode(status)
        request.setHeader(b"Content-Type", b"application/json")
        request.setHeader(b"Cache-Control", b"no-store")
        return encode_json(value)

    def _no_content(self, request: IRequest) -> bytes:
        request.setResponseCode(204)
        request.setHeader(b"Cache-Control", b"no-store")
        return b""

    def _error(self, request: IRequest, status: int, message: str) -> bytes:
        request.setResponseCode(status)
        request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
        request.setHeader(b"X-Content-Type-Options", b"nosniff")
        request.setHeader(b"Cache-Control", b"no-store")
        return error_body(message)

    def _read_body(self, request: IRequest) -> bytes:
        content = request.content
        if content is None:
            return b""
        content.seek(0)
        raw = content.read(MAX_BODY_BYTES + 1)
        if len(raw) > MAX_BODY_BYTES:
            raise AdminError(413, "request body too large")
        return bytes(raw)

    def _body(self, request: IRequest) -> dict[str, Any]:
        return decode_object(self._read_body(request))

    # --- health (no auth) --------------------------------------------------------------------
    @app.route("/health/live", methods=ANY_METHOD)
    def live(self, request: IRequest) -> bytes:
        return self._json_raw(request, *live_body())

    @app.route("/health/ready", methods=ANY_METHOD)
    @app.route("/health", methods=ANY_METHOD)
    def ready(self, request: IRequest) -> bytes:
        return self._json_raw(request, *ready_body(self._readiness))

    def _json_raw(self, request: IRequest, status: int, body: bytes) -> bytes:
        request.setResponseCode(status)
        request.setHeader(b"Content-Type", b"application/json")
        request.setHeader(b"Cache-Control", b"no-store")
        return body

    # --- /_jay root --------------------------------------------------------------------------
    @app.route("/_jay", strict_slashes=False, methods=ANY_METHOD)
    def jay_root(self, request: IRequest) -> bytes:
        if request.path == b"/_jay":
            request.setResponseCode(301)
            request.setHeader(b"Location", b"/_jay/")
            request.setHeader(b"Content-Type", b"text/html; charset=utf-8")
            return b'<a href="/_jay/">Moved Permanently</a>.\n'
        self._authenticate(request)
        raise AdminError(404, "not found")

    @app.route("/_jay/version", methods=["GET"])
    @_authenticated
    def version(self, request: IRequest) -> bytes:
        return self._json(request, 200, {"version": jay.__version__})

    # --- accounts ----------------------------------------------------------------------------
    @app.route("/_jay/accounts", methods=["POST"])
    @_authenticated
    async def create_account(self, request: IRequest) -> bytes:
        body = self._body(request)
        name = field_str(body, "name")
        account = await self._store.create_account(name)
        log.info("Admin: created account {account_id}", account_id=account.account_id)
        return self._json(request, 201, account_json(account))

    @app.route("/_jay/accounts", methods=["GET"])
    @_authenticated
    async def list_accounts(self, request: IRequest) -> bytes:
        accounts = await self._store.list_accounts()
        return self._json(request, 200, [account_json(a) for a in accounts])

    @app.route("/_jay/accounts/<account_id>", methods=["GET"])
    @_authenticated
    async def get_account(self, request: IRequest, account_id: str) -> bytes:
        account = await self._store.get_account(account_id)
        return self._json(request, 200, account_json(account))

    @app.route("/_jay/accounts/<account_id>/suspend", methods=["POST"])
    @_authenticated
    async def suspend_account(self, request: IRequest, account_id: str) -> bytes:
        return await self._set_account_status(request, account_id, "suspended")

    @app.route("/_jay/accounts/<account_id>/reactivate", methods=["POST"])
    @_authenticated
    async def reactivate_account(self, request: IRequest, account_id: str) -> bytes:
        return await self._set_account_status(request, account_id, "active")

    async def _set_account_status(self, request: IRequest, account_id: str, status: str) -> bytes:
        account = await self._store.set_account_status(account_id, status)
        # Cached verifications hold the account as it was: drop them so a suspension takes
        # effect at once (upstream waits out its 5-minute cache, JAY_SPEC §3.5).
        if self._verifier is not None:
            for token in await self._store.list_tokens(account_id):
                self._verifier.invalidate(token.token_id)
        log.info(
            "Admin: account {account_id} is now {status}", account_id=account_id, status=status
        )
        return self._json(request, 200, account_json(account))

    # --- tokens ------------------------------------------------------------------------------
    @app.route("/_jay/tokens", methods=["POST"])
    @_authenticated
    async def create_token(self, request: IRequest) -> bytes:
        body = self._body(request)
        account_id = field_str(body, "account_id")
        name = field_str(body, "name")
        actions = field_str_list(body, "allowed_actions")
        bucket_scope = field_str_list(body, "bucket_scope")
        prefix_scope = field_str_list(body, "prefix_scope")
        expires_text = field_str(body, "expires_at")
        if not account_id:
            raise AdminError(400, "account_id required")
        if not actions:
            raise AdminError(400, "allowed_actions is required")
        unknown = sorted({a for a in actions if a != WILDCARD and a not in ACTIONS})
        if unknown:
            raise AdminError(400, f"unknown action(s): {', '.join(unknown)}")
        now = self._now()
        expires_at: float | None = None
        if expires_text:
            expires_at = parse_rfc3339(expires_text)
            if expires_at <= now:
                raise AdminError(400, "expires_at must be in the future")
        try:
            await self._store.get_account(account_id)
        except NoSuchAccount:
            raise AdminError(400, "account not found") from None
        if self._bcrypt_pool is None:
            raise AdminError(503, "admin API not configured")
        secret = new_token_secret()
        # bcrypt is slow on purpose: never on the reactor thread.
        secret_hash = await deferToThreadPool(self._reactor, self._bcrypt_pool, hash_secret, secret)
        record = TokenRecord(
            token_id=str(uuid.uuid4()),
            account_id=account_id,
            name=name,
            secret_hash=secret_hash,
            secret_key=encrypt_secret(self._kek, secret),
            allowed_actions=tuple(actions),
            bucket_scope=tuple(bucket_scope),
            prefix_scope=tuple(prefix_scope),
            created_at=now,
            expires_at=expires_at,
        )
        created = await self._store.create_token(record)
        log.info(
            "Admin: created token {token_id} for account {account_id}",
            token_id=created.token_id,
            account_id=account_id,
        )
        return self._json(request, 201, {"token_id": created.token_id, "secret": secret})

    @app.route("/_jay/tokens", methods=["GET"])
    @_authenticated
    async def list_tokens(self, request: IRequest) -> bytes:
        args = request.args.get(b"account_id") or [b""]
        account_id = args[0].decode("utf-8", "replace") or None
        tokens = await self._store.list_tokens(account_id)
        # Upstream encodes an empty list as null (JAY_SPEC §4.1).
        return self._json(request, 200, [token_json(t) for t in tokens] or None)

    @app.route("/_jay/tokens/<token_id>", methods=["GET"])
    @_authenticated
    async def get_token(self, request: IRequest, token_id: str) -> bytes:
        token = await self._store.get_token(token_id)
        return self._json(request, 200, token_json(token))

    @app.route("/_jay/tokens/<token_id>", methods=["DELETE"])
    @_authenticated
    async def revoke_token(self, request: IRequest, token_id: str) -> bytes:
        await self._store.set_token_status(token_id, "revoked")
        if self._verifier is not None:
            self._verifier.invalidate(token_id)
        log.info("Admin: revoked token {token_id}", token_id=token_id)
        return self._no_content(request)

    # --- metrics -----------------------------------------------------------------------------
    @app.route("/_jay/metrics", methods=["GET"])
    @_authenticated
    def metrics_json(self, request: IRequest) -> bytes:
        if self._metrics is None:
            raise AdminError(503, "metrics not available")
        return self._json(request, 200, self._metrics.to_json())

    @app.route("/metrics", methods=["GET"])
    def metrics_prometheus(self, request: IRequest) -> bytes:
        if not self._metrics_public:
            self._authenticate(request)
        if self._metrics is None:
            raise AdminError(503, "metrics not available")
        request.setHeader(b"Content-Type", PROMETHEUS_CONTENT_TYPE.encode())
        request.setHeader(b"Cache-Control", b"no-store")
        return self._metrics.prometheus_text()

    # --- presign -----------------------------------------------------------------------------
    @app.route("/_jay/presign", methods=["POST"])
    @_authenticated
    async def presign(self, request: IRequest) -> bytes:
        body = self._body(request)
        token_id = field_str(body, "token_id")
        method = field_str(body, "method").upper()
        bucket = field_str(body, "bucket")
        key = field_str(body, "key")
        expires_seconds = field_int(body, "expires_seconds")
        if not token_id or not method or not bucket:
            raise AdminError(400, "token_id, method, and bucket are required")
        if method not in PRESIGN_METHODS:
            raise AdminError(400, f"unsupported method: {method}")
        if expires_seconds <= 0:
            expires_seconds = DEFAULT_PRESIGN_SECONDS
        if expires_seconds > MAX_JAY_EXPIRES_AHEAD_SECONDS:
            raise AdminError(
                400,
                f"expiration exceeds maximum of {MAX_JAY_EXPIRES_AHEAD_SECONDS} seconds",
            )
        try:
            token = await self._store.get_token(token_id)
        except NoSuchToken:
            raise AdminError(400, "token not found") from None
        now = self._now()
        if token.status != "active":
            raise AdminError(400, "token is revoked")
        if token.expires_at is not None and token.expires_at <= now:
            raise AdminError(400, "token has expired")
        try:
            account = await self._store.get_account(token.account_id)
        except NoSuchAccount:
            raise AdminError(400, "account not found") from None
        if account.status != "active":
            raise AdminError(400, "account is not active")
        path = f"/{bucket}/{key}" if key else f"/{bucket}"
        url = generate_jay_url(
            base_url=self._presign_base_url,
            signing_secret=self._signing_secret,
            token_id=token_id,
            method=method,
            path=path,
            expires=int(now) + expires_seconds,
        )
        return self._json(request, 200, {"url": url})

    # --- quarantine --------------------------------------------------------------------------
    def _quarantine_store(self) -> QuarantineStore:
        return cast(QuarantineStore, self._store)

    @app.route("/_jay/quarantine", methods=["GET"])
    @_authenticated
    async def list_quarantine(self, request: IRequest) -> bytes:
        store: Any = self._store
        items: list[dict[str, Any]] = []
        after = ("", "")
        while True:
            page = await store.list_quarantined(after=after, limit=QUARANTINE_PAGE)
            items.extend(quarantined_json(q.info) for q in page)
            if len(page) < QUARANTINE_PAGE:
                break
            after = (page[-1].info.bucket_id, page[-1].info.key)
        return self._json(request, 200, items or None)

    def _object_ref(self, body: dict[str, Any]) -> tuple[str, str]:
        return field_str(body, "bucket_id"), field_str(body, "key")

    @app.route("/_jay/quarantine/revalidate", methods=["POST"])
    @_authenticated
    async def revalidate(self, request: IRequest) -> bytes:
        bucket_id, key = self._object_ref(self._body(request))
        if not bucket_id or not key:
            raise AdminError(400, "bucket_id and key are required")
        restored = await self._quarantine_store().revalidate_object(bucket_id, key)
        log.info(
            "Admin: revalidated {bucket_id}/{key}: restored={restored}",
            bucket_id=bucket_id,
            key=key,
            restored=restored,
        )
        return self._json(request, 200, {"restored": bool(restored)})

    @app.route("/_jay/quarantine", methods=["DELETE"])
    @_authenticated
    async def purge(self, request: IRequest) -> bytes:
        body = self._body(request)
        bucket_id, key = self._object_ref(body)
        mode = field_str(body, "mode")
        store = self._quarantine_store()
        if mode == "all":
            purged = await store.purge_quarantined()
            log.info("Admin: purged {count} quarantined objects", count=purged)
            return self._json(request, 200, {"purged": purged})
        if bucket_id and key:
            await store.purge_object(bucket_id, key)
            log.info("Admin: purged {bucket_id}/{key}", bucket_id=bucket_id, key=key)
            return self._no_content(request)
        raise AdminError(400, "specify bucket_id+key for single purge, or mode=all for purge all")

    # --- buckets and policies ----------------------------------------------------------------
    @app.route("/_jay/buckets", methods=["GET"])
    @_authenticated
    async def list_buckets(self, request: IRequest) -> bytes:
        buckets = await self._store.list_buckets(None)
        return self._json(request, 200, [bucket_json(b) for b in buckets])

    @app.route("/_jay/buckets/<name>/policy", methods=["GET"])
    @_authenticated
    async def get_policy(self, request: IRequest, name: str) -> bytes:
        bucket = await self._store.get_bucket(name)
        if bucket.policy_json is None:
            raise AdminError(404, "bucket has no policy")
        request.setResponseCode(200)
        request.setHeader(b"Content-Type", b"application/json")
        request.setHeader(b"Cache-Control", b"no-store")
        return bucket.policy_json.encode("utf-8").rstrip(b"\n") + b"\n"

    @app.route("/_jay/buckets/<name>/policy", methods=["PUT"])
    @_authenticated
    async def put_policy(self, request: IRequest, name: str) -> bytes:
        raw = self._read_body(request)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise AdminError(400, "policy must be UTF-8 JSON") from None
        try:
            parse_policy(text, bucket=name)
        except MalformedPolicy as e:
            raise AdminError(400, e.message) from None
        await self._store.set_bucket_policy(name, text.strip())
        log.info("Admin: set the policy of bucket {bucket}", bucket=name)
        return self._no_content(request)

    @app.route("/_jay/buckets/<name>/policy", methods=["DELETE"])
    @_authenticated
    async def delete_policy(self, request: IRequest, name: str) -> bytes:
        await self._store.set_bucket_policy(name, None)
        log.info("Admin: deleted the policy of bucket {bucket}", bucket=name)
        return self._no_content(request)

    # --- errors ------------------------------------------------------------------------------
    @app.handle_errors(Exception)
    def errors(self, request: IRequest, failure: Failure) -> bytes:
        if failure.check(AdminError):
            error = cast(AdminError, failure.value)
            return self._error(request, error.status, error.message)
        if failure.check(InvalidBody):
            return self._error(request, 400, str(failure.value))
        if failure.check(HTTPException):
            return self._routing_error(request, cast(HTTPException, failure.value))
        mapped = failure.check(*ADMIN_ERRORS)
        if mapped is not None:
            status, message = ADMIN_ERRORS[cast(type[JayError], mapped)]
            return self._error(request, status, message)
        log.failure("Admin API request failed", failure)
        return self._error(request, 500, "internal error")

    def _routing_error(self, request: IRequest, error: HTTPException) -> bytes:
        if not (request.path or b"").startswith(b"/_jay/"):
            request.setResponseCode(404)
            request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
            request.setHeader(b"X-Content-Type-Options", b"nosniff")
            return b"404 page not found\n"
        # Authentication comes before routing (JAY_SPEC §4.1).
        try:
            self._authenticate(request)
        except AdminError as e:
            return self._error(request, e.status, e.message)
        if isinstance(error, MethodNotAllowed):
            if error.valid_methods:
                request.setHeader(b"Allow", ", ".join(error.valid_methods).encode())
            return self._error(request, 405, "method not allowed")
        return self._error(request, 404, "not found")
