"""A prefix listing reads only the prefix's own rows, however many keys sort before it.

Counted in SQLite VM instructions (a progress handler), so the test measures the work, not
the machine's speed: with both ``key > start_after`` and ``key >= prefix`` in one statement
SQLite seeks by one bound and filters the other, and a first page walked every key before
the prefix.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from jay.storage import metadata
from jay.storage.sqlite import SQLiteDatabase, read_transaction

BEFORE = 20_000


@pytest.fixture
def conn(tmp_path: Any) -> sqlite3.Connection:
    db = SQLiteDatabase(str(tmp_path / "jay.db"))
    c = db.connect()
    db.create_schema(c, metadata.SCHEMA)
    c.execute(
        "INSERT INTO buckets (bucket_id, name, owner_account_id, created_at, visibility) "
        "VALUES ('b1', 'bkt', 'acct', 0, 'private')"
    )
    rows = [(f"a/{i:08d}", f"o-a-{i}") for i in range(BEFORE)]
    rows += [(f"m/{i:02d}", f"o-m-{i}") for i in range(10)]
    c.execute("BEGIN")
    c.executemany(
        "INSERT INTO objects (bucket_id, key, object_id, state, size, etag, sha256, "
        "content_type, attrs_json, checksums_json, checksum_type, part_sizes_json, "
        "location_ref, created_at, updated_at) VALUES ('b1', ?, ?, 'active', 1, 'e', 's', "
        "'application/octet-stream', '', '{}', '', '[]', 'ref', 0, 0)",
        rows,
    )
    c.execute("COMMIT")
    return c


def _steps(conn: sqlite3.Connection, *args: Any) -> tuple[Any, int]:
    count = [0]

    def tick() -> int:
        count[0] += 1
        return 0

    conn.set_progress_handler(tick, 100)
    try:
        page = read_transaction(conn, metadata.list_objects, "bkt", *args)
    finally:
        conn.set_progress_handler(None, 0)
    return page, count[0] * 100


@pytest.mark.parametrize("delimiter", ["", "/"])
def test_first_page_of_a_prefix_does_not_walk_the_keys_before_it(
    conn: sqlite3.Connection, delimiter: str
) -> None:
    page, steps = _steps(conn, "m/", delimiter, "", 1000)
    assert [o.key for o in page.objects] == [f"m/{i:02d}" for i in range(10)]
    # Reading 20,000 rows costs hundreds of thousands of VM steps; ten rows a few hundred.
    assert steps < 5_000, steps


def test_start_after_inside_the_prefix_still_seeks(conn: sqlite3.Connection) -> None:
    page, steps = _steps(conn, "m/", "", "m/04", 1000)
    assert [o.key for o in page.objects] == [f"m/{i:02d}" for i in range(5, 10)]
    assert steps < 5_000, steps
    page, _ = _steps(conn, "", "", "a/00019998", 3)
    assert [o.key for o in page.objects] == ["a/00019999", "m/00", "m/01"]
    assert page.is_truncated
