"""Spreading connections over workers that share a listening socket (jay/workers.py).

Two ``SharingPort`` objects on duplicates of one listening socket in this process stand in for
two workers; the board is a real file, as the supervisor creates it.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import deferLater

import jay.workers
from jay.workers import (
    ABSENT,
    BALANCE_DEFER_SECONDS,
    LISTEN_KEYS,
    ConnectionBoard,
    SharingPort,
    listening_workers,
)

S3 = LISTEN_KEYS.index("listen_addr")


def test_board_slots_are_shared_between_mappings(tmp_path: Path) -> None:
    path = tmp_path / "connections"
    parent = ConnectionBoard.create(path, 3)
    worker = ConnectionBoard(path, 3)  # what a worker process maps
    assert parent.listening(S3) == 0
    assert parent.fewest_elsewhere(0, S3) == ABSENT
    worker.set(1, S3, 4)
    worker.set(2, S3, 2)
    assert parent.get(1, S3) == 4
    assert parent.listening(S3) == 2
    assert parent.fewest_elsewhere(0, S3) == 2
    assert parent.fewest_elsewhere(2, S3) == 4
    parent.mark_absent(2)
    assert worker.fewest_elsewhere(0, S3) == 4
    assert worker.listening(S3) == 1
    # Other listeners keep their own counts.
    assert worker.get(1, LISTEN_KEYS.index("native_addr")) == ABSENT


def test_listening_workers_reads_the_board_of_a_data_dir(tmp_path: Path) -> None:
    assert listening_workers(str(tmp_path), 2) == 0  # no board yet
    board = ConnectionBoard.create(tmp_path / "run" / "workers" / "connections", 2)
    board.set(0, S3, 0)
    assert listening_workers(str(tmp_path), 2) == 1
    board.set(1, S3, 7)
    assert listening_workers(str(tmp_path), 2) == 2
    with pytest.raises(ValueError):
        ConnectionBoard(tmp_path / "run" / "workers" / "connections", 5)  # shorter than 5 slots


async def _eventually(condition: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    """Let the reactor run until ``condition()`` holds; fail after ``timeout`` seconds."""
    deadline = reactor.seconds() + timeout
    while not condition():
        assert reactor.seconds() < deadline, f"not within {timeout}s: {what}"
        await deferLater(reactor, 0.005, lambda: None)


class _Recorder(Protocol):
    def __init__(self, seen: list[int], index: int, accepted: list[Protocol]) -> None:
        self.seen, self.index, self.accepted = seen, index, accepted

    def connectionMade(self) -> None:
        self.seen.append(self.index)
        self.accepted.append(self)


class _Workers:
    """Two ports sharing one listening socket, with their board."""

    def __init__(self, tmp_path: Path) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.listener.setblocking(False)
        self.address = self.listener.getsockname()
        self.board = ConnectionBoard.create(tmp_path / "connections", 2)
        self.seen: list[int] = []
        self.accepted: list[Protocol] = []
        self.ports: list[Any] = []
        for index in range(2):
            factory = Factory.forProtocol(
                lambda index=index: _Recorder(self.seen, index, self.accepted)  # type: ignore[misc]
            )
            port = SharingPort._fromListeningDescriptor(
                reactor, os.dup(self.listener.fileno()), socket.AF_INET, factory
            )
            port.startListening()
            port.balance(self.board, index, S3)
            self.ports.append(port)
        self.clients: list[socket.socket] = []

    def connect(self) -> None:
        client = socket.socket()
        client.setblocking(False)
        client.connect_ex(self.address)
        self.clients.append(client)

    async def until_accepted(self, count: int) -> None:
        await _eventually(lambda: len(self.seen) >= count, f"{count} connections accepted")

    async def close(self) -> None:
        for client in self.clients:
            client.close()
        for protocol in self.accepted:
            if protocol.transport is not None:
                protocol.transport.abortConnection()  # type: ignore[attr-defined]
        for port in self.ports:
            await maybeDeferred(port.stopListening)
        self.listener.close()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[_Workers]:
    w = _Workers(tmp_path)
    yield w
    pytest_twisted.blockon(Deferred.fromCoroutine(w.close()))


@pytest_twisted.ensureDeferred
async def test_connections_alternate_between_idle_workers(workers: _Workers) -> None:
    for n in range(1, 13):
        workers.connect()
        await workers.until_accepted(n)
    # However the wake-ups are ordered, neither holds more than one connection more.
    assert abs(workers.seen.count(0) - workers.seen.count(1)) <= 1
    assert [p.open_connections for p in workers.ports] == [6, 6]
    assert [workers.board.get(i, S3) for i in range(2)] == [6, 6]


@pytest.mark.parametrize("busy", [0, 1])
@pytest_twisted.ensureDeferred
async def test_a_worker_that_holds_more_steps_back(
    workers: _Workers, busy: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A longer step back than the 2 ms of production: on a loaded machine (a CI box running
    # other jobs) the idle port's wake-up can come later than 2 ms, and then the busy one
    # accepts anyway, as designed; what is tested here is who goes first.
    monkeypatch.setattr(jay.workers, "BALANCE_DEFER_SECONDS", 0.5)
    workers.ports[busy].open_connections = 5
    workers.ports[busy]._publish()
    for n in range(1, 5):
        workers.connect()
        await workers.until_accepted(n)
    assert workers.seen == [1 - busy] * 4


@pytest_twisted.ensureDeferred
async def test_a_worker_that_does_not_accept_delays_a_connection_only_briefly(
    workers: _Workers,
) -> None:
    # Worker 1 claims to hold nothing but no longer polls its socket (stuck, or dying).
    workers.ports[1].stopReading()
    workers.ports[0].open_connections = 3
    workers.ports[0]._publish()
    started = reactor.seconds()
    workers.connect()
    await workers.until_accepted(1)
    assert workers.seen == [0]
    assert reactor.seconds() - started >= BALANCE_DEFER_SECONDS * 0.9


@pytest_twisted.ensureDeferred
async def test_closed_connections_and_stopped_ports_leave_the_board(workers: _Workers) -> None:
    for n in range(1, 3):
        workers.connect()
        await workers.until_accepted(n)
    for client in workers.clients:
        client.close()
    workers.clients.clear()
    await _eventually(
        lambda: not any(p.open_connections for p in workers.ports), "connections counted closed"
    )
    assert [workers.board.get(i, S3) for i in range(2)] == [0, 0]
    await workers.ports[1].stopListening()
    assert workers.board.get(1, S3) == ABSENT
    assert workers.board.listening(S3) == 1
