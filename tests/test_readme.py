"""README.rst is valid reStructuredText and keeps its two set-up commands."""

from __future__ import annotations

from pathlib import Path

import docutils.core

README = Path(__file__).resolve().parent.parent / "README.rst"


def test_readme_is_valid_restructuredtext() -> None:
    docutils.core.publish_string(
        README.read_text(),
        writer_name="html",
        settings_overrides={"report_level": 2, "halt_level": 2},
    )


def test_readme_has_the_two_setup_commands_and_ci_runs_the_test_one() -> None:
    text = README.read_text()
    start = ".venv/bin/pip install -e . && .venv/bin/twistd -n jay"
    test = ".venv/bin/pip install -e '.[test]' && .venv/bin/python -m pytest"
    assert start in text and test in text
    ci = (README.parent / ".ci" / "run").read_text()
    assert "pip install --quiet -e '.[test]'" in ci
    assert "-m pytest" in ci
