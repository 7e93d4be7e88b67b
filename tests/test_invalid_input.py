"""Unsupported input: each bad value stops the bake with one line naming it and
the rule, and nothing is generated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cookiecutter.exceptions import FailedHookException
from cookiecutter.main import cookiecutter

from tooling import ROOT, TEKTON_COMPONENTS, bake

# cookiecutter-django style: one row per unsupported value -> the message the
# hook must print. Each value breaks exactly one rule.
UNSUPPORTED: dict[str, tuple[dict[str, str], str]] = {
    "name-camel-case": (
        {"component_name": "MyComponent"},
        "component_name 'MyComponent' is not a lowercase Python identifier",
    ),
    "name-dash": (
        {"component_name": "my-component"},
        "component_name 'my-component' is not a lowercase Python identifier",
    ),
    "name-leading-digit": ({"component_name": "2fast"}, "component_name '2fast' is not a lowercase Python identifier"),
    "name-leading-underscore": ({"component_name": "_hidden"}, "component_name '_hidden' is not a lowercase Python"),
    "name-trailing-underscore": ({"component_name": "hidden_"}, "component_name 'hidden_' is not a lowercase Python"),
    "name-non-ascii": ({"component_name": "café"}, "component_name 'café' is not a lowercase Python identifier"),
    "name-keyword": ({"component_name": "class"}, "component_name 'class' is a Python keyword"),
    "name-stdlib": ({"component_name": "json"}, "component_name 'json' is a Python standard library module"),
    "name-stdlib-asyncio": ({"component_name": "asyncio"}, "component_name 'asyncio' is a Python standard library"),
    "name-tekton-hermes": ({"component_name": "hermes"}, "component_name 'hermes' is an existing Tekton component"),
    "name-tekton-core": ({"component_name": "tekton_core"}, "component_name 'tekton_core' is an existing Tekton"),
    "name-shadows-dependency": ({"component_name": "fastapi"}, "component_name 'fastapi' would shadow the 'fastapi'"),
    "name-tests-directory": ({"component_name": "tests"}, "component_name 'tests' would shadow the 'tests'"),
    "port-not-integer": ({"component_port": "80x0"}, "component_port '80x0' is not an integer"),
    "port-decimal": ({"component_port": "8020.5"}, "component_port '8020.5' is not an integer"),
    "port-negative": ({"component_port": "-8020"}, "component_port '-8020' is not an integer"),
    "port-below-range": ({"component_port": "7999"}, "component_port 7999 is outside 8000-9999"),
    "port-above-range": ({"component_port": "10000"}, "component_port 10000 is outside 8000-9999"),
    "port-hermes": ({"component_port": "8001"}, "component_port 8001 is reserved for Tekton's hermes"),
    "port-engram": ({"component_port": "8000"}, "component_port 8000 is reserved for Tekton's engram"),
    "port-database-mcp": ({"component_port": "8099"}, "component_port 8099 is reserved for Tekton's database_mcp"),
    "version-two-parts": ({"version": "1.0"}, "version '1.0' is not semver MAJOR.MINOR.PATCH"),
    "version-v-prefix": ({"version": "v1.0.0"}, "version 'v1.0.0' is not semver MAJOR.MINOR.PATCH"),
    "version-leading-zero": ({"version": "01.0.0"}, "version '01.0.0' is not semver MAJOR.MINOR.PATCH"),
    "version-not-pep440": ({"version": "1.0.0-x.7.z.92"}, "version '1.0.0-x.7.z.92' is semver but not a valid Python"),
    "capability-uppercase": ({"capabilities": "process,Batch"}, "capability 'Batch' must match ^[a-z][a-z0-9_.-]*$"),
    "capability-space": ({"capabilities": "data query"}, "capability 'data query' must match ^[a-z][a-z0-9_.-]*$"),
    "capability-digit-first": ({"capabilities": "3d"}, "capability '3d' must match ^[a-z][a-z0-9_.-]*$"),
    "newline-title": ({"component_title": "My\nComponent"}, "component_title 'My\\nComponent' contains a line break"),
    "newline-description": ({"description": "one\vtwo"}, "description 'one\\x0btwo' contains a line break"),
    "newline-author": ({"author_name": "Ann\u2028Lee"}, "author_name 'Ann\\u2028Lee' contains a line break"),
    "newline-capabilities": ({"capabilities": "a,\nb"}, "capabilities 'a,\\nb' contains a line break"),
    "control-character": ({"description": "bell\x07"}, "description 'bell\\x07' contains the control character"),
    "email-without-at": ({"author_email": "dev.example.com"}, "author_email 'dev.example.com' is not an email address"),
    "email-empty": ({"author_email": ""}, "author_email '' is not an email address"),
}


def hook_errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error: ")]


@pytest.mark.parametrize(("options", "message"), UNSUPPORTED.values(), ids=UNSUPPORTED.keys())
def test_invalid_input_stops_the_bake_with_one_line(
    tmp_path: Path, cookiecutter_config: Path, capfd: pytest.CaptureFixture[str], options: dict[str, str], message: str
) -> None:
    output_dir = tmp_path / "out"
    output_dir.mkdir()
    with pytest.raises(FailedHookException):
        bake(output_dir, options, config_file=cookiecutter_config)
    errors = hook_errors(capfd.readouterr().err)
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"error: {message}")
    assert list(output_dir.iterdir()) == []


@pytest.mark.parametrize(("name", "port"), sorted(TEKTON_COMPONENTS.items()))
def test_every_tekton_name_and_port_is_rejected(
    tmp_path: Path, cookiecutter_config: Path, capfd: pytest.CaptureFixture[str], name: str, port: int
) -> None:
    with pytest.raises(FailedHookException):
        bake(tmp_path, {"component_name": name, "component_port": str(port)}, config_file=cookiecutter_config)
    errors = hook_errors(capfd.readouterr().err)
    assert errors == [
        f"error: component_name {name!r} is an existing Tekton component; choose another name",
        f"error: component_port {port} is reserved for Tekton's {name}; pick a free port in 8000-9999",
    ]
    assert list(tmp_path.iterdir()) == []


def test_unknown_event_bus_is_refused_before_generation(tmp_path: Path, cookiecutter_config: Path) -> None:
    # cookiecutter itself checks choice options given on the command line.
    with pytest.raises(ValueError, match=r"kafka provided for choice variable event_bus, but the choices are"):
        bake(tmp_path, {"event_bus": "kafka"}, config_file=cookiecutter_config)
    assert list(tmp_path.iterdir()) == []


def test_unknown_event_bus_in_a_replay_is_refused_by_the_hook(
    tmp_path: Path, cookiecutter_config: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # A replay (or an edited .cruft.json) skips cookiecutter's own check: the hook catches it.
    bake(tmp_path / "first", config_file=cookiecutter_config)
    (replay,) = (cookiecutter_config.parent / "replay").glob("*.json")
    context = json.loads(replay.read_text())
    context["cookiecutter"]["event_bus"] = "kafka"
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(context))
    output_dir = tmp_path / "second"
    output_dir.mkdir()
    capfd.readouterr()
    with pytest.raises(FailedHookException):
        cookiecutter(str(ROOT), replay=str(edited), output_dir=str(output_dir), config_file=str(cookiecutter_config))
    assert hook_errors(capfd.readouterr().err) == ["error: event_bus 'kafka' is not one of memory, redis"]
    assert list(output_dir.iterdir()) == []
