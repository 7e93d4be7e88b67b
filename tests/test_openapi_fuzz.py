"""The generated project's OpenAPI conformance test, run long: at least 1,000 schemathesis cases.

The generated suite runs about 10 examples per operation to stay fast; here
the same test (`tests/test_openapi.py` of a bake) runs with more, so a rare
undocumented answer or a 5xx has more chances to show.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tooling import DEFAULT_NAME

from .baking import Baker, clean_env

pytestmark = pytest.mark.slow

EXAMPLES_PER_OPERATION = 300
MINIMUM_CASES = 1000


def test_schemathesis_finds_nothing_in_over_a_thousand_cases(baked: Baker, tmp_path: Path) -> None:
    project = baked({})
    report = tmp_path / "cases.txt"
    env = clean_env(DEFAULT_NAME, SCHEMATHESIS_EXAMPLES=str(EXAMPLES_PER_OPERATION), SCHEMATHESIS_REPORT=str(report))
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/test_openapi.py", "-q", "-p", "no:cacheprovider", "-p", "no:xdist"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, (run.stdout + run.stderr)[-20000:]
    assert int(report.read_text()) >= MINIMUM_CASES
