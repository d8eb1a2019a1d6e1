"""The dedicated thread pools: one metadata writer, N metadata readers, N blob I/O threads.

Nothing here runs on the reactor's default pool (DNS uses that one). Each reader thread keeps
its own connection (WAL lets readers run during a write); the writer has exactly one, since
SQLite has one writer anyway.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from jay.storage.sqlite import Connection, SQLiteDatabase, read_transaction, write_transaction

R = TypeVar("R")


class StoragePools:
    def __init__(self, reactor: Any, *, reader_threads: int, blob_threads: int) -> None:
        self._reactor = reactor
        self.writer = ThreadPool(1, 1, name="jay-meta-writer")
        self.readers = ThreadPool(reader_threads, reader_threads, name="jay-meta-reader")
        self.blobs = ThreadPool(blob_threads, blob_threads, name="jay-blob-io")
        self._database: SQLiteDatabase | None = None
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[Connection] = []

    def start(self) -> None:
        for pool in (self.writer, self.readers, self.blobs):
            pool.start()

    def stop(self) -> None:
        """Join the threads (idle by now) and close every connection."""
        for pool in (self.writer, self.readers, self.blobs):
            pool.stop()
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()

    def open_database(self, database: SQLiteDatabase) -> None:
        self._database = database

    def _connection(self) -> Connection:
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            assert self._database is not None, "database not open"
            conn = self._database.connect()
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    # --- running work --------------------------------------------------------------------

    def _in_write(self, fn: Callable[..., R], *args: Any) -> R:
        return write_transaction(self._connection(), fn, *args)

    def _in_read(self, fn: Callable[..., R], *args: Any) -> R:
        return read_transaction(self._connection(), fn, *args)

    def _with_read_connection(self, fn: Callable[..., R], *args: Any) -> R:
        return fn(self._connection(), *args)

    def write(self, fn: Callable[..., R], *args: Any) -> Deferred[R]:
        """``fn(conn, *args)`` in one BEGIN IMMEDIATE transaction on the writer thread."""
        return deferToThreadPool(self._reactor, self.writer, self._in_write, fn, *args)

    def read(self, fn: Callable[..., R], *args: Any) -> Deferred[R]:
        """``fn(conn, *args)`` on one snapshot on a reader thread."""
        return deferToThreadPool(self._reactor, self.readers, self._in_read, fn, *args)

    def read_raw(self, fn: Callable[..., R], *args: Any) -> Deferred[R]:
        """``fn(conn, *args)`` on a reader thread; ``fn`` manages its own transactions."""
        return deferToThreadPool(self._reactor, self.readers, self._with_read_connection, fn, *args)

    def blob(self, fn: Callable[..., R], *args: Any) -> Deferred[R]:
        return deferToThreadPool(self._reactor, self.blobs, fn, *args)
