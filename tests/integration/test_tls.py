"""TLS on the S3 and admin ports (JAY_SPEC §5.5): a real jay with a certificate from a test CA
answers https health and boto3 over https; unusable certificate files stop startup at once
(the §5.5 gap: upstream binds the port and only logs)."""

from __future__ import annotations

import datetime
import http.client
import ipaddress
import json
import os
import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import pytest_twisted
import yaml
from botocore.config import Config as BotoConfig
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.integration.conftest import SEED_ACCOUNT, SEED_SECRET, SEED_TOKEN_ID
from tests.integration.jayproc import BIN, CLEAN_EXIT, JayProcess, wait_until


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_ca_and_server_cert(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 and localhost it signed: (ca, cert, key)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("jay test CA"))
        .issuer_name(_name("jay test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, cert_path, key_path = (
        directory / "ca.pem",
        directory / "cert.pem",
        directory / "key.pem",
    )
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return ca_path, cert_path, key_path


def https_get(url: str, ca: Path) -> tuple[int, bytes]:
    context = ssl.create_default_context(cafile=str(ca))
    try:
        with urllib.request.urlopen(url, timeout=10, context=context) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@pytest.fixture(scope="module")
def tls_jay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[JayProcess, Path]]:
    workdir = tmp_path_factory.mktemp("jay-tls")
    ca, cert, key = make_ca_and_server_cert(workdir)
    jay = JayProcess(
        workdir,
        {
            "tls_cert": str(cert),
            "tls_key": str(key),
            "native_tls": True,
            "seed_token": {"account": SEED_ACCOUNT, "id": SEED_TOKEN_ID, "secret": SEED_SECRET},
        },
    ).start(wait=False)

    def ready() -> bool:
        assert jay.proc is not None
        if jay.proc.poll() is not None:
            raise RuntimeError(f"jay exited with {jay.proc.returncode}:\n{jay.log_text()}")
        try:
            status, body = https_get(f"https://127.0.0.1:{jay.admin_port}/health/ready", ca)
        except OSError:
            return False
        return status == 200 and json.loads(body) == {"status": "ready"}

    try:
        wait_until(ready, timeout=30)
        yield jay, ca
    finally:
        assert jay.stop() in CLEAN_EXIT, jay.log_text()[-5000:]


def test_admin_port_serves_health_over_https(tls_jay: tuple[JayProcess, Path]) -> None:
    jay, ca = tls_jay
    base = f"https://127.0.0.1:{jay.admin_port}"
    assert https_get(base + "/health/live", ca) == (200, b'{"status":"alive"}\n')
    assert https_get(base + "/health/ready", ca) == (200, b'{"status":"ready"}\n')
    # Plain HTTP to a TLS port gets no HTTP answer, and a client without the CA refuses it.
    with pytest.raises((OSError, http.client.HTTPException)):
        urllib.request.urlopen(f"http://127.0.0.1:{jay.admin_port}/health/live", timeout=10)
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        urllib.request.urlopen(
            base + "/health/live", timeout=10, context=ssl.create_default_context()
        )


def test_boto3_over_https_put_and_get(tls_jay: tuple[JayProcess, Path]) -> None:
    jay, ca = tls_jay
    s3 = boto3.client(
        "s3",
        endpoint_url=f"https://127.0.0.1:{jay.s3_port}",
        aws_access_key_id=SEED_TOKEN_ID,
        aws_secret_access_key=SEED_SECRET,
        region_name="us-east-1",
        verify=str(ca),
        config=BotoConfig(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )
    s3.create_bucket(Bucket="tls-bucket")
    body = os.urandom(300_000)
    s3.put_object(Bucket="tls-bucket", Key="dir/object.bin", Body=body)
    got = s3.get_object(Bucket="tls-bucket", Key="dir/object.bin")
    assert got["Body"].read() == body
    assert got["ContentLength"] == len(body)


def _start_expecting_failure(
    tmp_path: Path, cert: Path, key: Path
) -> subprocess.CompletedProcess[str]:
    jay = JayProcess(tmp_path, {"tls_cert": str(cert), "tls_key": str(key)})
    jay.config_path.write_text(yaml.safe_dump(jay.settings))
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAY_")}
    return subprocess.run(
        [str(BIN / "twistd"), "-n", "--pidfile=", "jay", "--config", str(jay.config_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("problem", ["missing-cert", "garbage-cert", "wrong-key", "empty-key"])
def test_unusable_certificate_stops_startup(tmp_path: Path, problem: str) -> None:
    _, cert, key = make_ca_and_server_cert(tmp_path)
    if problem == "missing-cert":
        cert = tmp_path / "nope.pem"
    elif problem == "garbage-cert":
        cert.write_text(
            "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n"
        )
    elif problem == "wrong-key":
        other = tmp_path / "other"
        other.mkdir()
        _, _, key = make_ca_and_server_cert(other)
    else:
        key.write_bytes(b"")
    result = _start_expecting_failure(tmp_path, cert, key)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "tls_cert/tls_key" in output, output
    assert "Traceback" not in output, output
    if problem == "missing-cert":
        assert "nope.pem" in output
    # Startup stopped before storage opened: no database was created.
    assert not (tmp_path / "data" / "meta" / "jay.db").exists()


def test_jay_admin_trusts_the_given_ca(tls_jay: tuple[JayProcess, Path]) -> None:
    jay, ca = tls_jay
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAY_")}
    base = [
        str(BIN / "jay-admin"),
        "-addr",
        f"https://127.0.0.1:{jay.admin_port}",
        "-token",
        jay.admin_token,
    ]
    untrusted = subprocess.run(
        [*base, "version"], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert untrusted.returncode == 1
    assert "cannot reach the admin API" in untrusted.stderr
    assert "certificate verify failed" in untrusted.stderr.lower()
    trusted = subprocess.run(
        [*base[:1], "-cacert", str(ca), *base[1:], "version"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    # The TLS handshake succeeded: whatever the answer, it came over HTTP from jay.
    assert "cannot reach" not in trusted.stderr, trusted.stderr
    if trusted.returncode == 0:
        assert trusted.stdout.startswith("client ")
    else:
        assert trusted.stderr.startswith("Error: server error (")


@pytest_twisted.ensureDeferred
async def test_native_protocol_over_tls(tls_jay: tuple[JayProcess, Path]) -> None:
    """native_tls: the v1 framing inside TLS, with the HTTP certificate; the client verifies it."""
    from twisted.internet import reactor

    from jay.client import connect

    jay, ca = tls_jay
    roots = ca.parent / "native-roots"
    roots.mkdir(exist_ok=True)
    (roots / "ca.pem").write_bytes(ca.read_bytes())
    endpoint = f"tls:host=127.0.0.1:port={jay.native_port}:trustRoots={roots}"
    client = await connect(endpoint, SEED_TOKEN_ID, SEED_SECRET, reactor=reactor)
    try:
        await client.create_bucket("native-tls")
        await client.put_object("native-tls", "k", b"over tls")
        result = await client.get_object("native-tls", "k")
        assert result.data == b"over tls"
    finally:
        await client.close()
    # A plain-TCP client cannot speak to the TLS port.
    from jay.client import NativeConnectionError

    with pytest.raises(NativeConnectionError):
        await connect(f"127.0.0.1:{jay.native_port}", SEED_TOKEN_ID, SEED_SECRET, reactor=reactor)
