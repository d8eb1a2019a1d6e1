"""``workers: N``: several real jay processes on one set of ports, one data directory and one
database (jay/workers.py). Each S3 response names the answering process (``x-jay-worker``); the
per-worker metrics files show which worker answered native requests."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from jay.native import codec
from tests.integration.conftest import SEED_ACCOUNT, SEED_SECRET, SEED_TOKEN_ID, s3_client
from tests.integration.jayproc import CLEAN_EXIT, JayProcess, head_on_socket, http_get, wait_until

SEED = {"account": SEED_ACCOUNT, "id": SEED_TOKEN_ID, "secret": SEED_SECRET}
BEARER = f"Bearer {SEED_TOKEN_ID}:{SEED_SECRET}"


def start_workers(workdir: Path, **settings: Any) -> JayProcess:
    return JayProcess(
        workdir,
        {
            "seed_token": SEED,
            "workers": 2,
            "min_part_size": 0,
            # Per-process token buckets would otherwise cut the tight polling loops below short.
            "rate_limit": 0,
            **settings,
        },
    ).start()


def call(
    jay: JayProcess,
    method: str,
    path: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    port: int | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One request on a fresh connection, so the kernel may hand it to any worker."""
    conn = http.client.HTTPConnection("127.0.0.1", port or jay.s3_port, timeout=30)
    try:
        return request_on(conn, method, path, body, headers)
    finally:
        conn.close()


def worker_of(headers: dict[str, str]) -> int:
    return int(headers["x-jay-worker"])


def admin(jay: JayProcess, method: str, path: str, body: object = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else b""
    status, _, raw = call(
        jay,
        method,
        path,
        data,
        {"Authorization": f"Bearer {jay.admin_token}", "Content-Type": "application/json"},
        port=jay.admin_port,
    )
    return status, json.loads(raw) if raw else None


def parent_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def worker_pids(jay: JayProcess) -> dict[int, int]:
    """Worker index → pid of its latest start, from the supervisor's log."""
    pids: dict[int, int] = {}
    for index, pid in re.findall(r"Worker (\d+) \(pid (\d+)\) is ready", jay.log_text()):
        pids[int(index)] = int(pid)
    return pids


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is as good as gone
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Held:
    """Keep-alive connections, one or more to every worker (see ``hold_every_worker``)."""

    def __init__(self) -> None:
        self.conns: list[tuple[http.client.HTTPConnection, int]] = []

    def workers(self) -> set[int]:
        return {pid for _, pid in self.conns}

    def to(self, pid: int) -> http.client.HTTPConnection:
        return next(conn for conn, owner in self.conns if owner == pid)

    def close(self) -> None:
        for conn, _ in self.conns:
            conn.close()


def request_on(
    conn: http.client.HTTPConnection,
    method: str,
    path: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    conn.request(method, path, body=body, headers={"Authorization": BEARER, **(headers or {})})
    resp = conn.getresponse()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()


def hold_every_worker(
    jay: JayProcess,
    method: str,
    path: str,
    want: int = 2,
    headers: dict[str, str] | None = None,
) -> Held:
    """Open keep-alive connections, each answered once, until ``want`` workers hold one.

    Each new connection goes to a worker holding the fewest (jay/workers.py), so this takes
    ``want`` connections plus at most the imbalance other connections left behind.
    """
    held = Held()
    try:
        while len(held.workers()) < want:
            assert len(held.conns) < 16, f"connections reached only {held.workers()}"
            conn = http.client.HTTPConnection("127.0.0.1", jay.s3_port, timeout=30)
            held.conns.append((conn, 0))
            status, got, _ = request_on(conn, method, path, headers=headers)
            assert status == 200
            held.conns[-1] = (conn, worker_of(got))
    except BaseException:
        held.close()
        raise
    return held


def collect_workers(jay: JayProcess, method: str, path: str, want: int = 2) -> set[int]:
    held = hold_every_worker(jay, method, path, want)
    held.close()
    return held.workers()


def native_ping(jay: JayProcess) -> None:
    with socket.create_connection(("127.0.0.1", jay.native_port), timeout=10) as sock:
        sock.sendall(codec.encode_client_handshake(SEED_TOKEN_ID, SEED_SECRET))
        reply = recv_exact(sock, codec.HANDSHAKE_REPLY_SIZE)
        assert codec.decode_server_handshake(reply) == 0
        sock.sendall(codec.encode_frame(codec.Op.PING, 7))
        header = codec.decode_header(recv_exact(sock, codec.HEADER_SIZE))
        assert (header.code, header.stream_id) == (0, 7)
        recv_exact(sock, header.meta_len)


def recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        assert chunk, "connection closed early"
        data += chunk
    return data


def native_counts(jay: JayProcess) -> dict[int, int]:
    """pid → native requests, from each worker's published metrics file."""
    counts: dict[int, int] = {}
    for path in (Path(jay.settings["data_dir"]) / "run" / "workers").glob("metrics-*.json"):
        snapshot = json.loads(path.read_text())
        counts[snapshot["pid"]] = sum(row[3] for row in snapshot["requests"] if row[0] == "native")
    return counts


@pytest.fixture(scope="module")
def jay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JayProcess]:
    proc = start_workers(tmp_path_factory.mktemp("workers"))
    wait_until(lambda: len(worker_pids(proc)) == 2)
    yield proc
    assert proc.stop() in CLEAN_EXIT, proc.log_text()[-5000:]


def test_two_processes_serve_s3_and_native_on_one_port(jay: JayProcess) -> None:
    assert call(jay, "PUT", "/shared")[0] == 200
    seen = collect_workers(jay, "GET", "/shared")
    assert set(worker_pids(jay).values()) == seen
    assert all(parent_of(pid) == jay.proc.pid for pid in seen)  # type: ignore[union-attr]

    # An object written through one worker is read through the other.
    held = hold_every_worker(jay, "GET", "/shared")
    try:
        writer, reader = sorted(held.workers())
        status, headers, _ = request_on(held.to(writer), "PUT", "/shared/k", b"through one")
        assert (status, worker_of(headers)) == (200, writer)
        status, headers, body = request_on(held.to(reader), "GET", "/shared/k")
        assert (status, body, worker_of(headers)) == (200, b"through one", reader)
    finally:
        held.close()

    # Native: both workers answer pings on the one native port.
    def both_answer_native() -> bool:
        native_ping(jay)
        counts = native_counts(jay)
        return sum(1 for n in counts.values() if n > 0) >= 2

    wait_until(both_answer_native, timeout=30, interval=0.05)

    # /_jay/metrics sums the workers' counters (peers publish every second).
    before = admin(jay, "GET", "/_jay/metrics")[1]["put_object_total"]
    for i in range(6):
        assert call(jay, "PUT", f"/shared/m{i}", b"x")[0] == 200
    wait_until(lambda: admin(jay, "GET", "/_jay/metrics")[1]["put_object_total"] == before + 6)


def prometheus(jay: JayProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, _, raw = call(
        jay, "GET", "/metrics", b"", {"Authorization": f"Bearer {jay.admin_token}"},
        port=jay.admin_port,
    )  # fmt: skip
    assert status == 200
    out = {}
    for family in text_string_to_metric_families(raw.decode()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_prometheus_series_are_summed_over_the_workers(jay: JayProcess) -> None:
    """Whichever worker answers the scrape, the per-request series, body bytes and open
    connections are those of all workers (each publishes its own every second)."""
    puts = (("operation", "PutObject"), ("protocol", "s3"), ("status_class", "2xx"))
    received = ("jay_request_bytes_received_total", (("protocol", "s3"),))
    assert call(jay, "PUT", "/summed")[0] == 200
    time.sleep(1.2)  # every worker has published what came before
    before = prometheus(jay)
    held = hold_every_worker(jay, "GET", "/summed")
    try:
        for n, pid in enumerate(sorted(held.workers())):
            for i in range(3 + n):  # 3 PUTs of 5 bytes through one worker, 4 through the other
                status, headers, _ = request_on(held.to(pid), "PUT", f"/summed/{pid}-{i}", b"12345")
                assert (status, worker_of(headers)) == (200, pid)

        def summed() -> bool:
            got = prometheus(jay)
            return (
                got.get(("jay_requests_total", puts), 0)
                == before.get(("jay_requests_total", puts), 0) + 7
                and got[received] == before.get(received, 0) + 35
                and got[("jay_open_connections", (("protocol", "s3"),))] >= len(held.conns)
            )

        wait_until(summed, timeout=15, interval=0.2)
    finally:
        held.close()


def test_keep_alive_connections_are_spread_over_the_workers(jay: JayProcess) -> None:
    # Opened one after another, each once the last has its answer: both workers are idle every
    # time, the case in which the kernel used to hand nearly all of them to the same worker.
    assert call(jay, "PUT", "/spread")[0] == 200
    conns: list[http.client.HTTPConnection] = []
    owners: list[int] = []
    try:
        for _ in range(16):
            conn = http.client.HTTPConnection("127.0.0.1", jay.s3_port, timeout=30)
            conns.append(conn)
            status, headers, _ = request_on(conn, "GET", "/spread")
            assert status == 200
            owners.append(worker_of(headers))
        # Each connection stays with the worker that accepted it.
        for conn, owner in zip(conns, owners, strict=True):
            assert worker_of(request_on(conn, "GET", "/spread")[1]) == owner
    finally:
        for conn in conns:
            conn.close()
    per_worker = sorted(owners.count(pid) for pid in set(owners))
    assert len(per_worker) == 2 and per_worker[0] >= 7, owners


def test_conditional_put_race_has_exactly_one_winner(jay: JayProcess) -> None:
    assert call(jay, "PUT", "/race")[0] == 200
    clients = 16
    barrier = threading.Barrier(clients)
    results: list[tuple[int, int]] = []
    lock = threading.Lock()

    def put(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", jay.s3_port, timeout=30)
        conn.connect()
        barrier.wait()
        body = f"writer {i}".encode()
        conn.request(
            "PUT", "/race/once", body=body, headers={"Authorization": BEARER, "If-None-Match": "*"}
        )
        resp = conn.getresponse()
        resp.read()
        with lock:
            results.append((resp.status, int(resp.getheader("x-jay-worker"))))
        conn.close()

    threads = [threading.Thread(target=put, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    statuses = sorted(s for s, _ in results)
    assert len(statuses) == clients
    assert statuses.count(200) == 1, statuses
    assert set(statuses) - {200} <= {409, 412}, statuses
    assert len({pid for _, pid in results}) == 2  # the race really ran in both processes
    status, _, body = call(jay, "GET", "/race/once")
    assert status == 200 and body.startswith(b"writer ")


def test_each_worker_packs_small_objects_into_its_own_pack(jay: JayProcess) -> None:
    """Small PUTs spread over both workers land in two pack files (one per process, never
    shared), and every object reads back through whichever worker answers, deletes too."""
    assert call(jay, "PUT", "/packed")[0] == 200

    def object_files() -> int:
        return sum(1 for p in (jay.workdir / "data" / "buckets").rglob("*") if p.is_file())

    files_before = object_files()
    writers: dict[str, int] = {}
    held = hold_every_worker(jay, "GET", "/packed")
    try:
        for i, (conn, worker) in enumerate(held.conns * 3):
            status, got, _ = request_on(conn, "PUT", f"/packed/k{i}", f"body {i}".encode())
            assert status == 200 and worker_of(got) == worker
            writers[f"k{i}"] = worker
    finally:
        held.close()
    assert len(set(writers.values())) == 2
    packs_dir = jay.workdir / "data" / "packs"
    assert len(list(packs_dir.glob("*.pack"))) >= 2
    assert object_files() == files_before  # no object got a file of its own
    readers: set[int] = set()
    for _ in range(3):
        held = hold_every_worker(jay, "GET", "/packed")
        try:
            for conn, _ in held.conns:
                for key in writers:
                    status, got, body = request_on(conn, "GET", f"/packed/{key}")
                    assert (status, body) == (200, f"body {key[1:]}".encode())
                    readers.add(worker_of(got))
        finally:
            held.close()
    assert len(readers) == 2
    for key in writers:
        assert call(jay, "DELETE", f"/packed/{key}")[0] == 204
        assert call(jay, "GET", f"/packed/{key}")[0] == 404


def test_multipart_parts_through_different_workers(jay: JayProcess) -> None:
    s3 = s3_client(jay)
    s3.create_bucket(Bucket="multi")
    upload_id = s3.create_multipart_upload(Bucket="multi", Key="big")["UploadId"]
    parts: list[dict[str, Any]] = []
    pids: set[int] = set()
    expected = b""
    number = 0
    # A client per part, all kept open: each new connection goes to the worker holding fewer.
    clients = []
    while len(pids) < 2 or number < 3:
        number += 1
        assert number <= 16, "all parts went to one worker"
        data = bytes([number]) * 100_000
        clients.append(s3_client(jay))
        resp = clients[-1].upload_part(
            Bucket="multi", Key="big", UploadId=upload_id, PartNumber=number, Body=data
        )
        pids.add(int(resp["ResponseMetadata"]["HTTPHeaders"]["x-jay-worker"]))
        parts.append({"PartNumber": number, "ETag": resp["ETag"]})
        expected += data
    done = s3_client(jay).complete_multipart_upload(
        Bucket="multi", Key="big", UploadId=upload_id, MultipartUpload={"Parts": parts}
    )
    assert done["ETag"].endswith(f'-{number}"')
    assert s3_client(jay).get_object(Bucket="multi", Key="big")["Body"].read() == expected


def test_revocation_reaches_every_worker_at_once(jay: JayProcess) -> None:
    status, account = admin(jay, "POST", "/_jay/accounts", {"name": "revokee"})
    assert status == 201, account
    status, token = admin(
        jay,
        "POST",
        "/_jay/tokens",
        {"account_id": account["account_id"], "name": "t", "allowed_actions": ["*"]},
    )
    assert status == 201, token
    auth = {"Authorization": f"Bearer {token['token_id']}:{token['secret']}"}
    assert call(jay, "PUT", "/revoked", headers=auth)[0] == 200

    # Both workers have verified (and cached) the token.
    held = hold_every_worker(jay, "GET", "/revoked", headers=auth)
    try:
        assert admin(jay, "DELETE", f"/_jay/tokens/{token['token_id']}")[0] == 204
        # From the moment the admin call returned, no worker may serve the token again: each
        # checks the auth generation before answering from its cache (jay/auth/tokens.py).
        for pid in held.workers():
            status, headers, _ = request_on(held.to(pid), "GET", "/revoked", headers=auth)
            # 403 AccessDenied (503 would mean repeated failures locked this client IP out).
            assert status in (403, 503)
            assert worker_of(headers) == pid
    finally:
        held.close()


def test_sigterm_drains_every_worker(tmp_path: Path) -> None:
    jay = start_workers(tmp_path, shutdown_grace_seconds=20)
    try:
        wait_until(lambda: len(worker_pids(jay)) == 2)
        pids = set(worker_pids(jay).values())
        assert call(jay, "PUT", "/drain")[0] == 200
        body = b"d" * (2 * 1024 * 1024)
        sock = socket.create_connection(("127.0.0.1", jay.s3_port), timeout=30)
        # A first request on the same connection proves a worker accepted it before the signal
        # (a connection still in the listen queue would be reset when the listeners close).
        head_on_socket(sock, "/drain", f"Authorization: {BEARER}")
        sock.sendall(
            (
                f"PUT /drain/in-flight HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {BEARER}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode()
            + body[: len(body) // 2]
        )
        # The upload is in flight (wait for the PUT to be dispatched: its worker counts it).
        assert jay.proc is not None
        jay.proc.send_signal(signal.SIGTERM)
        wait_until(lambda: jay.log_text().count("readiness is now 503") == 2, timeout=15)

        def refused() -> bool:
            try:
                socket.create_connection(("127.0.0.1", jay.s3_port), timeout=1).close()
                return False
            except OSError:
                return True

        wait_until(refused, timeout=15)
        sock.sendall(body[len(body) // 2 :])
        response = b""
        while b"\r\n\r\n" not in response:
            chunk = sock.recv(65536)
            if not chunk:
                break
            response += chunk
        sock.close()
        assert response.startswith(b"HTTP/1.1 200"), response[:300]
        jay.proc.wait(timeout=40)
        assert jay.proc.returncode in CLEAN_EXIT
        log = jay.log_text()
        assert "All workers stopped" in log
        assert log.count("In-flight requests finished") == 2
        assert not any(alive(pid) for pid in pids)
    finally:
        jay.stop()


def test_a_killed_worker_is_restarted_and_the_port_keeps_serving(tmp_path: Path) -> None:
    jay = start_workers(tmp_path)
    try:
        wait_until(lambda: len(worker_pids(jay)) == 2)
        assert call(jay, "PUT", "/survive")[0] == 200
        victim = worker_pids(jay)[1]
        os.kill(victim, signal.SIGKILL)
        served_during_restart = 0

        def replaced() -> bool:
            nonlocal served_during_restart
            status, _, _ = call(jay, "GET", "/survive")
            assert status == 200
            served_during_restart += 1
            return worker_pids(jay).get(1, victim) != victim

        wait_until(replaced, timeout=30, interval=0.02)
        assert served_during_restart > 0
        assert f"Worker 1 (pid {victim}) exited unexpectedly" in jay.log_text()
        replacement = worker_pids(jay)[1]
        assert parent_of(replacement) == jay.proc.pid  # type: ignore[union-attr]
        assert replacement in collect_workers(jay, "GET", "/survive")
        assert http_get(jay.admin_url + "/health/ready")[0] == 200
    finally:
        assert jay.stop() in CLEAN_EXIT
