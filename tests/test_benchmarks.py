"""`python -m benchmarks` runs every module it lists through one interface (`benchmarks/table.py`)."""

from __future__ import annotations

import importlib
import inspect

import pytest

from benchmarks.__main__ import MODULES
from benchmarks.table import Ratio, render


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
