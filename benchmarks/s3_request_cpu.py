"""Server CPU per small S3 request, in process: no sockets, no load generator.

The real S3 resource (``S3Api`` behind a ``StreamingSite``, with metrics, rate limits off, the
access log at ``warn`` as ``run.py`` configures it) over a real ``StorageService`` in a temp dir
gets raw HTTP/1.1 requests signed with botocore's SigV4 (header auth, one keep-alive
connection), fed to its ``StreamingChannel`` over a ``StringTransport``. What is measured is the
reactor thread's CPU time (``time.thread_time``) per request, for PUT, GET, HEAD and DELETE of
small objects: the front end runs there; storage threads (fsync, blob writes) are not counted.

With ``--tcp`` a client process sends the same requests over one loopback TCP connection
instead, served by the reactor: the figures then include the reactor's own work per request
(epoll, recv, send, timers), which the StringTransport leaves out.

The machine is shared and noisy, so compare trees side by side in one run: each tree is a
directory holding a ``jay`` package (a checkout, or a copy with some files from another
commit); a worker process per tree serves batches in alternation and the table shows the
minimum, the 25th percentile and the median of the per-batch figures.

    .venv/bin/python benchmarks/s3_request_cpu.py                       # this checkout
    .venv/bin/python benchmarks/s3_request_cpu.py --tree /tmp/a --tree /tmp/b
    .venv/bin/python benchmarks/s3_request_cpu.py --profile GET         # cProfile, by tottime
    .venv/bin/python benchmarks/s3_request_cpu.py --tcp --ops GET,HEAD --batch 200
    .venv/bin/python benchmarks/s3_request_cpu.py --ops GET,HEAD --hot-keys 10000

GET and HEAD batches continue a rotation over ``--hot-keys`` objects (100 by default), each read
once before the first batch: 10,000 is the key set of ``peers.py``'s GET and HEAD cells.

Options: ``--batches 30 --batch 100 --size 4096``; with ``--profile``, ``--sort cumulative
--top 60``, and ``JAY_PROFILE_DUMP=/tmp/put.prof`` in the environment also saves the profile
(``pstats`` format), e.g. to subtract a HEAD profile from a PUT one function by function.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OPS = ("PUT", "GET", "HEAD", "DELETE")
HOST = "127.0.0.1:9000"
BUCKET = "bench"
TOKEN_ID = "bench-token"
SECRET = "bench-secret-" + "x" * 24
SIGNING_SECRET = "0123456789abcdef0123456789abcdef"
HOT_KEYS = 100  # GET and HEAD cycle through this many objects (``--hot-keys``)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tree", action="append", help="a directory holding a jay package")
    p.add_argument("--batches", type=int, default=30, help="batches per operation and tree")
    p.add_argument("--batch", type=int, default=100, help="requests per batch")
    p.add_argument("--size", type=int, default=4096, help="object size in bytes")
    p.add_argument(
        "--hot-keys",
        type=int,
        default=HOT_KEYS,
        help="objects GET and HEAD cycle through, batch after batch (more than the record "
        "cache holds measures misses)",
    )
    p.add_argument(
        "--ops", default=",".join(OPS), help="operations to measure, e.g. GET,HEAD (comma list)"
    )
    p.add_argument(
        "--tcp", action="store_true", help="serve a client process over loopback TCP instead"
    )
    p.add_argument("--profile", choices=OPS, help="cProfile this operation (one tree)")
    p.add_argument("--sort", default="tottime", help="profile order (tottime, cumulative…)")
    p.add_argument("--top", type=int, default=30, help="profile entries to print")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


# --- the worker: one jay tree, one in-process S3 site --------------------------------------------


def signed_request(method: str, key: str, body: bytes = b"") -> bytes:
    """Raw HTTP/1.1 bytes of a header-signed SigV4 request, as a Go or SDK client sends it."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    headers = {
        "User-Agent": "Go-http-client/1.1",
        "Accept-Encoding": "gzip",
        "X-Amz-Content-Sha256": hashlib.sha256(body).hexdigest(),
    }
    if method == "PUT":
        headers["Content-Type"] = "application/octet-stream"
    request = AWSRequest(
        method=method, url=f"http://{HOST}/{BUCKET}/{key}", data=body or None, headers=headers
    )
    SigV4Auth(Credentials(TOKEN_ID, SECRET), "s3", "us-east-1").add_auth(request)
    lines = [f"{method} /{BUCKET}/{key} HTTP/1.1", f"Host: {HOST}"]
    lines += [f"{name}: {value}" for name, value in request.headers.items() if name != "Host"]
    if method == "PUT":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def build_site(data_dir: str) -> tuple[Any, Any, Any]:
    """(storage, bcrypt pool, site): the S3 front end as jay.service wires it."""
    from twisted.internet import reactor
    from twisted.python.threadpool import ThreadPool

    from jay.auth.authenticate import Authenticator
    from jay.auth.clientip import ClientIPResolver
    from jay.auth.ratelimit import AuthFailureLimiter, RateLimiter, RequestLimits
    from jay.auth.secrets import derive_kek, encrypt_secret, hash_secret
    from jay.auth.tokens import TokenVerifier
    from jay.config.model import ProxySettings, RateLimitSettings
    from jay.core.access import AccessControl
    from jay.lifecycle import Readiness
    from jay.metrics.registry import Metrics
    from jay.s3.app import S3Api, S3Settings
    from jay.s3.http import StreamingSite
    from jay.storage.api import TokenRecord
    from jay.storage.service import StorageService

    storage = StorageService(data_dir, reactor=reactor)
    storage.startService()
    await storage.when_ready()
    pool = ThreadPool(minthreads=0, maxthreads=2, name="bench-bcrypt")
    pool.start()
    kek = derive_kek(SIGNING_SECRET)
    account = await storage.create_account("bench")
    await storage.create_token(
        TokenRecord(
            token_id=TOKEN_ID,
            account_id=account.account_id,
            name=TOKEN_ID,
            secret_hash=hash_secret(SECRET, cost=4),
            secret_key=encrypt_secret(kek, SECRET),
            allowed_actions=("*",),
            created_at=0.0,
        )
    )
    await storage.create_bucket(BUCKET, account.account_id)
    readiness = Readiness()
    readiness.mark_ready()
    verifier = TokenVerifier(
        storage,
        kek=kek,
        clock=reactor,
        reactor=reactor,
        pool=pool,
        generation=storage.current_auth_generation,
    )
    s3 = S3Api(
        storage=storage,
        authenticator=Authenticator(verifier, signing_secret=SIGNING_SECRET, clock=reactor),
        access=AccessControl(storage),
        clock=reactor,
        readiness=readiness,
        settings=S3Settings(),
        client_ip=ClientIPResolver(ProxySettings()).for_request,
        limits=RequestLimits(
            RateLimiter(RateLimitSettings(rate=0, burst=0), reactor), AuthFailureLimiter(reactor)
        ),
        metrics=Metrics(reactor),
    )
    site = StreamingSite(s3.resource(), reactor=reactor)
    site.displayTracebacks = False
    # As jay.service does: S3Api logs its own access event.
    site.log = lambda request: None  # type: ignore[method-assign]
    return storage, pool, site


class Connection:
    """One keep-alive client connection to the site, over a StringTransport."""

    def __init__(self, site: Any) -> None:
        from twisted.internet.address import IPv4Address
        from twisted.internet.testing import StringTransport

        from jay.s3.http import StreamingRequest

        self.finished: list[Any] = []
        finished = self.finished

        class Tracked(StreamingRequest):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                finished.append(self.notifyFinish())

        site.requestFactory = Tracked
        peer = IPv4Address("TCP", "127.0.0.1", 40000)
        self.protocol = site.buildProtocol(peer)
        self.transport = StringTransport(
            hostAddress=IPv4Address("TCP", "127.0.0.1", 9000), peerAddress=peer
        )
        self.protocol.makeConnection(self.transport)

    async def run(self, requests: list[bytes], expect: bytes) -> float:
        """Send each request after the previous response; reactor-thread CPU µs per request."""
        started = time.thread_time()
        for raw in requests:
            self.finished.clear()
            self.transport.clear()
            self.protocol.dataReceived(raw)
            done = self.finished[-1]
            if not done.called:
                await done
            if not self.transport.value().startswith(expect):
                raise RuntimeError(f"unexpected response: {self.transport.value()[:300]!r}")
        return (time.thread_time() - started) / len(requests) * 1e6


# Sends each request of a file (4-byte length, then the bytes) after reading the previous
# response; exits 1 with the first status line that does not start with argv[3].
TCP_CLIENT = r"""
import socket, sys
port, path, expect = int(sys.argv[1]), sys.argv[2], sys.argv[3].encode()
data, requests, at = open(path, "rb").read(), [], 0
while at < len(data):
    n = int.from_bytes(data[at : at + 4], "big")
    requests.append(data[at + 4 : at + 4 + n])
    at += 4 + n
sock = socket.create_connection(("127.0.0.1", port))
sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
reader = sock.makefile("rb")
for raw in requests:
    sock.sendall(raw)
    status = reader.readline()
    if not status.startswith(expect):
        sys.exit(f"unexpected response: {status!r}")
    length = 0
    while (line := reader.readline()) != b"\r\n":
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    if not raw.startswith(b"HEAD "):
        reader.read(length)
"""


class TcpClient:
    """One keep-alive loopback TCP connection from a client process, served by the reactor:
    what is measured then includes the reactor's own work per request (epoll, recv, send)."""

    def __init__(self, site: Any, directory: str) -> None:
        from twisted.internet import reactor

        self._port: Any = reactor.listenTCP(0, site, interface="127.0.0.1")
        self._path = os.path.join(directory, "requests")

    async def run(self, requests: list[bytes], expect: bytes) -> float:
        """Reactor-thread CPU µs per request while the client sends them one after another."""
        from twisted.internet.threads import deferToThread

        with open(self._path, "wb") as f:
            for raw in requests:
                f.write(len(raw).to_bytes(4, "big") + raw)
        command = [sys.executable, "-c", TCP_CLIENT, str(self._port.getHost().port)]
        command += [self._path, expect.decode()]
        started = time.thread_time()
        done = await deferToThread(subprocess.run, command, capture_output=True, text=True)
        used = time.thread_time() - started
        if done.returncode != 0:
            raise RuntimeError(f"client failed: {done.stderr.strip()[-300:]}")
        return used / len(requests) * 1e6


async def serve(args: argparse.Namespace) -> None:
    """Answer "OP N" lines on stdin with the CPU µs per request of a batch of N such requests."""
    from twisted.internet.threads import deferToThread

    with tempfile.TemporaryDirectory(prefix="s3-request-cpu-") as tmp:
        storage, pool, site = await build_site(os.path.join(tmp, "data"))
        try:
            connection: Any = TcpClient(site, tmp) if args.tcp else Connection(site)
            body = bytes(range(256)) * (args.size // 256) + b"x" * (args.size % 256)
            hot = [f"hot-{i:06d}" for i in range(args.hot_keys)]
            for start in range(0, len(hot), 1000):
                puts = [signed_request("PUT", k, body) for k in hot[start : start + 1000]]
                await connection.run(puts, b"HTTP/1.1 200")
            for start in range(0, len(hot), 1000):  # untimed: every record read once
                heads = [signed_request("HEAD", k) for k in hot[start : start + 1000]]
                await connection.run(heads, b"HTTP/1.1 200")
            cursor = 0  # where the next GET or HEAD batch continues in the rotation
            batches = 0
            to_delete: list[list[str]] = []
            while line := (await deferToThread(sys.stdin.readline)).strip():
                op, count = line.split()
                n = int(count)
                if op == "PUT":
                    batches += 1
                    keys = [f"put-{batches}-{i:05d}" for i in range(n)]
                    to_delete.append(keys)
                    requests = [signed_request("PUT", k, body) for k in keys]
                elif op == "DELETE":
                    requests = [signed_request("DELETE", k) for k in to_delete.pop(0)]
                else:
                    requests = [signed_request(op, hot[(cursor + i) % len(hot)]) for i in range(n)]
                    cursor += n
                expect = b"HTTP/1.1 204" if op == "DELETE" else b"HTTP/1.1 200"
                print(f"{await connection.run(requests, expect):.2f}", flush=True)
        finally:
            pool.stop()
            await storage.stopService()


async def profile(args: argparse.Namespace) -> None:
    """cProfile ``args.batches`` batches of ``args.profile``; print the top ``args.top``
    entries in ``args.sort`` order."""
    import cProfile
    import pstats

    with tempfile.TemporaryDirectory(prefix="s3-request-cpu-") as tmp:
        storage, pool, site = await build_site(os.path.join(tmp, "data"))
        try:
            connection: Any = TcpClient(site, tmp) if args.tcp else Connection(site)
            body = b"x" * args.size
            profiler = cProfile.Profile()
            for batch in range(args.batches):
                keys = [f"k-{batch}-{i:05d}" for i in range(args.batch)]
                plan = [
                    ("PUT", [signed_request("PUT", k, body) for k in keys], b"HTTP/1.1 200"),
                    ("GET", [signed_request("GET", k) for k in keys], b"HTTP/1.1 200"),
                    ("HEAD", [signed_request("HEAD", k) for k in keys], b"HTTP/1.1 200"),
                    ("DELETE", [signed_request("DELETE", k) for k in keys], b"HTTP/1.1 204"),
                ]
                for op, requests, expect in plan:
                    if op == args.profile:
                        profiler.enable()
                    await connection.run(requests, expect)
                    if op == args.profile:
                        profiler.disable()
            if os.environ.get("JAY_PROFILE_DUMP"):
                profiler.dump_stats(os.environ["JAY_PROFILE_DUMP"])
            pstats.Stats(profiler).sort_stats(args.sort).print_stats(args.top)
        finally:
            pool.stop()
            await storage.stopService()


def run_worker(args: argparse.Namespace) -> None:
    tree = args.tree[0] if args.tree else str(ROOT)
    sys.path.insert(0, tree)
    from twisted.internet import defer, task
    from twisted.logger import globalLogBeginner

    import jay
    from jay.logs import make_observer

    if not jay.__file__ or not jay.__file__.startswith(tree):
        raise SystemExit(f"jay imported from {jay.__file__}, not from {tree}")
    with open(os.devnull, "w") as devnull:
        globalLogBeginner.beginLoggingTo(
            [make_observer("warn", "text", devnull)], redirectStandardIO=False
        )
        main = profile if args.profile else serve
        task.react(lambda _: defer.ensureDeferred(main(args)))


# --- the driver: workers side by side --------------------------------------------------------


def compare(args: argparse.Namespace) -> None:
    trees = args.tree or [str(ROOT)]
    workers = {
        tree: subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--worker",
                "--tree",
                tree,
                "--size",
                str(args.size),
                "--hot-keys",
                str(args.hot_keys),
            ]  # fmt: skip
            + (["--tcp"] if args.tcp else []),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=tempfile.gettempdir(),  # so the current directory's jay is not imported first
        )
        for tree in trees
    }

    def ask(tree: str, op: str) -> float:
        worker = workers[tree]
        assert worker.stdin is not None and worker.stdout is not None
        worker.stdin.write(f"{op} {args.batch}\n")
        worker.stdin.flush()
        return float(worker.stdout.readline())

    ops = [op for op in OPS if op in args.ops.upper().split(",")]
    if "DELETE" in ops and "PUT" not in ops:
        raise SystemExit("DELETE removes what PUT stored: measure both")
    results: dict[str, dict[str, list[float]]] = {t: {op: [] for op in ops} for t in trees}
    for tree in trees:  # warm-up batch, not counted
        for op in ops:
            ask(tree, op)
    for batch in range(args.batches):
        order = trees if batch % 2 == 0 else trees[::-1]
        for op in ops:
            for tree in order:
                results[tree][op].append(ask(tree, op))
    for worker in workers.values():
        assert worker.stdin is not None
        worker.stdin.write("\n")
        worker.stdin.flush()
        worker.wait()
    print(f"reactor-thread CPU µs per request, {args.batches} batches of {args.batch}")
    print(f"{'tree':40s} {'op':6s} {'min':>8s} {'p25':>8s} {'median':>8s}")
    for tree in trees:
        for op in ops:
            values = sorted(results[tree][op])
            p25 = values[len(values) // 4]
            row = f"{values[0]:8.1f} {p25:8.1f} {statistics.median(values):8.1f}"
            print(f"{tree[-40:]:40s} {op:6s} {row}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker or args.profile:
        run_worker(args)
    else:
        compare(args)


if __name__ == "__main__":
    main()
