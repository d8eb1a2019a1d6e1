"""How long startup recovery takes for N objects (default 100 000).

Creates a data directory with one bucket of N small objects (records inserted straight into
SQLite, files written in the shard layout), plus a few damaged entries, then times
``StorageService`` from ``startService`` until ``when_ready`` fires, twice (cold and warm page
cache are not separated: run it after ``echo 3 > /proc/sys/vm/drop_caches`` for a cold figure).

    python benchmarks/recovery.py [--objects 100000] [--dir /path/on/the/real/disk]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import time
import uuid

from twisted.internet import defer, task

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from jay.storage import metadata  # noqa: E402
from jay.storage.blobs import BlobStore  # noqa: E402
from jay.storage.service import StorageService  # noqa: E402


def build(data_dir: str, count: int) -> None:
    store = BlobStore(data_dir)
    store.create_layout()
    conn = sqlite3.connect(os.path.join(data_dir, "meta", "jay.db"), isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    for statement in metadata.SCHEMA:
        conn.execute(statement)
    bucket_id = str(uuid.uuid4())
    conn.execute(
        "INSERT INTO buckets (bucket_id, name, owner_account_id, created_at, visibility) "
        "VALUES (?, 'bench', 'acct', 0, 'private')",
        (bucket_id,),
    )
    body = b"x" * 100
    sha = hashlib.sha256(body).hexdigest()
    md5 = hashlib.md5(body).hexdigest()
    rows = []
    made_dirs: set[str] = set()
    for i in range(count):
        object_id = str(uuid.uuid4())
        ref = BlobStore.object_ref(bucket_id, object_id)
        path = os.path.join(data_dir, ref)
        directory = os.path.dirname(path)
        if directory not in made_dirs:
            os.makedirs(directory, exist_ok=True)
            made_dirs.add(directory)
        with open(path, "wb") as f:
            f.write(body)
        rows.append(
            (bucket_id, f"key/{i:08d}", object_id, "active", len(body), md5, sha,
             "application/octet-stream", "{}", "{}", "", "[]", ref, 0.0, 0.0)
        )  # fmt: skip
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO objects (bucket_id, key, object_id, state, size, etag, sha256, "
        "content_type, attrs_json, checksums_json, checksum_type, part_sizes_json, "
        "location_ref, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
        "?, ?)",
        rows,
    )
    # Wrong counters, for recovery to rebuild.
    conn.execute("UPDATE buckets SET object_count = 1, total_bytes = 1")
    conn.execute("COMMIT")
    conn.close()
    # Damage: 10 missing files, 10 orphans, 10 dead temp files.
    for row in rows[:10]:
        os.unlink(os.path.join(data_dir, row[12]))
    for _ in range(10):
        orphan = BlobStore.object_ref(bucket_id, str(uuid.uuid4()))
        os.makedirs(os.path.dirname(os.path.join(data_dir, orphan)), exist_ok=True)
        with open(os.path.join(data_dir, orphan), "wb") as f:
            f.write(body)
    for i in range(10):
        with open(os.path.join(data_dir, "tmp", f"jay-upload-{i}.writing"), "wb") as f:
            f.write(body)


async def time_startup(reactor: object, data_dir: str) -> float:
    svc = StorageService(data_dir, reactor=reactor)
    started = time.perf_counter()
    svc.startService()
    await svc.when_ready()
    elapsed = time.perf_counter() - started
    await svc.stopService()
    return elapsed


async def main(reactor: object, args: argparse.Namespace) -> None:
    parent = args.dir or None
    data_dir = tempfile.mkdtemp(prefix="jay-recovery-", dir=parent)
    try:
        t0 = time.perf_counter()
        build(data_dir, args.objects)
        build_seconds = time.perf_counter() - t0
        first = await time_startup(reactor, data_dir)  # repairs the damage
        second = await time_startup(reactor, data_dir)  # nothing left to repair
        conn = sqlite3.connect(os.path.join(data_dir, "meta", "jay.db"))
        counts = conn.execute(
            "SELECT state, COUNT(*) FROM objects GROUP BY state ORDER BY state"
        ).fetchall()
        counters = conn.execute("SELECT object_count, total_bytes FROM buckets").fetchone()
        conn.close()
        print(
            f"{'objects':>10} {'build s':>8} {'recovery s (repairs)':>21} {'recovery s (clean)':>19}"
        )
        print(f"{args.objects:>10} {build_seconds:>8.1f} {first:>21.2f} {second:>19.2f}")
        print(json.dumps({"states": dict(counts), "counters": counters}))
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--dir", default="")
    task.react(lambda reactor: defer.ensureDeferred(main(reactor, parser.parse_args())))
