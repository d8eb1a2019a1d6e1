"""Multipart uploads: JAY_SPEC §2.9 with jay's S3 rules (InvalidPart, InvalidPartOrder,
EntityTooSmall), ETags against the §9.1 vectors, part replacement, listings, abort."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from contextlib import closing
from typing import Any

import pytest
import pytest_twisted

from jay.checksums import checksum_of
from jay.errors import (
    BadDigest,
    EntityTooSmall,
    InvalidArgument,
    InvalidPart,
    InvalidPartOrder,
    InvalidRequest,
    NoSuchBucket,
    NoSuchKey,
    NoSuchUpload,
    PreconditionFailed,
)
from jay.storage.api import CompletedPart, ObjectAttributes, WriteCondition
from jay.storage.multipart import (
    check_complete_checksum_request,
    check_complete_checksums,
    effective_checksum_type,
)

from .conftest import files_under, md5_hex, put, read, sha256_hex, stage, tmp_files

HELLO_MD5 = "f814893777bcc2295fff05f00e508da6"
WORLD_MD5 = "7d793037a0760186574b0282f2f435e7"
WORLD_SHA256 = "486ea46224d1bb4fb680f34f7c9ad96a8f24ec88be73ea8e5a6c65260e9cb8a7"
HELLO_WORLD_ETAG = "e09e4fd6265b36115fe3db32df945d84-2"
HELLO_WORLD_SHA256 = "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"


def multipart_etag(parts: list[bytes]) -> str:
    joined = b"".join(hashlib.md5(p).digest() for p in parts)
    return f"{hashlib.md5(joined).hexdigest()}-{len(parts)}"


async def create(svc: Any, bucket: str, key: str, account: Any, **kw: Any) -> Any:
    attrs = kw.pop("attributes", ObjectAttributes())
    return await svc.create_multipart_upload(bucket, key, attrs, account.account_id, **kw)


async def upload(svc: Any, bucket: str, key: str, upload_id: str, n: int, data: bytes) -> Any:
    return await svc.upload_part(bucket, key, upload_id, n, await stage(svc, data))


def part_dir(data_dir: str, upload_id: str) -> str:
    return os.path.join(data_dir, "multipart", upload_id)


@pytest_twisted.ensureDeferred
async def test_spec_vector_hello_world(svc: Any, bucket: str, account: Any, data_dir: str) -> None:
    attrs = ObjectAttributes(
        content_type="text/plain", cache_control="no-cache", metadata={"origin": "mpu"}
    )
    up = await create(svc, bucket, "hw", account, attributes=attrs)
    assert up.bucket == bucket and up.key == "hw"
    assert up.bucket_id == (await svc.get_bucket(bucket)).bucket_id
    assert up.initiated_by == account.account_id
    assert up.state == "initiated"
    assert up.attributes == attrs
    assert up.upload_id
    assert await svc.get_multipart_upload(bucket, "hw", up.upload_id) == up

    p1 = await upload(svc, bucket, "hw", up.upload_id, 1, b"hello ")
    p2 = await upload(svc, bucket, "hw", up.upload_id, 2, b"world")
    assert (p1.part_number, p1.size, p1.etag) == (1, 6, HELLO_MD5)
    assert (p2.part_number, p2.size, p2.etag) == (2, 5, WORLD_MD5)
    assert p2.sha256_hex == WORLD_SHA256
    # Parts live at multipart/<upload_id>/part-NNNNN (JAY_SPEC §6.1); nothing in tmp/.
    assert files_under(part_dir(data_dir, up.upload_id)) == ["part-00001", "part-00002"]
    assert tmp_files(data_dir) == []
    # An incomplete upload is not an object.
    assert (await svc.list_objects(bucket)).objects == ()

    info = await svc.complete_multipart_upload(
        bucket,
        "hw",
        up.upload_id,
        [
            CompletedPart(part_number=1, etag=HELLO_MD5),
            CompletedPart(part_number=2, etag=WORLD_MD5),
        ],
        min_part_size=0,
    )
    assert info.etag == HELLO_WORLD_ETAG
    assert info.sha256_hex == HELLO_WORLD_SHA256
    assert info.size == 11
    assert info.part_sizes == (6, 5)
    assert info.key == "hw"
    # jay keeps the attributes given at creation (JAY_SPEC §8.2 item 6).
    assert info.attributes == attrs
    assert await read(svc, bucket, "hw") == b"hello world"
    assert await read(svc, bucket, "hw", 4, 4) == b"o wo"
    head = await svc.get_object_info(bucket, "hw")
    assert head.etag == HELLO_WORLD_ETAG
    assert head.part_sizes == (6, 5)
    stats = await svc.bucket_stats(bucket)
    assert (stats.object_count, stats.total_size_bytes) == (1, 11)
    # The upload is gone, with its part files; no temp file is left behind.
    with pytest.raises(NoSuchUpload):
        await svc.get_multipart_upload(bucket, "hw", up.upload_id)
    assert not os.path.exists(part_dir(data_dir, up.upload_id))
    assert tmp_files(data_dir) == []
    assert (await svc.list_multipart_uploads(bucket)).uploads == ()


@pytest_twisted.ensureDeferred
async def test_etags_unchecked_when_none_and_parts_out_of_upload_order(
    svc: Any, bucket: str, account: Any
) -> None:
    up = await create(svc, bucket, "k", account)
    bodies = {3: b"three", 1: b"one-", 2: b"two-"}
    for n, body in bodies.items():  # uploaded in the order 3, 1, 2
        await upload(svc, bucket, "k", up.upload_id, n, body)
    info = await svc.complete_multipart_upload(
        bucket, "k", up.upload_id, [CompletedPart(part_number=n) for n in (1, 2, 3)]
    )
    assert await read(svc, bucket, "k") == b"one-two-three"
    assert info.etag == multipart_etag([b"one-", b"two-", b"three"])
    assert info.sha256_hex == sha256_hex(b"one-two-three")
    assert info.part_sizes == (4, 4, 5)


@pytest_twisted.ensureDeferred
async def test_unlisted_parts_are_discarded(
    svc: Any, bucket: str, account: Any, data_dir: str
) -> None:
    up = await create(svc, bucket, "k", account)
    for n, body in ((1, b"AA"), (2, b"BB"), (3, b"CC"), (7, b"GG")):
        await upload(svc, bucket, "k", up.upload_id, n, body)
    info = await svc.complete_multipart_upload(
        bucket, "k", up.upload_id, [CompletedPart(part_number=1), CompletedPart(part_number=3)]
    )
    assert await read(svc, bucket, "k") == b"AACC"
    assert info.etag == multipart_etag([b"AA", b"CC"])
    assert info.part_sizes == (2, 2)
    assert not os.path.exists(part_dir(data_dir, up.upload_id))


@pytest_twisted.ensureDeferred
async def test_invalid_part_wrong_etag_or_missing(
    svc: Any, bucket: str, account: Any, data_dir: str
) -> None:
    up = await create(svc, bucket, "k", account)
    await upload(svc, bucket, "k", up.upload_id, 1, b"hello ")
    await upload(svc, bucket, "k", up.upload_id, 2, b"world")
    with pytest.raises(InvalidPart):
        await svc.complete_multipart_upload(
            bucket,
            "k",
            up.upload_id,
            [
                CompletedPart(part_number=1, etag=HELLO_MD5),
                CompletedPart(part_number=2, etag=HELLO_MD5),
            ],
        )
    with pytest.raises(InvalidPart):
        await svc.complete_multipart_upload(
            bucket,
            "k",
            up.upload_id,
            [
                CompletedPart(part_number=1),
                CompletedPart(part_number=2),
                CompletedPart(part_number=3),
            ],
        )
    with pytest.raises(InvalidPart):
        await svc.complete_multipart_upload(
            bucket, "k", up.upload_id, [CompletedPart(part_number=4)]
        )
    # Failures change nothing: no object, the upload and its parts remain and can complete.
    with pytest.raises(NoSuchKey):
        await svc.get_object_info(bucket, "k")
    assert (await svc.list_objects(bucket)).objects == ()
    assert (await svc.get_multipart_upload(bucket, "k", up.upload_id)).state == "initiated"
    assert files_under(part_dir(data_dir, up.upload_id)) == ["part-00001", "part-00002"]
    assert tmp_files(data_dir) == []
    info = await svc.complete_multipart_upload(
        bucket,
        "k",
        up.upload_id,
        [
            CompletedPart(part_number=1, etag=HELLO_MD5),
            CompletedPart(part_number=2, etag=WORLD_MD5),
        ],
    )
    assert info.etag == HELLO_WORLD_ETAG


@pytest.mark.parametrize("order", [(2, 1), (1, 3, 2), (1, 1, 2), (1, 2, 2)])
@pytest_twisted.ensureDeferred
async def test_invalid_part_order(
    svc: Any, bucket: str, account: Any, order: tuple[int, ...]
) -> None:
    """S3: the list must be strictly ascending; a repeated number is not ascending either."""
    up = await create(svc, bucket, "k", account)
    for n in (1, 2, 3):
        await upload(svc, bucket, "k", up.upload_id, n, b"part %d" % n)
    with pytest.raises(InvalidPartOrder):
        await svc.complete_multipart_upload(
            bucket, "k", up.upload_id, [CompletedPart(part_number=n) for n in order]
        )
    assert (await svc.get_multipart_upload(bucket, "k", up.upload_id)).state == "initiated"
    assert (await svc.list_objects(bucket)).objects == ()


@pytest_twisted.ensureDeferred
async def test_entity_too_small(svc: Any, bucket: str, account: Any) -> None:
    up = await create(svc, bucket, "k", account)
    await upload(svc, bucket, "k", up.upload_id, 1, b"1234")  # 4 bytes
    await upload(svc, bucket, "k", up.upload_id, 2, b"12345")  # 5 bytes
    await upload(svc, bucket, "k", up.upload_id, 3, b"1")  # last may be small
    with pytest.raises(EntityTooSmall):
        await svc.complete_multipart_upload(
            bucket,
            "k",
            up.upload_id,
            [CompletedPart(part_number=n) for n in (1, 2, 3)],
            min_part_size=5,
        )
    assert (await svc.get_multipart_upload(bucket, "k", up.upload_id)).state == "initiated"
    # Dropping the small first part satisfies the rule; the small last part is fine.
    info = await svc.complete_multipart_upload(
        bucket,
        "k",
        up.upload_id,
        [CompletedPart(part_number=2), CompletedPart(part_number=3)],
        min_part_size=5,
    )
    assert await read(svc, bucket, "k") == b"123451"
    assert info.part_sizes == (5, 1)


@pytest_twisted.ensureDeferred
async def test_single_small_part_is_fine(svc: Any, bucket: str, account: Any) -> None:
    up = await create(svc, bucket, "k", account)
    await upload(svc, bucket, "k", up.upload_id, 1, b"x")
    info = await svc.complete_multipart_upload(
        bucket, "k", up.upload_id, [CompletedPart(part_number=1)], min_part_size=5 * 1024 * 1024
    )
    assert info.etag == multipart_etag([b"x"])
    assert info.etag.endswith("-1")


@pytest_twisted.ensureDeferred
async def test_part_replacement(svc: Any, bucket: str, account: Any, data_dir: str) -> None:
    up = await create(svc, bucket, "k", account)
    old = await upload(svc, bucket, "k", up.upload_id, 1, b"old content")
    new = await upload(svc, bucket, "k", up.upload_id, 1, b"new")
    assert new.etag == md5_hex(b"new") != old.etag
    page = await svc.list_parts(bucket, "k", up.upload_id)
    assert [(p.part_number, p.size, p.etag) for p in page.parts] == [(1, 3, md5_hex(b"new"))]
    assert files_under(part_dir(data_dir, up.upload_id)) == ["part-00001"]
    assert tmp_files(data_dir) == []
    with pytest.raises(InvalidPart):
        await svc.complete_multipart_upload(
            bucket, "k", up.upload_id, [CompletedPart(part_number=1, etag=old.etag)]
        )
    await svc.complete_multipart_upload(
        bucket, "k", up.upload_id, [CompletedPart(part_number=1, etag=new.etag)]
    )
    assert await read(svc, bucket, "k") == b"new"


@pytest_twisted.ensureDeferred
async def test_list_parts_pagination(svc: Any, bucket: str, account: Any) -> None:
    up = await create(svc, bucket, "k", account)
    bodies = {n: b"body of part %d" % n * n for n in (1, 2, 3, 5, 8)}
    for n in (8, 3, 1, 5, 2):
        await upload(svc, bucket, "k", up.upload_id, n, bodies[n])
    full = await svc.list_parts(bucket, "k", up.upload_id)
    assert [p.part_number for p in full.parts] == [1, 2, 3, 5, 8]
    assert full.is_truncated is False
    assert full.upload.upload_id == up.upload_id
    for p in full.parts:
        assert p.size == len(bodies[p.part_number])
        assert p.etag == md5_hex(bodies[p.part_number])
        assert p.sha256_hex == sha256_hex(bodies[p.part_number])

    for max_parts in (1, 2, 3, 4, 5, 6):
        seen: list[int] = []
        marker = 0
        while True:
            page = await svc.list_parts(
                bucket, "k", up.upload_id, part_number_marker=marker, max_parts=max_parts
            )
            numbers = [p.part_number for p in page.parts]
            assert len(numbers) <= max_parts
            seen += numbers
            if not page.is_truncated:
                break
            assert len(numbers) == max_parts
            assert page.next_part_number_marker == numbers[-1]
            marker = page.next_part_number_marker
        assert seen == [1, 2, 3, 5, 8], max_parts
    page = await svc.list_parts(bucket, "k", up.upload_id, part_number_marker=3)
    assert [p.part_number for p in page.parts] == [5, 8]
    page = await svc.list_parts(bucket, "k", up.upload_id, part_number_marker=4, max_parts=1)
    assert [p.part_number for p in page.parts] == [5]
    assert page.is_truncated is True


@pytest_twisted.ensureDeferred
async def test_list_multipart_uploads(svc: Any, bucket: str, account: Any) -> None:
    made = []
    for key in ("photos/2024/a.jpg", "photos/2024/b.jpg", "photos/2025/c.jpg", "docs/x", "z"):
        made.append(await create(svc, bucket, key, account))
    second_z = await create(svc, bucket, "z", account)
    made.append(second_z)
    all_ids = {u.upload_id for u in made}

    page = await svc.list_multipart_uploads(bucket)
    assert {u.upload_id for u in page.uploads} == all_ids
    keys = [u.key for u in page.uploads]
    assert keys == sorted(keys, key=lambda k: k.encode("utf-8"))
    assert page.is_truncated is False

    page = await svc.list_multipart_uploads(bucket, prefix="photos/")
    assert sorted(u.key for u in page.uploads) == [
        "photos/2024/a.jpg",
        "photos/2024/b.jpg",
        "photos/2025/c.jpg",
    ]
    page = await svc.list_multipart_uploads(bucket, prefix="photos/", delimiter="/")
    assert page.uploads == ()
    assert page.common_prefixes == ("photos/2024/", "photos/2025/")
    page = await svc.list_multipart_uploads(bucket, delimiter="/")
    assert page.common_prefixes == ("docs/", "photos/")
    assert sorted(u.key for u in page.uploads) == ["z", "z"]

    # Pagination by one: every upload exactly once, keys in order.
    seen = []
    key_marker = upload_id_marker = ""
    for _ in range(20):
        page = await svc.list_multipart_uploads(
            bucket, key_marker=key_marker, upload_id_marker=upload_id_marker, max_uploads=1
        )
        assert len(page.uploads) <= 1
        seen += list(page.uploads)
        if not page.is_truncated:
            break
        assert page.next_key_marker == page.uploads[-1].key
        assert page.next_upload_id_marker == page.uploads[-1].upload_id
        key_marker, upload_id_marker = page.next_key_marker, page.next_upload_id_marker
    assert sorted(u.upload_id for u in seen) == sorted(all_ids)
    assert [u.key for u in seen] == keys

    # A key marker alone skips every upload of that key and before (S3).
    page = await svc.list_multipart_uploads(bucket, key_marker="photos/2024/b.jpg")
    assert sorted(u.key for u in page.uploads) == ["photos/2025/c.jpg", "z", "z"]

    # Completed and aborted uploads drop out.
    await svc.abort_multipart_upload(bucket, "z", second_z.upload_id)
    page = await svc.list_multipart_uploads(bucket, prefix="z")
    assert [u.upload_id for u in page.uploads] == [made[4].upload_id]


@pytest_twisted.ensureDeferred
async def test_abort_removes_parts(svc: Any, bucket: str, account: Any, data_dir: str) -> None:
    up = await create(svc, bucket, "k", account)
    await upload(svc, bucket, "k", up.upload_id, 1, b"one")
    await upload(svc, bucket, "k", up.upload_id, 2, b"two")
    assert os.path.isdir(part_dir(data_dir, up.upload_id))
    await svc.abort_multipart_upload(bucket, "k", up.upload_id)
    assert not os.path.exists(part_dir(data_dir, up.upload_id))
    with pytest.raises(NoSuchUpload):
        await svc.get_multipart_upload(bucket, "k", up.upload_id)
    with pytest.raises(NoSuchUpload):
        await svc.list_parts(bucket, "k", up.upload_id)
    with pytest.raises(NoSuchUpload):
        await svc.complete_multipart_upload(
            bucket, "k", up.upload_id, [CompletedPart(part_number=1)]
        )
    with pytest.raises(NoSuchUpload):
        await upload(svc, bucket, "k", up.upload_id, 3, b"late")
    with pytest.raises(NoSuchUpload):
        await svc.abort_multipart_upload(bucket, "k", up.upload_id)
    # The staged part of the rejected upload_part was consumed.
    assert tmp_files(data_dir) == []
    assert (await svc.list_objects(bucket)).objects == ()


@pytest_twisted.ensureDeferred
async def test_upload_must_match_bucket_and_key(svc: Any, bucket: str, account: Any) -> None:
    await svc.create_bucket("another", account.account_id)
    up = await create(svc, bucket, "k", account)
    await upload(svc, bucket, "k", up.upload_id, 1, b"data")
    with pytest.raises(NoSuchUpload):
        await svc.get_multipart_upload(bucket, "other-key", up.upload_id)
    with pytest.raises(NoSuchUpload):
        await svc.get_multipart_upload("another", "k", up.upload_id)
    with pytest.raises(NoSuchUpload):
        await svc.get_multipart_upload(bucket, "k", "00000000-0000-4000-8000-000000000000")
    with pytest.raises(NoSuchUpload):
        await upload(svc, bucket, "other-key", up.upload_id, 2, b"x")
    with pytest.raises(NoSuchUpload):
        await svc.list_parts("another", "k", up.upload_id)
    with pytest.raises(NoSuchUpload):
        await svc.complete_multipart_upload(
            bucket, "other-key", up.upload_id, [CompletedPart(part_number=1)]
        )
    with pytest.raises(NoSuchUpload):
        await svc.abort_multipart_upload("another", "k", up.upload_id)
    with pytest.raises(NoSuchBucket):
        await svc.get_multipart_upload("missing-bucket", "k", up.upload_id)
    # Still intact.
    page = await svc.list_parts(bucket, "k", up.upload_id)
    assert [p.part_number for p in page.parts] == [1]


@pytest.mark.parametrize("number", [0, -1, 10001])
@pytest_twisted.ensureDeferred
async def test_part_number_range(
    svc: Any, bucket: str, account: Any, number: int, data_dir: str
) -> None:
    up = await create(svc, bucket, "k", account)
    with pytest.raises(InvalidArgument):
        await upload(svc, bucket, "k", up.upload_id, number, b"x")
    assert tmp_files(data_dir) == []
    await upload(svc, bucket, "k", up.upload_id, 10000, b"last possible")
    page = await svc.list_parts(bucket, "k", up.upload_id)
    assert [p.part_number for p in page.parts] == [10000]


@pytest_twisted.ensureDeferred
async def test_complete_replaces_existing_object_and_honours_condition(
    svc: Any, bucket: str, account: Any, data_dir: str
) -> None:
    await put(svc, bucket, "k", b"previous")
    up = await create(svc, bucket, "k", account)
    await upload(svc, bucket, "k", up.upload_id, 1, b"replacement")
    with pytest.raises(PreconditionFailed):
        await svc.complete_multipart_upload(
            bucket,
            "k",
            up.upload_id,
            [CompletedPart(part_number=1)],
            condition=WriteCondition(if_none_match_star=True),
        )
    assert await read(svc, bucket, "k") == b"previous"
    assert (await svc.get_multipart_upload(bucket, "k", up.upload_id)).state == "initiated"
    assert tmp_files(data_dir) == []
    info = await svc.complete_multipart_upload(
        bucket,
        "k",
        up.upload_id,
        [CompletedPart(part_number=1)],
        condition=WriteCondition(if_match=md5_hex(b"previous")),
    )
    assert info.etag == multipart_etag([b"replacement"])
    assert await read(svc, bucket, "k") == b"replacement"
    # The previous object's file was deleted; only the new one remains.
    assert len(files_under(os.path.join(data_dir, "buckets"))) == 1
    stats = await svc.bucket_stats(bucket)
    assert (stats.object_count, stats.total_size_bytes) == (1, len(b"replacement"))


@pytest_twisted.ensureDeferred
async def test_complete_twice_fails(svc: Any, bucket: str, account: Any) -> None:
    up = await create(svc, bucket, "k", account)
    await upload(svc, bucket, "k", up.upload_id, 1, b"x")
    await svc.complete_multipart_upload(bucket, "k", up.upload_id, [CompletedPart(part_number=1)])
    with pytest.raises(NoSuchUpload):
        await svc.complete_multipart_upload(
            bucket, "k", up.upload_id, [CompletedPart(part_number=1)]
        )
    assert await read(svc, bucket, "k") == b"x"


@pytest_twisted.ensureDeferred
async def test_larger_parts(svc: Any, bucket: str, account: Any) -> None:
    bodies = [os.urandom(1024 * 1024 + i) for i in range(3)]
    up = await create(svc, bucket, "big", account)
    for n, body in enumerate(bodies, start=1):
        part = await upload(svc, bucket, "big", up.upload_id, n, body)
        assert part.etag == md5_hex(body)
    info = await svc.complete_multipart_upload(
        bucket,
        "big",
        up.upload_id,
        [CompletedPart(part_number=n, etag=md5_hex(b)) for n, b in enumerate(bodies, start=1)],
        min_part_size=1024 * 1024,
    )
    whole = b"".join(bodies)
    assert info.etag == multipart_etag(bodies)
    assert info.sha256_hex == sha256_hex(whole)
    assert info.size == len(whole)
    assert await read(svc, bucket, "big", verify=True) == whole


@pytest_twisted.ensureDeferred
async def test_completed_upload_is_remembered_for_its_initiator_for_a_day(
    svc: Any, bucket: str, account: Any, monkeypatch: Any
) -> None:
    up = await create(svc, bucket, "again", account)
    await upload(svc, bucket, "again", up.upload_id, 1, b"only part")
    assert (
        await svc.completed_multipart_upload(bucket, "again", up.upload_id, account.account_id)
        is None
    )  # still open
    info = await svc.complete_multipart_upload(
        bucket, "again", up.upload_id, [CompletedPart(part_number=1, etag=md5_hex(b"only part"))]
    )
    with pytest.raises(NoSuchUpload):
        await svc.get_multipart_upload(bucket, "again", up.upload_id)
    found = await svc.completed_multipart_upload(bucket, "again", up.upload_id, account.account_id)
    assert found is not None and (found.object_id, found.etag) == (info.object_id, info.etag)
    # Only for the account that initiated it, this bucket and key.
    assert await svc.completed_multipart_upload(bucket, "again", up.upload_id, "other") is None
    assert (
        await svc.completed_multipart_upload(bucket, "other-key", up.upload_id, account.account_id)
        is None
    )
    # Not after a day.
    later = svc._now() + 24 * 3600 + 1
    monkeypatch.setattr(svc, "_now", lambda: later)
    assert (
        await svc.completed_multipart_upload(bucket, "again", up.upload_id, account.account_id)
        is None
    )


# --- whole-object checksums at completion, and the part checksums an object keeps -------------


def test_effective_checksum_type() -> None:
    assert effective_checksum_type("", "") == ""
    assert effective_checksum_type("CRC32", "") == "COMPOSITE"
    assert effective_checksum_type("CRC64NVME", "") == "FULL_OBJECT"
    assert effective_checksum_type("CRC32", "FULL_OBJECT") == "FULL_OBJECT"


def test_check_complete_checksum_request() -> None:
    check_complete_checksum_request("", "", {}, "")
    check_complete_checksum_request("CRC32", "", {"CRC32": "x"}, "COMPOSITE")
    check_complete_checksum_request("CRC32", "FULL_OBJECT", {"CRC32": "x"}, "FULL_OBJECT")
    with pytest.raises(
        InvalidRequest, match="expected checksum Type: null, actual checksum Type: crc32"
    ):
        check_complete_checksum_request("", "", {"CRC32": "x"}, "")
    with pytest.raises(InvalidRequest, match="expected checksum Type: sha256"):
        check_complete_checksum_request("SHA256", "", {"CRC32": "x"}, "")
    with pytest.raises(BadDigest, match="COMPOSITE checksum mode"):
        check_complete_checksum_request("CRC32", "", {}, "FULL_OBJECT")
    with pytest.raises(BadDigest, match="FULL_OBJECT checksum mode"):
        check_complete_checksum_request("CRC64NVME", "", {}, "COMPOSITE")


def test_check_complete_checksums() -> None:
    check_complete_checksums({}, {"CRC32": "AAAAAA==-2"})
    check_complete_checksums({"CRC32": "AAAAAA==-2"}, {"CRC32": "AAAAAA==-2"})
    for given in ("AAAAAA==", "AAAAAB==-2", "AAAAAA==-3", "bad", ""):
        with pytest.raises(BadDigest):
            check_complete_checksums({"CRC32": given}, {"CRC32": "AAAAAA==-2"})
    with pytest.raises(BadDigest):  # nothing computed to compare with
        check_complete_checksums({"CRC32": "AAAAAA=="}, {})


async def upload_checked(
    svc: Any, bucket: str, key: str, upload_id: str, n: int, data: bytes, algorithm: str
) -> Any:
    staged = await stage(svc, data, [algorithm])
    return await svc.upload_part(bucket, key, upload_id, n, staged)


@pytest_twisted.ensureDeferred
async def test_full_object_checksum_verified_at_completion(
    svc: Any, bucket: str, account: Any, data_dir: str
) -> None:
    up = await create(
        svc, bucket, "f", account, checksum_algorithm="CRC32", checksum_type="FULL_OBJECT"
    )
    for n, body in enumerate([b"hello ", b"world"], start=1):
        await upload_checked(svc, bucket, "f", up.upload_id, n, body, "CRC32")
    parts = [CompletedPart(part_number=1), CompletedPart(part_number=2)]
    with pytest.raises(BadDigest):
        await svc.complete_multipart_upload(
            bucket, "f", up.upload_id, parts, expected_checksums={"CRC32": "AAAAAA=="}
        )
    # Nothing committed, no temp file left, the upload still open.
    with pytest.raises(NoSuchKey):
        await svc.get_object_info(bucket, "f")
    assert tmp_files(data_dir) == []
    assert (await svc.get_multipart_upload(bucket, "f", up.upload_id)).state == "initiated"
    whole = checksum_of("CRC32", b"hello world")
    info = await svc.complete_multipart_upload(
        bucket,
        "f",
        up.upload_id,
        parts,
        expected_checksums={"CRC32": whole},
        expected_checksum_type="FULL_OBJECT",
    )
    assert (info.checksums, info.checksum_type) == ({"CRC32": whole}, "FULL_OBJECT")
    assert await read(svc, bucket, "f") == b"hello world"


@pytest_twisted.ensureDeferred
async def test_part_checksums_kept_per_object_version(
    svc: Any, bucket: str, account: Any, data_dir: str
) -> None:
    up = await create(svc, bucket, "p", account, checksum_algorithm="SHA256")
    bodies = [b"first", b"second"]
    for n, body in enumerate(bodies, start=1):
        await upload_checked(svc, bucket, "p", up.upload_id, n, body, "SHA256")
    await svc.complete_multipart_upload(
        bucket, "p", up.upload_id, [CompletedPart(part_number=1), CompletedPart(part_number=2)]
    )
    info, kept = await svc.get_object_part_checksums(bucket, "p")
    assert info.part_sizes == (5, 6) and info.checksum_type == "COMPOSITE"
    assert kept == (
        {"SHA256": checksum_of("SHA256", b"first")},
        {"SHA256": checksum_of("SHA256", b"second")},
    )
    assert kept_rows(data_dir) == 1
    # A new version (here a plain PUT) has none; the old version's row went with it.
    await put(svc, bucket, "p", b"plain")
    info, kept = await svc.get_object_part_checksums(bucket, "p")
    assert (info.size, kept) == (5, ())
    assert kept_rows(data_dir) == 0
    # An upload without an algorithm keeps none either, and a deleted object is NoSuchKey.
    plain = await create(svc, bucket, "q", account)
    await upload(svc, bucket, "q", plain.upload_id, 1, b"abc")
    await svc.complete_multipart_upload(
        bucket, "q", plain.upload_id, [CompletedPart(part_number=1)]
    )
    assert (await svc.get_object_part_checksums(bucket, "q"))[1] == ()
    await svc.delete_object(bucket, "q")
    with pytest.raises(NoSuchKey):
        await svc.get_object_part_checksums(bucket, "q")


def kept_rows(data_dir: str) -> int:
    with closing(sqlite3.connect(os.path.join(data_dir, "meta", "jay.db"))) as conn:
        return int(conn.execute("SELECT count(*) FROM object_part_checksums").fetchone()[0])
