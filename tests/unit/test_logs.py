from __future__ import annotations

import io
import json

from twisted.logger import Logger, LogPublisher

from jay.logs import make_observer


def _emit(level: str, fmt: str) -> str:
    out = io.StringIO()
    publisher = LogPublisher(make_observer(level, fmt, out))
    log = Logger(namespace="jay.test", observer=publisher)
    log.debug("debug {n}", n=1)
    log.info("stored {bucket}/{key}", bucket="b", key="k", size=5)
    log.warn("careful {secret}", secret="hunter2")
    return out.getvalue()


def test_json_lines_keep_fields_and_honour_level() -> None:
    lines = [json.loads(line) for line in _emit("info", "json").splitlines()]
    assert [r["level"] for r in lines] == ["info", "warn"]
    assert lines[0]["message"] == "stored b/k"
    assert lines[0]["bucket"] == "b" and lines[0]["size"] == 5
    assert lines[0]["namespace"] == "jay.test"


def test_secret_fields_are_redacted() -> None:
    text = _emit("debug", "json") + _emit("debug", "text")
    assert "hunter2" not in text
    assert "<redacted>" in text


def test_text_format_and_debug_level() -> None:
    text = _emit("debug", "text")
    assert "debug 1" in text and "stored b/k" in text
    assert "debug 1" not in _emit("warn", "text")
