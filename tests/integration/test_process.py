"""jay as a real twistd process: starts on a config file, answers health, fails fast on bad
configuration."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.integration.jayproc import BIN, CLEAN_EXIT, JayProcess, http_get


def test_starts_with_config_file_and_answers_health(tmp_path: Path) -> None:
    jay = JayProcess(tmp_path).start()
    try:
        assert http_get(jay.admin_url + "/health/live") == (200, b'{"status":"alive"}\n')
        assert http_get(jay.admin_url + "/health/ready") == (200, b'{"status":"ready"}\n')
        assert http_get(jay.admin_url + "/health")[0] == 200
        status, body = http_get(jay.admin_url + "/nope")
        assert status == 404
        assert (tmp_path / "data" / "meta" / "jay.db").exists()
    finally:
        assert jay.stop() in CLEAN_EXIT
    assert "jay is ready" in jay.log_text()
    assert "Server Shut Down." in jay.log_text()


def test_generated_secrets_are_private_and_reused(tmp_path: Path) -> None:
    jay = JayProcess(tmp_path)
    del jay.settings["admin_token"], jay.settings["signing_secret"]
    jay.start()
    secrets_file = tmp_path / "data" / "secrets.json"
    try:
        assert secrets_file.stat().st_mode & 0o777 == 0o600
        first = json.loads(secrets_file.read_text())
        assert len(first["admin_token"]) >= 32 and len(first["signing_secret"]) >= 32
    finally:
        assert jay.stop() in CLEAN_EXIT
    log = jay.log_text()
    assert first["admin_token"] not in log and first["signing_secret"] not in log
    assert str(secrets_file) in log
    jay.start()
    try:
        assert json.loads(secrets_file.read_text()) == first
    finally:
        assert jay.stop() in CLEAN_EXIT


def _run_bad_config(
    tmp_path: Path, settings: dict[str, object]
) -> subprocess.CompletedProcess[str]:
    cfg = tmp_path / "bad.yml"
    cfg.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "data"), **settings}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAY_")}
    return subprocess.run(
        [str(BIN / "twistd"), "-n", "--pidfile=", "jay", "--config", str(cfg)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_bad_config_exits_non_zero_with_clear_message(tmp_path: Path) -> None:
    result = _run_bad_config(tmp_path, {"scrub": {"sample_rate": 1.5}})
    assert result.returncode != 0
    assert "scrub.sample_rate" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "data" / "meta" / "jay.db").exists()


def test_short_admin_token_is_refused(tmp_path: Path) -> None:
    result = _run_bad_config(tmp_path, {"admin_token": "tinytoken"})
    assert result.returncode != 0
    assert "admin_token" in result.stderr
    assert "tinytoken" not in result.stderr


def test_plugin_is_listed_by_twistd() -> None:
    out = subprocess.run([str(BIN / "twistd"), "--help"], capture_output=True, text=True, cwd="/")
    assert "jay" in out.stdout
    assert sys.executable
