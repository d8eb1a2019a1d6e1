"""BlobStore.resolve: a location ref becomes a path inside the data dir, or an error."""

from __future__ import annotations

import os

import pytest

from jay.errors import StorageIOError
from jay.storage import blobs
from jay.storage.blobs import BlobStore

BAD_REFS = ["", "../outside", "buckets/../../etc/passwd", "/etc/passwd", "a\x00b", "x\\..\\..\\y"]


@pytest.mark.parametrize("ref", BAD_REFS)
def test_refs_that_could_leave_the_data_dir_are_refused_every_time(tmp_path, ref: str) -> None:
    store = BlobStore(str(tmp_path))
    for _ in range(2):  # a refusal is never remembered as a path
        with pytest.raises(StorageIOError):
            store.resolve(ref)


def test_a_ref_resolves_inside_the_data_dir_and_is_remembered(tmp_path) -> None:
    store = BlobStore(str(tmp_path))
    path = store.resolve("buckets/b1/00/ab/object-1")
    assert path == os.path.join(os.path.abspath(tmp_path), "buckets", "b1", "00", "ab", "object-1")
    assert store.resolve("buckets/b1/00/ab/object-1") == path
    assert store._resolved["buckets/b1/00/ab/object-1"] == path


def test_the_remembered_paths_are_bounded(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(blobs, "RESOLVED_PATHS", 4)
    store = BlobStore(str(tmp_path))
    for i in range(20):
        assert store.resolve(f"buckets/b/{i}").endswith(f"/buckets/b/{i}")
        assert len(store._resolved) <= 4


def test_every_cached_record_keeps_its_path(tmp_path) -> None:
    """As many paths as the service caches records: GETs rotating over more keys than an
    older, smaller table held (12,000) resolve each ref once."""
    from jay.storage.service import OBJECT_CACHE_ENTRIES

    assert blobs.RESOLVED_PATHS >= OBJECT_CACHE_ENTRIES
    store = BlobStore(str(tmp_path))
    refs = [f"buckets/b/objects/00/00/{i}" for i in range(12_000)]
    paths = [store.resolve(ref) for ref in refs]
    assert all(store._resolved.get(ref) is path for ref, path in zip(refs, paths, strict=True))
