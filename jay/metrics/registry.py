"""Process metrics: the §4.2 counters, per-operation request counts and durations, gauges.

A leaf: nothing from jay is imported, so storage, front ends and maintenance can all report here.
Every method is meant to be called on the reactor thread (code in a thread pool reports through
``reactor.callFromThread``); counters are plain ints, so ``to_json`` is exact.

What each front end reports (S3 app and native server alike, one call per finished request):

    metrics.observe_request(protocol, operation, status, duration_seconds, bytes_in, bytes_out)

``protocol`` is ``"s3"`` or ``"native"``; ``operation`` is the S3 operation name the router uses
(``PutObject``, ``GetObject``, ``HeadObject``, ``DeleteObject``, ``ListObjects``/``ListObjectsV2``,
``CreateBucket``, ``DeleteBucket``, ``CompleteMultipartUpload``, …; the native server maps its op
codes to the same names, ``Ping`` included); ``status`` is the HTTP status (native: the HTTP status
its status byte corresponds to, 200 for OK). ``bytes_in`` is the decoded body size (no aws-chunked
framing), ``bytes_out`` the body bytes actually sent. From that one call the §4.2 counters follow
(``SUCCESS_COUNTERS``): a 2xx response bumps the operation's ``*_total``; a 2xx PutObject adds
``bytes_in`` to ``bytes_uploaded``; a 2xx GetObject adds ``bytes_out`` to ``bytes_downloaded``
(the range length for a 206). Besides that:

* ``metrics.auth_failure()`` where §3.12 counts one (S3 auth/scope/policy denials);
* ``metrics.count("fsync_failures")`` in the object store, ``count("checksum_failures")`` on a
  read-path or scrub mismatch, ``count("objects_quarantined")`` when an object is quarantined;
* ``metrics.connection_opened(protocol)`` / ``connection_closed(protocol)`` per connection;
* ``metrics.scrub_progress(objects_scanned=…, bytes_scanned=…, pass_complete=…)`` from the scrubber;
* ``metrics.count("lifecycle_objects_expired", n)`` / ``count("lifecycle_uploads_aborted", n)``
  / ``count("lifecycle_versions_expired", n)`` / ``count("lifecycle_delete_markers_removed", n)``
  / ``count("lifecycle_versions_locked", n)``
  from the lifecycle job (``EXTRA_COUNTERS``: Prometheus only, not in the §4.2 JSON).
"""

from __future__ import annotations

import bisect
import dataclasses
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

# JAY_SPEC §4.2: the JSON fields after uptime_seconds, in this order.
COUNTERS: tuple[str, ...] = (
    "put_object_total",
    "get_object_total",
    "delete_object_total",
    "head_object_total",
    "list_objects_total",
    "create_bucket_total",
    "delete_bucket_total",
    "auth_failures",
    "checksum_failures",
    "fsync_failures",
    "objects_quarantined",
    "bytes_uploaded",
    "bytes_downloaded",
)

# Counters beyond the §4.2 JSON object (which keeps its fields): counted with ``count`` like the
# others, summed over workers, and exported to Prometheus only, as jay_<name>_total.
EXTRA_COUNTERS: tuple[tuple[str, str], ...] = (
    ("lifecycle_objects_expired", "Objects deleted by bucket lifecycle expiration rules."),
    (
        "lifecycle_uploads_aborted",
        "Incomplete multipart uploads aborted by bucket lifecycle rules.",
    ),
    (
        "lifecycle_versions_expired",
        "Noncurrent object versions removed by NoncurrentVersionExpiration rules.",
    ),
    (
        "lifecycle_delete_markers_removed",
        "Expired object delete markers removed by ExpiredObjectDeleteMarker rules.",
    ),
    (
        "lifecycle_versions_locked",
        "Noncurrent versions due for expiration but kept because Object Lock protects them.",
    ),
)

# Operation → §4.2 counter bumped by a successful (2xx) request of that operation.
SUCCESS_COUNTERS: dict[str, str] = {
    "PutObject": "put_object_total",
    "GetObject": "get_object_total",
    "DeleteObject": "delete_object_total",
    "HeadObject": "head_object_total",
    "ListObjects": "list_objects_total",
    "ListObjectsV2": "list_objects_total",
    "CreateBucket": "create_bucket_total",
    "DeleteBucket": "delete_bucket_total",
}

PROTOCOLS = ("s3", "native", "admin")

# Request durations from a fast metadata hit to a multi-GiB transfer.
DURATION_BUCKETS_SECONDS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    300.0, math.inf,
)  # fmt: skip


class Clock(Protocol):
    def seconds(self) -> float: ...


def status_class(status: int) -> str:
    """``200`` → ``"2xx"``; anything outside 100–599 is ``"other"``."""
    return f"{status // 100}xx" if 100 <= status <= 599 else "other"


# Distinct (protocol, operation, status) seen: a few dozen in practice.
MAX_CACHED_SERIES = 1024


REQUESTS_HELP = "Finished requests by protocol, operation and status class."
DURATION_HELP = "Time from request start to the last byte of the response."
_BUCKET_LABELS = tuple(floatToGoString(bound) for bound in DURATION_BUCKETS_SECONDS)


class _Durations:
    """One (protocol, operation) series of ``jay_request_duration_seconds``: per-bucket
    counts (not cumulative) and the sum, plain numbers added to on the reactor thread."""

    __slots__ = ("counts", "total", "created")

    def __init__(self, created: float) -> None:
        self.counts = [0] * len(DURATION_BUCKETS_SECONDS)
        self.total = 0.0
        self.created = created

    def observe(self, seconds: float) -> None:
        # The first bucket whose bound is >= seconds, as prometheus_client's Histogram picks.
        self.counts[bisect.bisect_left(DURATION_BUCKETS_SECONDS, seconds)] += 1
        self.total += seconds

    def add(self, counts: list[int], total: float, created: float) -> None:
        for i, n in enumerate(counts):
            self.counts[i] += n
        self.total += total
        self.created = min(self.created, created)

    def copy(self) -> _Durations:
        twin = _Durations(self.created)
        twin.counts = list(self.counts)
        twin.total = self.total
        return twin


@dataclass(slots=True)
class _Scrub:
    """The scrubber's progress as one process saw it (only the maintenance lease holder
    scrubs, so the others keep what they last reported, or zeros)."""

    objects: int = 0
    bytes: int = 0
    passes: int = 0
    last_pass: float = 0.0  # clock seconds of the last completed pass, 0 = never
    updated: float = 0.0  # clock seconds of the last progress report, 0 = none
    created: float = 0.0  # wall clock: the ``_created`` stamp of jay_scrub_passes


@dataclass(slots=True)
class Merged:
    """This process's request series, connections and scrub progress plus its peers'."""

    requests: dict[tuple[str, str, str], tuple[int, float]]  # key -> (count, created)
    durations: dict[tuple[str, str], _Durations]
    bytes_in: dict[str, tuple[int, float]]  # protocol -> (bytes, created)
    bytes_out: dict[str, tuple[int, float]]
    connections: dict[str, int]
    scrub: _Scrub


@dataclass(frozen=True, slots=True)
class _Series:
    """What one kind of finished request (protocol, operation, exact status) updates."""

    key: tuple[str, str, str]  # (protocol, operation, status class): request_counts' key
    duration: _Durations
    is_success: bool  # a 2xx status: the §4.2 counters count it
    success_counter: str | None  # SUCCESS_COUNTERS[operation]


def _add_bytes(counts: dict[str, list[Any]], protocol: str, amount: int) -> None:
    """Count body bytes of ``protocol``; a series exists (and is stamped) from its first bytes,
    as a prometheus_client child appears in the text only once it is first used."""
    entry = counts.get(protocol)
    if entry is None:
        counts[protocol] = [amount, time.time()]
    else:
        entry[0] += amount


class _LegacyCollector:
    """Exports the §4.2 counters and the uptime straight from the ints ``to_json`` reads."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        uptime = GaugeMetricFamily("jay_uptime_seconds", "Whole seconds since the process started.")
        uptime.add_metric([], self._metrics.uptime_seconds())
        yield uptime
        totals = self._metrics.total_counters()
        for name in COUNTERS:
            base = name.removesuffix("_total")
            family = CounterMetricFamily(f"jay_{base}", f"JAY_SPEC 4.2 counter {name}.")
            family.add_metric([], totals[name])
            yield family
        for name, help_text in EXTRA_COUNTERS:
            family = CounterMetricFamily(f"jay_{name}", help_text)
            family.add_metric([], totals[name])
            yield family


class _RequestCollector:
    """Exports ``jay_requests``, ``jay_request_duration_seconds``, the body byte counters
    (``jay_request_bytes_received``, ``jay_response_bytes_sent``), the open connections and the
    scrubber's progress from plain numbers, summed over this process and its peers
    (``Metrics.merged``).

    prometheus_client's ``Counter.inc`` and ``Histogram.observe`` take a lock per value
    (three or more per request) and re-check state each time: about 4 % of a HEAD's CPU. The
    counts live in ``Metrics.request_counts`` and ``_Durations`` instead and are turned into
    the same families, samples and ``_created`` values only when scraped
    (``tests/metrics/test_registry.py`` compares the text with prometheus_client's own).
    """

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def describe(self) -> Iterator[Metric]:
        # What the registry checks names against at registration (before any counts exist).
        yield CounterMetricFamily("jay_requests", REQUESTS_HELP)
        yield HistogramMetricFamily("jay_request_duration_seconds", DURATION_HELP)
        yield CounterMetricFamily(BYTES_IN_NAME, BYTES_IN_HELP)
        yield CounterMetricFamily(BYTES_OUT_NAME, BYTES_OUT_HELP)
        yield GaugeMetricFamily("jay_open_connections", "")
        yield GaugeMetricFamily("jay_scrub_objects_scanned", "")
        yield GaugeMetricFamily("jay_scrub_bytes_scanned", "")
        yield CounterMetricFamily("jay_scrub_passes", "")
        yield GaugeMetricFamily("jay_scrub_last_pass_completed_timestamp_seconds", "")

    def collect(self) -> Iterator[Metric]:
        merged = self._metrics.merged()
        requests = CounterMetricFamily(
            "jay_requests", REQUESTS_HELP, labels=("protocol", "operation", "status_class")
        )
        for key, (n, created) in merged.requests.items():
            requests.add_metric(key, n, created=created)
        yield requests
        durations = HistogramMetricFamily(
            "jay_request_duration_seconds", DURATION_HELP, labels=("protocol", "operation")
        )
        for (protocol, operation), series in merged.durations.items():
            cumulative = 0
            buckets = []
            for label, n in zip(_BUCKET_LABELS, series.counts, strict=True):
                cumulative += n
                buckets.append((label, cumulative))
            durations.add_metric((protocol, operation), buckets, series.total)
            durations.samples.append(
                Sample(
                    "jay_request_duration_seconds_created",
                    {"protocol": protocol, "operation": operation},
                    series.created,
                )
            )
        yield durations
        for name, help_text, counts in (
            (BYTES_IN_NAME, BYTES_IN_HELP, merged.bytes_in),
            (BYTES_OUT_NAME, BYTES_OUT_HELP, merged.bytes_out),
        ):
            family = CounterMetricFamily(name, help_text, labels=("protocol",))
            for protocol, (n, created) in counts.items():
                family.add_metric((protocol,), n, created=created)
            yield family
        connections = GaugeMetricFamily(
            "jay_open_connections", "Open client connections by protocol.", labels=("protocol",)
        )
        for protocol, n in merged.connections.items():
            connections.add_metric((protocol,), n)
        yield connections
        scrub = merged.scrub
        objects = GaugeMetricFamily(
            "jay_scrub_objects_scanned", "Objects verified so far in the current scrub pass."
        )
        objects.add_metric([], scrub.objects)
        yield objects
        scanned = GaugeMetricFamily(
            "jay_scrub_bytes_scanned", "Bytes verified so far in the current scrub pass."
        )
        scanned.add_metric([], scrub.bytes)
        yield scanned
        passes = CounterMetricFamily("jay_scrub_passes", "Completed scrub passes.")
        passes.add_metric([], scrub.passes, created=scrub.created)
        yield passes
        last = GaugeMetricFamily(
            "jay_scrub_last_pass_completed_timestamp_seconds",
            "When the last complete scrub pass finished (Unix seconds, 0 = never).",
        )
        last.add_metric([], scrub.last_pass)
        yield last


BYTES_IN_NAME = "jay_request_bytes_received"
BYTES_IN_HELP = "Request body bytes received (decoded), by protocol."
BYTES_OUT_NAME = "jay_response_bytes_sent"
BYTES_OUT_HELP = "Response body bytes sent, by protocol."


class Metrics:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._started_at = clock.seconds()
        self.counters: dict[str, int] = dict.fromkeys(
            COUNTERS + tuple(name for name, _ in EXTRA_COUNTERS), 0
        )
        # Several worker processes (jay/workers.py): the other workers' latest snapshots, added
        # to this process's counts wherever they are read (the §4.2 JSON and the Prometheus
        # text: counters, request series, body bytes, open connections, scrub progress).
        self.peer_snapshots: Callable[[], list[Mapping[str, Any]]] | None = None
        self._scrub = _Scrub(created=time.time())
        # Peers' snapshots read once per Prometheus scrape (see prometheus_text).
        self._scrape_peers: list[Mapping[str, Any]] | None = None
        # One registry per instance: tests and several services in one process never collide.
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(_LegacyCollector(self))
        self.registry.register(_RequestCollector(self))
        # When each request series was first counted (wall clock, as prometheus_client
        # stamps ``_created``), and the duration series by (protocol, operation).
        self._request_created: dict[tuple[str, str, str], float] = {}
        self._durations: dict[tuple[str, str], _Durations] = {}
        # Body bytes by protocol: [count, first counted (wall clock, the ``_created`` stamp)].
        self.bytes_in_counts: dict[str, list[Any]] = {}
        self.bytes_out_counts: dict[str, list[Any]] = {}
        self.open_connections: dict[str, int] = {}
        self.request_counts: dict[tuple[str, str, str], int] = {}
        self._series: dict[tuple[str, str, int], _Series] = {}

    # --- reporting ---------------------------------------------------------------------------
    def count(self, name: str, amount: int = 1) -> None:
        """Add to one of the §4.2 counters (``COUNTERS``) or ``EXTRA_COUNTERS``; an unknown name
        is a bug: KeyError."""
        if name not in self.counters:
            raise KeyError(f"unknown metrics counter {name!r}")
        if amount < 0:
            raise ValueError("counters only go up")
        self.counters[name] += amount

    def auth_failure(self) -> None:
        self.count("auth_failures")

    def observe_request(
        self,
        protocol: str,
        operation: str,
        status: int,
        duration_seconds: float,
        bytes_in: int = 0,
        bytes_out: int = 0,
    ) -> None:
        """One finished request; also bumps the §4.2 counters (see the module docstring)."""
        series = self._series.get((protocol, operation, status))
        if series is None:
            series = self._new_series(protocol, operation, status)
        key = series.key
        self.request_counts[key] = self.request_counts.get(key, 0) + 1
        series.duration.observe(max(0.0, duration_seconds))
        if bytes_in > 0:
            _add_bytes(self.bytes_in_counts, protocol, bytes_in)
        if bytes_out > 0:
            _add_bytes(self.bytes_out_counts, protocol, bytes_out)
        if not series.is_success:
            return
        if series.success_counter is not None:
            self.counters[series.success_counter] += 1
        if operation == "PutObject":
            self.counters["bytes_uploaded"] += max(0, bytes_in)
        elif operation == "GetObject":
            self.counters["bytes_downloaded"] += max(0, bytes_out)

    def _new_series(self, protocol: str, operation: str, status: int) -> _Series:
        """Resolve what a (protocol, operation, status) updates once, not per request."""
        klass = status_class(status)
        key = (protocol, operation, klass)
        self._count_series(key)
        durations = self._durations.get((protocol, operation))
        if durations is None:
            durations = self._durations[(protocol, operation)] = _Durations(time.time())
        series = _Series(
            key=key,
            duration=durations,
            is_success=200 <= status < 300,
            success_counter=SUCCESS_COUNTERS.get(operation),
        )
        if len(self._series) >= MAX_CACHED_SERIES:
            self._series.clear()  # odd statuses or operations: only the lookups are lost
        self._series[(protocol, operation, status)] = series
        return series

    def _count_series(self, key: tuple[str, str, str]) -> None:
        """Make ``key`` a ``jay_requests`` series (at 0 until counted), stamped now."""
        if key not in self._request_created:
            self._request_created[key] = time.time()
            self.request_counts.setdefault(key, 0)

    def connection_opened(self, protocol: str) -> None:
        self.open_connections[protocol] = self.open_connections.get(protocol, 0) + 1

    def connection_closed(self, protocol: str) -> None:
        current = self.open_connections.get(protocol, 0)
        if current <= 0:
            return  # a close without an open is a caller bug; never go negative
        self.open_connections[protocol] = current - 1

    def scrub_progress(
        self, *, objects_scanned: int, bytes_scanned: int, pass_complete: bool = False
    ) -> None:
        """Progress of the current pass; ``pass_complete`` marks its end (counts and stamps it)."""
        scrub = self._scrub
        scrub.objects = objects_scanned
        scrub.bytes = bytes_scanned
        scrub.updated = self._clock.seconds()
        if pass_complete:
            scrub.passes += 1
            scrub.last_pass = scrub.updated

    # --- several processes -------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """This process's counts as JSON-ready values: what a worker publishes for its peers
        (``jay/workers.py``) and what a restarted worker continues from (``add_base``)."""
        created = self._request_created
        scrub = self._scrub
        return {
            "counters": dict(self.counters),
            "requests": [
                [p, o, c, n, created[(p, o, c)]]
                for (p, o, c), n in sorted(self.request_counts.items())
            ],
            "durations": [
                [p, o, list(series.counts), series.total, series.created]
                for (p, o), series in sorted(self._durations.items())
            ],
            "bytes_in": [[p, n, t] for p, (n, t) in sorted(self.bytes_in_counts.items())],
            "bytes_out": [[p, n, t] for p, (n, t) in sorted(self.bytes_out_counts.items())],
            "connections": [[p, n] for p, n in sorted(self.open_connections.items())],
            "scrub": [
                scrub.objects, scrub.bytes, scrub.passes, scrub.last_pass, scrub.updated,
                scrub.created,
            ],
        }  # fmt: skip

    def add_base(self, snapshot: Mapping[str, Any]) -> None:
        """Continue from a snapshot (a restarted worker takes over its predecessor's counts;
        not its open connections, which died with it, nor the progress of a pass it left)."""
        for name, value in (snapshot.get("counters") or {}).items():
            if name in self.counters and isinstance(value, int) and value > 0:
                self.counters[name] += value
        base = Merged({}, {}, {}, {}, {}, _Scrub())
        _merge_snapshot(base, snapshot)
        now = time.time()
        for request_key, (n, created) in base.requests.items():
            self._count_series(request_key)
            self._request_created[request_key] = min(self._request_created[request_key], created)
            self.request_counts[request_key] += n
        for series_key, series in base.durations.items():
            own = self._durations.get(series_key)
            if own is None:
                own = self._durations[series_key] = _Durations(now)
            own.add(series.counts, series.total, series.created)
        for own_counts, counts in (
            (self.bytes_in_counts, base.bytes_in),
            (self.bytes_out_counts, base.bytes_out),
        ):
            for protocol, (n, created) in counts.items():
                entry = own_counts.setdefault(protocol, [0, created])
                entry[0] += n
                entry[1] = min(entry[1], created)
        self._scrub.passes += base.scrub.passes
        self._scrub.last_pass = max(self._scrub.last_pass, base.scrub.last_pass)
        self._scrub.created = min(self._scrub.created, base.scrub.created or now)

    def _peers(self) -> list[Mapping[str, Any]]:
        if self._scrape_peers is not None:
            return self._scrape_peers
        return self.peer_snapshots() if self.peer_snapshots is not None else []

    def total_counters(self) -> dict[str, int]:
        """The §4.2 counters summed over this process and its peers' latest snapshots."""
        totals = dict(self.counters)
        for peer in self._peers():
            for name, value in (peer.get("counters") or {}).items():
                if name in totals and isinstance(value, int):
                    totals[name] += value
        return totals

    def merged(self) -> Merged:
        """Request series, byte counts, open connections and scrub progress of this process
        plus its peers' latest snapshots: sums, except the scrub gauges, which come from the
        process that reported progress last, and the last pass, which is the latest."""
        created = self._request_created
        merged = Merged(
            requests={key: (n, created[key]) for key, n in self.request_counts.items()},
            durations={key: series.copy() for key, series in self._durations.items()},
            bytes_in={p: (n, t) for p, (n, t) in self.bytes_in_counts.items()},
            bytes_out={p: (n, t) for p, (n, t) in self.bytes_out_counts.items()},
            connections=dict(self.open_connections),
            scrub=dataclasses.replace(self._scrub),
        )
        for peer in self._peers():
            _merge_snapshot(merged, peer)
        return merged

    # --- reading -----------------------------------------------------------------------------
    def uptime_seconds(self) -> int:
        return max(0, int(self._clock.seconds() - self._started_at))

    def to_json(self) -> dict[str, int]:
        """The §4.2 object, fields in spec order (dicts keep insertion order)."""
        body = {"uptime_seconds": self.uptime_seconds()}
        totals = self.total_counters()
        body.update((name, totals[name]) for name in COUNTERS)
        return body

    def prometheus_text(self) -> bytes:
        self._scrape_peers = self._peers()  # the peers' files, read once for the whole text
        try:
            return generate_latest(self.registry)
        finally:
            self._scrape_peers = None


def _merge_snapshot(into: Merged, snapshot: Mapping[str, Any]) -> None:
    """Add one published snapshot (``Metrics.snapshot``) to ``into``. Rows that do not have
    the expected shape (a file from another version, a torn write) are skipped."""
    for row in _rows(snapshot, "requests"):
        try:
            key = (str(row[0]), str(row[1]), str(row[2]))
            n = int(row[3])
            created = float(row[4]) if len(row) > 4 else time.time()
        except (TypeError, ValueError, IndexError):
            continue
        _add_count(into.requests, key, n, created)
    buckets = len(DURATION_BUCKETS_SECONDS)
    for row in _rows(snapshot, "durations"):
        try:
            series_key = (str(row[0]), str(row[1]))
            counts = [int(n) for n in row[2]]
            total, created = float(row[3]), float(row[4])
        except (TypeError, ValueError, IndexError):
            continue
        if len(counts) != buckets:
            continue  # other bucket bounds: cannot be added
        series = into.durations.get(series_key)
        if series is None:
            series = into.durations[series_key] = _Durations(created)
        series.add(counts, total, created)
    for name, counts_into in (("bytes_in", into.bytes_in), ("bytes_out", into.bytes_out)):
        for row in _rows(snapshot, name):
            try:
                protocol, n, created = str(row[0]), int(row[1]), float(row[2])
            except (TypeError, ValueError, IndexError):
                continue
            _add_count(counts_into, protocol, n, created)
    for row in _rows(snapshot, "connections"):
        try:
            protocol, n = str(row[0]), int(row[1])
        except (TypeError, ValueError, IndexError):
            continue
        into.connections[protocol] = into.connections.get(protocol, 0) + n
    scrub = snapshot.get("scrub")
    if isinstance(scrub, list) and len(scrub) == 6:
        try:
            objects, scanned, passes = int(scrub[0]), int(scrub[1]), int(scrub[2])
            last_pass, updated, created = float(scrub[3]), float(scrub[4]), float(scrub[5])
        except (TypeError, ValueError):
            return
        mine = into.scrub
        mine.passes += passes
        mine.last_pass = max(mine.last_pass, last_pass)
        if created:
            mine.created = min(mine.created, created) if mine.created else created
        if updated > mine.updated:
            mine.objects, mine.bytes, mine.updated = objects, scanned, updated


def _add_count(counts: dict[Any, tuple[int, float]], key: Any, n: int, created: float) -> None:
    """Add ``n`` to a (count, first counted) entry; the series started at the earliest stamp."""
    had = counts.get(key)
    counts[key] = (n, created) if had is None else (had[0] + n, min(had[1], created))


def _rows(snapshot: Mapping[str, Any], name: str) -> list[Any]:
    rows = snapshot.get(name)
    if not isinstance(rows, list):
        return []
    return [row for row in rows if isinstance(row, list)]


PROMETHEUS_CONTENT_TYPE = CONTENT_TYPE_LATEST
