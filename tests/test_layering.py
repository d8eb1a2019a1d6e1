"""The import direction of STYLE.md: front ends → core, auth → storage; never the reverse."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "jay"

# package → packages it must not import
FORBIDDEN = {
    "storage": [
        "jay.s3",
        "jay.native",
        "jay.admin",
        "jay.core",
        "jay.auth",
        "jay.client",
        "jay.cli",
        "jay.service",
    ],
    "config": ["jay.storage", "jay.s3", "jay.native", "jay.admin", "jay.core", "jay.auth"],
    "auth": ["jay.s3", "jay.native", "jay.admin", "jay.client", "jay.service"],
    "core": ["jay.s3", "jay.native", "jay.admin", "jay.client", "jay.service"],
    "s3": [
        "jay.native",
        "jay.admin",
        "jay.client",
        "jay.service",
        "jay.storage.sqlite",
        "jay.storage.service",
    ],
    "native": [
        "jay.s3",
        "jay.admin",
        "jay.client",
        "jay.service",
        "jay.storage.sqlite",
        "jay.storage.service",
    ],
    "admin": ["jay.s3", "jay.native", "jay.client", "jay.service", "jay.storage.sqlite"],
    "client": ["jay.native.server", "jay.storage", "jay.s3", "jay.admin", "jay.service"],
    "metrics": ["jay.storage", "jay.s3", "jay.native", "jay.admin", "jay.core", "jay.auth"],
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_import_direction(package: str) -> None:
    offenders = []
    for path in (ROOT / package).rglob("*.py"):
        for name in _imports(path):
            for bad in FORBIDDEN[package]:
                if name == bad or name.startswith(bad + "."):
                    offenders.append(f"{path.relative_to(ROOT.parent)} imports {name}")
    assert not offenders, "\n".join(offenders)


def test_sql_only_in_storage() -> None:
    offenders = [
        str(p.relative_to(ROOT.parent))
        for p in ROOT.rglob("*.py")
        if "sqlite3" in _imports(p) and "storage" not in p.parts
    ]
    assert not offenders
