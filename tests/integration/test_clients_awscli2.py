"""AWS CLI v2 (its own botocore fork and transfer manager) against a real jay process.
Skipped unless an ``aws`` on PATH outside the virtualenv reports ``aws-cli/2``
(Debian: ``apt-get install awscli``); test_s3_awscli.py covers the virtualenv's v1.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import SEED_SECRET, SEED_TOKEN_ID
from tests.integration.jayproc import BIN, JayProcess

MiB = 1024 * 1024


def _find_v2() -> str | None:
    """The first ``aws`` on PATH (or /usr/bin) that is v2; shims and the venv's v1 are skipped."""
    dirs = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p] + ["/usr/bin"]
    for directory in dirs:
        candidate = Path(directory) / "aws"
        if Path(directory) == BIN or not os.access(candidate, os.X_OK):
            continue
        try:
            version = subprocess.run(
                [str(candidate), "--version"], capture_output=True, text=True, timeout=30
            ).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        if version.startswith("aws-cli/2"):
            return str(candidate)
    return None


AWS2 = _find_v2()


pytestmark = [
    pytest.mark.skipif(AWS2 is None, reason="AWS CLI v2 is not installed"),
    pytest.mark.usefixtures("server_log_is_clean"),
]


def aws(jay: JayProcess, tmp_path: Path, *args: str) -> str:
    assert AWS2 is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID=SEED_TOKEN_ID,
        AWS_SECRET_ACCESS_KEY=SEED_SECRET,
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=str(tmp_path / "no-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-credentials"),
        AWS_MAX_ATTEMPTS="1",
        AWS_PAGER="",
    )
    result = subprocess.run(
        [
            AWS2,
            "--endpoint-url",
            jay.s3_url,
            *args,
            *(["--no-progress"] if args[:2] in (("s3", "cp"), ("s3", "sync")) else []),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 0, f"aws {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_cp_sync_and_remove(jay: JayProcess, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    block = hashlib.sha256(b"v2").digest() * 4096
    big.write_bytes((block * (20 * MiB // len(block) + 1))[: 20 * MiB + 3])
    tree = tmp_path / "tree"
    for name in ("a.txt", "sub/b.txt", "sub/c d.txt"):
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_text(name)

    aws(jay, tmp_path, "s3", "mb", "s3://awscli2")
    aws(jay, tmp_path, "s3", "cp", str(big), "s3://awscli2/big.bin")
    head = aws(jay, tmp_path, "s3api", "head-object", "--bucket", "awscli2", "--key", "big.bin")
    assert '-3\\""' in head  # 8 MiB default parts: a multipart ETag
    first = aws(jay, tmp_path, "s3", "sync", str(tree), "s3://awscli2/tree")
    assert first.count("upload:") == 3
    assert "upload:" not in aws(jay, tmp_path, "s3", "sync", str(tree), "s3://awscli2/tree")
    listing = aws(jay, tmp_path, "s3", "ls", "--recursive", "s3://awscli2")
    assert "tree/sub/c d.txt" in listing and "big.bin" in listing

    aws(jay, tmp_path, "s3", "cp", "s3://awscli2/big.bin", str(tmp_path / "back.bin"))
    assert (tmp_path / "back.bin").read_bytes() == big.read_bytes()
    aws(jay, tmp_path, "s3", "rm", "--recursive", "s3://awscli2")
    aws(jay, tmp_path, "s3", "rb", "s3://awscli2")
    assert "awscli2" not in aws(jay, tmp_path, "s3", "ls")
