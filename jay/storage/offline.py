"""Offline maintenance of the metadata database, for operator tools run while jay is stopped.

These functions are synchronous and open their own connection: they run in a CLI ``main()``,
never inside the server. The connection asks for SQLite's EXCLUSIVE locking mode, which needs
the database file's exclusive lock. A running jay keeps its WAL-mode connections open and each
of them holds a shared lock on the file for as long as it is open, so a running server makes
these functions fail after ``lock_timeout_seconds`` with :class:`DatabaseInUse` instead of
changing data under it (JAY_SPEC §4.5: "the tool gives up after 1 second").
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from jay.errors import JayError

# JAY_SPEC §4.5: upstream's bbolt open times out after one second while the server runs.
DEFAULT_LOCK_TIMEOUT_SECONDS = 1.0


class DatabaseInUse(JayError):
    """The metadata database is locked, most likely by a running jay server."""


class DatabaseMissing(JayError):
    """There is no usable metadata database at the given path."""


class RekeyFailed(JayError):
    """A stored token secret did not decrypt with the old key; nothing was written."""


def _connect_exclusive(db_path: str, lock_timeout_seconds: float) -> sqlite3.Connection:
    if not os.path.isfile(db_path):
        # sqlite3.connect would create an empty database: a typo in -data-dir must not do that.
        raise DatabaseMissing(f"no metadata database at {db_path}")
    conn = sqlite3.connect(db_path, timeout=lock_timeout_seconds, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout = {int(lock_timeout_seconds * 1000)}")
    conn.execute("PRAGMA locking_mode = EXCLUSIVE")
    conn.execute("PRAGMA synchronous = FULL")
    return conn


def _locked_message(db_path: str) -> str:
    return f"{db_path} is locked (is jay still running? stop it first)"


def _is_locked(error: sqlite3.OperationalError) -> bool:
    text = str(error).lower()
    return "locked" in text or "busy" in text


def rekey_tokens(
    db_path: str,
    reencrypt: Callable[[str], str | None],
    *,
    lock_timeout_seconds: float = DEFAULT_LOCK_TIMEOUT_SECONDS,
) -> int:
    """Replace every token's ``secret_key`` by ``reencrypt(secret_key)``; the number changed.

    ``reencrypt`` returns the new stored value, None to leave a value alone (legacy
    plaintext), or raises ValueError when the value cannot be decrypted. It is a parameter
    because ``jay.storage`` does not import ``jay.auth`` (STYLE.md layering); jay-rekey builds
    it from ``jay.auth.secrets`` and the old and new keys.

    All or nothing, in one ``BEGIN EXCLUSIVE`` transaction: one value that does not decrypt
    rolls everything back (:class:`RekeyFailed`, naming the token, never the secret).
    """
    try:
        conn = _connect_exclusive(db_path, lock_timeout_seconds)
    except sqlite3.OperationalError as e:
        if _is_locked(e):
            raise DatabaseInUse(_locked_message(db_path)) from None
        raise DatabaseMissing(f"cannot open {db_path}: {e}") from None
    try:
        conn.execute("BEGIN EXCLUSIVE")
        try:
            count = _rekey_in_transaction(conn, reencrypt)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return count
    except sqlite3.OperationalError as e:
        if _is_locked(e):
            raise DatabaseInUse(_locked_message(db_path)) from None
        raise
    finally:
        conn.close()


def _rekey_in_transaction(conn: sqlite3.Connection, reencrypt: Callable[[str], str | None]) -> int:
    has_tokens = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'tokens'"
    ).fetchone()
    if has_tokens is None:  # a database jay never finished creating: no tokens to rekey
        return 0
    updates: list[tuple[str, str]] = []
    for token_id, secret_key in conn.execute(
        "SELECT token_id, secret_key FROM tokens ORDER BY token_id"
    ):
        if not secret_key:
            continue
        try:
            new_value = reencrypt(secret_key)
        except ValueError:
            raise RekeyFailed(
                f"token {token_id}: its secret does not decrypt with the old signing secret; "
                "nothing was changed"
            ) from None
        if new_value is not None:
            updates.append((new_value, token_id))
    conn.executemany("UPDATE tokens SET secret_key = ? WHERE token_id = ?", updates)
    return len(updates)


@contextmanager
def exclusive_database(
    db_path: str, *, lock_timeout_seconds: float = DEFAULT_LOCK_TIMEOUT_SECONDS
) -> Iterator[None]:
    """Hold the database's exclusive lock for the duration (nothing if there is no database):
    proof that no jay has it open, and keeps one from opening it meanwhile. For offline work
    on the files, such as restoring a backup over it."""
    if not os.path.isfile(db_path):
        yield
        return
    try:
        conn = _connect_exclusive(db_path, lock_timeout_seconds)
    except sqlite3.OperationalError as e:
        if _is_locked(e):
            raise DatabaseInUse(_locked_message(db_path)) from None
        raise DatabaseMissing(f"cannot open {db_path}: {e}") from None
    try:
        conn.execute("BEGIN EXCLUSIVE")
    except sqlite3.OperationalError as e:
        conn.close()
        if _is_locked(e):
            raise DatabaseInUse(_locked_message(db_path)) from None
        raise
    try:
        yield
    finally:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # the file was moved away under us: closing is all that is left
        conn.close()
