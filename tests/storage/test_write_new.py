"""BlobStore.write_new: a small new object's bytes go straight to their final path (no temp
file, no rename), durably (file and directory fsynced), and leave nothing behind on failure."""

from __future__ import annotations

import errno
import os
import stat
from typing import Any

import pytest

from jay.errors import StorageFull, StorageIOError
from jay.storage import blobs
from jay.storage.blobs import BlobStore

REF = BlobStore.object_ref("bucket-1", "0123abcd-0000-4000-8000-000000000001")


@pytest.fixture
def store(tmp_path: Any) -> BlobStore:
    store = BlobStore(str(tmp_path))
    store.create_layout()
    return store


def test_the_bytes_land_at_the_ref_with_file_and_directory_fsynced(
    store: BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced_files: list[int] = []
    synced_dirs: list[str] = []
    real_fsync_dir = blobs.fsync_dir
    monkeypatch.setattr(blobs, "os_fsync", lambda fd: synced_files.append(fd) or os.fsync(fd))
    monkeypatch.setattr(
        blobs, "fsync_dir", lambda path: synced_dirs.append(path) or real_fsync_dir(path)
    )
    monkeypatch.setattr(blobs, "create_temp", pytest.fail)  # no temp file at all
    store.write_new([b"hello ", b"world"], REF)
    path = store.resolve(REF)
    with open(path, "rb") as f:
        assert f.read() == b"hello world"
    assert stat.S_IMODE(os.stat(path).st_mode) == blobs.FILE_MODE
    assert len(synced_files) == 1
    assert os.path.dirname(path) in synced_dirs
    assert os.listdir(store.tmp_dir) == []


def test_an_existing_file_is_never_overwritten(store: BlobStore) -> None:
    store.write_new([b"first"], REF)
    with pytest.raises(StorageIOError):
        store.write_new([b"second"], REF)
    with open(store.resolve(REF), "rb") as f:
        assert f.read() == b"first"


@pytest.mark.parametrize(
    ("failing", "code", "expected"),
    [
        ("os_write", errno.ENOSPC, StorageFull),
        ("os_fsync", errno.EIO, StorageIOError),
        ("fsync_dir", errno.EIO, StorageIOError),
    ],
)
def test_a_failure_leaves_no_file(
    store: BlobStore,
    monkeypatch: pytest.MonkeyPatch,
    failing: str,
    code: int,
    expected: type[Exception],
) -> None:
    def broken(*args: Any) -> Any:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(blobs, failing, broken)
    with pytest.raises(expected):
        store.write_new([b"bytes"], REF)
    assert not os.path.exists(store.resolve(REF))
    assert os.listdir(store.tmp_dir) == []


def test_a_shard_directory_removed_meanwhile_is_made_again(
    store: BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GC may remove an empty shard directory between our mkdir and our create."""
    real_make_dirs = blobs.make_dirs
    calls: list[str] = []

    def racing(path: str) -> None:
        calls.append(path)
        if len(calls) > 1:
            real_make_dirs(path)  # the first time GC "won": the directory is not there

    monkeypatch.setattr(blobs, "make_dirs", racing)
    store.write_new([b"bytes"], REF)
    assert len(calls) == 2
    with open(store.resolve(REF), "rb") as f:
        assert f.read() == b"bytes"
