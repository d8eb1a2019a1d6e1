"""First-start secrets in <data_dir>/secrets.json (mode 0600), reused afterwards."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from twisted.logger import Logger, LogLevel, formatEvent

from jay.config.generated import ensure_secrets, secrets_path
from jay.config.model import Config
from jay.errors import ConfigError

TOKEN = "T" * 40
SECRET = "S" * 40


class Captured:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.log = Logger(namespace="jay.config", observer=self.events.append)

    def messages(self, level: LogLevel) -> list[str]:
        return [formatEvent(e) for e in self.events if e["log_level"] == level]


def mode_of(path: str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_generated_on_first_start_and_reused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data" / "nested"  # created if missing
    config = Config(data_dir=str(data_dir))
    captured = Captured()

    first = ensure_secrets(config, log=captured.log)
    path = secrets_path(str(data_dir))
    assert path == str(data_dir / "secrets.json")
    for value in (first.admin_token, first.signing_secret):
        assert len(value) == 64 and int(value, 16) >= 0 and value == value.lower()
    assert first.admin_token != first.signing_secret
    assert mode_of(path) == 0o600
    assert json.loads(Path(path).read_text()) == {
        "admin_token": first.admin_token,
        "signing_secret": first.signing_secret,
    }
    assert sorted(os.listdir(data_dir)) == ["secrets.json"]  # no temp file left behind
    assert first.data_dir == config.data_dir and first.scrub == config.scrub

    second = ensure_secrets(config, log=captured.log)
    assert (second.admin_token, second.signing_secret) == (first.admin_token, first.signing_secret)

    infos = captured.messages(LogLevel.info)
    assert infos[0] == f"Generated admin token and signing secret into {path}"
    assert all(path in message for message in infos)
    logged = repr(captured.events)
    assert first.admin_token not in logged and first.signing_secret not in logged


def test_created_with_mode_0600_despite_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        ensure_secrets(Config(data_dir=str(tmp_path)), log=Captured().log)
    finally:
        os.umask(old)
    assert mode_of(secrets_path(str(tmp_path))) == 0o600


def test_configured_values_untouched_and_no_file(tmp_path: Path) -> None:
    config = Config(data_dir=str(tmp_path), admin_token=TOKEN, signing_secret=SECRET)
    assert ensure_secrets(config) is config
    assert not os.path.exists(secrets_path(str(tmp_path)))


def test_configured_value_wins_over_file(tmp_path: Path) -> None:
    generated = ensure_secrets(Config(data_dir=str(tmp_path)), log=Captured().log)

    only_token = ensure_secrets(
        Config(data_dir=str(tmp_path), admin_token=TOKEN), log=Captured().log
    )
    assert only_token.admin_token == TOKEN
    assert only_token.signing_secret == generated.signing_secret

    only_secret = ensure_secrets(
        Config(data_dir=str(tmp_path), signing_secret=SECRET), log=Captured().log
    )
    assert only_secret.signing_secret == SECRET
    assert only_secret.admin_token == generated.admin_token
    # The file keeps the generated values.
    stored = json.loads(Path(secrets_path(str(tmp_path))).read_text())
    assert stored["admin_token"] == generated.admin_token


def test_one_configured_on_first_start_still_creates_file(tmp_path: Path) -> None:
    config = ensure_secrets(Config(data_dir=str(tmp_path), admin_token=TOKEN), log=Captured().log)
    stored = json.loads(Path(secrets_path(str(tmp_path))).read_text())
    assert config.admin_token == TOKEN
    assert config.signing_secret == stored["signing_secret"]


def test_broad_mode_is_tightened_with_warning(tmp_path: Path) -> None:
    first = ensure_secrets(Config(data_dir=str(tmp_path)), log=Captured().log)
    path = secrets_path(str(tmp_path))
    os.chmod(path, 0o644)
    captured = Captured()
    again = ensure_secrets(Config(data_dir=str(tmp_path)), log=captured.log)
    assert again.admin_token == first.admin_token
    assert mode_of(path) == 0o600
    assert captured.messages(LogLevel.warn) == [
        f"Secrets file {path} had mode 0644, broader than 0600; tightened it"
    ]


def test_strict_mode_no_warning(tmp_path: Path) -> None:
    ensure_secrets(Config(data_dir=str(tmp_path)), log=Captured().log)
    os.chmod(secrets_path(str(tmp_path)), 0o400)
    captured = Captured()
    ensure_secrets(Config(data_dir=str(tmp_path)), log=captured.log)
    assert captured.messages(LogLevel.warn) == []


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not json",
        b"\xff\xfe",
        b"[]",
        b'{"admin_token": "' + b"a" * 64 + b'"}',
        b'{"admin_token": "tooshortvalue", "signing_secret": "' + b"b" * 64 + b'"}',
        b'{"admin_token": 5, "signing_secret": "' + b"b" * 64 + b'"}',
        b" " * 70_000,
    ],
)
def test_corrupt_file(tmp_path: Path, content: bytes) -> None:
    path = secrets_path(str(tmp_path))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, content)
    os.close(fd)
    with pytest.raises(ConfigError) as info:
        ensure_secrets(Config(data_dir=str(tmp_path)), log=Captured().log)
    assert info.value.message.startswith(f"secrets file {path}: corrupt")
    assert "tooshortvalue" not in info.value.message and "aaaa" not in info.value.message
    assert Path(path).read_bytes() == content  # never overwritten


def test_symlink_refused(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.json"
    target.write_text(json.dumps({"admin_token": "a" * 64, "signing_secret": "b" * 64}))
    os.symlink(target, secrets_path(str(tmp_path)))
    with pytest.raises(ConfigError) as info:
        ensure_secrets(Config(data_dir=str(tmp_path)), log=Captured().log)
    assert "symbolic link" in info.value.message


def test_existing_file_from_another_process_is_adopted(tmp_path: Path) -> None:
    values = {"admin_token": "a" * 64, "signing_secret": "b" * 64}
    fd = os.open(secrets_path(str(tmp_path)), os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, json.dumps(values).encode())
    os.close(fd)
    config = ensure_secrets(Config(data_dir=str(tmp_path)), log=Captured().log)
    assert (config.admin_token, config.signing_secret) == (
        values["admin_token"],
        values["signing_secret"],
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_unwritable_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "ro"
    data_dir.mkdir(mode=0o500)
    try:
        with pytest.raises(ConfigError) as info:
            ensure_secrets(Config(data_dir=str(data_dir)), log=Captured().log)
    finally:
        data_dir.chmod(0o700)
    assert "cannot write" in info.value.message


def test_data_dir_is_a_file(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    with pytest.raises(ConfigError) as info:
        ensure_secrets(Config(data_dir=str(not_a_dir)), log=Captured().log)
    assert info.value.message == (
        f"secrets file {not_a_dir}/secrets.json: cannot open: Not a directory"
    )
