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
    formatTime,
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
        if any(name in event for name in SECRET_FIELDS):
            event = {k: ("<redacted>" if k in SECRET_FIELDS else v) for k, v in event.items()}
        self._inner(event)


def format_message(event: dict[str, Any]) -> str:
    """``twisted.logger.formatEvent``, with a fast path for plain ``{field}`` formats.

    The S3 front end logs one access event per request, so formatting is on the hot path:
    twisted's formatter wraps every field to support ``{callable()}`` and costs ~20% of a
    small request's CPU at the info level. ``str.format_map`` gives the same text for plain
    names, attributes, indexes, conversions and format specs; anything it cannot do (a call,
    a missing field, a flattened event) goes to twisted's formatter, whose output for those
    cases is unchanged.
    """
    fmt = event.get("log_format")
    if fmt is None or "log_flattened" in event or "()" in fmt:
        return formatEvent(event)
    try:
        return str(fmt.format_map(event))
    except Exception:  # noqa: BLE001 - twisted's formatter describes the problem instead
        return formatEvent(event)


class _SecondCache:
    """Text for a timestamp whose format has whole seconds, recomputed once a second."""

    __slots__ = ("_format", "_second", "_text")

    def __init__(self, format_seconds: Any) -> None:
        self._format = format_seconds
        self._second: int | None = None
        self._text = ""

    def __call__(self, second: int) -> str:
        if second != self._second:
            self._text = self._format(second)
            self._second = second
        return self._text


@implementer(ILogObserver)
class TextObserver:
    """twisted's classic text lines (``textFileLogObserver``), formatted more cheaply.

    ``<time> [<namespace>#<level>] <message>``, continuation lines indented with a tab and a
    failure's traceback appended, exactly as ``formatEventAsClassicLogText`` writes them; the
    timestamp (whole seconds, local offset) is formatted once per second.
    """

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._time = _SecondCache(lambda second: formatTime(float(second)))

    def __call__(self, event: dict[str, Any]) -> None:
        text = format_message(event)
        failure = event.get("log_failure")
        if failure is not None:
            try:
                traceback = failure.getTraceback()
            except BaseException as e:  # noqa: BLE001 - as twisted's formatter does
                traceback = "(UNABLE TO OBTAIN TRACEBACK FROM EVENT):" + str(e)
            text = text + "\n" + traceback
        if not text:
            return
        when = event.get("log_time")
        stamp = "-" if when is None else self._time(int(when))
        system = event.get("log_system")
        if system is None:
            level = event.get("log_level")
            system = f"{event.get('log_namespace', '-')}#{level.name if level is not None else '-'}"
        line = f"{stamp} [{system}] {text}".replace("\n", "\n\t") + "\n"
        self._stream.write(line)
        self._stream.flush()


def _utc_seconds(second: int) -> str:
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")


_SKIP = frozenset(
    {
        "log_logger",
        "log_source",
        "log_format",
        "log_flattened",
        "log_trace",
        "log_io",
        "log_time",
        "log_level",
        "log_namespace",
        "log_failure",
        "format",
        "message",
        "isError",
        "system",
        "time",
    }
)


@implementer(ILogObserver)
class JsonLinesObserver:
    """One compact JSON object per event: time, level, namespace, message, and the event's
    plain fields (strings, numbers, booleans), so log shippers can index them."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._seconds = _SecondCache(_utc_seconds)

    def _time(self, when: float) -> str:
        # As datetime.fromtimestamp(when, UTC).isoformat(timespec="milliseconds"), with the
        # whole-second part formatted once a second.
        micros = round(when * 1_000_000)
        second, fraction = divmod(micros, 1_000_000)
        return f"{self._seconds(second)}.{fraction // 1000:03d}Z"

    def __call__(self, event: dict[str, Any]) -> None:
        record: dict[str, Any] = {
            "time": self._time(event.get("log_time", 0)),
            "level": getattr(event.get("log_level"), "name", "info"),
            "namespace": event.get("log_namespace", ""),
            "message": format_message(event),
        }
        for key, value in event.items():
            if (
                key not in _SKIP
                and isinstance(value, (str, int, float, bool))
                and key not in record
            ):
                record[key] = value
        failure = event.get("log_failure")
        if failure is not None:
            record["traceback"] = failure.getTraceback()
        self._stream.write(json.dumps(record, default=str) + "\n")
        self._stream.flush()


def make_observer(level: str, log_format: str, stream: IO[str] | None = None) -> ILogObserver:
    stream = stream or sys.stdout
    base: ILogObserver = JsonLinesObserver(stream) if log_format == "json" else TextObserver(stream)
    predicate = LogLevelFilterPredicate(defaultLogLevel=LEVELS.get(level.lower(), LogLevel.info))
    return FilteringLogObserver(_Redacting(base), [predicate])
