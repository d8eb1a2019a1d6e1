"""boto3 over HTTPS: where botocore sends aws-chunked bodies with checksum trailers by default."""

from __future__ import annotations

import base64
import datetime
import hashlib
import io
import ipaddress
import json
import ssl
import urllib.request
import zlib
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.config import Config as BotoConfig
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.integration.conftest import SEED_ACCOUNT, SEED_SECRET, SEED_TOKEN_ID
from tests.integration.jayproc import CLEAN_EXIT, JayProcess, wait_until

MiB = 1024 * 1024


@pytest.fixture(scope="module", autouse=True)
def server_log_is_clean(tls_jay) -> Iterator[None]:
    """No request in this module may end in an unexpected server-side failure."""
    yield
    log = tls_jay.log_text()
    assert "Unexpected error" not in log and "Traceback" not in log, log[-5000:]


def write_self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class TLSJayProcess(JayProcess):
    """Both HTTP listeners speak TLS, so readiness is polled over HTTPS."""

    def __init__(self, workdir: Path, cert: Path, key: Path, settings: dict[str, object]) -> None:
        super().__init__(workdir, {**settings, "tls_cert": str(cert), "tls_key": str(key)})
        self.cafile = cert

    @property
    def s3_url(self) -> str:
        return f"https://127.0.0.1:{self.s3_port}"

    @property
    def admin_url(self) -> str:
        return f"https://127.0.0.1:{self.admin_port}"

    def wait_ready(self, timeout: float = 30.0) -> None:
        context = ssl.create_default_context(cafile=str(self.cafile))

        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"jay exited with {self.proc.returncode}:\n{self.log_text()}")
            try:
                with urllib.request.urlopen(
                    self.admin_url + "/health/ready", timeout=5, context=context
                ) as resp:
                    return resp.status == 200 and json.loads(resp.read()) == {"status": "ready"}
            except OSError:
                return False

        wait_until(ready, timeout=timeout)


@pytest.fixture(scope="module")
def tls_jay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TLSJayProcess]:
    workdir = tmp_path_factory.mktemp("jay-tls")
    cert, key = write_self_signed(workdir)
    proc = TLSJayProcess(
        workdir,
        cert,
        key,
        {
            "seed_token": {"account": SEED_ACCOUNT, "id": SEED_TOKEN_ID, "secret": SEED_SECRET},
            "min_part_size": 5 * MiB,
            "read_verify_rate": 1.0,
        },
    ).start()
    yield proc
    assert proc.stop() in CLEAN_EXIT, proc.log_text()[-5000:]


@pytest.fixture(scope="module")
def s3s(tls_jay: TLSJayProcess):
    client = boto3.client(
        "s3",
        endpoint_url=tls_jay.s3_url,
        aws_access_key_id=SEED_TOKEN_ID,
        aws_secret_access_key=SEED_SECRET,
        region_name="us-east-1",
        verify=str(tls_jay.cafile),
        config=BotoConfig(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )
    client.create_bucket(Bucket="tls-bucket")
    return client


def capture_payload_modes(client) -> list[str]:
    seen: list[str] = []

    def record(request, **kwargs) -> None:
        seen.append(str(request.headers.get("x-amz-content-sha256", b""), "ascii", "replace"))

    client.meta.events.register("before-send.s3.PutObject", record)
    client.meta.events.register("before-send.s3.UploadPart", record)
    return seen


def test_default_put_over_https_is_aws_chunked_with_crc32_trailer(s3s) -> None:
    seen = capture_payload_modes(s3s)
    body = b"hello over tls"
    # A file-like body is streamed, so botocore frames it as aws-chunked with a trailer.
    put = s3s.put_object(Bucket="tls-bucket", Key="default", Body=io.BytesIO(body))
    assert seen and seen[-1] == "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
    crc = base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode()
    assert put["ChecksumCRC32"] == crc
    got = s3s.get_object(Bucket="tls-bucket", Key="default", ChecksumMode="ENABLED")
    assert got["Body"].read() == body  # no chunk framing stored
    assert got["ChecksumCRC32"] == crc
    assert got["ContentLength"] == len(body)
    assert "ContentEncoding" not in got


@pytest.mark.parametrize("algorithm", ["CRC32", "CRC32C", "SHA1", "SHA256", "CRC64NVME"])
def test_checksum_algorithms_over_https(s3s, algorithm: str) -> None:
    body = bytes(range(256)) * 300
    put = s3s.put_object(
        Bucket="tls-bucket",
        Key=f"alg-{algorithm}",
        Body=io.BytesIO(body),
        ChecksumAlgorithm=algorithm,
    )
    got = s3s.get_object(Bucket="tls-bucket", Key=f"alg-{algorithm}", ChecksumMode="ENABLED")
    assert got["Body"].read() == body
    assert got[f"Checksum{algorithm}"] == put[f"Checksum{algorithm}"]
    if algorithm == "SHA256":
        assert put["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(body).digest()).decode()


def test_multipart_upload_over_https(s3s, tmp_path: Path) -> None:
    seen = capture_payload_modes(s3s)
    data = (hashlib.sha256(b"tls").digest() * 2048) * 192  # 12 MiB
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    config = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB)
    s3s.upload_file(str(src), "tls-bucket", "big.bin", Config=config)
    assert seen.count("STREAMING-UNSIGNED-PAYLOAD-TRAILER") >= 3
    dst = tmp_path / "back.bin"
    s3s.download_file("tls-bucket", "big.bin", str(dst), Config=config)
    assert dst.read_bytes() == data
    assert s3s.head_object(Bucket="tls-bucket", Key="big.bin")["ETag"].endswith('-3"')


def test_secure_transport_condition_holds_over_https(s3s, tls_jay: TLSJayProcess) -> None:
    """aws:SecureTransport is true on jay's TLS listener (plain HTTP: test_s3_policy_conditions)."""
    s3s.create_bucket(Bucket="tls-policy")
    s3s.put_object(Bucket="tls-policy", Key="k", Body=b"secret")
    statement = {
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::tls-policy/*",
    }
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            dict(statement, Effect="Deny", Condition={"Bool": {"aws:SecureTransport": "false"}}),
            dict(statement, Effect="Allow", Condition={"Bool": {"aws:SecureTransport": True}}),
        ],
    }
    s3s.put_bucket_policy(Bucket="tls-policy", Policy=json.dumps(policy))
    assert s3s.get_object(Bucket="tls-policy", Key="k")["Body"].read() == b"secret"
    context = ssl.create_default_context(cafile=str(tls_jay.cafile))
    with urllib.request.urlopen(f"{tls_jay.s3_url}/tls-policy/k", context=context) as resp:
        assert resp.read() == b"secret"  # anonymous, allowed only over TLS
