"""The cheaper log observers write what twisted's did, for every kind of event; events a level
filter would drop can be skipped before they are built."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from twisted.logger import (
    Logger,
    LogLevel,
    LogLevelFilterPredicate,
    LogPublisher,
    formatEvent,
    textFileLogObserver,
)
from twisted.python.failure import Failure

from jay.logs import (
    CachingLevelPredicate,
    JsonLinesObserver,
    LevelFilteringObserver,
    TextObserver,
    format_message,
    is_enabled,
    make_observer,
)


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


# --- asking before building an event -----------------------------------------------------------


def test_is_enabled_follows_the_level_of_jays_observer() -> None:
    out = io.StringIO()
    publisher = LogPublisher(make_observer("warn", "text", out))
    log = Logger(namespace="jay.s3", observer=publisher)
    assert not is_enabled(log, LogLevel.info)
    assert is_enabled(log, LogLevel.warn)
    assert is_enabled(log, LogLevel.error)
    log.info("dropped {x}", x=1)
    log.warn("kept {x}", x=2)
    assert "dropped" not in out.getvalue() and "kept 2" in out.getvalue()


def test_is_enabled_when_anyone_else_listens() -> None:
    seen: list[dict[str, Any]] = []
    publisher = LogPublisher(make_observer("error", "text", io.StringIO()), seen.append)
    log = Logger(namespace="jay.s3", observer=publisher)
    assert is_enabled(log, LogLevel.debug)
    assert is_enabled(Logger(namespace="jay.s3", observer=seen.append), LogLevel.debug)
    assert not is_enabled(Logger(namespace="jay.s3", observer=LogPublisher()), LogLevel.critical)


def test_is_enabled_asks_each_jay_observer_and_the_namespace() -> None:
    quiet = make_observer("error", "text", io.StringIO())
    chatty = make_observer("debug", "json", io.StringIO())
    log = Logger(namespace="jay.s3", observer=LogPublisher(quiet, chatty))
    assert is_enabled(log, LogLevel.debug)
    assert isinstance(quiet, LevelFilteringObserver)
    quiet.level_predicate.setLogLevelForNamespace("jay.s3", LogLevel.debug)
    log = Logger(namespace="jay.s3.app", observer=LogPublisher(quiet))
    assert is_enabled(log, LogLevel.debug)
    assert not is_enabled(
        Logger(namespace="jay.native", observer=LogPublisher(quiet)), LogLevel.warn
    )
    assert not is_enabled(Logger(namespace="", observer=LogPublisher(quiet)), LogLevel.critical)


def test_the_level_memo_follows_changes_to_the_predicate() -> None:
    predicate = CachingLevelPredicate(defaultLogLevel=LogLevel.warn)
    assert predicate.logLevelForNamespace("jay.s3.app") == LogLevel.warn
    predicate.setLogLevelForNamespace("jay.s3", LogLevel.debug)
    assert predicate.logLevelForNamespace("jay.s3.app") == LogLevel.debug
    assert predicate.logLevelForNamespace("jay") == LogLevel.warn
    predicate.clearLogLevels()
    assert predicate.logLevelForNamespace("jay.s3.app") == LogLevel.warn
    event = {"log_level": LogLevel.info, "log_namespace": "jay.s3.app"}
    assert predicate(event) == LogLevelFilterPredicate(defaultLogLevel=LogLevel.warn)(event)
