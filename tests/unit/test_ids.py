"""jay.ids: buffered random ids are well-formed, unique, and not shared with a forked child."""

from __future__ import annotations

import os
import re
import uuid

from jay import ids


def test_uuid4_strings_are_version_4_and_unique() -> None:
    made = [ids.uuid4() for _ in range(5000)]  # several buffer refills
    assert len(set(made)) == len(made)
    for text in made[:100]:
        parsed = uuid.UUID(text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122 and str(parsed) == text


def test_random_hex() -> None:
    assert re.fullmatch("[0-9a-f]{32}", ids.random_hex(16))
    assert ids.random_hex(16) != ids.random_hex(16)
    assert len(ids.random_hex(5000)) == 10000  # more than one buffer at once


def test_a_forked_child_does_not_repeat_the_parents_ids() -> None:
    ids.uuid4()  # the parent's buffer is filled
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.write(write_end, ids.uuid4().encode())
        finally:
            os._exit(0)
    os.close(write_end)
    child_id = os.read(read_end, 100).decode()
    os.close(read_end)
    os.waitpid(pid, 0)
    assert uuid.UUID(child_id).version == 4
    assert child_id != ids.uuid4()


def test_format_uuid4_is_what_the_uuid_module_makes() -> None:
    for raw in [bytes(16), b"\xff" * 16, *(os.urandom(16) for _ in range(2000))]:
        assert ids.format_uuid4(raw) == str(uuid.UUID(bytes=raw, version=4))
