"""`python -m benchmarks` runs every module it lists through one interface (`benchmarks/table.py`)."""

from __future__ import annotations

import importlib
import inspect
import os
import subprocess
import sys

import pytest

from benchmarks.__main__ import MODULES
from benchmarks.table import Ratio, render
from tooling import DEFAULT_NAME, ROOT

from .baking import Baker, clean_env


@pytest.mark.parametrize("name", sorted(MODULES))
def test_each_listed_module_exposes_comparisons(name: str) -> None:
    module = importlib.import_module(f"benchmarks.{name}")
    first, *others = inspect.signature(module.comparisons).parameters.values()
    assert first.name == "quick"  # `python -m benchmarks` calls comparisons(quick); the rest have defaults
    assert all(parameter.default is not inspect.Parameter.empty for parameter in others)


def test_the_table_shows_each_ratio_against_its_goal() -> None:
    rows = [
        Ratio("GET /health req/s", "bare FastAPI 4,000/s", "3,600/s", 0.9, 0.85),
        Ratio("start-up", "bare 600 ms", "900 ms", 1.5, 1.2, lower_is_better=True),
        Ratio("context only", "guide 17/s", "229/s", 13.5),
    ]
    table = render(rows, "t").splitlines()
    assert table[0].startswith("t (") and table[0].endswith(" cores)")
    assert table[4] == "| GET /health req/s | bare FastAPI 4,000/s | 3,600/s | 0.90x | >= 0.85x | yes |"
    assert table[5] == "| start-up | bare 600 ms | 900 ms | 1.50x | <= 1.20x | NO |"
    assert table[6] == "| context only | guide 17/s | 229/s | 13.50x |  |  |"


def test_auth_in_process_switches_off_parts_the_bake_has(baked: Baker) -> None:
    """`--parts` patches the bake's attributes by name: a rename in the template must fail here, not later."""
    project = baked({})
    check = (
        "from benchmarks.auth_in_process import PARTS, _switched_off\n"
        f"from {DEFAULT_NAME}.api import auth, middleware\n"
        "before = (middleware.sign_answer, auth.AuthGate.signature)\n"
        "for patches in PARTS.values():\n"
        "    with _switched_off(patches):\n"
        "        pass\n"
        "assert (middleware.sign_answer, auth.AuthGate.signature) == before, 'not put back'\n"
        "try:\n"
        "    with _switched_off([('api.middleware', 'no_such_step', lambda: None)]):\n"
        "        raise SystemExit('a missing attribute was patched')\n"
        "except AttributeError:\n"
        "    print('ok')\n"
    )
    env = clean_env(DEFAULT_NAME, PYTHONPATH=os.pathsep.join([str(project), str(ROOT)]))
    done = subprocess.run([sys.executable, "-c", check], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
