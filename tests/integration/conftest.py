from __future__ import annotations

import http.client
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from tests.integration.jayproc import CLEAN_EXIT, JayProcess

SEED_ACCOUNT = "seed-account"
SEED_TOKEN_ID = "seed-token-0001"
SEED_SECRET = "seed-secret-" + "x" * 40


def s3_client(
    jay: JayProcess, token_id: str = SEED_TOKEN_ID, secret: str = SEED_SECRET, **config: object
):
    return boto3.client(
        "s3",
        endpoint_url=jay.s3_url,
        aws_access_key_id=token_id,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        config=BotoConfig(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, **config),
    )


@pytest.fixture(scope="module")
def jay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JayProcess]:
    workdir: Path = tmp_path_factory.mktemp("jay")
    proc = JayProcess(
        workdir,
        {
            "seed_token": {"account": SEED_ACCOUNT, "id": SEED_TOKEN_ID, "secret": SEED_SECRET},
            "min_part_size": 5 * 1024 * 1024,
            "read_verify_rate": 1.0,
        },
    ).start()
    yield proc
    assert proc.stop() in CLEAN_EXIT, proc.log_text()[-5000:]


@pytest.fixture(scope="module")
def server_log_is_clean(jay: JayProcess) -> Iterator[None]:
    """No request in the module may end in an unexpected server-side failure (modules opt in
    with ``pytestmark = pytest.mark.usefixtures("server_log_is_clean")``)."""
    yield
    log = jay.log_text()
    assert "Unexpected error" not in log and "Traceback" not in log, log[-5000:]


@pytest.fixture
def s3(jay: JayProcess):
    return s3_client(jay)


def raw_request(
    url: str, method: str = "GET", body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One request with exactly the headers given (urllib would add a Content-Type)."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        target = parts.path + ("?" + parts.query if parts.query else "")
        conn.request(method, target, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def code_of(err: pytest.ExceptionInfo[ClientError]) -> str:
    return str(err.value.response["Error"]["Code"])


def status_of(err: pytest.ExceptionInfo[ClientError]) -> int:
    return int(err.value.response["ResponseMetadata"]["HTTPStatusCode"])
