"""obstore (Python bindings of the Rust ``object_store`` crate, which Polars, DataFusion and
Delta Lake read S3 through) against a real jay process: its own signer, multipart uploader,
conditional writes and presigned URLs."""

from __future__ import annotations

import hashlib
import urllib.request
from datetime import timedelta
from typing import Any

import pytest

from tests.integration.conftest import SEED_SECRET, SEED_TOKEN_ID
from tests.integration.jayproc import JayProcess

obstore = pytest.importorskip("obstore")
from obstore.store import S3Store  # noqa: E402

MiB = 1024 * 1024

pytestmark = pytest.mark.usefixtures("server_log_is_clean")


def pattern(size: int, seed: int) -> bytes:
    block = hashlib.sha256(str(seed).encode()).digest() * 2048
    return (block * (size // len(block) + 1))[:size]


def store_for(jay: JayProcess, bucket: str, **options: Any) -> S3Store:
    return S3Store(
        bucket,
        endpoint=jay.s3_url,
        access_key_id=SEED_TOKEN_ID,
        secret_access_key=SEED_SECRET,
        region="us-east-1",
        client_options={"allow_http": True},
        **options,
    )


@pytest.fixture(scope="module")
def store(jay: JayProcess) -> S3Store:
    from tests.integration.conftest import s3_client

    s3_client(jay).create_bucket(Bucket="obstore")
    return store_for(jay, "obstore")


def test_put_get_head_and_ranges(store: S3Store) -> None:
    obstore.put(store, "dir/small.txt", b"hello object_store")
    assert bytes(obstore.get(store, "dir/small.txt").bytes()) == b"hello object_store"
    data = pattern(3 * MiB + 17, 1)
    obstore.put(store, "ranged.bin", data)
    meta = obstore.head(store, "ranged.bin")
    assert meta["size"] == len(data)
    assert meta["e_tag"] == '"' + hashlib.md5(data).hexdigest() + '"'
    assert (
        bytes(obstore.get_range(store, "ranged.bin", start=MiB, end=MiB + 100))
        == (data[MiB : MiB + 100])
    )
    parts = obstore.get_ranges(store, "ranged.bin", starts=[0, 2 * MiB], ends=[10, 2 * MiB + 10])
    assert [bytes(p) for p in parts] == [data[:10], data[2 * MiB : 2 * MiB + 10]]
    streamed = b"".join(bytes(c) for c in obstore.get(store, "ranged.bin").stream(MiB))
    assert streamed == data


def test_multipart_upload(store: S3Store) -> None:
    data = pattern(12 * MiB + 5, 2)
    obstore.put(store, "multi.bin", data, chunk_size=5 * MiB, max_concurrency=3)
    meta = obstore.head(store, "multi.bin")
    assert meta["size"] == len(data)
    assert meta["e_tag"].endswith('-3"')  # three parts, an S3 multipart ETag
    assert bytes(obstore.get(store, "multi.bin").bytes()) == data


def test_attributes_and_metadata_round_trip(store: S3Store) -> None:
    obstore.put(
        store,
        "attrs.txt",
        b"attributes",
        attributes={
            "Content-Type": "text/x-jay",
            "Cache-Control": "max-age=60",
            "Content-Disposition": "inline",
            "origin": "obstore",
        },
    )
    got = obstore.get(store, "attrs.txt")
    assert got.attributes["Content-Type"] == "text/x-jay"
    assert got.attributes["Cache-Control"] == "max-age=60"
    assert got.attributes["Content-Disposition"] == "inline"
    assert got.attributes["origin"] == "obstore"  # x-amz-meta-origin


def test_listing(store: S3Store) -> None:
    for key in ("list/a/1", "list/a/2", "list/b", "list/c d+é"):
        obstore.put(store, key, key.encode())
    everything = sorted(m["path"] for m in obstore.list(store, prefix="list").collect())
    assert everything == ["list/a/1", "list/a/2", "list/b", "list/c d+é"]
    top = obstore.list_with_delimiter(store, "list")
    assert top["common_prefixes"] == ["list/a"]
    assert sorted(o["path"] for o in top["objects"]) == ["list/b", "list/c d+é"]
    paged = [m["path"] for batch in obstore.list(store, prefix="list", chunk_size=1) for m in batch]
    assert sorted(paged) == everything


def test_conditional_writes(store: S3Store) -> None:
    first = obstore.put(store, "cond.txt", b"1", mode="create")
    with pytest.raises(obstore.exceptions.AlreadyExistsError):
        obstore.put(store, "cond.txt", b"again", mode="create")
    second = obstore.put(store, "cond.txt", b"2", mode={"e_tag": first["e_tag"]})
    with pytest.raises(obstore.exceptions.PreconditionError):
        obstore.put(store, "cond.txt", b"3", mode={"e_tag": first["e_tag"]})
    assert bytes(obstore.get(store, "cond.txt").bytes()) == b"2"
    with pytest.raises(obstore.exceptions.PreconditionError):
        obstore.get(store, "cond.txt", options={"if_match": first["e_tag"]})
    assert obstore.get(store, "cond.txt", options={"if_match": second["e_tag"]}).meta["size"] == 1


def test_copy_rename_delete(jay: JayProcess, store: S3Store) -> None:
    obstore.put(store, "src.txt", b"source bytes")
    obstore.copy(store, "src.txt", "copied.txt")
    obstore.rename(store, "copied.txt", "renamed.txt")
    with pytest.raises(FileNotFoundError):
        obstore.head(store, "copied.txt")
    assert bytes(obstore.get(store, "renamed.txt").bytes()) == b"source bytes"
    # Copy-if-not-exists through a conditional CompleteMultipartUpload (If-None-Match: *).
    guarded = store_for(jay, "obstore", copy_if_not_exists="multipart")
    obstore.copy(guarded, "src.txt", "fresh.txt", overwrite=False)
    with pytest.raises(obstore.exceptions.AlreadyExistsError):
        obstore.copy(guarded, "src.txt", "fresh.txt", overwrite=False)
    obstore.delete(store, ["src.txt", "renamed.txt", "fresh.txt"])  # DeleteObjects
    left = {m["path"] for m in obstore.list(store).collect()}
    assert not {"src.txt", "renamed.txt", "fresh.txt"} & left


def test_presigned_urls(store: S3Store) -> None:
    obstore.put(store, "signed.txt", b"signed bytes")
    url = obstore.sign(store, "GET", "signed.txt", timedelta(minutes=5))
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.read() == b"signed bytes"
    url = obstore.sign(store, "PUT", "uploaded.txt", timedelta(minutes=5))
    req = urllib.request.Request(url, data=b"put through a presigned URL", method="PUT")
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200
    assert bytes(obstore.get(store, "uploaded.txt").bytes()) == b"put through a presigned URL"


def test_missing_object_and_bad_credentials(jay: JayProcess, store: S3Store) -> None:
    with pytest.raises(FileNotFoundError):
        obstore.get(store, "no/such/key")
    wrong = S3Store(
        "obstore",
        endpoint=jay.s3_url,
        access_key_id=SEED_TOKEN_ID,
        secret_access_key="not-the-secret",
        region="us-east-1",
        client_options={"allow_http": True},
    )
    with pytest.raises(obstore.exceptions.PermissionDeniedError):
        obstore.get(wrong, "dir/small.txt")
