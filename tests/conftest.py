"""Session-wide bakes and virtualenvs, shared by every test that needs them.

Baking is cheap but building a virtualenv is not, so each variant is baked
once, and each generated suite runs once, in one fresh virtualenv.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from tooling import DEFAULT_NAME, ROOT, bake, isolated_config

from .baking import Baker, SuiteRun, clean_env
from .recipes import Recipe, apply_all

# What the secret scan reads of the files a generated suite leaves (logs, recorded responses, dumps).
TEXT = {".log", ".txt", ".json", ".jsonl", ".out", ".err"}


@pytest.fixture(scope="session")
def cookiecutter_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return isolated_config(tmp_path_factory.mktemp("cookiecutter"))


@pytest.fixture(scope="session")
def baked(tmp_path_factory: pytest.TempPathFactory, cookiecutter_config: Path) -> Baker:
    """`baked(options)`: the project baked with these options, baked once per session."""
    projects: dict[tuple[tuple[str, str], ...], Path] = {}

    def get(options: Mapping[str, str]) -> Path:
        key = tuple(sorted(options.items()))
        if key not in projects:
            projects[key] = bake(tmp_path_factory.mktemp("bake"), options, config_file=cookiecutter_config)
        return projects[key]

    return get


@pytest.fixture(scope="session")
def recipe_project(tmp_path_factory: pytest.TempPathFactory, cookiecutter_config: Path) -> tuple[Path, list[Recipe]]:
    """The default bake with every recipe of its README applied as written (its own copy: the
    plain default bake stays as generated)."""
    project = bake(tmp_path_factory.mktemp("recipes"), {}, config_file=cookiecutter_config)
    return project, apply_all(project)


@pytest.fixture(scope="session")
def mypy_cache(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One mypy cache for every bake, kept across runs in .pytest_cache when
    there is one: third-party packages are analysed once."""
    cache: pytest.Cache | None = getattr(request.config, "cache", None)
    return cache.mkdir("mypy") if cache is not None else tmp_path_factory.mktemp("mypy-cache")


def install_command(venv: Path) -> list[str]:
    """Make `venv` and return the command that installs into it: uv when this environment
    has it (requirements-dev.txt; seconds instead of a minute), else pip, as `make install` does.
    uv compiles the bytecode as pip does: without it every process recompiles what it imports
    where PYTHONDONTWRITEBYTECODE is set (this CI; many containers)."""
    python = venv / "bin" / "python"
    if importlib.util.find_spec("uv") is not None:
        subprocess.run(
            [sys.executable, "-m", "uv", "venv", "--quiet", "--python", sys.executable, str(venv)], check=True
        )
        return [sys.executable, "-m", "uv", "pip", "install", "--quiet", "--compile-bytecode", "--python", str(python)]
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    return [str(python), "-m", "pip", "install", "--quiet"]


def start_logged(command: list[str], cwd: Path, log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)


def finish(process: subprocess.Popen[bytes], timeout: float) -> int:
    """The exit code; a process still running after `timeout` is killed (and fails)."""
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return -9


@pytest.fixture(scope="session")
def generated_suites(
    baked: Baker, recipe_project: tuple[Path, list[Recipe]], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, SuiteRun]:
    """event_bus -> the result of that bake's own test suite, run in a fresh
    virtualenv holding the bake (`pip install -e '.[dev]'` through uv, pinned by constraints.txt),
    run as `make test` runs it: on every core (`-n auto`, pytest-xdist).
    The memory bake is the one with the README's recipes applied, so its suite
    also runs the recipes' tests.

    Both virtualenvs install at once, then both suites run at once: each
    spends much of its time waiting (on downloads, on sub-second timers).
    """
    buses = ("memory", "redis")
    work = {bus: tmp_path_factory.mktemp(f"generated-{bus}") for bus in buses}
    projects = {"memory": recipe_project[0], "redis": baked({"event_bus": "redis"})}
    pythons = {bus: work[bus] / "venv" / "bin" / "python" for bus in buses}
    installs = {}
    for bus in buses:
        command = [*install_command(work[bus] / "venv"), "-c", str(ROOT / "constraints.txt")]
        installs[bus] = start_logged([*command, "-e", ".[dev]"], projects[bus], work[bus] / "pip.log", clean_env())
    for bus, install in installs.items():
        if finish(install, timeout=600) != 0:
            pytest.fail(f"pip install of the {bus} bake failed:\n{(work[bus] / 'pip.log').read_text()}")
    # Both suites run with a password in every address that can carry one (the bake's
    # tests/support/secret_scan.py); tests/test_generated_suite.py greps what they left.
    password = f"pw-{secrets.token_hex(12)}"
    # Two suites share the machine: each gets two workers per core, not the three a lone `-n auto` takes.
    workers = str(2 * (os.cpu_count() or 1))
    env = clean_env(DEFAULT_NAME, SECRET_SCAN_PASSWORD=password, PYTEST_XDIST_AUTO_NUM_WORKERS=workers)
    scan = ["-p", "tests.support.secret_scan", "-rA"]
    suites = {
        bus: start_logged(
            [
                str(pythons[bus]),
                "-m",
                "pytest",
                "-q",
                "-n",
                "auto",
                "--dist",
                "worksteal",
                "-p",
                "no:cacheprovider",
                *scan,
                # A test stuck this long is a hang: every thread's stack goes to the log.
                "-o",
                "faulthandler_timeout=120",
                f"--basetemp={work[bus] / 'basetemp'}",
                f"--junitxml={work[bus] / 'junit.xml'}",
            ],
            projects[bus],
            work[bus] / "pytest.log",
            env,
        )
        for bus in buses
    }
    runs = {}
    for bus, suite in suites.items():
        returncode = finish(suite, timeout=600)
        left = [path for path in (work[bus] / "basetemp").rglob("*") if path.is_file() and path.suffix in TEXT]
        left += sorted(projects[bus].glob("*.log"))
        output = (work[bus] / "pytest.log").read_text()
        runs[bus] = SuiteRun(returncode, output, work[bus] / "junit.xml", password, tuple(left))
    return runs
