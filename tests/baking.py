"""What the template tests share beyond `tooling`: the post-generation hook's
pruning table, hostile free text, and reading bakes and running their suites."""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tooling import ROOT


def _load_post_gen_hook() -> Any:
    """The post-generation hook as a module (its Jinja sits in a string only main() reads)."""
    spec = importlib.util.spec_from_file_location("post_gen_project", ROOT / "hooks" / "post_gen_project.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# (option, value) -> paths the post-generation hook deletes for that value.
PRUNE_WHEN: dict[tuple[str, str], list[str]] = _load_post_gen_hook().PRUNE_WHEN

# Quotes of both kinds, a backslash, ''' and """, non-ASCII beyond the BMP,
# HTML-ish characters (Jinja's tojson escapes them) and a tab.
FREE_TEXT = "O'Brien's \"fast\" \\ component: ''' \"\"\" é 😀 <b>&amp;</b>\tend\\"

# `baked(options)` (the session fixture): the project baked with these options.
Baker = Callable[[Mapping[str, str]], Path]

# Jinja left in a bake means a template bug. `${{` is a GitHub Actions
# expression, written through {% raw %} on purpose.
UNRENDERED = re.compile(r"(?<!\$)\{\{|\{%|\{#|cookiecutter\.")


def text_files(project: Path) -> Iterator[tuple[Path, str]]:
    for path in sorted(project.rglob("*")):
        if path.is_file() and not any(part in {".ruff_cache", ".mypy_cache", "__pycache__"} for part in path.parts):
            try:
                yield path, path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue


def clean_env(package: str = "", **extra: str) -> dict[str, str]:
    """This process's environment minus what would leak into a child: the
    active virtualenv, PYTHONPATH, pytest options, Tekton and Hermes settings,
    and the settings of `package` (`<PACKAGE>_*`)."""
    prefixes = ("TEKTON_", "HERMES_", "PYTEST_", *([f"{package.upper()}_"] if package else []))
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"} and not key.startswith(prefixes)
    }
    return {**env, **extra}


@dataclass(frozen=True)
class SuiteRun:
    """How a generated project's own test suite ended."""

    returncode: int
    output: str
    junit: Path  # the suite's JUnit XML report: which tests ran and how they ended
    # The secret scan (the bake's tests/support/secret_scan.py): the password the run's
    # addresses carried, and the files it left (under its basetemp, logs in the project).
    password: str
    files: tuple[Path, ...]

    def report(self, limit: int = 20000) -> str:
        """The output to show when the run failed: errors and failures, without the captured
        output of every passed test (`-rA` prints it, for the secret scan) nor the passes' list."""
        passes = re.search(r"^=+ PASSES =+$.*?(?=^=+ short test summary info =+$)", self.output, re.M | re.S)
        text = self.output if passes is None else self.output[: passes.start()] + self.output[passes.end() :]
        return "\n".join(line for line in text.splitlines() if not line.startswith("PASSED "))[-limit:]

    def texts(self) -> Iterator[tuple[str, str]]:
        """(where, text) for the run's output and every file it left behind."""
        yield "pytest output", self.output
        for path in self.files:
            yield str(path), path.read_text(encoding="utf-8", errors="replace")
