"""s3fs-fuse (libcurl, its own SigV4) mounting a jay bucket as a file system: POSIX operations
become S3 requests — metadata in ``x-amz-meta-*`` headers updated with CopyObject REPLACE,
renames as copy + delete, large files as multipart uploads, reads as ranged GETs, directories
as ``dir/`` objects and delimiter listings.

The file operations run in a child shell with a timeout, so a wedged mount can never hang the
suite; the mount is always torn down. Skipped without ``s3fs``, ``/dev/fuse`` or root.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import SEED_ACCOUNT, SEED_SECRET, SEED_TOKEN_ID, s3_client
from tests.integration.jayproc import CLEAN_EXIT, JayProcess

S3FS = shutil.which("s3fs")

pytestmark = [
    pytest.mark.skipif(
        S3FS is None or not os.path.exists("/dev/fuse") or os.geteuid() != 0,
        reason="s3fs-fuse, /dev/fuse or root is missing",
    ),
    pytest.mark.usefixtures("server_log_is_clean"),
]

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def jay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JayProcess]:
    """A file system sends several requests per file operation (s3fs probes ``key``,
    ``key/`` and ``key_$folder$`` before a create): the per-token rate limit is raised from
    its default (100/s) as the README advises for such clients."""
    proc = JayProcess(
        tmp_path_factory.mktemp("jay"),
        {
            "seed_token": {"account": SEED_ACCOUNT, "id": SEED_TOKEN_ID, "secret": SEED_SECRET},
            "min_part_size": 5 * MiB,
            "rate_limit": 5000,
        },
    ).start()
    yield proc
    assert proc.stop() in CLEAN_EXIT, proc.log_text()[-5000:]


@pytest.fixture(scope="module")
def mounted(jay: JayProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    assert S3FS is not None
    s3_client(jay).create_bucket(Bucket="fuse")
    work = tmp_path_factory.mktemp("s3fs")
    passwd = work / "passwd"
    passwd.write_text(f"{SEED_TOKEN_ID}:{SEED_SECRET}\n")
    passwd.chmod(0o600)
    mnt = work / "mnt"
    mnt.mkdir()
    log = (work / "s3fs.log").open("w")
    proc = subprocess.Popen(
        [
            S3FS,
            "fuse",
            str(mnt),
            "-f",
            "-o",
            f"passwd_file={passwd},url={jay.s3_url},use_path_request_style,endpoint=us-east-1",
            "-o",
            "multipart_size=5,parallel_count=3,stat_cache_expire=1,retries=2",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while not os.path.ismount(mnt):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.skip(f"s3fs could not mount: {(work / 's3fs.log').read_text()[-2000:]}")
            time.sleep(0.1)
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True, timeout=30)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
        log.close()


def sh(mnt: Path, script: str) -> str:
    """Run ``script`` in the mount point; a hung file operation fails the test, not the suite."""
    out = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=mnt,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_files_round_trip_with_posix_metadata(jay: JayProcess, mounted: Path) -> None:
    assert sh(mounted, "printf hello > a.txt && cat a.txt") == "hello"
    assert sh(mounted, "printf ' more' >> a.txt && cat a.txt") == "hello more"
    assert sh(mounted, "truncate -s 4 a.txt && cat a.txt") == "hell"
    # chmod and touch rewrite the object's metadata in place (CopyObject, REPLACE).
    assert sh(mounted, "chmod 640 a.txt && stat -c %a a.txt") == "640\n"
    sh(mounted, "touch -d '2020-01-02 03:04:05 UTC' a.txt")
    assert sh(mounted, "TZ=UTC stat -c %y a.txt").startswith("2020-01-02 03:04:05")
    head = s3_client(jay).head_object(Bucket="fuse", Key="a.txt")
    assert head["ContentLength"] == 4
    assert oct(int(head["Metadata"]["mode"]) & 0o777) == "0o640"
    assert sh(mounted, "ln -s a.txt link && readlink link && cat link") == "a.txt\nhell"


def test_large_file_multipart_ranges_and_rename(jay: JayProcess, mounted: Path) -> None:
    data = hashlib.sha256(b"fuse").digest() * (23 * MiB // 32) + b"tail"
    src = mounted.parent / "big.src"
    src.write_bytes(data)
    sh(mounted, f"mkdir -p dir/sub && cp {src} dir/sub/big && cmp {src} dir/sub/big")
    head = s3_client(jay).head_object(Bucket="fuse", Key="dir/sub/big")
    assert head["ContentLength"] == len(data)
    assert re.fullmatch(r'"[0-9a-f]{32}-[0-9]+"', head["ETag"])  # a multipart upload
    # A read in the middle of the file: ranged GETs.
    middle = sh(mounted, "dd if=dir/sub/big bs=1M skip=17 count=1 status=none | sha256sum")
    assert middle.split()[0] == hashlib.sha256(data[17 * MiB : 18 * MiB]).hexdigest()
    sh(mounted, "mv dir/sub/big dir/moved && test ! -e dir/sub/big")
    assert sh(mounted, "sha256sum dir/moved").split()[0] == hashlib.sha256(data).hexdigest()
    sh(mounted, "mv dir renamed")  # a directory rename copies every object under it
    assert sh(mounted, "find renamed | sort") == "renamed\nrenamed/moved\nrenamed/sub\n"
    keys = {o["Key"] for o in s3_client(jay).list_objects_v2(Bucket="fuse")["Contents"]}
    assert "renamed/moved" in keys and not any(k.startswith("dir/") for k in keys)
    sh(mounted, "rm -rf renamed")
    listed = s3_client(jay).list_objects_v2(Bucket="fuse", Prefix="renamed")
    assert listed["KeyCount"] == 0


def test_listing_many_files(mounted: Path) -> None:
    sh(mounted, "mkdir many && for i in $(seq 1 120); do printf $i > many/f$i; done")
    assert sh(mounted, "ls many | wc -l").strip() == "120"
    assert sh(mounted, "cat many/f77") == "77"
    sh(mounted, "rm -r many")
    assert "many" not in sh(mounted, "ls").split()
