"""pyarrow's S3FileSystem (the AWS SDK for C++ underneath) against a real jay process:
Parquet datasets written and read back, streamed multipart uploads, random-access reads,
directory emulation, copies and moves."""

from __future__ import annotations

import hashlib

import pytest

from tests.integration.conftest import SEED_SECRET, SEED_TOKEN_ID
from tests.integration.jayproc import JayProcess

pa = pytest.importorskip("pyarrow")
import pyarrow.dataset as ds  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from pyarrow import fs  # noqa: E402

MiB = 1024 * 1024

pytestmark = pytest.mark.usefixtures("server_log_is_clean")


def pattern(size: int, seed: int) -> bytes:
    block = hashlib.sha256(str(seed).encode()).digest() * 2048
    return (block * (size // len(block) + 1))[:size]


def filesystem(jay: JayProcess, secret: str = SEED_SECRET) -> fs.S3FileSystem:
    host = jay.s3_url.removeprefix("http://")
    return fs.S3FileSystem(
        access_key=SEED_TOKEN_ID,
        secret_key=secret,
        endpoint_override=host,
        scheme="http",
        region="us-east-1",
        allow_bucket_creation=True,
        allow_bucket_deletion=True,
        retry_strategy=fs.AwsStandardS3RetryStrategy(max_attempts=1),
    )


@pytest.fixture(scope="module")
def s3fs(jay: JayProcess) -> fs.S3FileSystem:
    filesystem(jay).create_dir("arrow")
    return filesystem(jay)


def test_parquet_round_trip(s3fs: fs.S3FileSystem) -> None:
    table = pa.table({"n": list(range(50_000)), "s": [f"row {i}" for i in range(50_000)]})
    pq.write_table(table, "arrow/tables/t.parquet", filesystem=s3fs)
    assert pq.read_table("arrow/tables/t.parquet", filesystem=s3fs).equals(table)
    # Only the footer and the wanted column chunk are fetched (ranged GETs).
    assert pq.read_table("arrow/tables/t.parquet", columns=["s"], filesystem=s3fs).num_rows == (
        50_000
    )


def test_partitioned_dataset(s3fs: fs.S3FileSystem) -> None:
    table = pa.table({"year": [2024, 2024, 2025, 2026], "v": [1.0, 2.0, 3.0, 4.0]})
    ds.write_dataset(
        table,
        "arrow/dataset",
        format="parquet",
        partitioning=["year"],
        partitioning_flavor="hive",
        filesystem=s3fs,
    )
    years = sorted(
        info.base_name
        for info in s3fs.get_file_info(fs.FileSelector("arrow/dataset"))
        if info.type == fs.FileType.Directory
    )
    assert years == ["year=2024", "year=2025", "year=2026"]
    back = ds.dataset("arrow/dataset", format="parquet", partitioning="hive", filesystem=s3fs)
    assert sorted(back.to_table(filter=ds.field("year") == 2024)["v"].to_pylist()) == [1.0, 2.0]


def test_streamed_upload_and_random_access(s3fs: fs.S3FileSystem) -> None:
    data = pattern(21 * MiB + 3, 7)  # the C++ SDK uploads it in parts as it is written
    with s3fs.open_output_stream("arrow/big.bin") as out:
        for offset in range(0, len(data), 3 * MiB):
            out.write(data[offset : offset + 3 * MiB])
    info = s3fs.get_file_info("arrow/big.bin")
    assert info.size == len(data)
    with s3fs.open_input_file("arrow/big.bin") as f:
        f.seek(17 * MiB + 11)
        assert f.read(4096) == data[17 * MiB + 11 : 17 * MiB + 11 + 4096]
        f.seek(0)
        assert hashlib.sha256(f.read()).digest() == hashlib.sha256(data).digest()


def test_directories_copy_move_delete(s3fs: fs.S3FileSystem) -> None:
    s3fs.create_dir("arrow/tree/sub")
    with s3fs.open_output_stream("arrow/tree/sub/a.txt") as out:
        out.write(b"a")
    s3fs.copy_file("arrow/tree/sub/a.txt", "arrow/tree/b.txt")
    s3fs.move("arrow/tree/b.txt", "arrow/tree/moved/c.txt")
    listed = {
        (i.path, i.type) for i in s3fs.get_file_info(fs.FileSelector("arrow/tree", recursive=True))
    }
    assert ("arrow/tree/sub/a.txt", fs.FileType.File) in listed
    assert ("arrow/tree/moved/c.txt", fs.FileType.File) in listed
    assert ("arrow/tree/moved", fs.FileType.Directory) in listed
    assert s3fs.get_file_info("arrow/tree/b.txt").type == fs.FileType.NotFound
    s3fs.delete_dir("arrow/tree")
    assert s3fs.get_file_info("arrow/tree").type == fs.FileType.NotFound
    assert s3fs.get_file_info("arrow/tree/sub/a.txt").type == fs.FileType.NotFound


def test_bucket_lifecycle_and_bad_credentials(jay: JayProcess, s3fs: fs.S3FileSystem) -> None:
    s3fs.create_dir("arrow-scratch")
    assert s3fs.get_file_info("arrow-scratch").type == fs.FileType.Directory
    s3fs.delete_dir("arrow-scratch")
    assert s3fs.get_file_info("arrow-scratch").type == fs.FileType.NotFound
    wrong = filesystem(jay, secret="not-the-secret")
    with pytest.raises(OSError, match="(?i)signature|access denied|forbidden"):
        wrong.get_file_info(fs.FileSelector("arrow"))
