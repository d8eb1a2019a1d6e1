"""Crash consistency with real processes: concurrent writes, ``kill -9``, restart, check.

Each iteration starts jay on one persistent data directory, runs concurrent PUTs, overwrites,
deletes and multipart completes with boto3 (one worker thread per key group, so each key's ops
are sequential and the expected state is exact), kills the server with SIGKILL at a random
moment, restarts it and checks:

* every acknowledged write reads back with the right bytes, every acknowledged delete is absent;
* a key whose op was in flight holds either its old or its new content (or is absent when it
  did not exist / was being deleted): never torn bytes;
* the listing equals the set of readable keys, with matching sizes;
* no object record is quarantined, no temp file is left after recovery.

Run: ``python -m tests.integration.crashloop --iterations 50 [--seed N] [--workdir DIR]``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from tests.integration.jayproc import JayProcess

SEED_ACCOUNT = "crash-account"
SEED_TOKEN_ID = "crash-token-0001"
SEED_SECRET = "crash-secret-" + "z" * 40
BUCKET = "crash"
WORKERS = 6
KEYS_PER_WORKER = 6
PART_SIZE = 64 * 1024
ABSENT = "absent"


def body_for(key: str, version: int, size: int) -> bytes:
    """Distinct bytes per (key, version): a mix-up or a torn write cannot hash right."""
    seed = hashlib.sha256(f"{key}#{version}".encode()).digest()
    block = seed * (4096 // len(seed))
    return (block * (size // len(block) + 1))[:size]


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class KeyState:
    """What a key must hold: ``acked`` (sha256 hex or ABSENT) plus, while an op was in flight at
    the kill, the other state it may have reached."""

    acked: str = ABSENT
    acked_size: int = 0
    in_flight: tuple[str, int] | None = None


@dataclass
class IterationResult:
    iteration: int
    acknowledged_ops: int
    in_flight_ops: int
    keys_present: int
    errors: list[str] = field(default_factory=list)


def client(jay: JayProcess) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=jay.s3_url,
        aws_access_key_id=SEED_TOKEN_ID,
        aws_secret_access_key=SEED_SECRET,
        region_name="us-east-1",
        config=BotoConfig(
            s3={"addressing_style": "path"},
            retries={"max_attempts": 1},
            connect_timeout=3,
            read_timeout=10,
        ),
    )


class Worker(threading.Thread):
    def __init__(
        self,
        jay: JayProcess,
        keys: list[str],
        model: dict[str, KeyState],
        rng: random.Random,
        versions: dict[str, int],
        stop: threading.Event,
    ) -> None:
        super().__init__(daemon=True)
        self.s3 = client(jay)
        self.keys = keys
        self.model = model
        self.rng = rng
        self.versions = versions
        self.stop = stop
        self.acknowledged = 0
        self.in_flight = 0
        self.errors: list[str] = []

    def run(self) -> None:
        while not self.stop.is_set():
            key = self.rng.choice(self.keys)
            state = self.model[key]
            roll = self.rng.random()
            self.versions[key] += 1
            version = self.versions[key]
            try:
                if roll < 0.2 and state.acked != ABSENT:
                    state.in_flight = (ABSENT, 0)
                    self.s3.delete_object(Bucket=BUCKET, Key=key)
                    state.acked, state.acked_size = ABSENT, 0
                elif roll < 0.35:
                    data = body_for(key, version, PART_SIZE * 2 + self.rng.randrange(1, 5000))
                    state.in_flight = (digest(data), len(data))
                    self._multipart(key, data)
                    state.acked, state.acked_size = digest(data), len(data)
                else:
                    data = body_for(key, version, self.rng.choice((0, 1, 1000, 70_000, 300_000)))
                    state.in_flight = (digest(data), len(data))
                    self.s3.put_object(Bucket=BUCKET, Key=key, Body=data)
                    state.acked, state.acked_size = digest(data), len(data)
                state.in_flight = None
                self.acknowledged += 1
            except ClientError as exc:
                # A killed server sends no error response: this is a real failure.
                self.errors.append(f"{key}: {exc}")
                self.in_flight += state.in_flight is not None
                return
            except (BotoCoreError, OSError):
                # The server died under this op: it stays in flight (either outcome allowed).
                self.in_flight += state.in_flight is not None
                return

    def _multipart(self, key: str, data: bytes) -> None:
        upload = self.s3.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
        parts = []
        for number, start in enumerate(range(0, len(data), PART_SIZE), 1):
            etag = self.s3.upload_part(
                Bucket=BUCKET,
                Key=key,
                UploadId=upload,
                PartNumber=number,
                Body=data[start : start + PART_SIZE],
            )["ETag"]
            parts.append({"PartNumber": number, "ETag": etag})
        self.s3.complete_multipart_upload(
            Bucket=BUCKET, Key=key, UploadId=upload, MultipartUpload={"Parts": parts}
        )


class CrashLoop:
    def __init__(self, workdir: Path, seed: int) -> None:
        self.workdir = workdir
        self.rng = random.Random(seed)
        self.keys = [f"w{w}/key-{k}" for w in range(WORKERS) for k in range(KEYS_PER_WORKER)]
        self.model = {key: KeyState() for key in self.keys}
        self.versions = {key: 0 for key in self.keys}
        self.bucket_created = False

    def _process(self) -> JayProcess:
        return JayProcess(
            self.workdir,
            {
                "seed_token": {
                    "account": SEED_ACCOUNT,
                    "id": SEED_TOKEN_ID,
                    "secret": SEED_SECRET,
                },
                "min_part_size": PART_SIZE,
                # Several client threads hammer one token: the limiter is not under test here.
                "rate_limit": 0,
                "read_verify_rate": 1.0,
                "log_level": "warn",
            },
        )

    def run_iteration(self, iteration: int) -> IterationResult:
        jay = self._process().start()
        try:
            s3 = client(jay)
            if not self.bucket_created:
                s3.create_bucket(Bucket=BUCKET)
                self.bucket_created = True
            stop = threading.Event()
            workers = [
                Worker(
                    jay,
                    self.keys[w * KEYS_PER_WORKER : (w + 1) * KEYS_PER_WORKER],
                    self.model,
                    random.Random(self.rng.random()),
                    self.versions,
                    stop,
                )
                for w in range(WORKERS)
            ]
            for worker in workers:
                worker.start()
            time.sleep(self.rng.uniform(0.2, 1.5))  # the random moment of the crash
        finally:
            jay.stop(sig=9)
        stop.set()
        for worker in workers:
            worker.join(timeout=30)
        result = IterationResult(
            iteration=iteration,
            acknowledged_ops=sum(w.acknowledged for w in workers),
            in_flight_ops=sum(w.in_flight for w in workers),
            keys_present=0,
            errors=[e for w in workers for e in w.errors],
        )
        jay = self._process().start()
        try:
            self._check(jay, result)
        finally:
            jay.stop()
        return result

    def _check(self, jay: JayProcess, result: IterationResult) -> None:
        s3 = client(jay)
        present: dict[str, int] = {}
        for key in self.keys:
            state = self.model[key]
            allowed = {state.acked: state.acked_size}
            if state.in_flight is not None:
                allowed[state.in_flight[0]] = state.in_flight[1]
            try:
                data = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
                seen, size = digest(data), len(data)
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "NoSuchKey":
                    result.errors.append(f"{key}: GET failed: {exc}")
                    continue
                seen, size = ABSENT, 0
            if seen not in allowed:
                result.errors.append(
                    f"{key}: holds {seen[:12]} ({size} B), expected one of "
                    f"{[a[:12] for a in allowed]}"
                )
                continue
            state.acked, state.acked_size, state.in_flight = seen, size, None
            if seen != ABSENT:
                present[key] = size
        result.keys_present = len(present)
        listed: dict[str, int] = {}
        paginator = s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=BUCKET, PaginationConfig={"PageSize": 7}):
            for item in page.get("Contents", []):
                listed[item["Key"]] = item["Size"]
        if listed != present:
            result.errors.append(
                f"listing {sorted(listed.items())} != reads {sorted(present.items())}"
            )
        data_dir = self.workdir / "data"
        conn = sqlite3.connect(f"file:{data_dir / 'meta' / 'jay.db'}?mode=ro", uri=True)
        try:
            (quarantined,) = conn.execute(
                "SELECT COUNT(*) FROM objects WHERE state = 'quarantined'"
            ).fetchone()
            (count, total) = conn.execute(
                "SELECT object_count, total_bytes FROM buckets WHERE name = ?", (BUCKET,)
            ).fetchone()
        finally:
            conn.close()
        if quarantined:
            result.errors.append(f"{quarantined} quarantined records after recovery")
        if (count, total) != (len(present), sum(present.values())):
            result.errors.append(
                f"counters {(count, total)} != {(len(present), sum(present.values()))}"
            )
        leftovers = os.listdir(data_dir / "tmp")
        if leftovers:
            result.errors.append(f"temp files left after recovery: {leftovers}")


def run(iterations: int, seed: int, workdir: Path, log: Any = None) -> list[IterationResult]:
    loop = CrashLoop(workdir, seed)
    results = []
    for i in range(iterations):
        result = loop.run_iteration(i)
        results.append(result)
        if log is not None:
            status = "OK" if not result.errors else "FAIL: " + "; ".join(result.errors)
            print(
                f"iteration {i}: {result.acknowledged_ops} acknowledged ops, "
                f"{result.in_flight_ops} in flight at kill, {result.keys_present} keys present "
                f"-> {status}",
                file=log,
                flush=True,
            )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--workdir", default="")
    args = parser.parse_args(argv)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="jay-crashloop-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"seed {args.seed}, workdir {workdir}", flush=True)
    started = time.monotonic()
    results = run(args.iterations, args.seed, workdir, log=sys.stdout)
    failed = [r for r in results if r.errors]
    acked = sum(r.acknowledged_ops for r in results)
    in_flight = sum(r.in_flight_ops for r in results)
    print(
        f"{len(results)} iterations, {len(failed)} failed, {acked} acknowledged ops checked, "
        f"{in_flight} in-flight ops resolved, {time.monotonic() - started:.0f} s",
        flush=True,
    )
    if not failed and not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
