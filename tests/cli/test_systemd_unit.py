"""contrib/jay.service: runs twistd in the foreground as its own user, sandboxed, and treats
twistd's SIGTERM re-raise after a clean shutdown as success."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "contrib" / "jay.service"


def _directives() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    section = ""
    for line in UNIT.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.setdefault(f"{section}.{key}", []).append(value)
    return out


def test_unit_runs_jay_sandboxed_with_sigterm_semantics() -> None:
    d = _directives()
    assert d["Service.ExecStart"] == ["/usr/bin/twistd -n --pidfile= jay --config /etc/jay/jay.yml"]
    assert d["Service.User"] == ["jay"] and d["Service.Group"] == ["jay"]
    assert d["Service.Type"] == ["simple"]
    for key, value in [
        ("ProtectSystem", "strict"),
        ("ReadWritePaths", "/var/lib/jay"),
        ("NoNewPrivileges", "yes"),
        ("PrivateTmp", "yes"),
        ("ProtectHome", "yes"),
        ("KillSignal", "SIGTERM"),
    ]:
        assert d[f"Service.{key}"] == [value], key
    assert "SIGTERM" in d["Service.SuccessExitStatus"][0].split()
    assert d["Install.WantedBy"] == ["multi-user.target"]
    assert "StartLimitBurst" not in " ".join(k for k in d if k.startswith("Service."))


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_analyze_verify(tmp_path: Path) -> None:
    # verify insists that ExecStart's binary exists: point it at this venv's twistd.
    twistd = Path(sys.executable).parent / "twistd"
    unit = tmp_path / "jay.service"
    unit.write_text(UNIT.read_text().replace("/usr/bin/twistd", str(twistd)))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "jay.service" not in result.stderr, result.stderr  # no warnings about our unit
