"""Remove the files of options left disabled, then print the next steps.

Runs in the new project's directory. Offline and idempotent: cruft runs it
again on every update, so a file already gone is fine.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

# (option, value) -> paths to delete when the option has that value. Paths are
# relative to the project root; `{package}` stands for the package directory.
# A directory is removed whole.
PRUNE_WHEN: dict[tuple[str, str], list[str]] = {
    ("event_bus", "memory"): [
        "{package}/events/redis_bus.py",
        "{package}/hermes/lease.py",
        "tests/support/redis_server.py",
        "tests/support/redis_plugin.py",
        "tests/support/faults.py",
        "tests/test_fault_redis_bus.py",
        "tests/test_events_redis.py",
        "tests/test_hermes_workers.py",
    ],
}


def is_selected(value: Any, expected: str) -> bool:
    """Compare an option value defensively.

    Cookiecutter >= 2.7 coerces `yes`/`true` to a bool and numbers may come in
    as ints, so compare lowercased text.
    """
    return str(value).strip().lower() == expected.lower()


def paths_to_prune(context: dict[str, Any]) -> list[str]:
    package = str(context["component_name"])
    return [
        path.format(package=package)
        for (option, value), paths in PRUNE_WHEN.items()
        if is_selected(context.get(option), value)
        for path in paths
    ]


def prune(root: Path, relative_paths: list[str]) -> list[str]:
    """Delete each path under `root`; returns those that existed."""
    removed = []
    for relative in relative_paths:
        path = root / relative
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
        else:
            continue
        removed.append(relative)
    return removed


def next_steps(context: dict[str, Any]) -> str:
    name = context["component_name"]
    port = context["component_port"]
    return f"""
Created {name}/ ({context["component_title"]}).

Next steps:
    cd {name}
    make install    # virtualenv in .venv with the component and its dev tools
    make test       # the component's test suite
    make lint       # ruff and mypy --strict
    make run        # serve on http://127.0.0.1:{port}  (health: /health, docs: /api/v1/docs)
"""


def main() -> int:
    # ''' cannot occur in tojson's output (it writes ' as \u0027): keep these quotes.
    context = json.loads(r'''{{ cookiecutter | tojson }}''')  # fmt: skip
    prune(Path.cwd(), paths_to_prune(context))
    print(next_steps(context))
    return 0


if __name__ == "__main__":
    sys.exit(main())
