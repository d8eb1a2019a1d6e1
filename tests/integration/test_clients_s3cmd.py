"""s3cmd against a real jay process, with SigV4 and with SigV2 header auth
(``signature_v2 = True``). Skipped when ``s3cmd`` is neither in the virtualenv nor on PATH.

The config forces path-style requests: host_bucket has no ``%(bucket)s``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import SEED_SECRET, SEED_TOKEN_ID, raw_request
from tests.integration.jayproc import BIN, JayProcess

MiB = 1024 * 1024
S3CMD = str(BIN / "s3cmd") if (BIN / "s3cmd").exists() else shutil.which("s3cmd")


pytestmark = [
    pytest.mark.skipif(S3CMD is None, reason="s3cmd is not installed"),
    pytest.mark.usefixtures("server_log_is_clean"),
]


def pattern(size: int, seed: int) -> bytes:
    block = hashlib.sha256(str(seed).encode()).digest() * 2048
    return (block * (size // len(block) + 1))[:size]


class S3cmd:
    def __init__(self, jay: JayProcess, workdir: Path, *, signature_v2: bool) -> None:
        self.workdir = workdir
        self.config = workdir / ("s3cfg-v2" if signature_v2 else "s3cfg-v4")
        host = f"127.0.0.1:{jay.s3_port}"
        self.config.write_text(
            "[default]\n"
            f"access_key = {SEED_TOKEN_ID}\n"
            f"secret_key = {SEED_SECRET}\n"
            f"host_base = {host}\n"
            f"host_bucket = {host}\n"
            "use_https = False\n"
            f"signature_v2 = {signature_v2}\n"
            "bucket_location = us-east-1\n"
            "max_retries = 1\n"
        )

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        assert S3CMD is not None
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env["HOME"] = str(self.workdir)
        result = subprocess.run(
            [S3CMD, "-c", str(self.config), "--no-progress", *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=self.workdir,
            timeout=120,
        )
        if check:
            assert result.returncode == 0, (
                f"s3cmd {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
            )
        return result


@pytest.fixture(params=[False, True], ids=["sigv4", "sigv2"])
def s3cmd(request: pytest.FixtureRequest, jay: JayProcess, tmp_path: Path) -> S3cmd:
    return S3cmd(jay, tmp_path, signature_v2=request.param)


def test_bucket_object_lifecycle(s3cmd: S3cmd, jay: JayProcess, tmp_path: Path) -> None:
    bucket = "s3cmd-v2" if s3cmd.config.name.endswith("v2") else "s3cmd-v4"
    s3cmd("mb", f"s3://{bucket}")
    assert f"s3://{bucket}" in s3cmd("ls").stdout

    small = tmp_path / "small.txt"
    small.write_bytes(b"hello s3cmd\n")
    big = tmp_path / "big.bin"
    big.write_bytes(pattern(12 * MiB + 7, 1))
    s3cmd("put", str(small), f"s3://{bucket}/dir/small.txt")
    uploads_before = jay.log_text().count("op=UploadPart\n")
    s3cmd("put", "--multipart-chunk-size-mb=5", str(big), f"s3://{bucket}/big.bin")
    assert jay.log_text().count("op=UploadPart\n") - uploads_before == 3

    listing = s3cmd("ls", "-r", f"s3://{bucket}").stdout
    assert f"s3://{bucket}/dir/small.txt" in listing and f"s3://{bucket}/big.bin" in listing
    top = s3cmd("ls", f"s3://{bucket}").stdout
    assert f"DIR  s3://{bucket}/dir/" in top
    assert f"s3://{bucket}" in s3cmd("la").stdout

    for name, local in (("dir/small.txt", small), ("big.bin", big)):
        out = tmp_path / ("got-" + local.name)
        s3cmd("get", "--force", f"s3://{bucket}/{name}", str(out))
        assert out.read_bytes() == local.read_bytes()

    info = s3cmd("info", f"s3://{bucket}/dir/small.txt").stdout
    assert "File size: 12" in info
    assert hashlib.md5(small.read_bytes()).hexdigest() in info
    assert "Location:" in s3cmd("info", f"s3://{bucket}").stdout
    du = s3cmd("du", f"s3://{bucket}").stdout
    assert str(12 * MiB + 7 + 12) in du

    # ACLs, CORS and lifecycle as s3cmd manages them; `info` reads them all back.
    public_url = f"{jay.s3_url}/{bucket}/dir/small.txt"
    assert raw_request(public_url)[0] == 403
    s3cmd("setacl", "--acl-public", f"s3://{bucket}/dir/small.txt")
    assert raw_request(public_url)[:3:2] == (200, small.read_bytes())
    cors = tmp_path / "cors.xml"
    cors.write_text(
        "<CORSConfiguration><CORSRule><AllowedOrigin>https://app.example</AllowedOrigin>"
        "<AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>"
    )
    s3cmd("setcors", str(cors), f"s3://{bucket}")
    s3cmd("expire", "--expiry-days", "30", f"s3://{bucket}")
    info = s3cmd("info", f"s3://{bucket}/dir/small.txt").stdout
    assert "*anon*: READ" in info and "https://app.example" in info
    assert "expire in '30' day(s)" in s3cmd("info", f"s3://{bucket}").stdout
    s3cmd("setacl", "--acl-private", f"s3://{bucket}/dir/small.txt")
    assert raw_request(public_url)[0] == 403
    s3cmd("dellifecycle", f"s3://{bucket}")
    s3cmd("delcors", f"s3://{bucket}")
    info = s3cmd("info", f"s3://{bucket}").stdout
    assert "Expiration Rule: none" in info and "CORS:      none" in info

    s3cmd("del", f"s3://{bucket}/dir/small.txt")
    missing = s3cmd("get", f"s3://{bucket}/dir/small.txt", str(tmp_path / "x"), check=False)
    assert missing.returncode != 0 and "does not exist" in missing.stderr
    not_empty = s3cmd("rb", f"s3://{bucket}", check=False)
    assert "BucketNotEmpty" in not_empty.stderr
    s3cmd("del", "--recursive", "--force", f"s3://{bucket}")
    s3cmd("rb", f"s3://{bucket}")
    assert f"s3://{bucket}" not in s3cmd("ls").stdout
    absent = s3cmd("ls", f"s3://{bucket}", check=False)
    assert absent.returncode != 0 and "NoSuchBucket" in absent.stderr


def test_sync(s3cmd: S3cmd, tmp_path: Path) -> None:
    bucket = "s3cmd-sync-v2" if s3cmd.config.name.endswith("v2") else "s3cmd-sync-v4"
    src = tmp_path / "src"
    for name, data in {
        "a.txt": b"a",
        "sub/b.txt": b"bb",
        "sub/deeper/c.bin": pattern(100_000, 2),
        "space name.txt": b"s",
    }.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes(data)
    s3cmd("mb", f"s3://{bucket}")
    first = s3cmd("sync", f"{src}/", f"s3://{bucket}/tree/")
    assert first.stdout.count("upload:") == 4, first.stdout
    second = s3cmd("sync", f"{src}/", f"s3://{bucket}/tree/")
    assert "upload:" not in second.stdout, second.stdout

    (src / "a.txt").write_bytes(b"changed")
    (src / "sub" / "b.txt").unlink()
    third = s3cmd("sync", "--delete-removed", f"{src}/", f"s3://{bucket}/tree/")
    assert "upload:" in third.stdout and "a.txt" in third.stdout
    assert "delete:" in third.stdout and "b.txt" in third.stdout

    back = tmp_path / "back"
    s3cmd("sync", f"s3://{bucket}/tree/", f"{back}/")
    got = {p.relative_to(back).as_posix() for p in back.rglob("*") if p.is_file()}
    assert got == {"a.txt", "sub/deeper/c.bin", "space name.txt"}
    assert (back / "a.txt").read_bytes() == b"changed"

    s3cmd("del", "--recursive", "--force", f"s3://{bucket}")
    s3cmd("rb", f"s3://{bucket}")
