"""jay-rekey against a real jay (JAY_SPEC §4.5): refused while the server runs; after a signing
secret change plus rekey, the same token secret still signs SigV4 requests."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import botocore.exceptions
import pytest

from tests.integration.conftest import SEED_ACCOUNT, SEED_SECRET, SEED_TOKEN_ID, s3_client
from tests.integration.jayproc import BIN, CLEAN_EXIT, JayProcess

NEW_SECRET = "brand-new-signing-secret-" + "n" * 20


def _rekey(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("JAY_")}
    base.update(env or {})
    return subprocess.run(
        [str(BIN / "jay-rekey"), *argv],
        capture_output=True,
        text=True,
        env=base,
        timeout=60,
        check=False,
    )


def test_rekey_keeps_sigv4_working_after_a_secret_change(tmp_path: Path) -> None:
    jay = JayProcess(
        tmp_path,
        {"seed_token": {"account": SEED_ACCOUNT, "id": SEED_TOKEN_ID, "secret": SEED_SECRET}},
    )
    old_secret = jay.signing_secret
    data_dir = str(tmp_path / "data")
    jay.start()
    try:
        s3 = s3_client(jay)
        s3.create_bucket(Bucket="keep")
        s3.put_object(Bucket="keep", Key="k", Body=b"before the rekey")
        # The running server holds the database: the tool refuses to touch it.
        busy = _rekey("-data-dir", data_dir, "-old-secret", old_secret, "-new-secret", NEW_SECRET)
        assert busy.returncode == 1
        assert busy.stderr.startswith("jay-rekey: ") and "locked" in busy.stderr
    finally:
        assert jay.stop() in CLEAN_EXIT

    # A new secret without rekey: the stored secret no longer decrypts, SigV4 fails.
    jay.settings["signing_secret"] = NEW_SECRET
    jay.start()
    try:
        with pytest.raises(botocore.exceptions.ClientError):
            s3_client(jay).get_object(Bucket="keep", Key="k")
    finally:
        assert jay.stop() in CLEAN_EXIT

    done = _rekey(
        "-data-dir",
        data_dir,
        env={"JAY_OLD_SIGNING_SECRET": old_secret, "JAY_SIGNING_SECRET": NEW_SECRET},
    )
    assert (done.returncode, done.stdout, done.stderr) == (
        0,
        "Rekeyed 1 token(s) successfully.\n",
        "",
    )
    again = _rekey(
        "--db", f"{data_dir}/meta/jay.db", "--old-secret", old_secret, "--new-secret", NEW_SECRET
    )
    assert again.returncode == 1 and "does not decrypt" in again.stderr

    jay.start()
    try:
        s3 = s3_client(jay)
        assert s3.get_object(Bucket="keep", Key="k")["Body"].read() == b"before the rekey"
        s3.put_object(Bucket="keep", Key="k2", Body=b"after")
        assert s3.get_object(Bucket="keep", Key="k2")["Body"].read() == b"after"
    finally:
        assert jay.stop() in CLEAN_EXIT
