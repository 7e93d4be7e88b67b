"""Every comparison in one run: `python -m benchmarks [--quick] [--only NAME ...]`.

Each module below exposes `comparisons(quick) -> list[Ratio]` (see
`benchmarks/table.py`): it bakes what it needs, measures the component and
its baseline side by side in the same run, and returns one row per
comparison. This runs them one after the other (never two at once: they
would share the cores) and prints one table of ratios with the machine's
core count. A module that fails is named in the output, and the others
still run; the exit code is 1 then.

`--quick` runs fewer and shorter rounds: a smoke run, not figures to quote.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import platform
import subprocess
import sys
import time
import traceback

from benchmarks.table import Ratio, render

# Module name -> what it compares (the order they run in).
MODULES = {
    "http_stack": "HTTP stack: the component's defaults against bare FastAPI",
    "events_fanout": "event fan-out to many WebSocket and SSE subscribers",
    "redis_bus": "the Redis bus against raw XADD",
    "client_pool": "the client package against plain pooled httpx",
    "client_batch": "BatchIntegration against the guide's batch pattern",
    "auth_cost": "authentication on against off",
    "auth_in_process": "authentication on against off, in one interpreter (context)",
    "startup": "import and first-answer times",
}


def run(names: list[str], quick: bool) -> tuple[list[Ratio], list[str]]:
    rows: list[Ratio] = []
    failures: list[str] = []
    for name in names:
        print(f"== {name}: {MODULES[name]}", file=sys.stderr, flush=True)
        started = time.perf_counter()
        # Each module in a fresh interpreter: several import a bake under the same package name,
        # whose metrics a second import would register again in prometheus_client's one registry.
        command = [sys.executable, "-m", "benchmarks", "--module-json", name, *(["--quick"] if quick else [])]
        result = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
        if result.returncode == 0:
            rows.extend(Ratio(**row) for row in json.loads(result.stdout.strip().splitlines()[-1]))
        else:
            failures.append(f"{name}: exited {result.returncode} (its traceback is above)")
        print(f"   {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    return rows, failures


def module_json(name: str, quick: bool) -> int:
    """One module's rows as a JSON line, last on stdout (what `run` reads)."""
    try:
        module = importlib.import_module(f"benchmarks.{name}")
        rows = module.comparisons(quick)
    except Exception:
        traceback.print_exc(limit=3)
        return 1
    print(json.dumps([dataclasses.asdict(row) for row in rows]))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds (a smoke run)")
    parser.add_argument("--only", nargs="+", choices=list(MODULES), default=list(MODULES), metavar="NAME")
    parser.add_argument("--module-json", choices=list(MODULES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.module_json:
        return module_json(args.module_json, args.quick)
    rows, failures = run(args.only, args.quick)
    title = f"python -m benchmarks{' --quick' if args.quick else ''} on {platform.python_implementation()} "
    title += f"{platform.python_version()}, {platform.machine()}"
    print(render(rows, title))
    for failure in failures:
        print(f"\nFAILED {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
