"""build_service(): the one place where jay's parts are wired into a service tree.

Children start in order: storage (opens the DB and runs recovery in its pools), the admin
listener (bound before recovery ends so probes see 503 instead of connection refused), the S3
and native listeners, then the watcher that marks the process ready. ``MultiService`` stops them
in reverse: readiness turns 503 first, listeners close, the database and pools close last.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable
from typing import Any

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import MultiService, Service
from twisted.internet.defer import Deferred, gatherResults
from twisted.logger import ILogObserver, Logger
from twisted.python.threadpool import ThreadPool
from twisted.web.server import Site

from jay.admin.app import AdminApi
from jay.admin.bodies import presign_base_url
from jay.auth.authenticate import Authenticator
from jay.auth.clientip import ClientIPResolver
from jay.auth.ratelimit import AuthFailureLimiter, RateLimiter, RequestLimits
from jay.auth.secrets import derive_kek
from jay.auth.tokens import TokenVerifier
from jay.config.model import Config, RateLimitSettings
from jay.core.access import AccessControl
from jay.core.seed import apply_seed_token, encrypt_legacy_secrets
from jay.endpoints import load_tls_options, server_endpoint
from jay.lifecycle import Readiness
from jay.logs import make_observer
from jay.maintenance.service import MaintenanceService
from jay.metrics.registry import Metrics
from jay.native.server import NativeServerFactory
from jay.s3.app import S3Api, S3Settings
from jay.s3.http import StreamingSite
from jay.storage.blobs import direct_buffer_takes
from jay.storage.memory import IdleMemoryRelease
from jay.storage.service import StorageService
from jay.workers import (
    LISTEN_KEYS,
    MAINTENANCE_LEASE,
    WORKER_HEADER,
    AdoptedListener,
    ConnectionBoard,
    LeasedService,
    MetricsPublisher,
    ParentLink,
    WorkerRole,
    open_board,
    run_dir,
)

log = Logger(namespace="jay.service")


class _FrontEnds(MultiService):
    """The listeners. Stopped first on shutdown (and only once)."""

    _stopped: Deferred[None] | None = None

    def stopService(self) -> Deferred[None]:
        if self._stopped is None:
            self._stopped = super().stopService()
        return self._stopped


class JayService(MultiService):
    """The root service. Shutdown order: readiness 503 → listeners stop accepting → in-flight
    requests finish (at most ``grace_seconds``) → maintenance, storage and pools stop."""

    def __init__(
        self,
        readiness: Readiness,
        log_observer: Any = None,
        *,
        clock: Any = None,
        grace_seconds: float = 30.0,
    ) -> None:
        super().__init__()
        self.readiness = readiness
        self._log_observer = log_observer
        self._clock = clock
        self._grace_seconds = grace_seconds
        self.front_ends = _FrontEnds()
        self._drains: list[Callable[[], Deferred[Any]]] = []

    def add_drain(self, drain: Callable[[], Deferred[Any]]) -> None:
        """Register a function whose Deferred fires once a front end has no work in flight."""
        self._drains.append(drain)

    def setServiceParent(self, parent: Any) -> None:
        # twistd's AppLogger uses an ILogObserver component of the application when present:
        # that is how log_level and log_format reach the process's log output.
        if self._log_observer is not None and hasattr(parent, "setComponent"):
            parent.setComponent(ILogObserver, self._log_observer)
        super().setServiceParent(parent)

    def stopService(self) -> Deferred[None]:
        self.readiness.mark_stopping()
        log.info("Shutting down: readiness is now 503")
        return Deferred.fromCoroutine(self._stop())

    async def _stop(self) -> None:
        await self.front_ends.stopService()
        if self._drains:
            drained = gatherResults([drain() for drain in self._drains], consumeErrors=True)
            if self._clock is not None:
                drained.addTimeout(self._grace_seconds, self._clock)
            try:
                await drained
                log.info("In-flight requests finished")
            except Exception:
                log.warn(
                    "Shutdown grace period of {seconds}s ended with requests in flight",
                    seconds=self._grace_seconds,
                )
        await super().stopService()


class PoolService(Service):
    """A dedicated thread pool (bcrypt here) started and stopped with the service tree."""

    def __init__(self, name: str, max_threads: int) -> None:
        self.pool = ThreadPool(minthreads=0, maxthreads=max_threads, name=name)

    def startService(self) -> None:
        super().startService()
        self.pool.start()

    def stopService(self) -> None:
        super().stopService()
        self.pool.stop()


class _Startup(Service):
    """After storage recovery: migrate legacy token secrets, apply the seed token, then mark the
    process ready (listeners are bound by then). A worker process (``workers`` > 1) starts its
    listeners only now, and only worker 0 migrates secrets and applies the seed token."""

    def __init__(
        self,
        storage: StorageService,
        readiness: Readiness,
        config: Config,
        kek: bytes,
        reactor: Any,
        pool: PoolService,
        worker: WorkerRole | None = None,
        front_ends: tuple[JayService, MultiService] | None = None,
        parent_link: ParentLink | None = None,
    ) -> None:
        self._storage = storage
        self._readiness = readiness
        self._config = config
        self._kek = kek
        self._reactor = reactor
        self._pool = pool
        self._worker = worker
        self._front_ends = front_ends
        self._parent_link = parent_link

    def startService(self) -> None:
        super().startService()
        d = Deferred.fromCoroutine(self._run())
        d.addErrback(self._failed)

    async def _run(self) -> None:
        await self._storage.when_ready()
        if self._worker is None or self._worker.is_primary:
            await encrypt_legacy_secrets(self._storage, self._kek)
            if self._config.seed_token.is_set:
                await apply_seed_token(
                    self._storage,
                    self._config.seed_token,
                    kek=self._kek,
                    reactor=self._reactor,
                    pool=self._pool.pool,
                    now=self._reactor.seconds(),
                )
        if self.running:
            # Everything built at startup (modules, configuration, caches) stays alive for
            # the life of the process: move it to the permanent generation, so full garbage
            # collections no longer walk it while serving.
            gc.freeze()
            self._readiness.mark_ready()
            if self._front_ends is not None:
                root, front_ends = self._front_ends
                front_ends.setServiceParent(root)
            if self._parent_link is not None:
                self._parent_link.notify_ready()
            if self._worker is None:
                log.info("jay is ready")
            else:
                log.info("jay is ready (worker {index})", index=self._worker.index)

    def _failed(self, failure: Any) -> None:
        log.failure("Startup failed; stopping", failure)
        self._reactor.stop()


def _listener(
    reactor: Any,
    addr: str,
    key: str,
    factory: Any,
    tls_options: Any,
    worker: WorkerRole | None = None,
    board: ConnectionBoard | None = None,
) -> Service:
    if worker is not None:
        # Workers serve sockets the parent bound (jay/workers.py).
        fd, family = worker.listen_fds[key]
        if tls_options is not None:
            from twisted.protocols.tls import TLSMemoryBIOFactory

            factory = TLSMemoryBIOFactory(tls_options, False, factory)
        return AdoptedListener(
            reactor,
            fd,
            family,
            factory,
            board=board,
            worker=worker.index,
            listener=LISTEN_KEYS.index(key),
        )
    svc = StreamServerEndpointService(
        server_endpoint(reactor, addr, key=key, tls_options=tls_options), factory
    )
    # A port that cannot be bound stops startup with an error instead of a silent half-service.
    svc._raiseSynchronously = True
    return svc


def build_service(config: Config, reactor: Any, worker: WorkerRole | None = None) -> JayService:
    """The service tree of one jay process; ``worker`` when it is one of several (workers.py)."""
    readiness = Readiness()
    root = JayService(
        readiness,
        make_observer(config.log_level, config.log_format),
        clock=reactor,
        grace_seconds=config.shutdown_grace_seconds,
    )
    tls_options = load_tls_options(config.tls) if config.tls.is_enabled else None

    metrics = Metrics(reactor)
    parent_link: ParentLink | None = None
    board: ConnectionBoard | None = None
    if worker is not None:
        board = open_board(config, worker)
        if worker.status_fd is not None:
            parent_link = ParentLink(reactor, worker.status_fd)
            parent_link.setServiceParent(root)
        MetricsPublisher(
            metrics, run_dir(config.data_dir), worker.index, clock=reactor
        ).setServiceParent(root)
    storage = StorageService(
        config.data_dir,
        reactor=reactor,
        metrics=metrics,
        recover=worker is None or worker.is_primary,
        pack_max_object_bytes=config.pack_max_object_bytes,
        master_key_path=config.sse_master_key_file,
        kms_key_ids=config.sse_kms_key_ids,
    )
    storage.setServiceParent(root)
    IdleMemoryRelease(
        lambda: sum(metrics.request_counts.values()) + direct_buffer_takes(), clock=reactor
    ).setServiceParent(root)
    maintenance = MaintenanceService(
        storage,
        scrub=config.scrub,
        gc=config.gc,
        backup=config.backup,
        clock=reactor,
        metrics=metrics,
        lifecycle_interval_seconds=config.lifecycle_interval_seconds,
        lifecycle_metrics=metrics,
    )
    if worker is None:
        maintenance.setServiceParent(root)
    else:
        # Exactly one worker at a time runs maintenance: the one holding the database lease.
        LeasedService(maintenance, storage, name=MAINTENANCE_LEASE, clock=reactor).setServiceParent(
            root
        )

    kek = derive_kek(config.signing_secret)
    bcrypt_pool = PoolService("jay-bcrypt", 2)
    bcrypt_pool.setServiceParent(root)
    verifier = TokenVerifier(
        storage,
        kek=kek,
        clock=reactor,
        reactor=reactor,
        pool=bcrypt_pool.pool,
        # Revocations made through another worker reach this one's next request.
        generation=storage.current_auth_generation,
    )
    admin = AdminApi(
        readiness=readiness,
        storage=storage,
        verifier=verifier,
        kek=kek,
        admin_token=config.admin_token,
        signing_secret=config.signing_secret,
        presign_base_url=presign_base_url(
            public_url=config.public_url,
            listen_addr=config.listen_addr,
            is_tls=config.tls.is_enabled,
        ),
        clock=reactor,
        reactor=reactor,
        bcrypt_pool=bcrypt_pool.pool,
        metrics=metrics,
        metrics_public=config.metrics_public,
    )
    assert admin.lockout is not None  # made by AdminApi from the clock given above
    admin.lockout.setServiceParent(root)
    admin_site = Site(admin.resource())
    admin_site.displayTracebacks = False
    # Bound before recovery ends, so probes see 503 rather than connection refused (§4.3).
    # A worker's sockets are already bound by the parent; it starts accepting once it is ready,
    # so no connection lands on a not-ready worker while others serve.
    if worker is None:
        root.front_ends.setServiceParent(root)
    _listener(
        reactor, config.admin_addr, "admin_addr", admin_site, tls_options, worker, board
    ).setServiceParent(root.front_ends)
    authenticator = Authenticator(verifier, signing_secret=config.signing_secret, clock=reactor)
    access = AccessControl(storage, clock=reactor)
    http_limiter = RateLimiter(config.rate_limit, reactor)
    http_limiter.setServiceParent(root)
    # JAY_SPEC §1.13: the native limiter is its own instance and truncates the rate to an int.
    native_limiter = RateLimiter(
        RateLimitSettings(rate=float(int(config.rate_limit.rate)), burst=config.rate_limit.burst),
        reactor,
    )
    native_limiter.setServiceParent(root)
    auth_failures = AuthFailureLimiter(reactor)
    auth_failures.setServiceParent(root)
    client_ips = ClientIPResolver(config.proxy)
    s3 = S3Api(
        storage=storage,
        authenticator=authenticator,
        access=access,
        clock=reactor,
        readiness=readiness,
        settings=S3Settings(
            region=config.region,
            domain=config.domain,
            max_object_size=config.max_object_size,
            min_part_size=config.min_part_size,
            read_verify_rate=config.read_verify_rate,
        ),
        client_ip=client_ips.for_request,
        limits=RequestLimits(http_limiter, auth_failures),
        metrics=metrics,
    )
    s3_site = StreamingSite(s3.resource(), reactor=reactor)
    if worker is not None:
        # Every S3 response names the worker process that answered (``x-jay-worker: <pid>``).
        s3_site.fixed_headers = ((WORKER_HEADER, str(os.getpid()).encode()),)
    s3_site.displayTracebacks = False
    s3_site.metrics = metrics
    # S3Api emits its own access event per request (with request id and token id).
    s3_site.log = lambda request: None  # type: ignore[method-assign]
    _listener(
        reactor, config.listen_addr, "listen_addr", s3_site, tls_options, worker, board
    ).setServiceParent(root.front_ends)
    root.add_drain(s3.wait_idle)

    if config.native_addr:
        native = NativeServerFactory(
            storage=storage,
            verifier=verifier,
            access=access,
            clock=reactor,
            readiness=readiness,
            idle_timeout_seconds=config.native_idle_timeout_seconds,
            read_verify_rate=config.read_verify_rate,
            max_object_size=config.max_object_size,
            rate_limiter=native_limiter if config.rate_limit.is_enabled else None,
            auth_failures=auth_failures,
            metrics=metrics,
        )
        native_tls = tls_options if config.tls.native else None
        _listener(
            reactor, config.native_addr, "native_addr", native, native_tls, worker, board
        ).setServiceParent(root.front_ends)
        root.add_drain(native.close_connections)

    _Startup(
        storage,
        readiness,
        config,
        kek,
        reactor,
        bcrypt_pool,
        worker,
        front_ends=(root, root.front_ends) if worker is not None else None,
        parent_link=parent_link,
    ).setServiceParent(root)
    return root
