"""The template under test: where it is, its options, and baking it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from cookiecutter.main import cookiecutter

ROOT = Path(__file__).resolve().parent.parent
OPTIONS: dict[str, Any] = json.loads((ROOT / "cookiecutter.json").read_text())
# The one list of Tekton components and their ports, shared with the hook.
TEKTON_COMPONENTS: dict[str, int] = OPTIONS["_tekton_components"]
DEFAULT_NAME: str = OPTIONS["component_name"]

# Jinja left in a bake means a template bug. `${{` is a GitHub Actions
# expression, written through {% raw %} on purpose.
UNRENDERED = re.compile(r"(?<!\$)\{\{|\{%|\{#|cookiecutter\.")


def bake(output_dir: Path, config_file: Path, options: Mapping[str, str]) -> Path:
    """Bake the template without prompting; returns the project directory."""
    return Path(
        cookiecutter(
            str(ROOT),
            no_input=True,
            extra_context=dict(options),
            output_dir=str(output_dir),
            config_file=str(config_file),
        )
    )


def write_config(directory: Path) -> Path:
    """A cookiecutter config that keeps replays out of $HOME and ignores the user's defaults."""
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "cookiecutterrc.yaml"
    config.write_text(f"cookiecutters_dir: {directory / 'cookiecutters'}\nreplay_dir: {directory / 'replay'}\n")
    return config


def text_files(project: Path) -> Iterator[tuple[Path, str]]:
    for path in sorted(project.rglob("*")):
        if path.is_file() and not any(part in {".ruff_cache", ".mypy_cache", "__pycache__"} for part in path.parts):
            try:
                yield path, path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue
