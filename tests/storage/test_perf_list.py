"""LIST rows with plain attributes skip the JSON parser; rows with more still decode fully."""

from __future__ import annotations

from typing import Any

import pytest_twisted

from jay.storage.api import ObjectAttributes

from .conftest import put


@pytest_twisted.ensureDeferred
async def test_listing_decodes_plain_and_rich_rows_alike(svc: Any, bucket: str) -> None:
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
    by_key = {o.key: o for o in page.objects}
    assert by_key["a-plain"].attributes == ObjectAttributes(content_type="image/png")
    assert by_key["b-rich"].attributes == rich
    assert by_key["c-default"].attributes == ObjectAttributes()
    for info in page.objects:
        assert info.checksums == {} and info.part_sizes == ()
        assert info == await svc.get_object_info(bucket, info.key)
    # Each record gets its own metadata mapping, never one shared between rows.
    assert by_key["a-plain"].attributes.metadata is not by_key["c-default"].attributes.metadata
