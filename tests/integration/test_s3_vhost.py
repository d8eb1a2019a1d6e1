"""Virtual-host style addressing: <bucket>.<domain> when ``domain`` is configured."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest

from tests.integration.conftest import SEED_ACCOUNT, SEED_SECRET, SEED_TOKEN_ID, s3_client
from tests.integration.jayproc import CLEAN_EXIT, JayProcess

AUTH = {"Authorization": f"Bearer {SEED_TOKEN_ID}:{SEED_SECRET}"}


@pytest.fixture(scope="module")
def jay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JayProcess]:
    proc = JayProcess(
        tmp_path_factory.mktemp("vhost"),
        {
            "seed_token": {"account": SEED_ACCOUNT, "id": SEED_TOKEN_ID, "secret": SEED_SECRET},
            "domain": "s3.jay.test",
        },
    ).start()
    yield proc
    assert proc.stop() in CLEAN_EXIT


def _request(
    jay: JayProcess, method: str, host: str, path: str, body: bytes = b""
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", jay.s3_port, timeout=10)
    conn.request(method, path, body=body, headers={**AUTH, "Host": host})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, data


def test_virtual_host_and_path_style_reach_the_same_object(jay: JayProcess) -> None:
    s3_client(jay).create_bucket(Bucket="vhosted")
    host = f"vhosted.s3.jay.test:{jay.s3_port}"
    assert _request(jay, "PUT", host, "/dir/a%20b.txt", b"via vhost")[0] == 200
    assert _request(jay, "GET", host, "/dir/a%20b.txt") == (200, b"via vhost")
    got = s3_client(jay).get_object(Bucket="vhosted", Key="dir/a b.txt")["Body"].read()
    assert got == b"via vhost"
    status, listing = _request(jay, "GET", host, "/?list-type=2")
    assert status == 200 and b"<Key>dir/a b.txt</Key>" in listing
    # A host that is not under the domain keeps path-style addressing.
    assert _request(jay, "GET", f"127.0.0.1:{jay.s3_port}", "/vhosted/dir/a%20b.txt") == (
        200,
        b"via vhost",
    )


def test_post_object_form_upload_by_virtual_host(jay: JayProcess) -> None:
    s3_client(jay).create_bucket(Bucket="formed")
    expiration = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 600))
    document = {
        "expiration": expiration,
        "conditions": [{"bucket": "formed"}, {"key": "up/a b"}, {"success_action_status": "201"}],
    }
    policy = base64.b64encode(json.dumps(document).encode()).decode()
    signature = base64.b64encode(
        hmac.new(SEED_SECRET.encode(), policy.encode(), hashlib.sha1).digest()
    ).decode()
    fields = {
        "key": "up/a b",
        "AWSAccessKeyId": SEED_TOKEN_ID,
        "policy": policy,
        "signature": signature,
        "success_action_status": "201",
    }
    body = (
        b"".join(
            f'--XyZ\r\nContent-Disposition: form-data; name="{n}"\r\n\r\n{v}\r\n'.encode()
            for n, v in fields.items()
        )
        + b'--XyZ\r\nContent-Disposition: form-data; name="file"\r\n\r\nform bytes\r\n--XyZ--\r\n'
    )
    host = f"formed.s3.jay.test:{jay.s3_port}"
    conn = http.client.HTTPConnection("127.0.0.1", jay.s3_port, timeout=10)
    conn.request(
        "POST",
        "/",
        body=body,
        headers={"Host": host, "Content-Type": "multipart/form-data; boundary=XyZ"},
    )
    resp = conn.getresponse()
    reply = resp.read()
    conn.close()
    assert resp.status == 201, reply
    assert ET.fromstring(reply).findtext("Location") == f"http://{host}/up/a%20b"
    got = s3_client(jay).get_object(Bucket="formed", Key="up/a b")["Body"].read()
    assert got == b"form bytes"
