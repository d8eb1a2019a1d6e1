"""kill -9 under concurrent writes, restart, and every acknowledged write is intact (3 rounds;
``python -m tests.integration.crashloop --iterations 50`` for the long run)."""

from __future__ import annotations

from pathlib import Path

from tests.integration.crashloop import run


def test_crash_loop_three_iterations(tmp_path: Path) -> None:
    results = run(3, seed=20250101, workdir=tmp_path)
    assert [r.errors for r in results] == [[], [], []]
    # The loop really exercised something: writes were acknowledged and checked.
    assert sum(r.acknowledged_ops for r in results) > 0
    assert all(r.in_flight_ops >= 0 for r in results)
