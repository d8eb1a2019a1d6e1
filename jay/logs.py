"""Log output for the twistd process: level filter, text or one-JSON-object-per-line format.

jay logs to standard output (run it with ``twistd -n`` under systemd or a container runtime,
which collect stdout). Events are emitted with constant format strings and named fields, so the
JSON form keeps every field (``request_id``, ``token_id``, ``status`` …). Secrets are never put in
events in the first place; ``redact`` is a last line of defence for fields named like one.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import IO, Any

from twisted.logger import (
    FilteringLogObserver,
    ILogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    formatEvent,
    textFileLogObserver,
)
from zope.interface import implementer

LEVELS = {
    "debug": LogLevel.debug,
    "info": LogLevel.info,
    "warn": LogLevel.warn,
    "error": LogLevel.error,
}
SECRET_FIELDS = frozenset({"secret", "admin_token", "signing_secret", "password", "authorization"})


@implementer(ILogObserver)
class _Redacting:
    def __init__(self, inner: ILogObserver) -> None:
        self._inner = inner

    def __call__(self, event: dict[str, Any]) -> None:
        if SECRET_FIELDS.intersection(event):
            event = {k: ("<redacted>" if k in SECRET_FIELDS else v) for k, v in event.items()}
        self._inner(event)


_SKIP = frozenset({"log_logger", "log_source", "log_format", "log_flattened", "log_trace", "log_io",
                   "log_time", "log_level", "log_namespace", "log_failure", "format", "message",
                   "isError", "system", "time"})


@implementer(ILogObserver)
class JsonLinesObserver:
    """One compact JSON object per event: time, level, namespace, message, and the event's
    plain fields (strings, numbers, booleans), so log shippers can index them."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def __call__(self, event: dict[str, Any]) -> None:
        record: dict[str, Any] = {
            "time": datetime.fromtimestamp(event.get("log_time", 0), UTC).isoformat(
                timespec="milliseconds"
            ).replace("+00:00", "Z"),
            "level": getattr(event.get("log_level"), "name", "info"),
            "namespace": event.get("log_namespace", ""),
            "message": formatEvent(event),
        }
        for key, value in event.items():
            if key not in _SKIP and isinstance(value, (str, int, float, bool)) and key not in record:
                record[key] = value
        failure = event.get("log_failure")
        if failure is not None:
            record["traceback"] = failure.getTraceback()
        self._stream.write(json.dumps(record, default=str) + "\n")
        self._stream.flush()


def make_observer(level: str, log_format: str, stream: IO[str] | None = None) -> ILogObserver:
    stream = stream or sys.stdout
    base: ILogObserver = (
        JsonLinesObserver(stream) if log_format == "json" else textFileLogObserver(stream)
    )
    predicate = LogLevelFilterPredicate(defaultLogLevel=LEVELS.get(level.lower(), LogLevel.info))
    return FilteringLogObserver(_Redacting(base), [predicate])
