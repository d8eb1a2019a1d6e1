"""rclone against a real jay process: a Go S3 client with its own multipart, listing and
MD5-ETag checks. Skipped when the ``rclone`` binary is not on PATH.

The remote is configured entirely through RCLONE_CONFIG_JAY_* environment variables.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import SEED_SECRET, SEED_TOKEN_ID
from tests.integration.jayproc import JayProcess

MiB = 1024 * 1024
RCLONE = shutil.which("rclone")


pytestmark = [
    pytest.mark.skipif(RCLONE is None, reason="rclone is not installed"),
    pytest.mark.usefixtures("server_log_is_clean"),
]


def pattern(size: int, seed: int) -> bytes:
    block = hashlib.sha256(str(seed).encode()).digest() * 2048
    return (block * (size // len(block) + 1))[:size]


def rclone(
    jay: JayProcess, tmp_path: Path, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    assert RCLONE is not None
    # AWS_* (a CA bundle, a profile) would leak into rclone's S3 SDK.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RCLONE_", "AWS_"))}
    env.update(
        RCLONE_CONFIG=str(tmp_path / "rclone-empty.conf"),
        RCLONE_CONFIG_JAY_TYPE="s3",
        RCLONE_CONFIG_JAY_PROVIDER="Other",
        RCLONE_CONFIG_JAY_ENDPOINT=jay.s3_url,
        RCLONE_CONFIG_JAY_ACCESS_KEY_ID=SEED_TOKEN_ID,
        RCLONE_CONFIG_JAY_SECRET_ACCESS_KEY=SEED_SECRET,
        RCLONE_CONFIG_JAY_REGION="us-east-1",
        RCLONE_CONFIG_JAY_FORCE_PATH_STYLE="true",
        # Multipart from 8 MiB on, in 5 MiB parts (the defaults are 200 MiB and 4.6 GiB).
        RCLONE_CONFIG_JAY_UPLOAD_CUTOFF="8M",
        RCLONE_CONFIG_JAY_CHUNK_SIZE="5M",
        RCLONE_CONFIG_JAY_COPY_CUTOFF="8M",
    )
    result = subprocess.run(
        [RCLONE, "--low-level-retries", "1", "--retries", "1", "--stats", "0", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    if check:
        assert result.returncode == 0, f"rclone {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result


def make_tree(root: Path) -> dict[str, bytes]:
    files = {
        "a.txt": b"alpha\n",
        "empty": b"",
        "dir/b.bin": pattern(70_000, 1),
        "dir/sub/c.txt": b"gamma " * 100,
        "dir/sub/spaces and ü.txt": b"unicode name",
        "big.bin": pattern(30 * MiB + 123, 2),
    }
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


def lsjson(jay: JayProcess, tmp_path: Path, remote: str, *flags: str) -> list[dict]:
    return json.loads(rclone(jay, tmp_path, "lsjson", *flags, remote).stdout)


def test_tree_copy_check_sync(jay: JayProcess, tmp_path: Path) -> None:
    src = tmp_path / "src"
    files = make_tree(src)
    rclone(jay, tmp_path, "mkdir", "jay:rclone-tree")
    rclone(jay, tmp_path, "copy", str(src), "jay:rclone-tree")

    listed = lsjson(jay, tmp_path, "jay:rclone-tree", "-R", "--files-only", "--hash")
    by_path = {entry["Path"]: entry for entry in listed}
    assert set(by_path) == set(files)
    for name, data in files.items():
        assert by_path[name]["Size"] == len(data)
    # Single-part uploads keep their MD5 as ETag, so rclone reports it as the hash.
    assert by_path["a.txt"]["Hashes"]["md5"] == hashlib.md5(files["a.txt"]).hexdigest()
    # rclone stores the whole-file MD5 in metadata for multipart uploads.
    assert by_path["big.bin"]["Hashes"]["md5"] == hashlib.md5(files["big.bin"]).hexdigest()

    check = rclone(jay, tmp_path, "check", str(src), "jay:rclone-tree")
    assert "0 differences found" in check.stderr

    out = tmp_path / "out"
    rclone(jay, tmp_path, "copy", "jay:rclone-tree", str(out))
    for name, data in files.items():
        assert (out / name).read_bytes() == data

    # sync: first run after a local change transfers one file and deletes one; second run none.
    (src / "a.txt").write_bytes(b"alpha changed\n")
    (src / "dir" / "b.bin").unlink()
    first = rclone(jay, tmp_path, "sync", "-v", str(src), "jay:rclone-tree")
    assert "a.txt: Copied" in first.stderr
    assert "dir/b.bin: Deleted" in first.stderr
    second = rclone(jay, tmp_path, "sync", "-v", str(src), "jay:rclone-tree")
    assert "Copied" not in second.stderr and "Deleted" not in second.stderr, second.stderr
    names = rclone(jay, tmp_path, "lsf", "-R", "--files-only", "jay:rclone-tree").stdout.split()
    assert "dir/b.bin" not in names and "a.txt" in names

    dirs = rclone(jay, tmp_path, "lsf", "jay:rclone-tree").stdout.splitlines()
    assert sorted(dirs) == ["a.txt", "big.bin", "dir/", "empty"]

    rclone(jay, tmp_path, "delete", "--include", "*.txt", "jay:rclone-tree")
    left = rclone(jay, tmp_path, "lsf", "-R", "--files-only", "jay:rclone-tree").stdout.split()
    assert sorted(left) == ["big.bin", "empty"]

    rclone(jay, tmp_path, "purge", "jay:rclone-tree")
    buckets = rclone(jay, tmp_path, "lsf", "jay:").stdout.splitlines()
    assert "rclone-tree/" not in buckets


def test_server_side_copy_and_move(jay: JayProcess, tmp_path: Path) -> None:
    src = tmp_path / "x"
    src.write_bytes(pattern(200_000, 3))
    big = tmp_path / "big"
    big.write_bytes(pattern(9 * MiB, 4))
    rclone(jay, tmp_path, "mkdir", "jay:rclone-copy")
    rclone(jay, tmp_path, "copyto", str(src), "jay:rclone-copy/x")
    rclone(jay, tmp_path, "copyto", str(big), "jay:rclone-copy/big")

    copied = rclone(jay, tmp_path, "copyto", "-v", "jay:rclone-copy/x", "jay:rclone-copy/y")
    assert "Copied (server-side copy)" in copied.stderr, copied.stderr
    # Over copy_cutoff rclone copies in parts (UploadPartCopy).
    big_copy = rclone(jay, tmp_path, "copyto", "-v", "jay:rclone-copy/big", "jay:rclone-copy/big2")
    assert "server-side copy" in big_copy.stderr, big_copy.stderr
    rclone(jay, tmp_path, "moveto", "jay:rclone-copy/y", "jay:rclone-copy/z")

    names = rclone(jay, tmp_path, "lsf", "jay:rclone-copy").stdout.split()
    assert sorted(names) == ["big", "big2", "x", "z"]
    got = tmp_path / "z.out"
    rclone(jay, tmp_path, "copyto", "jay:rclone-copy/z", str(got))
    assert got.read_bytes() == src.read_bytes()
    got_big = tmp_path / "big2.out"
    rclone(jay, tmp_path, "copyto", "jay:rclone-copy/big2", str(got_big))
    assert got_big.read_bytes() == big.read_bytes()
    sums = dict(
        reversed(line.split("  ", 1))
        for line in rclone(jay, tmp_path, "md5sum", "jay:rclone-copy").stdout.splitlines()
    )
    small_md5 = hashlib.md5(src.read_bytes()).hexdigest()
    big_md5 = hashlib.md5(big.read_bytes()).hexdigest()
    assert sums == {"x": small_md5, "z": small_md5, "big": big_md5, "big2": big_md5}

    info = rclone(jay, tmp_path, "size", "--json", "jay:rclone-copy")
    assert json.loads(info.stdout)["count"] == 4

    missing = rclone(jay, tmp_path, "lsf", "jay:rclone-absent", check=False)
    assert missing.returncode != 0
    assert "directory not found" in missing.stderr.lower()
    rclone(jay, tmp_path, "purge", "jay:rclone-copy")
