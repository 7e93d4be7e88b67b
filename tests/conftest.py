"""Session-wide bakes and virtualenvs, shared by every test that needs them.

Baking is cheap but building a virtualenv is not, so each variant is baked
once and each generated-suite variant gets one fresh virtualenv per session.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from .baking import ROOT, Baker, bake, clean_env, write_config


@pytest.fixture(scope="session")
def cookiecutter_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_config(tmp_path_factory.mktemp("cookiecutter"))


@pytest.fixture(scope="session")
def baked(tmp_path_factory: pytest.TempPathFactory, cookiecutter_config: Path) -> Baker:
    """`baked(options)`: the project baked with these options, baked once per session."""
    projects: dict[tuple[tuple[str, str], ...], Path] = {}

    def get(options: Mapping[str, str]) -> Path:
        key = tuple(sorted(options.items()))
        if key not in projects:
            projects[key] = bake(tmp_path_factory.mktemp("bake"), cookiecutter_config, options)
        return projects[key]

    return get


@pytest.fixture(scope="session")
def mypy_cache(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One mypy cache for every bake, kept across runs in .pytest_cache when
    there is one: third-party packages are analysed once."""
    cache: pytest.Cache | None = getattr(request.config, "cache", None)
    return cache.mkdir("mypy") if cache is not None else tmp_path_factory.mktemp("mypy-cache")


@pytest.fixture(scope="session")
def generated_venvs(baked: Baker, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """event_bus -> the python of a fresh virtualenv holding that bake (`-e '.[dev]'`).

    Both are installed at once: pip spends most of its time waiting on I/O.
    """
    venvs = {bus: tmp_path_factory.mktemp(f"venv-{bus}") for bus in ("memory", "redis")}
    installs = {}
    for bus, venv in venvs.items():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        command = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        command += ["-c", str(ROOT / "constraints.txt"), "-e", ".[dev]"]
        with (venv / "pip.log").open("wb") as log:
            installs[bus] = subprocess.Popen(
                command, cwd=baked({"event_bus": bus}), env=clean_env(), stdout=log, stderr=subprocess.STDOUT
            )
    for bus, install in installs.items():
        if install.wait(timeout=600) != 0:
            pytest.fail(f"pip install of the {bus} bake failed:\n{(venvs[bus] / 'pip.log').read_text()}")
    return {bus: venv / "bin" / "python" for bus, venv in venvs.items()}
