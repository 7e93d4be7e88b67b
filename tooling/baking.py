"""Baking the template without prompting and without the user's cookiecutter settings."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path

from cookiecutter.main import cookiecutter

from .template import ROOT


def isolated_config(directory: Path) -> Path:
    """A cookiecutter config in `directory` that keeps replays and clones there.

    Passing it as `config_file` means cookiecutter never reads `~/.cookiecutterrc`
    (whose `default_context` would change the bake) and never writes to $HOME.
    """
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "cookiecutterrc.yaml"
    config.write_text(f"cookiecutters_dir: {directory / 'cookiecutters'}\nreplay_dir: {directory / 'replay'}\n")
    return config


def bake(output_dir: Path, options: Mapping[str, str] | None = None, *, config_file: Path | None = None) -> Path:
    """Bake the template into `output_dir` with `options` over the defaults; returns the project directory.

    Without `config_file`, a throwaway isolated config is used (and its replay discarded).
    """
    if config_file is not None:
        return _bake(output_dir, options or {}, config_file)
    with tempfile.TemporaryDirectory(prefix="cookiecutter-") as directory:
        return _bake(output_dir, options or {}, isolated_config(Path(directory)))


def _bake(output_dir: Path, options: Mapping[str, str], config_file: Path) -> Path:
    project = cookiecutter(
        str(ROOT),
        no_input=True,
        extra_context=dict(options),
        output_dir=str(output_dir),
        config_file=str(config_file),
    )
    return Path(project)
