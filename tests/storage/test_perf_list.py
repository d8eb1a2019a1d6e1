"""LIST entries are read straight from the row (no attribute decoding, no bucket join) and must
still carry exactly what the full record says about the fields a listing shows."""

from __future__ import annotations

from typing import Any

import pytest_twisted

from jay.storage.api import ListedObject, ObjectAttributes

from .conftest import put


@pytest_twisted.ensureDeferred
async def test_listed_entries_match_the_full_records(svc: Any, bucket: str) -> None:
    rich = ObjectAttributes(
        content_type="text/plain",
        cache_control="no-cache",
        content_encoding="gzip",
        metadata={"color": "blue"},
    )
    await put(svc, bucket, "a-plain", b"1", ObjectAttributes(content_type="image/png"))
    await put(svc, bucket, "b-rich", b"22", rich)
    await put(svc, bucket, "c-default", b"333")
    page = await svc.list_objects(bucket)
    assert [entry.content_type for entry in page.objects] == [
        "image/png",
        "text/plain",
        "application/octet-stream",
    ]
    for entry in page.objects:
        assert type(entry) is ListedObject
        info = await svc.get_object_info(bucket, entry.key)
        assert entry == ListedObject(
            key=info.key,
            size=info.size,
            etag=info.etag,
            sha256_hex=info.sha256_hex,
            updated_at=info.updated_at,
            content_type=info.attributes.content_type,
        )
