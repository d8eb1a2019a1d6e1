"""Restore the metadata database from a backup (JAY_SPEC §7.4; upstream has no command).

Stop the server first, then::

    python -m jay.maintenance.restore --data-dir /var/lib/jay --backup /var/lib/jay/backups/jay-20250101T120000Z.db

The backup is checked (``PRAGMA integrity_check``, jay tables present), copied over
``meta/jay.db`` (the previous database and its WAL are kept as ``jay.db.before-restore-<stamp>``),
and on the next start recovery reconciles the object files with the restored records: records
whose file is gone are quarantined, files written after the backup are moved to
``quarantine/``, bucket counters are rebuilt.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from jay.storage.backups import list_backups, restore_backup

__all__ = ["main", "restore_backup"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m jay.maintenance.restore",
        description="Restore jay's metadata database from a backup (server stopped).",
    )
    parser.add_argument("--data-dir", required=True)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--backup", help="backup file to restore")
    group.add_argument("--latest", action="store_true", help="restore the newest backup")
    args = parser.parse_args(argv)
    backup = args.backup
    if args.latest:
        found = list_backups(os.path.join(args.data_dir, "backups"))
        if not found:
            print("no backups found", file=sys.stderr)
            return 1
        backup = found[-1].path
    try:
        previous = restore_backup(args.data_dir, backup)
    except (OSError, ValueError) as exc:
        print(f"restore failed: {exc}", file=sys.stderr)
        return 1
    print(f"restored {backup}")
    if previous:
        print(f"previous database kept as {previous}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
