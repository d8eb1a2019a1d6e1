"""restic against a real jay process: a backup tool that makes many small objects, lists,
locks (create and delete lock objects), reads ranges back and deletes during prune.
Skipped when the ``restic`` binary is not on PATH.
"""

from __future__ import annotations

import filecmp
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import SEED_SECRET, SEED_TOKEN_ID
from tests.integration.jayproc import JayProcess

RESTIC = shutil.which("restic")


pytestmark = [
    pytest.mark.skipif(RESTIC is None, reason="restic is not installed"),
    pytest.mark.usefixtures("server_log_is_clean"),
]


def pattern(size: int, seed: int) -> bytes:
    block = hashlib.sha256(str(seed).encode()).digest() * 2048
    return (block * (size // len(block) + 1))[:size]


def restic(
    jay: JayProcess,
    workdir: Path,
    *args: str,
    check: bool = True,
    password: str = "correct horse battery staple",
) -> subprocess.CompletedProcess[str]:
    assert RESTIC is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RESTIC_"))}
    env.update(
        AWS_ACCESS_KEY_ID=SEED_TOKEN_ID,
        AWS_SECRET_ACCESS_KEY=SEED_SECRET,
        RESTIC_PASSWORD=password,
        RESTIC_REPOSITORY=f"s3:{jay.s3_url}/restic-repo",
        RESTIC_CACHE_DIR=str(workdir / "cache"),
        HOME=str(workdir),
    )
    result = subprocess.run(
        [RESTIC, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=workdir,
        timeout=120,
    )
    if check:
        assert result.returncode == 0, f"restic {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result


def make_tree(root: Path, count: int) -> None:
    for i in range(count):
        path = root / f"d{i % 7}" / f"file-{i}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pattern(97 * i + 1, i))
    (root / "big.bin").write_bytes(pattern(6 * 1024 * 1024, 999))
    (root / "empty").write_bytes(b"")


def same_tree(left: Path, right: Path) -> bool:
    compared = filecmp.dircmp(left, right)
    if compared.left_only or compared.right_only or compared.funny_files:
        return False
    _, mismatch, errors = filecmp.cmpfiles(left, right, compared.common_files, shallow=False)
    if mismatch or errors:
        return False
    return all(same_tree(left / d, right / d) for d in compared.common_dirs)


def test_init_backup_check_restore_forget_prune(jay: JayProcess, tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_tree(src, 120)
    restic(jay, tmp_path, "init")
    # A second init finds the existing config object and refuses.
    again = restic(jay, tmp_path, "init", check=False)
    assert again.returncode != 0 and "already" in again.stderr.lower()

    restic(jay, tmp_path, "backup", "--tag", "first", str(src))
    (src / "d0" / "file-0.bin").write_bytes(b"changed contents")
    (src / "d1" / "file-1.bin").unlink()
    (src / "new.txt").write_bytes(b"new file")
    restic(jay, tmp_path, "backup", "--tag", "second", str(src))

    snapshots = json.loads(restic(jay, tmp_path, "snapshots", "--json").stdout)
    assert sorted(tag for s in snapshots for tag in s["tags"]) == ["first", "second"]
    restic(jay, tmp_path, "check", "--read-data")

    listed = restic(jay, tmp_path, "ls", "latest").stdout.splitlines()
    assert any(line.endswith("/new.txt") for line in listed)

    target = tmp_path / "restore"
    restic(jay, tmp_path, "restore", "latest", "--target", str(target))
    assert same_tree(src, target / src.relative_to("/"))

    first_id = next(s["short_id"] for s in snapshots if "first" in s["tags"])
    first_target = tmp_path / "restore-first"
    restic(
        jay,
        tmp_path,
        "restore",
        first_id,
        "--target",
        str(first_target),
        "--include",
        "/**/d1/file-1.bin",
    )
    restored = first_target / src.relative_to("/") / "d1" / "file-1.bin"
    assert restored.read_bytes() == pattern(98, 1)

    restic(jay, tmp_path, "forget", "--keep-last", "1", "--prune")
    snapshots = json.loads(restic(jay, tmp_path, "snapshots", "--json").stdout)
    assert [s["tags"] for s in snapshots] == [["second"]]
    restic(jay, tmp_path, "check", "--read-data")
    assert restic(jay, tmp_path, "list", "locks").stdout.strip() == ""
    keys = restic(jay, tmp_path, "list", "keys").stdout.split()
    assert len(keys) == 1

    wrong = restic(jay, tmp_path, "snapshots", password="wrong", check=False)
    assert wrong.returncode != 0 and "wrong password" in wrong.stderr.lower()
