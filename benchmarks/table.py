"""The one shape every benchmark module reports in, and the table that prints it.

Each comparison module exposes `def comparisons(quick: bool) -> list[Ratio]`:
one row per comparison, the baseline and the component measured in the same
run, their ratio, and the goal it is held to. `python -m benchmarks` collects
every module's rows and prints them with `render`.

`ratio` is "how the component compares, higher is better": a throughput
divided by the baseline's, or for a time (latency, start-up) the component's
time over the baseline's with `lower_is_better=True` (then the goal is a
ceiling). `goal` is the bound from the issue, or None when the row is shown
for context only.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Ratio:
    name: str  # what is compared, e.g. "GET /health req/s"
    baseline: str  # the baseline and its figure, e.g. "bare FastAPI 4,012 req/s"
    component: str  # the component's figure, e.g. "3,650 req/s"
    ratio: float  # component / baseline
    goal: float | None = None  # the bound the issue sets (a floor, or a ceiling when lower_is_better)
    lower_is_better: bool = False

    @property
    def met(self) -> bool | None:
        if self.goal is None:
            return None
        return self.ratio <= self.goal if self.lower_is_better else self.ratio >= self.goal

    @property
    def goal_text(self) -> str:
        if self.goal is None:
            return ""
        return f"{'<=' if self.lower_is_better else '>='} {self.goal:.2f}x"


def render(rows: Iterable[Ratio], title: str = "") -> str:
    """A Markdown table (pastes into the README as is), with the core count on top."""
    lines = [f"{title or 'Benchmarks'} ({os.cpu_count()} cores)", ""]
    lines.append("| comparison | baseline | component | ratio | goal | met |")
    lines.append("|---|---|---|---|---|---|")
    for row in rows:
        met = {True: "yes", False: "NO", None: ""}[row.met]
        lines.append(f"| {row.name} | {row.baseline} | {row.component} | {row.ratio:.2f}x | {row.goal_text} | {met} |")
    return "\n".join(lines)
