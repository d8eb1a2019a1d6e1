"""Drive a real botocore S3 client at a frozen time and capture what it would send.

The client never reaches the network: a ``before-send`` hook records the prepared request and
raises, so the tests see exactly the method, raw path, raw query, headers and body botocore
produced and signed.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import botocore.auth
import botocore.crt.auth
import botocore.session
from botocore.config import Config

ACCESS_KEY = "tok-1"
SECRET = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
FROZEN = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
FROZEN_EPOCH = int(FROZEN.timestamp())


@dataclass(frozen=True)
class Captured:
    method: str
    raw_path: bytes
    raw_query: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes
    url: str


class _Stop(Exception):
    pass


@contextmanager
def frozen_botocore(monkeypatch: Any, when: datetime.datetime = FROZEN) -> Iterator[None]:
    # Both signer families stamp requests with get_current_datetime(): the pure-Python ones in
    # botocore.auth and the awscrt-backed ones botocore prefers when awscrt is installed.
    def now(remove_tzinfo: bool = True) -> datetime.datetime:
        return when.replace(tzinfo=None) if remove_tzinfo else when

    monkeypatch.setattr(botocore.auth, "get_current_datetime", now)
    monkeypatch.setattr(botocore.crt.auth, "get_current_datetime", now)
    yield


def split_url(url: str) -> tuple[bytes, bytes]:
    parts = urlsplit(url)
    return (parts.path or "/").encode("ascii"), parts.query.encode("ascii")


def make_client(endpoint: str = "http://localhost:9000", **config: Any) -> Any:
    session = botocore.session.get_session()
    return session.create_client(
        "s3",
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, **config),
    )


def capture(client: Any, call: Callable[[Any], Any]) -> Captured:
    seen: list[Any] = []

    def before_send(request: Any, **_: Any) -> None:
        seen.append(request)
        raise _Stop()

    client.meta.events.register("before-send.s3", before_send)
    try:
        call(client)
    except _Stop:
        pass
    finally:
        client.meta.events.unregister("before-send.s3", before_send)
    (request,) = seen
    raw_path, raw_query = split_url(request.url)
    host = urlsplit(request.url).netloc
    headers = []
    if "host" not in {name.lower() for name in request.headers}:
        headers.append((b"Host", host.encode("ascii")))
    for name, value in request.headers.items():
        v = value if isinstance(value, bytes) else value.encode("utf-8")
        headers.append((name.encode("ascii"), v))
    body = request.body
    if body is None:
        data = b""
    elif isinstance(body, bytes):
        data = body
    elif isinstance(body, str):
        data = body.encode("utf-8")
    else:
        data = body.read()
    return Captured(request.method, raw_path, raw_query, headers, data, request.url)
