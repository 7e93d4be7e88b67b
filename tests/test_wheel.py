"""The wheel ships the component and none of its tests: no `tests/` or
`testing` path in it, and no module in it that imports pytest."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tooling import DEFAULT_NAME

from .baking import Baker, clean_env

WHEEL_VARIANTS: dict[str, dict[str, str]] = {"defaults": {}, "event_bus=redis": {"event_bus": "redis"}}
PYTEST_IMPORT = re.compile(r"\bimport pytest\b|\bfrom pytest\b|\b_pytest\b")
NOT_SOURCE = shutil.ignore_patterns(".*_cache", "__pycache__", "build", "dist", ".venv")


@pytest.fixture(scope="module", params=list(WHEEL_VARIANTS.values()), ids=list(WHEEL_VARIANTS))
def wheel(
    request: pytest.FixtureRequest, baked: Baker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[zipfile.ZipFile]:
    """The bake's wheel, built the way `pip install .` would but without a build
    virtualenv (hatchling comes from this environment)."""
    source = tmp_path_factory.mktemp("wheel-source") / "project"
    shutil.copytree(baked(request.param), source, ignore=NOT_SOURCE)  # the shared bake stays untouched
    out = tmp_path_factory.mktemp("wheel")
    command = [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(source)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=clean_env())
    assert result.returncode == 0, result.stdout + result.stderr
    (path,) = out.glob("*.whl")
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        assert f"{DEFAULT_NAME}/__init__.py" in names, "\n".join(names)
        yield archive


def test_wheel_has_no_tests_or_testing_paths(wheel: zipfile.ZipFile) -> None:
    names = wheel.namelist()
    test_code = [name for name in names if "tests" in Path(name).parts or "testing" in name]
    assert test_code == [], "wheel files:\n" + "\n".join(names)


def test_wheel_modules_do_not_import_pytest(wheel: zipfile.ZipFile) -> None:
    names = wheel.namelist()
    importing = [
        name for name in names if name.endswith(".py") and PYTEST_IMPORT.search(wheel.read(name).decode("utf-8"))
    ]
    assert importing == [], "wheel files:\n" + "\n".join(names)
