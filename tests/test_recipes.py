"""The generated README's recipes work as written: each names one file to open,
applies cleanly to a fresh bake, keeps it lint-clean, and its tests pass in
the generated suite (the memory bake's suite runs with the recipes applied)."""

from __future__ import annotations

import ast
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from tooling import DEFAULT_NAME

from .baking import SuiteRun
from .recipes import Recipe, apply

RecipeProject = tuple[Path, list[Recipe]]
BAD_OUTCOMES = {"failure", "error", "skipped"}


def recipe_tests(found: list[Recipe]) -> set[str]:
    """The test functions the recipes add."""
    return {
        node.name
        for recipe in found
        if recipe.path.startswith("tests/")
        for node in ast.parse(recipe.code).body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test_")
    }


def test_the_readme_has_a_recipe_for_each_extension_point(recipe_project: RecipeProject) -> None:
    _, found = recipe_project
    opened = {recipe.path for recipe in found if not recipe.path.startswith("tests/")}
    package = DEFAULT_NAME
    assert {f"{package}/api/v1.py", f"{package}/service.py", f"{package}/settings.py"} <= opened
    assert len(recipe_tests(found)) >= 4


def test_a_recipe_whose_anchor_is_gone_fails_loudly(tmp_path: Path) -> None:
    (tmp_path / "module.py").write_text("x = 1\n")
    with pytest.raises(AssertionError, match="anchor line"):
        apply(tmp_path, Recipe("module.py", 'after "y = 2"', "z = 3\n"))


@pytest.mark.parametrize(
    "tool",
    [["ruff", "check", "--no-cache", "."], ["ruff", "format", "--check", "--no-cache", "."]],
    ids=["ruff-check", "ruff-format"],
)
def test_the_recipes_leave_the_component_lint_clean(recipe_project: RecipeProject, tool: list[str]) -> None:
    project, _ = recipe_project
    result = subprocess.run([sys.executable, "-m", *tool], cwd=project, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_recipes_leave_the_component_type_clean(recipe_project: RecipeProject, mypy_cache: Path) -> None:
    project, _ = recipe_project
    command = [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(mypy_cache), DEFAULT_NAME, "tests"]
    result = subprocess.run(command, cwd=project, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_the_recipes_tests_pass_in_the_generated_suite(
    recipe_project: RecipeProject, generated_suites: dict[str, SuiteRun]
) -> None:
    _, found = recipe_project
    run = generated_suites["memory"]
    report = ElementTree.parse(run.junit).getroot()
    outcomes = {
        case.get("name"): next((child.tag for child in case if child.tag in BAD_OUTCOMES), "passed")
        for case in report.iter("testcase")
        if case.get("classname", "").endswith("test_recipes")
    }
    assert outcomes == dict.fromkeys(recipe_tests(found), "passed"), run.output[-5000:]
