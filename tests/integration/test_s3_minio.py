"""minio-py against a real jay process: a second SDK with its own signer and request shapes."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from datetime import timedelta

import pytest

from tests.integration.conftest import SEED_SECRET, SEED_TOKEN_ID
from tests.integration.jayproc import JayProcess

minio = pytest.importorskip("minio")
from minio.commonconfig import CopySource  # noqa: E402
from minio.deleteobjects import DeleteObject  # noqa: E402
from minio.error import S3Error  # noqa: E402

MiB = 1024 * 1024


pytestmark = pytest.mark.usefixtures("server_log_is_clean")


@pytest.fixture
def client(jay: JayProcess) -> Iterator[minio.Minio]:
    yield minio.Minio(
        f"127.0.0.1:{jay.s3_port}",
        access_key=SEED_TOKEN_ID,
        secret_key=SEED_SECRET,
        secure=False,
        region="us-east-1",
    )


def pattern(size: int, seed: int) -> bytes:
    block = hashlib.sha256(str(seed).encode()).digest() * 2048
    return (block * (size // len(block) + 1))[:size]


def test_buckets(client: minio.Minio) -> None:
    client.make_bucket("minio-buckets")
    assert client.bucket_exists("minio-buckets")
    assert not client.bucket_exists("minio-absent")
    assert "minio-buckets" in [b.name for b in client.list_buckets()]
    with pytest.raises(S3Error) as err:
        client.make_bucket("minio-buckets")
    assert err.value.code == "BucketAlreadyOwnedByYou"
    client.remove_bucket("minio-buckets")
    assert not client.bucket_exists("minio-buckets")


def test_objects_listing_and_removal(client: minio.Minio) -> None:
    client.make_bucket("minio-objects")
    for key in ("a/1", "a/2", "b", "sp ace+%ü"):
        data = key.encode()
        client.put_object(
            "minio-objects",
            key,
            io.BytesIO(data),
            len(data),
            content_type="text/plain",
            metadata={"x-amz-meta-origin": "minio"},
        )
    response = client.get_object("minio-objects", "sp ace+%ü")
    try:
        assert response.read() == "sp ace+%ü".encode()
    finally:
        response.close()
        response.release_conn()
    stat = client.stat_object("minio-objects", "a/1")
    assert stat.size == 3
    assert stat.content_type == "text/plain"
    assert stat.metadata.get("x-amz-meta-origin") == "minio"
    # minio-py yields a page's objects before its common prefixes.
    top = sorted((o.object_name, o.is_dir) for o in client.list_objects("minio-objects"))
    assert top == [("a/", True), ("b", False), ("sp ace+%ü", False)]
    deep = [
        o.object_name
        for o in client.list_objects("minio-objects", recursive=True, start_after="a/1")
    ]
    assert deep == ["a/2", "b", "sp ace+%ü"]
    errors = list(client.remove_objects("minio-objects", [DeleteObject("a/1"), DeleteObject("b")]))
    assert errors == []
    assert [o.object_name for o in client.list_objects("minio-objects", recursive=True)] == [
        "a/2",
        "sp ace+%ü",
    ]
    with pytest.raises(S3Error) as err:
        client.stat_object("minio-objects", "b")
    assert err.value.code in ("NoSuchKey", "ResponseCode404")


def test_multipart_put_range_and_copy(client: minio.Minio) -> None:
    client.make_bucket("minio-multipart")
    data = pattern(11 * MiB, 7)
    result = client.put_object("minio-multipart", "big", io.BytesIO(data), -1, part_size=5 * MiB)
    assert result.etag.endswith("-3")
    response = client.get_object("minio-multipart", "big", offset=5 * MiB - 3, length=10)
    try:
        assert response.read() == data[5 * MiB - 3 : 5 * MiB + 7]
    finally:
        response.close()
        response.release_conn()
    client.copy_object("minio-multipart", "copy", CopySource("minio-multipart", "big"))
    response = client.get_object("minio-multipart", "copy")
    try:
        assert hashlib.sha256(response.read()).digest() == hashlib.sha256(data).digest()
    finally:
        response.close()
        response.release_conn()


def test_presigned_get(client: minio.Minio) -> None:
    import urllib.request

    client.make_bucket("minio-presign")
    client.put_object("minio-presign", "p", io.BytesIO(b"presigned by minio"), 18)
    url = client.presigned_get_object("minio-presign", "p", expires=timedelta(minutes=5))
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.read() == b"presigned by minio"
