"""jay-rekey (JAY_SPEC §4.5) on a real SQLite database: all or nothing, locked while a server
holds the database open, messages and exit statuses."""

from __future__ import annotations

import io
import sqlite3
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from jay.auth.secrets import decrypt_secret, derive_kek, encrypt_secret
from jay.cli.rekey import run
from jay.storage import metadata
from jay.storage.api import Account, TokenRecord
from jay.storage.sqlite import SQLiteDatabase, read_transaction, write_transaction

OLD = "old-signing-secret-" + "o" * 20
NEW = "new-signing-secret-" + "n" * 20


def _make_db(data_dir: Path, secret_keys: dict[str, str]) -> Path:
    (data_dir / "meta").mkdir(parents=True)
    path = data_dir / "meta" / "jay.db"
    db = SQLiteDatabase(str(path))
    conn = db.connect()
    db.create_schema(conn, metadata.SCHEMA)

    def fill(c: sqlite3.Connection) -> None:
        metadata.insert_account(c, Account(account_id="acct", name="acct", created_at=1.0))
        for token_id, secret_key in secret_keys.items():
            metadata.insert_token(
                c,
                TokenRecord(
                    token_id=token_id,
                    account_id="acct",
                    name=token_id,
                    secret_hash="$2a$",
                    secret_key=secret_key,
                    allowed_actions=("*",),
                    created_at=1.0,
                ),
            )

    write_transaction(conn, fill)
    conn.close()
    return path


def _secret_keys(path: Path) -> dict[str, str]:
    conn = SQLiteDatabase(str(path)).connect()
    try:
        tokens = read_transaction(conn, metadata.list_tokens, None)
    finally:
        conn.close()
    return {t.token_id: t.secret_key for t in tokens}


def _run(argv: list[str], environ: dict[str, str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        status = run(argv, environ or {})
    return status, out.getvalue(), err.getvalue()


def test_rekeys_every_encrypted_secret_and_skips_plaintext(tmp_path: Path) -> None:
    old_kek, new_kek = derive_kek(OLD), derive_kek(NEW)
    path = _make_db(
        tmp_path / "data",
        {
            "t1": encrypt_secret(old_kek, "secret-one"),
            "t2": encrypt_secret(old_kek, "secret-two"),
            "legacy": "plain-legacy",
            "empty": "",
        },
    )
    before = _secret_keys(path)
    status, out, err = _run(
        ["-data-dir", str(tmp_path / "data"), "-old-secret", OLD, "-new-secret", NEW]
    )
    assert (status, out, err) == (0, "Rekeyed 2 token(s) successfully.\n", "")
    after = _secret_keys(path)
    assert decrypt_secret(new_kek, after["t1"]) == "secret-one"
    assert decrypt_secret(new_kek, after["t2"]) == "secret-two"
    assert after["t1"] != before["t1"]
    assert after["legacy"] == "plain-legacy" and after["empty"] == ""
    with pytest.raises(ValueError):
        decrypt_secret(old_kek, after["t1"])

    # The same arguments again: the secrets no longer decrypt with the old key.
    status, out, err = _run(["--db", str(path), "--old-secret", OLD, "--new-secret", NEW])
    assert status == 1 and out == ""
    assert err.startswith("jay-rekey: token t1:")
    assert _secret_keys(path) == after


def test_one_undecryptable_secret_writes_nothing(tmp_path: Path) -> None:
    old_kek = derive_kek(OLD)
    other = derive_kek("some-other-secret-" + "x" * 20)
    path = _make_db(
        tmp_path / "data",
        {"a": encrypt_secret(old_kek, "fine"), "z": encrypt_secret(other, "foreign")},
    )
    before = _secret_keys(path)
    status, _, err = _run(
        ["-db", str(path)], {"JAY_OLD_SIGNING_SECRET": OLD, "JAY_SIGNING_SECRET": NEW}
    )
    assert status == 1
    assert "token z" in err and "nothing was changed" in err
    assert "foreign" not in err
    assert _secret_keys(path) == before


def test_no_encrypted_tokens(tmp_path: Path) -> None:
    _make_db(tmp_path / "data", {"legacy": "plain"})
    status, out, _ = _run(
        ["-old-secret", OLD, "-new-secret", NEW], {"JAY_DATA_DIR": str(tmp_path / "data")}
    )
    assert (status, out) == (0, "No encrypted tokens found — nothing rekeyed.\n")


def test_gives_up_while_another_process_holds_the_database(tmp_path: Path) -> None:
    old_kek = derive_kek(OLD)
    path = _make_db(tmp_path / "data", {"t": encrypt_secret(old_kek, "s")})
    before = _secret_keys(path)
    server = SQLiteDatabase(str(path)).connect()  # what a running jay keeps open
    try:
        read_transaction(server, metadata.list_tokens, None)
        started = time.monotonic()
        status, _, err = _run(["-db", str(path), "-old-secret", OLD, "-new-secret", NEW])
        elapsed = time.monotonic() - started
    finally:
        server.close()
    assert status == 1
    assert "locked" in err and "stop it first" in err
    assert elapsed < 10
    assert _secret_keys(path) == before


@pytest.mark.parametrize(
    ("argv", "environ", "message"),
    [
        (["-new-secret", NEW], {}, "jay-rekey: old signing secret required"),
        (["-old-secret", OLD], {}, "jay-rekey: new signing secret required"),
        ([], {"JAY_OLD_SIGNING_SECRET": OLD, "JAY_SIGNING_SECRET": OLD}, "identical"),
        (
            ["-old-secret", OLD, "-new-secret", NEW, "-data-dir", "/nonexistent"],
            {},
            "jay-rekey: no metadata database at /nonexistent/meta/jay.db",
        ),
        (["--frob"], {}, "jay-rekey: unrecognized arguments: --frob"),
    ],
)
def test_refusals(argv: list[str], environ: dict[str, str], message: str) -> None:
    status, out, err = _run(argv, environ)
    assert status == 1 and out == ""
    assert message in err
    assert not Path("/nonexistent/meta/jay.db").exists()
