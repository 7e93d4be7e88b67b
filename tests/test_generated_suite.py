"""The generated project's own test suite, in its own fresh virtualenv.

The project is installed the way its README says (`pip install -e '.[dev]'`,
here pinned by constraints.txt), so a missing dependency or a packaging
mistake fails here even when this repo's environment happens to have it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from .baking import DEFAULT_NAME, Baker, clean_env

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("event_bus", ["memory", "redis"])
def test_generated_suite_passes_in_its_own_virtualenv(
    baked: Baker, generated_venvs: dict[str, Path], event_bus: str
) -> None:
    if event_bus == "redis" and shutil.which("redis-server") is None:
        pytest.fail("redis-server is not on PATH; the redis bake's tests need it: apt-get install redis-server")
    command = [str(generated_venvs[event_bus]), "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    result = subprocess.run(
        command,
        cwd=baked({"event_bus": event_bus}),
        env=clean_env(DEFAULT_NAME),
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = result.stdout[-20000:] + result.stderr[-5000:]
    assert result.returncode == 0, output
    # Skips would stand in for a feature: a missing service must fail instead.
    summary = result.stdout.strip().splitlines()[-1]
    assert re.search(r"\d+ passed", summary), output
    assert "skipped" not in summary, output
