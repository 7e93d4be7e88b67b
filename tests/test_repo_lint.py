"""The template's own Python (hooks, tooling, tests, scripts, benchmarks) meets the bar it sets for bakes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tooling import ROOT

OWN_CODE = ["hooks", "tooling", "tests", "scripts", "benchmarks", "local_extensions.py"]


@pytest.mark.parametrize(
    "tool",
    [["ruff", "check"], ["ruff", "format", "--check"], ["mypy"]],
    ids=["ruff-check", "ruff-format", "mypy-strict"],
)
def test_template_code_passes(tool: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", *tool, *OWN_CODE], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
