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
    Logger,
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


class CachingLevelPredicate(LogLevelFilterPredicate):
    """``LogLevelFilterPredicate`` that remembers each namespace's level.

    twisted's looks it up again for every event, splitting and re-joining the dotted
    namespace until a configured one matches. The memo is dropped whenever levels change
    through the predicate's own methods (the only way they change).
    """

    def __init__(self, defaultLogLevel: LogLevel = LogLevel.info) -> None:
        self._level_memo: dict[str, LogLevel] = {}
        super().__init__(defaultLogLevel)

    def logLevelForNamespace(self, namespace: str) -> LogLevel:
        level = self._level_memo.get(namespace)
        if level is None:
            level = super().logLevelForNamespace(namespace)
            if len(self._level_memo) >= _MAX_MEMO_NAMESPACES:
                self._level_memo.clear()
            self._level_memo[namespace] = level
        return level

    def setLogLevelForNamespace(self, namespace: str, level: LogLevel) -> None:
        super().setLogLevelForNamespace(namespace, level)
        self._level_memo.clear()

    def clearLogLevels(self) -> None:
        super().clearLogLevels()
        self._level_memo.clear()


# Namespaces are module and class names, a few dozen; the cap only bounds a misuse.
_MAX_MEMO_NAMESPACES = 1024


class LevelFilteringObserver(FilteringLogObserver):
    """The observer ``make_observer`` builds: a level filter that can be asked in advance.

    ``is_enabled`` asks it whether an event would pass, so a hot path (the S3 access event,
    one per request) does not build an event, format nothing and drop it, which cost about
    9 µs per request at the ``warn`` level.
    """

    def __init__(self, observer: ILogObserver, predicate: LogLevelFilterPredicate) -> None:
        super().__init__(observer, [predicate])
        self.level_predicate = predicate

    def accepts(self, level: LogLevel, namespace: str) -> bool:
        """Would an event of ``level`` in ``namespace`` pass the filter (as its predicate says)?"""
        if not namespace:
            return False  # LogLevelFilterPredicate drops events without a namespace
        return not level < self.level_predicate.logLevelForNamespace(namespace)


def is_enabled(logger: Logger, level: LogLevel) -> bool:
    """False only when every observer ``logger`` reaches is a ``LevelFilteringObserver`` that
    drops ``level`` for the logger's namespace: then emitting would have no effect at all.

    ``logger.observer`` is normally the global ``LogPublisher``; its observers are read from
    its ``_observers`` list. Anything else (another observer type, a publisher without that
    list, the start-up buffer before logging begins) counts as "enabled", so an event is
    skipped only when it is certain nobody would see it.
    """
    observer = logger.observer
    observers = getattr(observer, "_observers", None)
    if type(observers) is not list:
        observers = [observer]
    namespace = logger.namespace
    for each in observers:
        if type(each) is not LevelFilteringObserver or each.accepts(level, namespace):
            return True
    return False


def make_observer(level: str, log_format: str, stream: IO[str] | None = None) -> ILogObserver:
    stream = stream or sys.stdout
    base: ILogObserver = JsonLinesObserver(stream) if log_format == "json" else TextObserver(stream)
    predicate = CachingLevelPredicate(defaultLogLevel=LEVELS.get(level.lower(), LogLevel.info))
    return LevelFilteringObserver(_Redacting(base), predicate)
