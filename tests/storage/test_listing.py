"""Listing (JAY_SPEC §2.8 with its gaps fixed) checked against a brute-force model.

The model: keys in UTF-8 byte order, those starting with ``prefix`` and greater than
``start_after`` (S3's rule: keys after it, rolled up as usual); with a delimiter, a key whose
remainder after the prefix contains it becomes the common prefix up to and including its first
occurrence, emitted once. Pages of ``max_keys`` entries of either kind, fed back through
``next_start_after``, must concatenate to exactly that sequence.
"""

from __future__ import annotations

import hashlib
import itertools
import sqlite3
from typing import Any

import pytest
import pytest_twisted
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.defer import gatherResults

from jay.storage import metadata
from jay.storage.api import ListedObject, ListPage, ObjectAttributes

from .conftest import md5_hex, put, stage

# Characters chosen to catch ordering bugs: "/" and "." sort below letters, U+FFFF sorts below
# U+1F600 in UTF-8 (and code points) but above it in UTF-16; "\x7f" and "é" straddle ASCII;
# U+10FFFF is the largest code point, a tempting (and wrong) "after everything" sentinel.
ALPHABET = ["a", "b", "/", ".", "é", "\uffff", "😀", " ", "%", "\x7f", "ab", "\U0010ffff"]
DELIMITERS = ["", "", "/", "/", "a", "/a", "😀", "é/", "%2F", "b"]

_bucket_numbers = itertools.count()


def utf8(s: str) -> bytes:
    return s.encode("utf-8")


def model(keys: list[str], prefix: str, delimiter: str, start_after: str) -> list[tuple[str, bool]]:
    """(name, is_common_prefix) in listing order."""
    entries: list[tuple[str, bool]] = []
    seen: set[str] = set()
    for key in sorted(set(keys), key=utf8):
        if not key.startswith(prefix):
            continue
        if start_after and utf8(key) <= utf8(start_after):
            continue
        if delimiter:
            rest = key[len(prefix) :]
            i = rest.find(delimiter)
            if i >= 0:
                cp = prefix + rest[: i + len(delimiter)]
                if cp not in seen:
                    seen.add(cp)
                    entries.append((cp, True))
                continue
        entries.append((key, False))
    assert entries == sorted(entries, key=lambda e: utf8(e[0]))
    return entries


def page_entries(page: ListPage) -> list[tuple[str, bool]]:
    entries = [(o.key, False) for o in page.objects] + [(p, True) for p in page.common_prefixes]
    return sorted(entries, key=lambda e: utf8(e[0]))


async def paginate(
    svc: Any, bucket: str, prefix: str, delimiter: str, start_after: str, page_size: int
) -> list[tuple[str, bool]]:
    """All entries, page by page, checking the page invariants on the way."""
    collected: list[tuple[str, bool]] = []
    cursor = start_after
    for _ in range(1000):
        page = await svc.list_objects(
            bucket, prefix=prefix, delimiter=delimiter, start_after=cursor, max_keys=page_size
        )
        entries = page_entries(page)
        assert len(entries) <= page_size
        # Objects and common prefixes each come sorted, without duplicates.
        keys = [o.key for o in page.objects]
        assert keys == sorted(keys, key=utf8) and len(set(keys)) == len(keys)
        cps = list(page.common_prefixes)
        assert cps == sorted(cps, key=utf8) and len(set(cps)) == len(cps)
        collected += entries
        if not page.is_truncated:
            assert page.next_start_after == ""
            return collected
        # Truncated only when the page is full (and something more really exists, checked by
        # the caller against the model).
        assert len(entries) == page_size
        assert page.next_start_after != ""
        cursor = page.next_start_after
    raise AssertionError("listing did not terminate")


key_text = st.lists(st.sampled_from(ALPHABET), min_size=1, max_size=5).map("".join)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
@pytest_twisted.ensureDeferred
async def test_listing_matches_model_at_every_page_size(
    svc: Any, account: Any, data: st.DataObject
) -> None:
    keys = data.draw(st.lists(key_text, max_size=14, unique=True), label="keys")
    prefix_choices = [st.just(""), key_text.map(lambda s: s[:2])]
    if keys:
        prefix_choices.append(
            st.sampled_from(keys).flatmap(lambda k: st.integers(0, len(k)).map(lambda n: k[:n]))
        )
    prefix = data.draw(st.one_of(*prefix_choices), label="prefix")
    delimiter = data.draw(st.sampled_from(DELIMITERS), label="delimiter")
    start_after = data.draw(
        st.one_of(st.just(""), st.just(""), key_text, st.sampled_from(keys or [""])),
        label="start_after",
    )

    bucket = f"list-{next(_bucket_numbers):06d}"
    await svc.create_bucket(bucket, account.account_id)
    staged = [await stage(svc, utf8(k)) for k in keys]
    await gatherResults(
        [
            svc.put_object(bucket, k, s, ObjectAttributes())
            for k, s in zip(keys, staged, strict=True)
        ]
    )

    expected = model(keys, prefix, delimiter, start_after)

    # One big page: everything, with correct object details.
    full = await svc.list_objects(
        bucket, prefix=prefix, delimiter=delimiter, start_after=start_after
    )
    assert page_entries(full) == expected
    assert full.is_truncated is False
    assert full.next_start_after == ""
    for obj in full.objects:
        assert obj.size == len(utf8(obj.key))
        assert obj.etag == md5_hex(utf8(obj.key))
        assert obj.sha256_hex == hashlib.sha256(utf8(obj.key)).hexdigest()
        assert obj.content_type == "application/octet-stream"

    for page_size in range(1, len(expected) + 2):
        got = await paginate(svc, bucket, prefix, delimiter, start_after, page_size)
        assert got == expected, (page_size, got, expected)

    # Clean up so the service stays small across examples.
    for k in keys:
        await svc.delete_object(bucket, k)
    await svc.delete_bucket(bucket)


@pytest_twisted.ensureDeferred
async def test_truncated_page_of_only_common_prefixes(svc: Any, bucket: str) -> None:
    """Upstream gaps (§2.8): a page ending on a common prefix must not repeat it, and a page of
    only common prefixes must still say where to continue."""
    for key in ("a/1", "a/2", "a/3", "b/1", "b/2", "c", "d/x/y"):
        await put(svc, bucket, key, b"")
    names = []
    cursor = ""
    while True:
        page = await svc.list_objects(bucket, delimiter="/", start_after=cursor, max_keys=1)
        names += [o.key for o in page.objects] + list(page.common_prefixes)
        if not page.is_truncated:
            break
        assert page.next_start_after
        cursor = page.next_start_after
    assert names == ["a/", "b/", "c", "d/"]

    page = await svc.list_objects(bucket, delimiter="/", max_keys=2)
    assert page.common_prefixes == ("a/", "b/")
    assert page.objects == ()
    assert page.is_truncated is True
    rest = await svc.list_objects(
        bucket, delimiter="/", max_keys=2, start_after=page.next_start_after
    )
    assert [o.key for o in rest.objects] == ["c"]
    assert rest.common_prefixes == ("d/",)
    assert rest.is_truncated is False


@pytest_twisted.ensureDeferred
async def test_continuation_after_common_prefix_with_max_code_point_keys(
    svc: Any, bucket: str
) -> None:
    """No sentinel character is "after every key": U+10FFFF may itself follow the delimiter."""
    keys = ["a/\U0010ffff", "a/\U0010ffff\U0010ffffz", "a/\U0010ffffb", "a0", "b"]
    for key in keys:
        await put(svc, bucket, key, b"")
    for page_size in (1, 2, 3):
        got = await paginate(svc, bucket, "", "/", "", page_size)
        assert got == [("a/", True), ("a0", False), ("b", False)], page_size
    got = await paginate(svc, bucket, "a/", "\U0010ffff", "", 1)
    assert got == [("a/\U0010ffff", True)]


@pytest_twisted.ensureDeferred
async def test_client_start_after_inside_a_group_keeps_s3_semantics(svc: Any, bucket: str) -> None:
    """S3 lists the keys after StartAfter and rolls them up as usual, so a StartAfter inside a
    group brings the group's common prefix back. That holds for every string a client may send,
    including one that ends in U+10FFFF: a continuation position must not be a string a client
    could mean differently (one longer than any 1024-byte key would do)."""
    for key in ("a/1", "a/2", "a/\U0010ffffb", "b"):
        await put(svc, bucket, key, b"")
    page = await svc.list_objects(bucket, delimiter="/", start_after="a/1")
    assert page.common_prefixes == ("a/",)
    assert [o.key for o in page.objects] == ["b"]
    page = await svc.list_objects(bucket, delimiter="/", start_after="a/\U0010ffff")
    assert page.common_prefixes == ("a/",)
    assert [o.key for o in page.objects] == ["b"]
    page = await svc.list_objects(bucket, delimiter="/", start_after="a/\U0010ffffb")
    assert page.common_prefixes == ()
    assert [o.key for o in page.objects] == ["b"]


@pytest_twisted.ensureDeferred
async def test_is_truncated_only_when_more_exists(svc: Any, bucket: str) -> None:
    for key in ("k1", "k2", "k3"):
        await put(svc, bucket, key, b"")
    exact = await svc.list_objects(bucket, max_keys=3)
    assert [o.key for o in exact.objects] == ["k1", "k2", "k3"]
    assert exact.is_truncated is False
    assert exact.next_start_after == ""
    short = await svc.list_objects(bucket, max_keys=2)
    assert [o.key for o in short.objects] == ["k1", "k2"]
    assert short.is_truncated is True
    last = await svc.list_objects(bucket, max_keys=2, start_after=short.next_start_after)
    assert [o.key for o in last.objects] == ["k3"]
    assert last.is_truncated is False


@pytest_twisted.ensureDeferred
async def test_utf8_byte_order(svc: Any, bucket: str) -> None:
    keys = ["\uffff", "😀", "z", "é", "Z", "a/b", "a", "a0", "\x7f", "~"]
    for key in keys:
        await put(svc, bucket, key, b"")
    page = await svc.list_objects(bucket)
    assert [o.key for o in page.objects] == sorted(keys, key=utf8)
    # "\uffff" (EF BF BF) sorts before "😀" (F0 9F 98 80) in UTF-8, unlike UTF-16.
    listed = [o.key for o in page.objects]
    assert listed.index("\uffff") < listed.index("😀")


@pytest_twisted.ensureDeferred
async def test_listing_excludes_other_buckets_and_staged_bodies(
    svc: Any, account: Any, bucket: str
) -> None:
    await svc.create_bucket("other", account.account_id)
    await put(svc, "other", "elsewhere", b"x")
    await put(svc, bucket, "here", b"x")
    writer = svc.begin_write()
    writer.write(b"in flight")
    page = await svc.list_objects(bucket)
    assert [o.key for o in page.objects] == ["here"]
    await writer.abort()


@pytest.mark.parametrize("batch_size", [1, 2, 3, 5, 1000])
def test_batched_reads_match_the_model(monkeypatch: pytest.MonkeyPatch, batch_size: int) -> None:
    """The query loop reads rows in batches: max_keys + 1 without a delimiter, few right after
    skipping a common prefix and more while none comes. Any batch size gives the model's pages,
    also where a batch ends on the row that tells a page is truncated."""
    monkeypatch.setattr(metadata, "BATCH_SIZE", batch_size)
    conn = sqlite3.connect(":memory:")
    for statement in metadata.SCHEMA:
        conn.execute(statement)
    for bucket_id, name in (("b1", "listed"), ("b0", "other")):
        conn.execute(
            "INSERT INTO buckets (bucket_id, name, owner_account_id, created_at, visibility) "
            "VALUES (?, ?, 'a', 0, 'private')",
            (bucket_id, name),
        )
    # "Directories" of 0 to 6 files between plain files, one nested, some rows quarantined.
    keys = [f"f{i:02d}" for i in range(0, 40, 3)]
    keys += [f"d{i:02d}/f{j}" for i in range(12) for j in range(i % 7)]
    keys += ["d03/x/y", "d03/x/z", "d11/é", "é/1", "é/2"]
    quarantined = {"d04/f0", "f03", "d06/f5", "é/1"}
    for index, key in enumerate(keys):
        for bucket_id in ("b1", "b0"):
            conn.execute(
                "INSERT INTO objects (bucket_id, key, object_id, state, size, etag, sha256, "
                "content_type, attrs_json, checksums_json, checksum_type, part_sizes_json, "
                "location_ref, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, 'e', 's', 'text/plain', '', '{}', '', '[]', 'x', 0, ?)",
                (
                    bucket_id,
                    key,
                    f"{bucket_id}-{index}",
                    "quarantined" if key in quarantined else "active",
                    index,
                    index + 0.5,
                ),
            )
    active = [key for key in keys if key not in quarantined]
    for prefix, delimiter, start_after in [
        ("", "", ""),
        ("", "/", ""),
        ("", "/", "d03/"),
        ("d0", "/", ""),
        ("d03/", "/", ""),
        ("", "0", "d"),
        ("é", "/", ""),
    ]:
        expected = model(active, prefix, delimiter, start_after)
        for page_size in (1, 2, 3, 4, 7, 1000):
            collected: list[tuple[str, bool]] = []
            cursor = start_after
            while True:
                page = metadata.list_objects(conn, "listed", prefix, delimiter, cursor, page_size)
                entries = page_entries(page)
                assert len(entries) <= page_size
                collected += entries
                if not page.is_truncated:
                    break
                assert len(entries) == page_size
                cursor = page.next_start_after
            assert collected == expected, (prefix, delimiter, page_size)
        for empty in (0, -1):
            page = metadata.list_objects(conn, "listed", prefix, delimiter, start_after, empty)
            assert (page.objects, page.common_prefixes, page.is_truncated) == ((), (), False)
            assert page.next_start_after == ""
        page = metadata.list_objects(conn, "listed", prefix, delimiter, start_after, 1000)
        for entry in page.objects:
            index = keys.index(entry.key)
            assert entry == ListedObject(entry.key, index, "e", "s", index + 0.5, "text/plain")
