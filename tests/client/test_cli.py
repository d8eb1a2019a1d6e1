"""jay-native as a real subprocess against the fake server on loopback."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.interfaces import IListeningPort
from twisted.internet.utils import getProcessOutputAndValue

from jay.cli.native import UsageError, parse_metadata, parse_token, split_remote
from tests.client.fakeserver import SECRET, TOKEN_ID, FakeServerFactory, FakeState, Stored


class Served:
    def __init__(self, port: IListeningPort, state: FakeState) -> None:
        self.port = port
        self.state = state
        self.endpoint = f"127.0.0.1:{port.getHost().port}"  # type: ignore[attr-defined]

    async def cli(
        self, *argv: str, token: str = f"{TOKEN_ID}:{SECRET}"
    ) -> tuple[bytes, bytes, int]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("JAY_")}
        env["JAY_NATIVE_TOKEN"] = token
        env["JAY_NATIVE_ENDPOINT"] = self.endpoint
        out, err, code = await getProcessOutputAndValue(
            sys.executable, ["-m", "jay.cli.native", *argv], env=env, path=os.getcwd()
        )
        return out, err, code


@pytest_twisted.async_yield_fixture
async def served() -> AsyncIterator[Served]:
    state = FakeState()
    port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(
        FakeServerFactory(state)
    )
    yield Served(port, state)
    await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_cli_bucket_and_object_commands(served: Served, tmp_path: Path) -> None:
    out, err, code = await served.cli("mb", "photos")
    assert code == 0, err
    out, err, code = await served.cli("ls")
    assert code == 0 and b"photos" in out
    source = tmp_path / "note.txt"
    source.write_bytes(b"hello")
    out, err, code = await served.cli("put", str(source), "photos/docs/note.txt", "--meta", "a=b")
    assert code == 0, err
    assert out.startswith(b"5d41402abc4b2a76b9719d911017c592")
    stored = served.state.buckets["photos"]["docs/note.txt"]
    assert stored.content_type == "text/plain" and stored.metadata == {"a": "b"}
    out, err, code = await served.cli("ls", "photos")
    assert code == 0 and b"docs/" in out
    out, err, code = await served.cli("ls", "-r", "photos/docs/")
    assert code == 0 and b"docs/note.txt" in out
    out, err, code = await served.cli("stat", "photos/docs/note.txt")
    assert b"size: 5" in out and b"meta a: b" in out
    out, err, code = await served.cli("get", "photos/docs/note.txt", "-")
    assert (out, code) == (b"hello", 0)
    target = tmp_path / "copy.txt"
    out, err, code = await served.cli("cp", "jay://photos/docs/note.txt", str(target))
    assert code == 0, err
    assert target.read_bytes() == b"hello"
    out, err, code = await served.cli("cp", str(source), "jay://photos/")
    assert code == 0, err
    assert served.state.buckets["photos"]["note.txt"].data == b"hello"
    out, err, code = await served.cli("rm", "photos/docs/note.txt")
    assert code == 0 and "docs/note.txt" not in served.state.buckets["photos"]


@pytest_twisted.ensureDeferred
async def test_cli_large_transfer_with_progress(served: Served, tmp_path: Path) -> None:
    payload = os.urandom(6 * 1024 * 1024)
    served.state.buckets["b"] = {}
    source = tmp_path / "big.bin"
    source.write_bytes(payload)
    out, err, code = await served.cli("put", str(source), "b/big.bin")
    assert code == 0, err
    assert served.state.buckets["b"]["big.bin"].data == payload
    target = tmp_path / "back.bin"
    out, err, code = await served.cli("get", "b/big.bin", str(target))
    assert code == 0, err
    assert target.read_bytes() == payload
    assert not Path(str(target) + ".part").exists()


@pytest_twisted.ensureDeferred
async def test_cli_errors_are_one_line_and_non_zero(served: Served, tmp_path: Path) -> None:
    served.state.buckets["b"] = {"k": Stored(b"x", "text/plain", {})}
    out, err, code = await served.cli("get", "b/missing", str(tmp_path / "x"))
    assert code == 1
    assert err.decode().strip().splitlines() == ["jay-native: error: object not found (NoSuchKey)"]
    assert not (tmp_path / "x").exists() and not (tmp_path / "x.part").exists()
    out, err, code = await served.cli("rb", "b")
    assert code == 1 and b"BucketNotEmpty" in err
    out, err, code = await served.cli("ls", token=f"{TOKEN_ID}:wrong")
    assert code == 1 and err.decode().strip() == "jay-native: error: authentication failed"
    out, err, code = await served.cli("ls", token="no-colon")
    assert code == 1 and b"ID:SECRET" in err
    out, err, code = await served.cli("cp", "a", "b")
    assert code == 1 and b"jay://" in err


def test_argument_helpers() -> None:
    assert split_remote("jay://b/k/x") == ("b", "k/x")
    assert split_remote("b/k") == ("b", "k")
    with pytest.raises(UsageError):
        split_remote("b")
    assert parse_token("id:se:cret") == ("id", "se:cret")
    with pytest.raises(UsageError):
        parse_token(None)
    assert parse_metadata(["a=1", "b="]) == {"a": "1", "b": ""}
    with pytest.raises(UsageError):
        parse_metadata(["nope"])
