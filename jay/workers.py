"""Several jay processes on one data directory and one metadata database (``workers: N``).

Design
------
* **Parent.** With ``workers`` > 1 the twistd process is a supervisor (``WorkerSupervisor``). It
  binds the S3, admin and native listening sockets itself (before any child exists, so a busy
  port fails startup with one line on stderr), then spawns worker children with
  ``reactor.spawnProcess``, handing the sockets over through ``childFDs``. It never accepts a
  connection. Each child is ``twistd -n jay --worker SPEC``; SPEC says which inherited descriptor
  is which listener. The kernel hands each connection to whichever worker accepts it first.
* **Recovery once.** Worker 0 starts alone and runs startup recovery (and the legacy-secret
  migration and seed token). Only when it reports ready (a line on its status pipe) are the other
  workers spawned, with recovery off. A restarted worker never recovers: the others are serving,
  and recovery (orphan files, stale uploads) must not race with their writes.
* **Listeners after readiness.** A worker adopts the listening sockets only once it is ready, so
  a connection is never accepted by a worker that would answer 503 while others are ready;
  ``/health/ready`` is 200 exactly when the worker answering it is ready.
* **Maintenance** (scrub, GC, backups) runs under a lease row in the database (``leases``): each
  worker tries every ``LEASE_RENEW_SECONDS`` to take or renew it for ``LEASE_TTL_SECONDS``; the
  holder runs the ``MaintenanceService``, a worker that fails to renew stops it. A crashed holder's
  lease expires and another worker takes over within TTL + one renew interval. The lease uses the
  database clock values written by each process, so it also works for several nodes on one
  database (with clocks in sync to well under the TTL).
* **Token revocation and bucket changes**: every token or account status change bumps a
  generation row in the same transaction. Each worker's token verifier compares that generation
  before answering from its caches, reading the row again only when SQLite's ``data_version``
  says another connection committed; bucket records are cached under ``data_version`` too. A
  revocation or policy change is therefore seen by every worker on its next request.
* **Metrics**: every ``METRICS_PUBLISH_SECONDS`` each worker writes its counts (``Metrics.snapshot``:
  §4.2 counters, request series, duration histograms, body bytes, open connections, scrub progress)
  to ``<data_dir>/run/workers/metrics-<index>.json`` (write, then rename). Whichever worker answers
  ``/_jay/metrics`` or ``/metrics`` adds the other workers' files to its own live numbers, so totals
  lag by at most one publish interval. A restarted worker starts from its slot's file, so counters
  do not go backwards when a worker dies (at most one interval of counts is lost).
* **Shutdown**: SIGTERM to the parent closes its copies of the sockets and sends SIGTERM to every
  worker; each does the usual graceful stop (readiness 503, listeners close, in-flight requests
  finish within ``shutdown_grace_seconds``). The parent exits when all have; a worker still alive
  ``grace + KILL_MARGIN_SECONDS`` later is killed. Workers read their stdin (a pipe from the
  parent) and stop when it closes, so they never outlive a killed parent.
* **Crashes**: a worker that exits while the parent is not stopping is restarted after a backoff
  (0.5 s doubling to 30 s; reset once a worker has run for a minute). If worker 0 dies before it
  was ever ready (recovery failed), the parent stops.
"""

from __future__ import annotations

import json
import mmap
import os
import socket
import struct
import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from twisted.application.service import MultiService, Service
from twisted.internet import stdio, tcp
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.error import ProcessDone, ReactorNotRunning
from twisted.internet.protocol import ProcessProtocol, Protocol
from twisted.internet.task import LoopingCall
from twisted.logger import ILogObserver, Logger
from twisted.python.failure import Failure

from jay.config.model import Config
from jay.endpoints import parse_address
from jay.errors import ConfigError

log = Logger(namespace="jay.workers")

WORKER_HEADER = b"X-Jay-Worker"  # as twisted stores it (canonical capitalisation)
LISTEN_KEYS = ("admin_addr", "listen_addr", "native_addr")
MAINTENANCE_LEASE = "maintenance"
LEASE_TTL_SECONDS = 30.0
LEASE_RENEW_SECONDS = 10.0
METRICS_PUBLISH_SECONDS = 1.0
STATUS_FD = 3  # child → parent: "ready\n"
FIRST_LISTEN_FD = 4
LISTEN_BACKLOG = 1024
RESTART_FIRST_DELAY_SECONDS = 0.5
RESTART_MAX_DELAY_SECONDS = 30.0
RESTART_RESET_AFTER_SECONDS = 60.0
KILL_MARGIN_SECONDS = 10.0


def run_dir(data_dir: str) -> Path:
    return Path(data_dir) / "run" / "workers"


# --- the worker's side ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WorkerRole:
    """What the parent told one worker: its slot, whether it recovers, its inherited sockets."""

    index: int
    is_primary: bool
    # config key ("listen_addr", …) → (inherited descriptor, address family)
    listen_fds: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    status_fd: int | None = STATUS_FD

    def to_json(self) -> str:
        return json.dumps(
            {
                "index": self.index,
                "primary": self.is_primary,
                "fds": {k: list(v) for k, v in self.listen_fds.items()},
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> WorkerRole:
        try:
            raw = json.loads(text)
            fds = {str(k): (int(v[0]), int(v[1])) for k, v in raw["fds"].items()}
            return cls(index=int(raw["index"]), is_primary=bool(raw["primary"]), listen_fds=fds)
        except (ValueError, KeyError, TypeError, IndexError):
            raise ConfigError(f"--worker: not a worker description: {text!r}") from None


BOARD_SLOT_BYTES = 8
ABSENT = 2**62  # the count a slot holds while its worker is not running
BALANCE_DEFER_SECONDS = 0.002


def board_path(data_dir: str) -> Path:
    return run_dir(data_dir) / "connections"


class ConnectionBoard:
    """How many connections each worker holds on each listener, shared through a small file.

    One 8-byte slot per (worker, listener), written only by that worker (or by the parent, to
    mark a worker absent); readers may see a count one change old, which only makes one
    balancing decision slightly off. The parent creates the file before any worker starts.
    """

    def __init__(self, path: Path, workers: int) -> None:
        self.workers = workers
        size = workers * len(LISTEN_KEYS) * BOARD_SLOT_BYTES
        with open(path, "r+b") as f:
            if os.fstat(f.fileno()).st_size < size:
                raise ValueError(f"{path}: shorter than {size} bytes")
            self._map = mmap.mmap(f.fileno(), size)

    @staticmethod
    def create(path: Path, workers: int) -> ConnectionBoard:
        path.parent.mkdir(parents=True, exist_ok=True)
        slots = workers * len(LISTEN_KEYS)
        path.write_bytes(struct.pack(f"<{slots}q", *([ABSENT] * slots)))
        return ConnectionBoard(path, workers)

    def _offset(self, worker: int, listener: int) -> int:
        return (worker * len(LISTEN_KEYS) + listener) * BOARD_SLOT_BYTES

    def set(self, worker: int, listener: int, count: int) -> None:
        struct.pack_into("<q", self._map, self._offset(worker, listener), count)

    def get(self, worker: int, listener: int) -> int:
        return int(struct.unpack_from("<q", self._map, self._offset(worker, listener))[0])

    def mark_absent(self, worker: int) -> None:
        for listener in range(len(LISTEN_KEYS)):
            self.set(worker, listener, ABSENT)

    def fewest_elsewhere(self, worker: int, listener: int) -> int:
        """The smallest count any other running worker holds on ``listener`` (ABSENT: none)."""
        return min(
            (self.get(other, listener) for other in range(self.workers) if other != worker),
            default=ABSENT,
        )

    def listening(self, listener: int) -> int:
        """How many workers accept connections on ``listener`` now."""
        return sum(self.get(w, listener) != ABSENT for w in range(self.workers))

    def close(self) -> None:
        self._map.close()


def listening_workers(data_dir: str, workers: int, key: str = "listen_addr") -> int:
    """How many of a server's ``workers`` accept on ``key`` now (0 if it has no board yet)."""
    try:
        board = ConnectionBoard(board_path(data_dir), workers)
    except (OSError, ValueError):
        return 0
    try:
        return board.listening(LISTEN_KEYS.index(key))
    finally:
        board.close()


def open_board(config: Config, worker: WorkerRole) -> ConnectionBoard | None:
    """The parent's connection board, or None (connections then go to whoever accepts first)."""
    try:
        return ConnectionBoard(board_path(config.data_dir), config.worker_count)
    except (OSError, ValueError) as e:
        log.warn(
            "Worker {index}: no connection board ({error}); connections are not balanced",
            index=worker.index,
            error=e,
        )
        return None


class _CountedServer(tcp.Server):
    """A server-side connection that tells its ``SharingPort`` when it opens and closes."""

    def __init__(self, sock: Any, protocol: Any, client: Any, server: Any, *args: Any) -> None:
        super().__init__(sock, protocol, client, server, *args)
        self._port: SharingPort = server
        server._connection_opened()

    def connectionLost(self, reason: Failure) -> None:
        try:
            super().connectionLost(reason)
        finally:
            self._port._connection_closed()


class SharingPort(tcp.Port):
    """A listening socket every worker polls, with connections spread evenly between them.

    The kernel wakes every worker polling a shared listening socket when a connection arrives,
    and whichever runs first accepts it. That is not fair: when the workers are idle the same one
    wins nearly every time (15 of 16 connections opened 50 ms apart went to one of two workers),
    and ``tcp.Port`` accepts a whole burst in one loop. Keep-alive connections then stay where
    they landed, so one worker ran at a full core while the other idled.

    So this port accepts one connection per readiness event, and a worker already holding more
    connections on this listener than another running worker steps back for
    ``BALANCE_DEFER_SECONDS`` to let that one accept; if the connection is still waiting then,
    it accepts it anyway, so a stuck or slow peer delays a connection by that much at most.
    """

    transport = _CountedServer  # type: ignore[assignment]
    board: ConnectionBoard | None = None
    worker = 0
    listener = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.open_connections = 0
        self._clock: Any = self.reactor
        self._resume_call: Any = None
        self._accept_until = 0.0

    def balance(self, board: ConnectionBoard, worker: int, listener: int) -> None:
        self.board, self.worker, self.listener = board, worker, listener
        board.set(worker, listener, self.open_connections)

    def doRead(self) -> None:
        self.numberAccepts = 1
        board = self.board
        if (
            board is not None
            and self.open_connections > board.fewest_elsewhere(self.worker, self.listener)
            and self._clock.seconds() > self._accept_until
        ):
            self.stopReading()
            self._resume_call = self._clock.callLater(BALANCE_DEFER_SECONDS, self._resume)
            return
        super().doRead()

    def _resume(self) -> None:
        self._resume_call = None
        if self.connected:
            # Whatever still waits when the pause ends is accepted here, balanced or not.
            self._accept_until = self._clock.seconds() + BALANCE_DEFER_SECONDS
            self.startReading()

    def _publish(self) -> None:
        if self.board is not None and self.connected:
            self.board.set(self.worker, self.listener, self.open_connections)

    def _connection_opened(self) -> None:
        self.open_connections += 1
        self._publish()

    def _connection_closed(self) -> None:
        self.open_connections -= 1
        self._publish()

    def connectionLost(self, reason: Failure) -> None:
        if self._resume_call is not None and self._resume_call.active():
            self._resume_call.cancel()
        self._resume_call = None
        if self.board is not None:
            # Stopped listening: other workers must not wait for this one to accept.
            self.board.set(self.worker, self.listener, ABSENT)
        super().connectionLost(reason)


class AdoptedListener(Service):
    """Serve ``factory`` on a listening socket inherited from the parent."""

    def __init__(
        self,
        reactor: Any,
        fd: int,
        family: int,
        factory: Any,
        *,
        board: ConnectionBoard | None = None,
        worker: int = 0,
        listener: int = 0,
    ) -> None:
        self._reactor = reactor
        self._fd = fd
        self._family = family
        self._factory = factory
        self._board = board
        self._worker = worker
        self._listener = listener
        self.port: Any = None

    def startService(self) -> None:
        super().startService()
        if self._family in (socket.AF_INET, socket.AF_INET6):
            port = SharingPort._fromListeningDescriptor(
                self._reactor, self._fd, self._family, self._factory
            )
            port.startListening()
            if self._board is not None:
                port.balance(self._board, self._worker, self._listener)
            self.port = port
        else:
            self.port = self._reactor.adoptStreamPort(self._fd, self._family, self._factory)
        # The reactor listens on its own duplicate of the descriptor.
        os.close(self._fd)

    def stopService(self) -> Deferred[None] | None:
        super().stopService()
        port, self.port = self.port, None
        if port is None:
            return None
        return port.stopListening()  # type: ignore[no-any-return]


class _StatusLink(Protocol):
    def __init__(self, on_parent_gone: Any) -> None:
        self._on_parent_gone = on_parent_gone

    def dataReceived(self, data: bytes) -> None:
        pass  # the parent sends nothing; we only watch for end of file

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self._on_parent_gone()


class ParentLink(Service):
    """Stdin is a pipe from the parent (end of file: the parent is gone, so stop); the status
    descriptor carries "ready" to it."""

    def __init__(self, reactor: Any, status_fd: int) -> None:
        self._reactor = reactor
        self._status_fd = status_fd
        self._proto = _StatusLink(self._parent_gone)
        self._transport: Any = None

    def startService(self) -> None:
        super().startService()
        self._transport = stdio.StandardIO(  # type: ignore[call-arg]
            self._proto, stdin=0, stdout=self._status_fd, reactor=self._reactor
        )

    def notify_ready(self) -> None:
        if self._transport is not None:
            self._transport.write(b"ready\n")

    def _parent_gone(self) -> None:
        self._transport = None
        if self.running:
            log.warn("The supervising process is gone; stopping this worker")
            try:
                self._reactor.stop()
            except ReactorNotRunning:
                pass


class LeasedService(Service):
    """Run ``inner`` only while this process holds the database lease ``name``."""

    def __init__(
        self,
        inner: Service,
        storage: Any,
        *,
        name: str,
        clock: Any,
        ttl_seconds: float = LEASE_TTL_SECONDS,
        renew_seconds: float = LEASE_RENEW_SECONDS,
    ) -> None:
        self.inner = inner
        self._storage = storage
        self._lease = name
        self._ttl = ttl_seconds
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._loop = LoopingCall(self.renew_now)
        self._loop.clock = clock
        self._renew_seconds = renew_seconds
        self._loop_done: Deferred[Any] | None = None

    @property
    def holds_lease(self) -> bool:
        return bool(self.inner.running)

    def startService(self) -> None:
        super().startService()
        self._storage.when_ready().addCallbacks(self._start_loop, lambda _: None)

    def _start_loop(self, _: object) -> None:
        if self.running and not self._loop.running:
            self._loop_done = self._loop.start(self._renew_seconds, now=True)

    def renew_now(self) -> Deferred[None]:
        """Take or renew the lease now, starting or stopping ``inner`` to match."""
        return Deferred.fromCoroutine(self._renew())

    async def _renew(self) -> None:
        try:
            held = await self._storage.acquire_lease(self._lease, self.holder, self._ttl)
        except Exception:
            log.failure("Could not renew the {lease} lease", lease=self._lease)
            held = False
        if not self.running:
            return
        if held and not self.inner.running:
            log.info("This worker (pid {pid}) now runs {lease}", pid=os.getpid(), lease=self._lease)
            self.inner.startService()
        elif not held and self.inner.running:
            log.info(
                "This worker (pid {pid}) lost the {lease} lease", pid=os.getpid(), lease=self._lease
            )
            await maybeDeferred(self.inner.stopService)

    def stopService(self) -> Deferred[None]:
        super().stopService()
        return Deferred.fromCoroutine(self._stop())

    async def _stop(self) -> None:
        if self._loop.running:
            self._loop.stop()
        if self.inner.running:
            await maybeDeferred(self.inner.stopService)
            try:
                await self._storage.release_lease(self._lease, self.holder)
            except Exception:
                log.failure("Could not release the {lease} lease", lease=self._lease)


def read_snapshot(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


class MetricsPublisher(Service):
    """Write this worker's counters to its slot file; read the other workers' files on demand."""

    def __init__(self, metrics: Any, directory: Path, index: int, *, clock: Any) -> None:
        self._metrics = metrics
        self._dir = directory
        self._index = index
        self._path = directory / f"metrics-{index}.json"
        self._loop = LoopingCall(self.publish)
        self._loop.clock = clock
        self._last: str | None = None

    def startService(self) -> None:
        super().startService()
        self._dir.mkdir(parents=True, exist_ok=True)
        previous = read_snapshot(self._path)
        if previous is not None:
            # The worker this one replaces: carry its counts on.
            self._metrics.add_base(previous)
        self._metrics.peer_snapshots = self.peer_snapshots
        self._loop.start(METRICS_PUBLISH_SECONDS, now=True)

    def stopService(self) -> None:
        super().stopService()
        if self._loop.running:
            self._loop.stop()
        self.publish()

    def publish(self) -> None:
        # A few hundred bytes, no fsync: cheap enough for the reactor thread once a second.
        text = json.dumps({"pid": os.getpid(), **self._metrics.snapshot()}, sort_keys=True)
        if text == self._last:
            return
        tmp = self._path.with_suffix(f".{os.getpid()}.tmp")
        try:
            tmp.write_text(text)
            os.replace(tmp, self._path)
            self._last = text
        except OSError as e:
            log.warn("Could not publish worker metrics: {error}", error=str(e))

    def peer_snapshots(self) -> list[dict[str, Any]]:
        peers = []
        for path in sorted(self._dir.glob("metrics-*.json")):
            if path != self._path:
                snapshot = read_snapshot(path)
                if snapshot is not None:
                    peers.append(snapshot)
        return peers


# --- the parent's side ---------------------------------------------------------------------


def open_listening_sockets(config: Config) -> dict[str, socket.socket]:
    """Bind and listen on every configured address; the workers inherit these sockets."""
    sockets: dict[str, socket.socket] = {}
    try:
        for key in LISTEN_KEYS:
            addr = getattr(config, key)
            if not addr:
                continue
            host, port = parse_address(addr, key=key)
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            sockets[key] = sock
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host or ("::" if family == socket.AF_INET6 else ""), port))
            except OSError as e:
                raise ConfigError(f"{key}: cannot listen on {addr}: {e.strerror}") from None
            sock.listen(LISTEN_BACKLOG)
            sock.setblocking(False)
    except BaseException:
        for sock in sockets.values():
            sock.close()
        raise
    return sockets


class _WorkerProcess(ProcessProtocol):
    def __init__(self, supervisor: WorkerSupervisor, index: int, started_at: float) -> None:
        self.supervisor = supervisor
        self.index = index
        self.started_at = started_at
        self.is_ready = False
        self.pid: int | None = None

    def connectionMade(self) -> None:
        self.pid = self.transport.pid  # type: ignore[union-attr]

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        if childFD == STATUS_FD and b"ready" in data and not self.is_ready:
            self.is_ready = True
            self.supervisor._worker_ready(self)

    def processEnded(self, reason: Failure) -> None:
        self.supervisor._worker_ended(self, reason)


class WorkerSupervisor(MultiService):
    """The parent process: holds the sockets, spawns and restarts workers, drains on stop."""

    def __init__(
        self,
        config: Config,
        config_path: str | None,
        *,
        reactor: Any,
        log_observer: Any = None,
        command: list[str] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__()
        self._config = config
        self._config_path = config_path
        self._reactor = reactor
        self._log_observer = log_observer
        self._command = command or [
            sys.executable, "-c", "from twisted.scripts.twistd import run; run()",
        ]  # fmt: skip
        self._environ = dict(os.environ if environ is None else environ)
        self.count = config.worker_count
        self.sockets = open_listening_sockets(config)
        self.workers: dict[int, _WorkerProcess] = {}
        self._failures: dict[int, int] = {}
        self._restarts: dict[int, Any] = {}
        self._stopping = False
        self._all_spawned = False
        self._stopped: Deferred[None] | None = None
        self._kill_timer: Any = None
        self.board: ConnectionBoard | None = None

    def setServiceParent(self, parent: Any) -> None:
        if self._log_observer is not None and hasattr(parent, "setComponent"):
            parent.setComponent(ILogObserver, self._log_observer)
        super().setServiceParent(parent)

    def startService(self) -> None:
        super().startService()
        directory = run_dir(self._config.data_dir)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("metrics-*"):
            stale.unlink(missing_ok=True)
        self.board = ConnectionBoard.create(board_path(self._config.data_dir), self.count)
        log.info("Starting {count} worker processes", count=self.count)
        self._spawn(0, primary=True)

    def _spawn(self, index: int, *, primary: bool) -> None:
        self._restarts.pop(index, None)
        if self._stopping:
            return
        child_fds: dict[int, Any] = {0: "w", 1: 1, 2: 2, STATUS_FD: "r"}
        listen_fds: dict[str, tuple[int, int]] = {}
        for offset, (key, sock) in enumerate(self.sockets.items()):
            child_fds[FIRST_LISTEN_FD + offset] = sock.fileno()
            listen_fds[key] = (FIRST_LISTEN_FD + offset, int(sock.family))
        role = WorkerRole(index=index, is_primary=primary, listen_fds=listen_fds)
        args = [*self._command, "-n", "--pidfile=", "jay"]
        if self._config_path:
            args += ["--config", self._config_path]
        args += ["--worker", role.to_json()]
        worker = _WorkerProcess(self, index, self._reactor.seconds())
        self.workers[index] = worker
        self._reactor.spawnProcess(
            worker, args[0], args, env=self._environ, path=os.getcwd(), childFDs=child_fds
        )
        log.info("Worker {index} started (pid {pid})", index=index, pid=worker.pid)

    def _worker_ready(self, worker: _WorkerProcess) -> None:
        log.info("Worker {index} (pid {pid}) is ready", index=worker.index, pid=worker.pid)
        if not self._all_spawned:
            # Worker 0 has recovered the data directory: the others may start now.
            self._all_spawned = True
            for index in range(1, self.count):
                self._spawn(index, primary=False)

    def _worker_ended(self, worker: _WorkerProcess, reason: Failure) -> None:
        if self.workers.get(worker.index) is worker:
            del self.workers[worker.index]
            if self.board is not None:
                # Its counts froze when it died: nobody should step back in its favour.
                self.board.mark_absent(worker.index)
        clean = reason.check(ProcessDone) is not None
        if self._stopping:
            log.info("Worker {index} (pid {pid}) stopped", index=worker.index, pid=worker.pid)
            if not self.workers and self._stopped is not None:
                self._finish_stop()
            return
        log.error(
            "Worker {index} (pid {pid}) exited unexpectedly ({reason})",
            index=worker.index,
            pid=worker.pid,
            reason="exit 0" if clean else reason.getErrorMessage(),
        )
        if not self._all_spawned:
            log.critical("Worker 0 ended before it was ready (startup recovery failed?); stopping")
            try:
                self._reactor.stop()
            except ReactorNotRunning:
                pass
            return
        if self._reactor.seconds() - worker.started_at >= RESTART_RESET_AFTER_SECONDS:
            self._failures[worker.index] = 0
        failures = self._failures.get(worker.index, 0)
        self._failures[worker.index] = failures + 1
        delay = min(RESTART_MAX_DELAY_SECONDS, RESTART_FIRST_DELAY_SECONDS * 2**failures)
        log.info("Restarting worker {index} in {delay}s", index=worker.index, delay=delay)
        self._restarts[worker.index] = self._reactor.callLater(
            delay, self._spawn, worker.index, primary=False
        )

    def stopService(self) -> Deferred[None]:
        if self._stopped is not None:
            return self._stopped
        super().stopService()
        self._stopping = True
        for call in self._restarts.values():
            if call.active():
                call.cancel()
        self._restarts.clear()
        # Closing our copies means the ports close as soon as the last worker stops listening.
        for sock in self.sockets.values():
            sock.close()
        self._stopped = Deferred()
        if not self.workers:
            self._finish_stop()
            return self._stopped
        log.info("Stopping {count} workers", count=len(self.workers))
        for worker in list(self.workers.values()):
            self._signal(worker, "TERM")
        self._kill_timer = self._reactor.callLater(
            self._config.shutdown_grace_seconds + KILL_MARGIN_SECONDS, self._kill_remaining
        )
        return self._stopped

    def _signal(self, worker: _WorkerProcess, sig: str) -> None:
        try:
            worker.transport.signalProcess(sig)  # type: ignore[union-attr]
        except Exception:  # already gone: processEnded follows
            pass

    def _kill_remaining(self) -> None:
        self._kill_timer = None
        for worker in list(self.workers.values()):
            log.warn("Worker {index} did not stop in time; killing it", index=worker.index)
            self._signal(worker, "KILL")

    def _finish_stop(self) -> None:
        if self._kill_timer is not None and self._kill_timer.active():
            self._kill_timer.cancel()
        self._kill_timer = None
        stopped = self._stopped
        if stopped is not None and not stopped.called:
            log.info("All workers stopped")
            stopped.callback(None)
