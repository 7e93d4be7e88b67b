"""The post-generation hook: pruning table, idempotence, next steps."""

from __future__ import annotations

import ast
import hashlib
import json
from pathlib import Path

import pytest
from cookiecutter.hooks import run_script_with_context

from tooling import OPTIONS, ROOT, bake, isolated_config

from .baking import PRUNE_WHEN, Baker

HOOKS = ROOT / "hooks"
TEMPLATE_PROJECT = ROOT / "{{cookiecutter.component_name}}"


PRUNE_RULES = pytest.mark.parametrize(
    ("option", "value"), list(PRUNE_WHEN), ids=[f"{option}={value}" for option, value in PRUNE_WHEN]
)


def snapshot(project: Path) -> dict[str, str]:
    return {
        str(path.relative_to(project)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(project.rglob("*"))
        if path.is_file()
    }


@pytest.mark.parametrize("hook", ["pre_gen_project.py", "post_gen_project.py"])
def test_hook_is_plain_python_before_rendering(hook: str) -> None:
    # So ruff and mypy can check it, and a stray `{{` cannot hide in its code.
    ast.parse((HOOKS / hook).read_text(encoding="utf-8"))


@PRUNE_RULES
def test_prune_rule_names_an_option_choice_and_template_paths(option: str, value: str) -> None:
    assert value in OPTIONS[option]
    missing = [
        path
        for path in PRUNE_WHEN[(option, value)]
        if not (TEMPLATE_PROJECT / path.format(package="{{cookiecutter.component_name}}")).exists()
    ]
    assert missing == []


@PRUNE_RULES
def test_pruned_paths_are_gone_only_when_the_option_has_that_value(baked: Baker, option: str, value: str) -> None:
    package = OPTIONS["component_name"]
    paths = [path.format(package=package) for path in PRUNE_WHEN[(option, value)]]
    pruned = baked({option: value})
    others = [baked({option: other}) for other in OPTIONS[option] if other != value]
    assert [path for path in paths if (pruned / path).exists()] == []
    for kept in others:
        assert [path for path in paths if not (kept / path).exists()] == []


@pytest.mark.parametrize("event_bus", OPTIONS["event_bus"])
def test_post_gen_hook_run_again_changes_nothing(tmp_path: Path, event_bus: str) -> None:
    # cruft runs the hooks again on every update.
    config = isolated_config(tmp_path / "config")
    project = bake(tmp_path / "out", {"event_bus": event_bus}, config_file=config)
    (replay,) = (tmp_path / "config" / "replay").glob("*.json")
    before = snapshot(project)
    run_script_with_context(HOOKS / "post_gen_project.py", project, json.loads(replay.read_text()))
    assert snapshot(project) == before


def test_post_gen_hook_prints_the_next_steps(
    tmp_path: Path, cookiecutter_config: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    bake(tmp_path, {"component_name": "data_pipeline", "component_port": "9123"}, config_file=cookiecutter_config)
    out = capfd.readouterr().out
    for step in ("cd data_pipeline", "make install", "make test", "make lint", "make run", "http://127.0.0.1:9123"):
        assert step in out
