"""Supported option combinations: the defaults and each option changed alone.

Every bake must be fully rendered; pass ruff, mypy --strict, deptry (it declares
what it imports), import-linter (its own layering contracts), the GitHub
workflow schema and hadolint; and carry each value exactly as given into
about.py and pyproject.toml.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tooling import DEFAULT_NAME, OPTIONS, TEKTON_COMPONENTS

from .baking import FREE_TEXT, UNRENDERED, Baker, clean_env, text_files

LONG_TEXT = "A component whose description runs on and on, " * 5

# cookiecutter-django style: one row per supported combination.
SUPPORTED: dict[str, dict[str, str]] = {
    "defaults": {},
    "event_bus=redis": {"event_bus": "redis"},
    "component_name=data_pipeline": {"component_name": "data_pipeline"},
    "component_name=x9": {"component_name": "x9"},
    "component_port=9123": {"component_port": "9123"},
    "component_title=free-text": {"component_title": FREE_TEXT},
    "description=free-text": {"description": FREE_TEXT},
    "description=long": {"description": LONG_TEXT},
    "author_name=free-text": {"author_name": FREE_TEXT},
    "author_email=plus-address": {"author_email": "o'brien+dev@example.co.uk"},
    "version=prerelease": {"version": "1.2.3-rc.1+build.5"},
    "capabilities=several": {"capabilities": "ingest, transform.v2,load-bulk,data_query,"},
    "capabilities=empty": {"capabilities": ""},
}
VARIANTS = pytest.mark.parametrize("options", SUPPORTED.values(), ids=SUPPORTED.keys())


def package_of(options: dict[str, str]) -> str:
    return options.get("component_name", DEFAULT_NAME)


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def venv_tool(name: str) -> str:
    """A console script installed beside this interpreter (`.venv/bin/<name>`), on PATH or not."""
    return str(Path(sys.executable).parent / name)


def about_values(project: Path, package: str) -> dict[str, Any]:
    """The literal constants of the generated about.py, read without importing it."""
    tree = ast.parse((project / package / "about.py").read_text(encoding="utf-8"))
    return {
        node.target.id: ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None
    }


@VARIANTS
def test_bake_leaves_no_template_syntax(baked: Baker, options: dict[str, str]) -> None:
    project = baked(options)
    leftovers = [
        f"{path.relative_to(project)}:{number}: {line.strip()}"
        for path, text in text_files(project)
        for number, line in enumerate(text.splitlines(), start=1)
        if UNRENDERED.search(line)
    ]
    assert leftovers == []


@VARIANTS
def test_bake_has_no_template_named_paths(baked: Baker, options: dict[str, str]) -> None:
    project = baked(options)
    assert [path for path in project.rglob("*") if "{" in path.name or "cookiecutter" in path.name] == []
    assert (project / package_of(options) / "__init__.py").is_file()


@VARIANTS
def test_bake_passes_ruff_check(baked: Baker, options: dict[str, str]) -> None:
    result = run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], baked(options))
    assert result.returncode == 0, result.stdout + result.stderr


@VARIANTS
def test_bake_passes_ruff_format_check(baked: Baker, options: dict[str, str]) -> None:
    result = run([sys.executable, "-m", "ruff", "format", "--check", "--no-cache", "."], baked(options))
    assert result.returncode == 0, result.stdout + result.stderr


@VARIANTS
def test_bake_passes_mypy_strict(baked: Baker, mypy_cache: Path, options: dict[str, str]) -> None:
    command = [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(mypy_cache), package_of(options), "tests"]
    result = run(command, baked(options))
    assert result.returncode == 0, result.stdout + result.stderr


@VARIANTS
def test_bake_declares_exactly_the_dependencies_it_imports(baked: Baker, options: dict[str, str]) -> None:
    result = run([venv_tool("deptry"), "."], baked(options))
    assert result.returncode == 0, result.stdout + result.stderr


@VARIANTS
def test_bake_keeps_its_import_contracts(baked: Baker, options: dict[str, str]) -> None:
    project = baked(options)
    # The bake is installed nowhere: import-linter finds its package on PYTHONPATH.
    result = run([venv_tool("lint-imports"), "--no-cache"], project, clean_env(PYTHONPATH=str(project)))
    assert result.returncode == 0, result.stdout + result.stderr


@VARIANTS
def test_bake_ci_workflow_is_a_valid_github_workflow(baked: Baker, options: dict[str, str]) -> None:
    # The schema vendored in check-jsonschema: nothing is downloaded.
    command = [venv_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", ".github/workflows/ci.yml"]
    result = run(command, baked(options))
    assert result.returncode == 0, result.stdout + result.stderr


@VARIANTS
def test_bake_dockerfile_passes_hadolint(baked: Baker, options: dict[str, str]) -> None:
    result = run([venv_tool("hadolint"), "--no-color", "Dockerfile"], baked(options))
    assert result.returncode == 0, result.stdout + result.stderr


@VARIANTS
def test_options_reach_about_py_intact(baked: Baker, options: dict[str, str]) -> None:
    chosen = {**OPTIONS, "event_bus": OPTIONS["event_bus"][0], **options}
    name = chosen["component_name"]
    expected = {
        "COMPONENT_NAME": name,
        "COMPONENT_TITLE": options.get("component_title", name.replace("_", " ").title()),
        "DESCRIPTION": chosen["description"],
        "VERSION": chosen["version"],
        "DEFAULT_PORT": int(chosen["component_port"]),
        "CAPABILITIES": tuple(part.strip() for part in chosen["capabilities"].split(",") if part.strip()),
        "DEFAULT_EVENT_BUS": chosen["event_bus"],
        "TEKTON_PORTS": TEKTON_COMPONENTS,
    }
    about = about_values(baked(options), name)
    assert {key: about.get(key) for key in expected} == expected


@VARIANTS
def test_options_reach_pyproject_toml_intact(baked: Baker, options: dict[str, str]) -> None:
    chosen = {**OPTIONS, **options}
    project = tomllib.loads((baked(options) / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["name"] == chosen["component_name"].replace("_", "-")
    assert project["version"] == chosen["version"]
    assert project["description"] == chosen["description"]
    assert project["authors"] == [{"name": chosen["author_name"], "email": chosen["author_email"]}]


def requirement_name(requirement: str) -> str:
    """`uvicorn[standard]>=0.54  # why` -> `uvicorn` (PEP 503 normalised)."""
    name = requirement.split("#")[0].strip()
    for stop in "[<>=!~;":
        name = name.split(stop)[0]
    return name.strip().lower().replace("_", "-").replace(".", "-")


@pytest.mark.parametrize("bus", ["memory", "redis"])
def test_template_venv_installs_every_bake_dependency(baked: Baker, bus: str) -> None:
    # The bake checks above (mypy, deptry, import-linter, its tests) run in the template's
    # virtualenv: a dependency a bake declares but requirements-dev.txt lacks passes here
    # only on a machine where someone installed it by hand.
    project = tomllib.loads((baked({"event_bus": bus}) / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = {requirement_name(r) for r in project["dependencies"]}
    declared |= {requirement_name(r) for extra in project["optional-dependencies"].values() for r in extra}
    lines = (Path(__file__).parents[1] / "requirements-dev.txt").read_text(encoding="utf-8").splitlines()
    installed = {requirement_name(line) for line in lines if line.split("#")[0].strip()}
    assert declared - installed == set(), "add these to requirements-dev.txt"
