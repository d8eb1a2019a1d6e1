"""build_service(): the one place where jay's parts are wired into a service tree.

Children start in order: storage (opens the DB and runs recovery in its pools), the admin
listener (bound before recovery ends so probes see 503 instead of connection refused), the S3
and native listeners, then the watcher that marks the process ready. ``MultiService`` stops them
in reverse: readiness turns 503 first, listeners close, the database and pools close last.
"""

from __future__ import annotations

from typing import Any

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import MultiService, Service
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.web.server import Site

from jay.admin.app import AdminApi
from jay.config.model import Config
from jay.endpoints import load_tls_options, server_endpoint
from jay.lifecycle import Readiness
from jay.storage.service import StorageService

log = Logger(namespace="jay.service")


class JayService(MultiService):
    def __init__(self, readiness: Readiness) -> None:
        super().__init__()
        self.readiness = readiness

    def stopService(self) -> Deferred[None]:
        self.readiness.mark_stopping()
        log.info("Shutting down: readiness is now 503")
        return super().stopService()  # type: ignore[no-any-return]


class _ReadyWatcher(Service):
    """Marks the process ready once storage recovery finished (listeners are bound by then)."""

    def __init__(self, storage: StorageService, readiness: Readiness) -> None:
        self._storage = storage
        self._readiness = readiness

    def startService(self) -> None:
        super().startService()
        d = self._storage.when_ready()
        d.addCallback(lambda _: self._became_ready())
        d.addErrback(lambda f: log.failure("Startup recovery failed", f))

    def _became_ready(self) -> None:
        if self.running:
            self._readiness.mark_ready()
            log.info("jay is ready")


def _listener(reactor: Any, addr: str, key: str, factory: Any, tls_options: Any) -> Service:
    svc = StreamServerEndpointService(
        server_endpoint(reactor, addr, key=key, tls_options=tls_options), factory
    )
    # A port that cannot be bound stops startup with an error instead of a silent half-service.
    svc._raiseSynchronously = True
    return svc


def build_service(config: Config, reactor: Any) -> JayService:
    readiness = Readiness()
    root = JayService(readiness)
    tls_options = load_tls_options(config.tls) if config.tls.is_enabled else None

    storage = StorageService(config.data_dir, reactor=reactor)
    storage.setServiceParent(root)

    admin = AdminApi(readiness=readiness)
    admin_site = Site(admin.resource())
    admin_site.displayTracebacks = False
    _listener(reactor, config.admin_addr, "admin_addr", admin_site, tls_options).setServiceParent(
        root
    )

    _ReadyWatcher(storage, readiness).setServiceParent(root)
    return root
