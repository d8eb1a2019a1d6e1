"""The cheaper log observers write what twisted's did, for every kind of event."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from twisted.logger import LogLevel, formatEvent, textFileLogObserver
from twisted.python.failure import Failure

from jay.logs import JsonLinesObserver, TextObserver, format_message


class Thing:
    name = "thing"

    def __repr__(self) -> str:
        return "<Thing>"

    def method(self) -> str:
        return "called"


def _failure() -> Failure:
    try:
        raise ValueError("boom")
    except ValueError:
        return Failure()


def events() -> list[dict[str, Any]]:
    base = {"log_time": 1704164645.25, "log_namespace": "jay.s3", "log_level": LogLevel.info}
    return [
        {
            **base,
            "log_format": "{method} {path} {status} {duration_ms:.1f}ms token={token_id} op={op}",
            "method": "GET",
            "path": "/b/k",
            "status": 200,
            "duration_ms": 1.23456,
            "token_id": "",
            "op": "GetObject",
        },
        {
            **base,
            "log_format": "{a!r} {t.name} {d[k]} {{braces}}",
            "a": "x",
            "t": Thing(),
            "d": {"k": 1},
        },
        {**base, "log_format": "call {t.method()}", "t": Thing()},  # twisted's call syntax
        {**base, "log_format": "missing {nothere}"},
        {**base, "log_format": "positional {0}"},
        {**base, "log_format": "two\nlines {x}", "x": "and\nmore"},
        {**base, "log_format": "failed {x}", "x": 1, "log_failure": _failure()},
        {**base, "log_format": None, "log_failure": _failure()},
        {**base, "log_format": "sys", "log_system": "custom"},
        {"log_format": "no time, no level"},
        {**base},  # no format: nothing is written
        {**base, "log_format": "text {x}", "x": "é ✓"},
    ]


@pytest.mark.parametrize("event", events())
def test_text_lines_match_twisted(event: dict[str, Any]) -> None:
    ours, theirs = io.StringIO(), io.StringIO()
    TextObserver(ours)(dict(event))
    textFileLogObserver(theirs)(dict(event))
    assert ours.getvalue() == theirs.getvalue()


@pytest.mark.parametrize("event", events())
def test_messages_match_twisted(event: dict[str, Any]) -> None:
    assert format_message(dict(event)) == formatEvent(dict(event))


def test_the_text_timestamp_follows_the_second() -> None:
    ours, theirs = io.StringIO(), io.StringIO()
    for when in (1704164645.9, 1704164646.0, 1704164646.5, 1704164705.1):
        event = {"log_time": when, "log_format": "tick", "log_level": LogLevel.warn}
        TextObserver(ours)(dict(event))
        textFileLogObserver(theirs)(dict(event))
    assert ours.getvalue() == theirs.getvalue()


@pytest.mark.parametrize("when", [0.0, 1704164645.25, 1704164645.9999, 1704164645.0004, 2e9 + 0.5])
def test_json_time_matches_isoformat(when: float) -> None:
    out = io.StringIO()
    JsonLinesObserver(out)({"log_time": when, "log_format": "x", "log_level": LogLevel.info})
    expected = (
        datetime.fromtimestamp(when, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )
    assert json.loads(out.getvalue())["time"] == expected
