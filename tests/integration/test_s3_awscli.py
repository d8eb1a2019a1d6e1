"""The AWS CLI (v1, from the virtualenv) against a real jay process, run as a subprocess."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import SEED_SECRET, SEED_TOKEN_ID
from tests.integration.jayproc import BIN, JayProcess

MiB = 1024 * 1024
AWS = BIN / "aws"


pytestmark = [
    pytest.mark.skipif(not AWS.exists(), reason="awscli is not installed in the venv"),
    pytest.mark.usefixtures("server_log_is_clean"),
]


def pattern(size: int, seed: int) -> bytes:
    block = hashlib.sha256(str(seed).encode()).digest() * 2048
    return (block * (size // len(block) + 1))[:size]


def aws(
    jay: JayProcess, tmp_path: Path, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID=SEED_TOKEN_ID,
        AWS_SECRET_ACCESS_KEY=SEED_SECRET,
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=str(tmp_path / "no-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-credentials"),
        AWS_MAX_ATTEMPTS="1",
    )
    result = subprocess.run(
        [str(AWS), "--endpoint-url", jay.s3_url, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    if check:
        assert result.returncode == 0, f"aws {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result


def test_bucket_and_small_files(jay: JayProcess, tmp_path: Path) -> None:
    aws(jay, tmp_path, "s3", "mb", "s3://cli-basic")
    assert "cli-basic" in aws(jay, tmp_path, "s3", "ls").stdout
    src = tmp_path / "hello.txt"
    src.write_bytes(b"hello from the cli\n")
    aws(jay, tmp_path, "s3", "cp", str(src), "s3://cli-basic/docs/hello.txt")
    listing = aws(jay, tmp_path, "s3", "ls", "s3://cli-basic/docs/").stdout
    assert "hello.txt" in listing and " 19 " in listing
    out = tmp_path / "back.txt"
    aws(jay, tmp_path, "s3", "cp", "s3://cli-basic/docs/hello.txt", str(out))
    assert out.read_bytes() == src.read_bytes()
    result = aws(jay, tmp_path, "s3", "rb", "s3://cli-basic", check=False)
    assert result.returncode != 0 and "BucketNotEmpty" in result.stderr
    aws(jay, tmp_path, "s3", "rb", "s3://cli-basic", "--force")
    assert "cli-basic" not in aws(jay, tmp_path, "s3", "ls").stdout


def test_recursive_copy_sync_and_remove(jay: JayProcess, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    files = {
        "a.txt": b"alpha",
        "sub/b.bin": pattern(70_000, 1),
        "sub/deeper/c with space.txt": b"gamma",
        "sub/plus+sign%.txt": b"delta",
    }
    for name, data in files.items():
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_bytes(data)
    aws(jay, tmp_path, "s3", "mb", "s3://cli-tree")
    aws(jay, tmp_path, "s3", "cp", str(tree), "s3://cli-tree/cp/", "--recursive")
    listing = aws(jay, tmp_path, "s3", "ls", "s3://cli-tree/cp/", "--recursive").stdout
    for name in files:
        assert f"cp/{name}" in listing
    first = aws(jay, tmp_path, "s3", "sync", str(tree), "s3://cli-tree/sync/")
    assert first.stdout.count("upload:") == len(files)
    second = aws(jay, tmp_path, "s3", "sync", str(tree), "s3://cli-tree/sync/")
    assert "upload:" not in second.stdout
    down = tmp_path / "down"
    aws(jay, tmp_path, "s3", "sync", "s3://cli-tree/sync/", str(down))
    for name, data in files.items():
        assert (down / name).read_bytes() == data
    (tree / "a.txt").unlink()
    third = aws(jay, tmp_path, "s3", "sync", str(tree), "s3://cli-tree/sync/", "--delete")
    assert "delete: s3://cli-tree/sync/a.txt" in third.stdout
    aws(jay, tmp_path, "s3", "rm", "s3://cli-tree/", "--recursive")
    assert aws(jay, tmp_path, "s3", "ls", "s3://cli-tree/", "--recursive").stdout.strip() == ""
    aws(jay, tmp_path, "s3", "rb", "s3://cli-tree")


def test_multipart_upload_and_server_side_copy(jay: JayProcess, tmp_path: Path) -> None:
    data = pattern(20 * MiB, 2)
    big = tmp_path / "big.bin"
    big.write_bytes(data)
    aws(jay, tmp_path, "s3", "mb", "s3://cli-big")
    aws(jay, tmp_path, "s3", "cp", str(big), "s3://cli-big/big.bin")
    head = aws(
        jay, tmp_path, "s3api", "head-object", "--bucket", "cli-big", "--key", "big.bin"
    ).stdout
    assert f'"ContentLength": {len(data)}' in head
    assert '-3\\""' in head  # 8 MiB parts: a three-part multipart ETag
    # s3 -> s3 of a multipart-sized object goes through UploadPartCopy.
    aws(jay, tmp_path, "s3", "cp", "s3://cli-big/big.bin", "s3://cli-big/copy.bin")
    assert jay.log_text().count("op=UploadPartCopy") >= 3
    out = tmp_path / "copy.bin"
    aws(jay, tmp_path, "s3", "cp", "s3://cli-big/copy.bin", str(out))
    assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(data).digest()
    # Streaming from stdin with --expected-size also takes the multipart path.
    env_input = subprocess.run(
        [
            str(AWS),
            "--endpoint-url",
            jay.s3_url,
            "s3",
            "cp",
            "-",
            "s3://cli-big/stdin.bin",
            "--expected-size",
            str(len(data)),
        ],
        input=data,
        capture_output=True,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
            "AWS_ACCESS_KEY_ID": SEED_TOKEN_ID,
            "AWS_SECRET_ACCESS_KEY": SEED_SECRET,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        },
        timeout=120,
    )
    assert env_input.returncode == 0, env_input.stderr
    head = aws(
        jay, tmp_path, "s3api", "head-object", "--bucket", "cli-big", "--key", "stdin.bin"
    ).stdout
    assert f'"ContentLength": {len(data)}' in head
    aws(jay, tmp_path, "s3", "rb", "s3://cli-big", "--force")


def test_errors_are_reported(jay: JayProcess, tmp_path: Path) -> None:
    result = aws(jay, tmp_path, "s3", "ls", "s3://cli-no-such-bucket", check=False)
    assert result.returncode != 0 and "NoSuchBucket" in result.stderr
    result = aws(
        jay,
        tmp_path,
        "s3api",
        "get-object",
        "--bucket",
        "cli-no-such-bucket",
        "--key",
        "k",
        str(tmp_path / "o"),
        check=False,
    )
    assert result.returncode != 0 and "NoSuchBucket" in result.stderr


def test_sse_c_and_sse_s3_copies_multipart_included(jay: JayProcess, tmp_path: Path) -> None:
    """The README's examples: ``--sse AES256`` and ``--sse-c`` with a key file, through the
    CLI's multipart path (above 8 MiB) and back."""
    aws(jay, tmp_path, "s3", "mb", "s3://cli-sse")
    key = tmp_path / "my.key"
    key.write_bytes(os.urandom(32))
    big = tmp_path / "big.bin"
    big.write_bytes(pattern(9 * MiB + 5, 7))
    sse_c = ["--sse-c", "AES256", "--sse-c-key", f"fileb://{key}"]
    aws(jay, tmp_path, "s3", "cp", str(big), "s3://cli-sse/c.bin", *sse_c)
    aws(jay, tmp_path, "s3", "cp", str(big), "s3://cli-sse/s.bin", "--sse", "AES256")
    refused = aws(jay, tmp_path, "s3", "cp", "s3://cli-sse/c.bin", "x.bin", check=False)
    assert refused.returncode != 0 and not (tmp_path / "x.bin").exists()
    aws(jay, tmp_path, "s3", "cp", "s3://cli-sse/c.bin", "c.bin", *sse_c)
    aws(jay, tmp_path, "s3", "cp", "s3://cli-sse/s.bin", "s.bin")
    assert (tmp_path / "c.bin").read_bytes() == big.read_bytes()
    assert (tmp_path / "s.bin").read_bytes() == big.read_bytes()
    head = aws(jay, tmp_path, "s3api", "head-object", "--bucket", "cli-sse", "--key", "s.bin")
    assert '"ServerSideEncryption": "AES256"' in head.stdout
    aws(
        jay,
        tmp_path,
        "s3api",
        "put-bucket-encryption",
        "--bucket",
        "cli-sse",
        "--server-side-encryption-configuration",
        '{"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]}',
    )
    got = aws(jay, tmp_path, "s3api", "get-bucket-encryption", "--bucket", "cli-sse")
    assert '"SSEAlgorithm": "AES256"' in got.stdout
