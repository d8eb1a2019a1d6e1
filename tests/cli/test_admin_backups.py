"""jay-admin's offline commands: list-backups and restore-backup, which refuses a database a
running jay holds open."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

from jay.cli.admin import run_offline
from jay.storage import backups, metadata
from jay.storage.api import Account
from jay.storage.sqlite import SQLiteDatabase, read_transaction, write_transaction

BIN = Path(sys.executable).parent


def _db_with_account(data_dir: Path, name: str) -> Path:
    (data_dir / "meta").mkdir(parents=True, exist_ok=True)
    path = data_dir / "meta" / "jay.db"
    db = SQLiteDatabase(str(path))
    conn = db.connect()
    db.create_schema(conn, metadata.SCHEMA)
    write_transaction(
        conn, metadata.insert_account, Account(account_id=name, name=name, created_at=1.0)
    )
    conn.close()
    return path


def _accounts(path: Path) -> list[str]:
    conn = SQLiteDatabase(str(path)).connect()
    try:
        return [a.name for a in read_transaction(conn, metadata.list_accounts)]
    finally:
        conn.close()


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = run_offline(list(argv), {}, out, err)
    return status, out.getvalue(), err.getvalue()


def test_list_and_restore(tmp_path: Path) -> None:
    data = tmp_path / "data"
    db_path = _db_with_account(data, "before")
    assert _run("-data-dir", str(data), "list-backups") == (0, "(none)\n", "")
    backup = backups.create_backup(str(db_path), str(data / "backups"), now=1_700_000_000.0)
    status, out, _ = _run("-data-dir", str(data), "list-backups")
    assert status == 0 and os.path.basename(backup) in out and "2023-11-14T22:13:20Z" in out

    # Change the live database, then go back to the backup.
    conn = SQLiteDatabase(str(db_path)).connect()
    write_transaction(
        conn, metadata.insert_account, Account(account_id="after", name="after", created_at=2.0)
    )
    conn.close()
    assert sorted(_accounts(db_path)) == ["after", "before"]
    status, out, err = _run(f"--data-dir={data}", "restore-backup", "-file", backup)
    assert status == 0, err
    assert out.startswith(f"Restored {backup} into {db_path}.")
    assert _accounts(db_path) == ["before"]
    assert any(p.name.startswith("jay.db.before-restore-") for p in (data / "meta").iterdir())


def test_restore_refuses_a_database_in_use_and_bad_backups(tmp_path: Path) -> None:
    data = tmp_path / "data"
    db_path = _db_with_account(data, "live")
    backup = backups.create_backup(str(db_path), str(data / "backups"), now=1_700_000_000.0)
    server = SQLiteDatabase(str(db_path)).connect()  # what a running jay keeps open
    try:
        read_transaction(server, metadata.list_accounts)
        env = {k: v for k, v in os.environ.items() if not k.startswith("JAY_")}
        env["JAY_DATA_DIR"] = str(data)
        result = subprocess.run(
            [str(BIN / "jay-admin"), "restore-backup", "-file", backup],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
    finally:
        server.close()
    assert result.returncode == 1
    assert "locked" in result.stderr and len(result.stderr.splitlines()) == 1
    assert not any(p.name.startswith("jay.db.before-restore-") for p in (data / "meta").iterdir())

    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database")
    status, _, err = _run("-data-dir", str(data), "restore-backup", "-file", str(junk))
    assert status == 1 and err.startswith(f"Error: cannot restore {junk}")
    assert _accounts(db_path) == ["live"]
    assert _run("-data-dir", str(data), "restore-backup")[0] == 1
