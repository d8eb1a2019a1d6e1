"""Metrics: §4.2 JSON order and exact counts, request observations, Prometheus text."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet import task

from jay.metrics.registry import (
    COUNTERS,
    DURATION_BUCKETS_SECONDS,
    DURATION_HELP,
    REQUESTS_HELP,
    Metrics,
    status_class,
)

SPEC_ORDER = [
    "uptime_seconds", "put_object_total", "get_object_total", "delete_object_total",
    "head_object_total", "list_objects_total", "create_bucket_total", "delete_bucket_total",
    "auth_failures", "checksum_failures", "fsync_failures", "objects_quarantined",
    "bytes_uploaded", "bytes_downloaded",
]  # fmt: skip


def make() -> tuple[task.Clock, Metrics]:
    clock = task.Clock()
    clock.advance(5000)
    return clock, Metrics(clock)


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(metrics.prometheus_text().decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_fresh_json_matches_the_spec_vector() -> None:
    clock, metrics = make()
    clock.advance(12.99)
    body = metrics.to_json()
    assert list(body) == SPEC_ORDER
    assert body == dict.fromkeys(SPEC_ORDER, 0) | {"uptime_seconds": 12}
    assert list(COUNTERS) == SPEC_ORDER[1:]


def test_scripted_requests_give_exact_counts() -> None:
    _, m = make()
    m.observe_request("s3", "PutObject", 200, 0.01, bytes_in=100)
    m.observe_request("native", "PutObject", 200, 0.01, bytes_in=50)
    m.observe_request("s3", "PutObject", 403, 0.01, bytes_in=999)  # failed: not counted
    m.observe_request("s3", "GetObject", 200, 0.2, bytes_out=1000)
    m.observe_request("s3", "GetObject", 206, 0.2, bytes_out=10)
    m.observe_request("s3", "GetObject", 304, 0.2)
    m.observe_request("s3", "GetObject", 404, 0.2, bytes_out=200)  # error body: not counted
    m.observe_request("s3", "HeadObject", 200, 0.001)
    m.observe_request("s3", "DeleteObject", 204, 0.001)
    m.observe_request("s3", "ListObjectsV2", 200, 0.001)
    m.observe_request("native", "ListObjects", 200, 0.001)
    m.observe_request("s3", "CreateBucket", 200, 0.001)
    m.observe_request("s3", "DeleteBucket", 204, 0.001)
    m.observe_request("s3", "DeleteBucket", 409, 0.001)
    m.observe_request("s3", "CompleteMultipartUpload", 200, 0.5, bytes_in=300)
    m.auth_failure()
    m.auth_failure()
    m.count("fsync_failures")
    m.count("checksum_failures", 2)
    m.count("objects_quarantined")
    assert m.to_json() == {
        "uptime_seconds": 0,
        "put_object_total": 2,
        "get_object_total": 2,
        "delete_object_total": 1,
        "head_object_total": 1,
        "list_objects_total": 2,
        "create_bucket_total": 1,
        "delete_bucket_total": 1,
        "auth_failures": 2,
        "checksum_failures": 2,
        "fsync_failures": 1,
        "objects_quarantined": 1,
        "bytes_uploaded": 150,
        "bytes_downloaded": 1010,
    }
    assert m.request_counts[("s3", "GetObject", "2xx")] == 2
    assert m.request_counts[("s3", "GetObject", "3xx")] == 1
    assert m.request_counts[("s3", "GetObject", "4xx")] == 1
    got = samples(m)
    assert (
        got[
            (
                "jay_requests_total",
                (("operation", "PutObject"), ("protocol", "s3"), ("status_class", "4xx")),
            )
        ]
        == 1
    )
    assert got[("jay_put_object_total", ())] == 2
    assert got[("jay_auth_failures_total", ())] == 2
    assert got[("jay_bytes_downloaded_total", ())] == 1010
    assert got[("jay_request_bytes_received_total", (("protocol", "s3"),))] == 100 + 999 + 300
    assert got[("jay_response_bytes_sent_total", (("protocol", "s3"),))] == 1210
    assert (
        got[
            ("jay_request_duration_seconds_count", (("operation", "GetObject"), ("protocol", "s3")))
        ]
        == 4
    )
    bucket = (
        "jay_request_duration_seconds_bucket",
        (("le", "0.25"), ("operation", "GetObject"), ("protocol", "s3")),
    )
    assert got[bucket] == 4


def test_unknown_counter_and_negative_amounts_are_bugs() -> None:
    _, m = make()
    with pytest.raises(KeyError):
        m.count("put_objects")
    with pytest.raises(ValueError):
        m.count("auth_failures", -1)


def test_gauges_connections_and_scrub() -> None:
    clock, m = make()
    m.connection_opened("native")
    m.connection_opened("native")
    m.connection_opened("s3")
    m.connection_closed("native")
    m.connection_closed("admin")  # never opened: ignored, never negative
    m.scrub_progress(objects_scanned=10, bytes_scanned=4096)
    clock.advance(30)
    m.scrub_progress(objects_scanned=20, bytes_scanned=8192, pass_complete=True)
    got = samples(m)
    assert got[("jay_open_connections", (("protocol", "native"),))] == 1
    assert got[("jay_open_connections", (("protocol", "s3"),))] == 1
    assert ("jay_open_connections", (("protocol", "admin"),)) not in got
    assert got[("jay_scrub_objects_scanned", ())] == 20
    assert got[("jay_scrub_bytes_scanned", ())] == 8192
    assert got[("jay_scrub_passes_total", ())] == 1
    assert got[("jay_scrub_last_pass_completed_timestamp_seconds", ())] == 5030
    assert got[("jay_uptime_seconds", ())] == 30


def test_registries_are_private_per_instance() -> None:
    _, a = make()
    _, b = make()
    a.count("put_object_total")
    assert samples(a)[("jay_put_object_total", ())] == 1
    assert samples(b)[("jay_put_object_total", ())] == 0


@pytest.mark.parametrize(
    ("status", "expected"), [(200, "2xx"), (206, "2xx"), (404, "4xx"), (503, "5xx"), (0, "other")]
)
def test_status_class(status: int, expected: str) -> None:
    assert status_class(status) == expected


def _series_names(metrics: Metrics) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    return set(samples(metrics))


def test_request_series_give_the_text_prometheus_client_gives() -> None:
    """``jay_requests``, ``jay_request_duration_seconds`` and the body byte counters are kept
    as plain numbers and exported by a collector: the text must be what prometheus_client's own
    ``Counter`` and ``Histogram`` give for the same requests, sample for sample (``_created``
    included, its value a wall-clock stamp of the first request of the series)."""
    _, ours = make()
    reference = CollectorRegistry()
    requests = Counter(
        "jay_requests", REQUESTS_HELP, ("protocol", "operation", "status_class"),
        registry=reference,
    )  # fmt: skip
    durations = Histogram(
        "jay_request_duration_seconds", DURATION_HELP, ("protocol", "operation"),
        buckets=DURATION_BUCKETS_SECONDS, registry=reference,
    )  # fmt: skip
    bytes_in = Counter(
        "jay_request_bytes_received", "Request body bytes received (decoded), by protocol.",
        ("protocol",), registry=reference,
    )  # fmt: skip
    bytes_out = Counter(
        "jay_response_bytes_sent", "Response body bytes sent, by protocol.", ("protocol",),
        registry=reference,
    )  # fmt: skip
    script = [
        ("s3", "GetObject", 200, 0.002, 0, 10),
        ("s3", "GetObject", 206, 0.2, 0, 5),
        ("s3", "GetObject", 200, 0.002, 0, 10),
        ("s3", "GetObject", 200, 0.001, 0, 10),  # exactly on a bound: that bucket
        ("s3", "HeadObject", 200, 0.001, 0, 0),
        ("s3", "HeadObject", 404, 1e-9, 0, 0),
        ("s3", "ListObjectsV2", 200, 400.0, 0, 0),  # past the last finite bound: +Inf
        ("native", "PutObject", 200, 0.05, 7, 0),
    ]
    before = time.time()
    for protocol, operation, status, duration, sent, received in script:
        ours.observe_request(protocol, operation, status, duration, sent, received)
        requests.labels(protocol, operation, status_class(status)).inc()
        durations.labels(protocol, operation).observe(duration)
        if sent:
            bytes_in.labels(protocol).inc(sent)
        if received:
            bytes_out.labels(protocol).inc(received)

    def request_samples(text: bytes, created: bool) -> dict[Any, float]:
        out = {}
        for family in text_string_to_metric_families(text.decode()):
            if not family.name.startswith(("jay_request", "jay_response_bytes")):
                continue
            for s in family.samples:
                if s.name.endswith("_created") == created:
                    out[(s.name, tuple(sorted(s.labels.items())))] = s.value
        return out

    ours_text = ours.prometheus_text()
    reference_text = generate_latest(reference)
    assert request_samples(ours_text, False) == request_samples(reference_text, False)
    stamps = request_samples(ours_text, True)
    assert stamps.keys() == request_samples(reference_text, True).keys()
    assert all(before <= stamp <= time.time() for stamp in stamps.values())

    # The same families in the same order, with the same HELP and TYPE lines.
    def heads(text: bytes) -> list[str]:
        return [
            line for line in text.decode().splitlines()
            if line.startswith("#") and ("jay_request" in line or "jay_response_bytes" in line)
        ]  # fmt: skip

    assert heads(ours_text) == heads(reference_text)
    assert ours.request_counts[("s3", "GetObject", "2xx")] == 4


def test_a_base_snapshot_continues_the_request_series() -> None:
    _, m = make()
    m.add_base({"requests": [["s3", "GetObject", "2xx", 5]]})
    m.observe_request("s3", "GetObject", 200, 0.01)
    got = samples(m)
    labels = (("operation", "GetObject"), ("protocol", "s3"), ("status_class", "2xx"))
    assert got[("jay_requests_total", labels)] == 6
    assert ("jay_requests_created", labels) in got


def test_byte_series_appear_only_once_bytes_are_counted() -> None:
    _, m = make()
    m.observe_request("s3", "HeadObject", 200, 0.001)
    names = {name for name, _ in _series_names(m)}
    assert "jay_request_bytes_received_total" not in names
    assert "jay_response_bytes_sent_total" not in names
    m.observe_request("s3", "GetObject", 200, 0.001, bytes_out=3)
    names = {name for name, _ in _series_names(m)}
    assert "jay_request_bytes_received_total" not in names
    assert samples(m)[("jay_response_bytes_sent_total", (("protocol", "s3"),))] == 3


def test_many_distinct_statuses_stay_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("jay.metrics.registry.MAX_CACHED_SERIES", 4)
    _, m = make()
    for status in range(200, 220):
        m.observe_request("s3", "GetObject", status, 0.001, bytes_out=1)
    assert len(m._series) <= 4
    assert m.request_counts[("s3", "GetObject", "2xx")] == 20
    assert m.to_json()["get_object_total"] == 20
    assert samples(m)[("jay_response_bytes_sent_total", (("protocol", "s3"),))] == 20


def _scripted(m: Metrics) -> None:
    m.observe_request("s3", "GetObject", 200, 0.002, bytes_out=10)
    m.observe_request("s3", "GetObject", 404, 0.0005)
    m.observe_request("s3", "PutObject", 200, 0.03, bytes_in=7)
    m.observe_request("native", "PutObject", 200, 2.0, bytes_in=100)
    m.connection_opened("s3")
    m.connection_opened("s3")
    m.connection_opened("native")


def test_peers_series_are_summed_in_the_prometheus_text() -> None:
    """With worker processes, a scrape lands on one worker: its text must be the sum over all
    of them, as one process that served every request would give."""
    _, a = make()
    _, b = make()
    _, alone = make()
    _scripted(a)
    _scripted(alone)
    _scripted(alone)
    _scripted(b)
    b.observe_request("s3", "HeadObject", 200, 0.001)  # only b has this series
    alone.observe_request("s3", "HeadObject", 200, 0.001)
    published = json.loads(json.dumps(b.snapshot()))  # as it travels: through a JSON file
    a.peer_snapshots = lambda: [published]

    def values(m: Metrics) -> dict[Any, float]:
        return {k: v for k, v in samples(m).items() if not k[0].endswith("_created")}

    merged, expected = values(a), values(alone)
    merged.pop(("jay_uptime_seconds", ()))
    expected.pop(("jay_uptime_seconds", ()))
    assert merged == pytest.approx(expected)
    labels = (("operation", "GetObject"), ("protocol", "s3"), ("status_class", "2xx"))
    assert merged[("jay_requests_total", labels)] == 2
    assert merged[("jay_open_connections", (("protocol", "s3"),))] == 4
    assert merged[("jay_request_bytes_received_total", (("protocol", "native"),))] == 200
    head = (("operation", "HeadObject"), ("protocol", "s3"), ("status_class", "2xx"))
    assert merged[("jay_requests_total", head)] == 1
    assert ("jay_requests_created", head) in samples(a)
    # This process's own numbers are not changed by a scrape.
    assert a.request_counts[("s3", "GetObject", "2xx")] == 1
    assert a.open_connections == {"s3": 2, "native": 1}


def test_peer_scrub_progress_comes_from_the_process_that_scrubs() -> None:
    clock, scrubber = make()
    _, other = make()
    scrubber.scrub_progress(objects_scanned=5, bytes_scanned=50, pass_complete=True)
    clock.advance(10)
    scrubber.scrub_progress(objects_scanned=3, bytes_scanned=30)
    other.peer_snapshots = lambda: [json.loads(json.dumps(scrubber.snapshot()))]
    got = samples(other)
    assert got[("jay_scrub_objects_scanned", ())] == 3
    assert got[("jay_scrub_bytes_scanned", ())] == 30
    assert got[("jay_scrub_passes_total", ())] == 1
    assert got[("jay_scrub_last_pass_completed_timestamp_seconds", ())] == 5000
    # The scrubber's own text is the same (its peer never scrubbed).
    scrubber.peer_snapshots = lambda: [json.loads(json.dumps(other.snapshot()))]
    mine = samples(scrubber)
    assert mine[("jay_scrub_objects_scanned", ())] == 3
    assert mine[("jay_scrub_passes_total", ())] == 1


def test_a_restarted_worker_continues_every_series_but_connections() -> None:
    _, old = make()
    _scripted(old)
    old.scrub_progress(objects_scanned=9, bytes_scanned=90, pass_complete=True)
    _, new = make()
    new.add_base(json.loads(json.dumps(old.snapshot())))
    got, before = samples(new), samples(old)
    for key, value in before.items():
        if key[0] in ("jay_open_connections", "jay_uptime_seconds") or key[0].endswith("_created"):
            continue
        if key[0] in ("jay_scrub_objects_scanned", "jay_scrub_bytes_scanned"):
            assert got[key] == 0  # a pass the old worker left is not the new one's
            continue
        assert got[key] == value, key
    assert not any(name == "jay_open_connections" for name, _ in got)
    # The old worker's _created stamps are kept (the series did not start over).
    stamps = {k: v for k, v in samples(old).items() if k[0].endswith("_created")}
    assert all(samples(new)[k] == v for k, v in stamps.items() if k in samples(new))


def test_malformed_peer_rows_are_skipped() -> None:
    _, m = make()
    m.observe_request("s3", "GetObject", 200, 0.002)
    m.peer_snapshots = lambda: [
        {
            "requests": [["s3", "GetObject", "2xx", "many", 1.0], "junk", ["s3"]],
            "durations": [["s3", "GetObject", [1, 2], 0.5, 1.0]],  # other bucket bounds
            "bytes_in": [["s3", None, 1.0]],
            "connections": {"s3": 5},  # not rows
            "scrub": [1, 2],
        },
        {"requests": [["s3", "GetObject", "2xx", 2]]},  # an older worker's row: no stamp
    ]
    got = samples(m)
    labels = (("operation", "GetObject"), ("protocol", "s3"), ("status_class", "2xx"))
    assert got[("jay_requests_total", labels)] == 3
    assert (
        got[
            ("jay_request_duration_seconds_count", (("operation", "GetObject"), ("protocol", "s3")))
        ]
        == 1
    )
    assert not any(name == "jay_open_connections" for name, _ in got)
    assert got[("jay_scrub_passes_total", ())] == 0
