"""Object tags in the object record: stored in attrs_json only when there are some (rows of
plain objects keep the exact string they had), replaced by ``set_object_tags`` without touching
bytes, ETag or Last-Modified, carried from a multipart upload to its object, seen at once by
cached readers here and in another worker, and kept across a restart."""

from __future__ import annotations

import json
from typing import Any

import pytest
import pytest_twisted

from jay.errors import NoSuchBucket, NoSuchKey
from jay.storage import metadata
from jay.storage.api import CompletedPart, ObjectAttributes

from .conftest import put, read, stage, start_service, stop_service

# What every plain object's row has held since before tagging: must never change, or
# existing rows would stop taking the fast path (and compare unequal to new ones).
PLAIN_ROW = (
    '{"cache_control": null, "content_disposition": null, "content_encoding": null, '
    '"content_language": null, "expires": null, "metadata": {}}'
)


def test_plain_attributes_keep_their_row_text() -> None:
    assert metadata.encode_attributes(ObjectAttributes(content_type="text/plain")) == PLAIN_ROW
    assert metadata._PLAIN_ATTRIBUTES_JSON == PLAIN_ROW
    decoded = metadata.decode_attributes("text/plain", PLAIN_ROW)
    assert decoded == ObjectAttributes(content_type="text/plain") and decoded.tags == {}


def test_tags_are_written_only_when_present() -> None:
    tagged = ObjectAttributes(tags={"b": "2", "a": ""})
    text = metadata.encode_attributes(tagged)
    assert json.loads(text)["tags"] == {"a": "", "b": "2"}
    assert metadata.decode_attributes("x/y", text).tags == {"a": "", "b": "2"}
    with_meta = ObjectAttributes(metadata={"x-amz-meta-k": "v"})
    assert "tags" not in json.loads(metadata.encode_attributes(with_meta))
    # A row written before tagging existed (metadata, no "tags" key) decodes without tags.
    old_row = json.dumps({"metadata": {"x-amz-meta-k": "v"}, "cache_control": "no-cache"})
    old = metadata.decode_attributes("x/y", old_row)
    assert old.tags == {} and old.cache_control == "no-cache"


@pytest_twisted.ensureDeferred
async def test_set_object_tags_changes_only_the_tags(svc: Any, bucket: str) -> None:
    attrs = ObjectAttributes(content_type="text/plain", metadata={"x-amz-meta-a": "1"})
    before = await put(svc, bucket, "k", b"payload", attrs)
    cached = await svc.get_object_info(bucket, "k")
    assert cached.attributes.tags == {}
    updated = await svc.set_object_tags(bucket, "k", {"team": "blue", "env": "prod"})
    assert updated.attributes.tags == {"team": "blue", "env": "prod"}
    seen = await svc.get_object_info(bucket, "k")  # not the cached record from before
    assert seen.attributes.tags == {"team": "blue", "env": "prod"}
    for info in (updated, seen):
        assert (info.etag, info.size, info.updated_at, info.object_id) == (
            before.etag,
            before.size,
            before.updated_at,
            before.object_id,
        )
        assert info.attributes.metadata == {"x-amz-meta-a": "1"}
        assert info.attributes.content_type == "text/plain"
    assert await read(svc, bucket, "k") == b"payload"
    listed = await svc.list_objects(bucket)
    assert [(o.key, o.etag, o.size) for o in listed.objects] == [("k", before.etag, 7)]
    stats = await svc.bucket_stats(bucket)
    assert (stats.object_count, stats.total_size_bytes) == (1, 7)

    cleared = await svc.set_object_tags(bucket, "k", {})
    assert cleared.attributes.tags == {}
    assert (await svc.get_object_info(bucket, "k")).attributes.tags == {}


@pytest_twisted.ensureDeferred
async def test_missing_objects_and_buckets(svc: Any, bucket: str) -> None:
    with pytest.raises(NoSuchKey):
        await svc.set_object_tags(bucket, "absent", {"a": "1"})
    with pytest.raises(NoSuchBucket):
        await svc.set_object_tags("no-such-bucket", "k", {"a": "1"})
    await put(svc, bucket, "gone", b"x")
    await svc.delete_object(bucket, "gone")
    with pytest.raises(NoSuchKey):
        await svc.set_object_tags(bucket, "gone", {"a": "1"})


@pytest_twisted.ensureDeferred
async def test_another_worker_sees_new_tags(svc: Any, bucket: str, other: Any) -> None:
    await put(svc, bucket, "k", b"v")
    assert (await other.get_object_info(bucket, "k")).attributes.tags == {}  # cached there
    await svc.set_object_tags(bucket, "k", {"a": "1"})
    assert (await other.get_object_info(bucket, "k")).attributes.tags == {"a": "1"}
    await other.set_object_tags(bucket, "k", {"b": "2"})
    assert (await svc.get_object_info(bucket, "k")).attributes.tags == {"b": "2"}


@pytest_twisted.ensureDeferred
async def test_overwrite_without_tags_clears_them(svc: Any, bucket: str) -> None:
    await put(svc, bucket, "k", b"one", ObjectAttributes(tags={"a": "1"}))
    assert (await svc.get_object_info(bucket, "k")).attributes.tags == {"a": "1"}
    await put(svc, bucket, "k", b"two")
    assert (await svc.get_object_info(bucket, "k")).attributes.tags == {}


@pytest_twisted.ensureDeferred
async def test_multipart_upload_tags_reach_the_object(svc: Any, bucket: str, account: Any) -> None:
    attrs = ObjectAttributes(content_type="text/plain", tags={"stage": "upload"})
    upload = await svc.create_multipart_upload(bucket, "mp", attrs, account.account_id)
    assert (await svc.get_multipart_upload(bucket, "mp", upload.upload_id)).attributes == attrs
    await svc.upload_part(bucket, "mp", upload.upload_id, 1, await stage(svc, b"part"))
    info = await svc.complete_multipart_upload(
        bucket, "mp", upload.upload_id, [CompletedPart(part_number=1)]
    )
    assert info.attributes.tags == {"stage": "upload"}
    assert (await svc.get_object_info(bucket, "mp")).attributes.tags == {"stage": "upload"}


@pytest_twisted.ensureDeferred
async def test_tags_survive_a_restart(data_dir: str) -> None:
    first = await start_service(data_dir)
    try:
        account = await first.create_account("alice")
        await first.create_bucket("bkt", account.account_id)
        await put(first, "bkt", "k", b"v")
        await first.set_object_tags("bkt", "k", {"kept": "yes"})
    finally:
        await stop_service(first)
    second = await start_service(data_dir)
    try:
        assert (await second.get_object_info("bkt", "k")).attributes.tags == {"kept": "yes"}
    finally:
        await stop_service(second)
