"""Encrypted objects in the storage service on real files and a real SQLite database: written
encrypted (packs included), read back by range with back-pressure, multipart completion without
decryption, and scrub, startup recovery and quarantine checks that verify the stored bytes
without a key (never quarantining a healthy encrypted object, always a damaged one)."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tracemalloc
from typing import Any

import pytest_twisted
from twisted.internet import task

from jay.checksums import checksum_of
from jay.config.model import ScrubSettings
from jay.maintenance.scrubber import Scrubber
from jay.storage import encryption as enc
from jay.storage.api import CompletedPart, ObjectAttributes
from tests.storage.conftest import (
    CollectingConsumer,
    GeneratingProducer,
    object_file_path,
    start_service,
    stop_service,
)

SEG = enc.SEGMENT_BYTES


async def put_sealed(
    svc: Any, bucket: str, key: str, data: bytes, sealing: enc.Sealing, chunk: int = 50_000
) -> Any:
    writer = svc.begin_write(("CRC32",), sealing=sealing)
    for i in range(0, len(data), chunk):
        writer.write(data[i : i + chunk])
    staged = await writer.finish()
    assert staged.size == len(data) and staged.md5 == hashlib.md5(data).digest()
    attributes = ObjectAttributes(encryption=sealing.record.to_json())
    return await svc.put_object(bucket, key, staged, attributes)


async def read_plain(
    svc: Any,
    bucket: str,
    key: str,
    data_key: bytes,
    start: int = 0,
    length: int | None = None,
    **consumer_args: Any,
) -> bytes:
    opened = await svc.open_object(bucket, key)
    readable = svc.decrypting(opened, data_key)
    consumer = CollectingConsumer(**consumer_args)
    try:
        written = await readable.stream(consumer, start, length)
    finally:
        readable.close()
    assert written == len(consumer.data)
    return bytes(consumer.data)


@pytest_twisted.ensureDeferred
async def test_encrypted_objects_round_trip_and_survive_scrub_and_restart(data_dir: str) -> None:
    # Packs on (the default configuration): an encrypted small object still gets its own file.
    svc = await start_service(data_dir, pack_max_object_bytes=65536)
    try:
        account = await svc.create_account("a")
        await svc.create_bucket("bkt", account.account_id)
        sealing = svc.new_sealing(None)
        small, large = b"tiny secret", os.urandom(3 * SEG + 123)
        info_small = await put_sealed(svc, "bkt", "small", small, sealing)
        sealing_large = svc.new_sealing(None)
        info = await put_sealed(svc, "bkt", "large", large, sealing_large)
        assert info.size == len(large) and info.etag == hashlib.md5(large).hexdigest()
        assert info.checksums == {"CRC32": checksum_of("CRC32", large)}  # of the plaintext
        path = object_file_path(data_dir, info)
        assert os.path.getsize(path) == enc.stored_size(len(large))
        assert open(path, "rb").read(4) == enc.MAGIC
        assert os.path.exists(object_file_path(data_dir, info_small))
        data_key = svc.data_key(info.attributes, None)
        assert await read_plain(svc, "bkt", "large", data_key) == large
        assert (
            await read_plain(svc, "bkt", "small", svc.data_key(info_small.attributes, None))
            == small
        )
        got = await read_plain(
            svc, "bkt", "large", data_key, SEG - 3, SEG + 7, pause_each_write=True
        )
        assert got == large[SEG - 3 : 2 * SEG + 4]
        result = await Scrubber(
            svc, ScrubSettings(sample_rate=1.0, bytes_per_sec=0), clock=task.Clock()
        ).run_pass()
        assert result.checked == 2 and result.quarantined == 0
    finally:
        await stop_service(svc)
    svc = await start_service(data_dir)  # startup recovery compares file sizes
    try:
        assert (await svc.get_object_info("bkt", "large")).state == "active"
        # One flipped bit in the ciphertext: the scrubber quarantines it without any key.
        with open(path, "r+b") as f:
            f.seek(enc.HEADER_BYTES + 10)
            byte = f.read(1)
            f.seek(enc.HEADER_BYTES + 10)
            f.write(bytes([byte[0] ^ 1]))
        result = await Scrubber(
            svc, ScrubSettings(sample_rate=1.0, bytes_per_sec=0), clock=task.Clock()
        ).run_pass()
        assert result.quarantined == 1
        assert (await svc.get_object_info("bkt", "small")).state == "active"
    finally:
        await stop_service(svc)


@pytest_twisted.ensureDeferred
async def test_multipart_completion_concatenates_encrypted_parts(data_dir: str) -> None:
    svc = await start_service(data_dir)
    try:
        account = await svc.create_account("a")
        await svc.create_bucket("bkt", account.account_id)
        customer = enc.CustomerKey(key=os.urandom(32), key_md5="x")
        sealing = svc.new_sealing(customer)
        upload = await svc.create_multipart_upload(
            "bkt", "mp", ObjectAttributes(encryption=sealing.record.to_json()), account.account_id
        )
        parts = {3: os.urandom(SEG + 5), 9: os.urandom(10)}
        for number, data in parts.items():
            writer = svc.begin_write((), sealing=sealing, part_number=number)
            writer.write(data)
            staged = await writer.finish()
            await svc.upload_part("bkt", "mp", upload.upload_id, number, staged)
        info = await svc.complete_multipart_upload(
            "bkt", "mp", upload.upload_id, [CompletedPart(part_number=n) for n in parts]
        )
        whole = b"".join(parts.values())
        assert info.size == len(whole) and info.part_sizes == (SEG + 5, 10)
        assert enc.parse_record(info.attributes.encryption).part_numbers == (3, 9)
        assert os.path.getsize(object_file_path(data_dir, info)) == enc.stored_size_of(
            info.size, info.part_sizes
        )
        data_key = svc.data_key(info.attributes, customer)
        assert await read_plain(svc, "bkt", "mp", data_key) == whole
        assert await read_plain(svc, "bkt", "mp", data_key, SEG, 8) == whole[SEG : SEG + 8]
        # The record names the parts' numbers: claiming others makes every read fail.
        record = dataclasses.replace(
            enc.parse_record(info.attributes.encryption), part_numbers=(1, 2)
        )
        moved = dataclasses.replace(info.attributes, encryption=record.to_json())
        opened = await svc.open_object("bkt", "mp")
        opened.info = dataclasses.replace(opened.info, attributes=moved)
        readable = svc.decrypting(opened, data_key)
        consumer = CollectingConsumer()
        try:
            await readable.stream(consumer)
        except Exception as failure:
            assert "authentication" in str(failure)
        else:
            raise AssertionError("a part read at another position decrypted")
        finally:
            readable.close()
        result = await Scrubber(
            svc, ScrubSettings(sample_rate=1.0, bytes_per_sec=0), clock=task.Clock()
        ).run_pass()
        assert result.checked == 1 and result.quarantined == 0
    finally:
        await stop_service(svc)


@pytest_twisted.ensureDeferred
async def test_ranged_read_of_a_large_object_decrypts_only_its_segments(data_dir: str) -> None:
    svc = await start_service(data_dir)
    try:
        account = await svc.create_account("a")
        await svc.create_bucket("bkt", account.account_id)
        sealing = svc.new_sealing(None)
        data = os.urandom(40 * SEG)
        await put_sealed(svc, "bkt", "big", data, sealing, chunk=1 << 20)
        calls: list[int] = []
        original = enc.decrypt_segment

        def counting(*args: Any) -> bytes:
            calls.append(args[2])
            return original(*args)

        module: Any = enc
        module.decrypt_segment = counting
        try:
            got = await read_plain(svc, "bkt", "big", sealing.data_key, 20 * SEG + 1, 100)
        finally:
            module.decrypt_segment = original
        assert got == data[20 * SEG + 1 : 20 * SEG + 101]
        assert calls == [20]
    finally:
        await stop_service(svc)


@pytest_twisted.ensureDeferred
async def test_encrypted_put_and_get_stay_in_bounded_memory(data_dir: str) -> None:
    """64 MiB through the encrypting writer (fed with back-pressure) and the decrypting reader
    (into a consumer that pauses after every write): traced Python allocations stay at a few
    MiB, far below the body."""
    svc = await start_service(data_dir)
    mib = 1024 * 1024
    total = 64 * mib
    block = os.urandom(mib)
    try:
        account = await svc.create_account("a")
        await svc.create_bucket("bkt", account.account_id)
        sealing = svc.new_sealing(None)
        tracemalloc.start()
        try:
            writer = svc.begin_write((), sealing=sealing)
            producer = GeneratingProducer(
                writer, total, lambda i, n: i.to_bytes(8, "big") + block[8:n], 256 * 1024
            )
            await producer.start()
            staged = await writer.finish()
            info = await svc.put_object(
                "bkt", "big", staged, ObjectAttributes(encryption=sealing.record.to_json())
            )
            _, put_peak = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            opened = await svc.open_object("bkt", "big")
            readable = svc.decrypting(opened, sealing.data_key)
            consumer = CollectingConsumer(keep=False, pause_each_write=True)
            try:
                written = await readable.stream(consumer)
            finally:
                readable.close()
            _, get_peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert written == info.size == total
        assert put_peak < 16 * mib, put_peak
        assert get_peak < 8 * mib, get_peak
        expected = hashlib.sha256()
        for i in range(total // (256 * 1024)):
            expected.update(i.to_bytes(8, "big") + block[8 : 256 * 1024])
        assert consumer.sha256.hexdigest() == expected.hexdigest()
    finally:
        await stop_service(svc)
