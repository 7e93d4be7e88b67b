"""The package's shape holds: the client runs without the server stack, the
component publishes only catalogued event types, one backoff policy."""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import {{ cookiecutter.component_name }} as package
from {{ cookiecutter.component_name }}.api.asyncapi import asyncapi_document
from {{ cookiecutter.component_name }}.app import create_app
from {{ cookiecutter.component_name }}.backoff import Backoff
from {{ cookiecutter.component_name }}.client import Peers
from {{ cookiecutter.component_name }}.events import CATALOG, COMPONENT_HEALTH_CHANGED, EventType
from {{ cookiecutter.component_name }}.settings import Settings

from .conftest import SettingsFactory
from .support.servers import running_server

PACKAGE_DIR = Path(package.__file__).parent
# `POST /api/v1/events` publishes whatever valid type a peer sends: the one exception.
OPEN_PUBLISHER = PACKAGE_DIR / "api" / "publish.py"
SERVER_STACK = ("fastapi", "starlette", "uvicorn", "pydantic_settings", f"{package.__name__}.settings")


def test_the_client_package_imports_without_the_server_stack() -> None:
    code = f"import json, sys; import {package.__name__}.client; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(result.stdout)
    assert [name for name in loaded if name.split(".")[0] in SERVER_STACK or name in SERVER_STACK] == []


# What a caller of the client package pays for only with the pattern that needs it (or never:
# httpx's command-line client), so `import <pkg>.client` and a first `ComponentClient` stay cheap.
LOADED_ON_FIRST_USE = ("websockets", "httpx_sse", "jwt", "redis", "pydantic", "click", "rich", "pygments")


def test_a_first_component_client_loads_no_other_patterns_dependencies() -> None:
    first_use = f"import {package.__name__}.client as client; client.ComponentClient"
    code = f"import json, sys; {first_use}; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = {name.split(".")[0] for name in json.loads(result.stdout)}
    assert sorted(loaded & set(LOADED_ON_FIRST_USE)) == []


def _module_name(source: Path) -> str:
    parts = [part for part in source.relative_to(PACKAGE_DIR).with_suffix("").parts if part != "__init__"]
    return ".".join([package.__name__, *parts])


def _imports(source: Path, modules: set[str]) -> set[str]:
    """The package modules `source` imports, `importlib.import_module(f"{__package__}.x")` included."""
    name = _module_name(source)
    here = name if source.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = here.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            # `from . import protocol` imports the submodule, not its (already running) package.
            submodules = {f"{module}.{alias.name}" for alias in node.names} & modules
            found.update(submodules or {module})
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.JoinedStr) and ast.unparse(node).startswith("f'{__package__}."):
            found.add(here + ast.unparse(node)[len("f'{__package__}") : -1])
    return found


def test_the_package_has_no_import_cycle() -> None:
    sources = {_module_name(source): source for source in PACKAGE_DIR.rglob("*.py")}
    modules = set(sources)
    graph = {name: sorted(_imports(source, modules) & modules - {name}) for name, source in sources.items()}
    assert graph[f"{package.__name__}.events.bus"], "the import graph lost the event bus's imports"

    def back_edge(start: str, path: list[str], done: set[str]) -> list[str] | None:
        """A path that comes back to a module still on `path` (depth first; `done` has no cycle below)."""
        for target in graph[start]:
            if target in path:
                return [*path[path.index(target) :], target]
            if target not in done:
                found = back_edge(target, [*path, target], done)
                if found:
                    return found
        done.add(start)
        return None

    done: set[str] = set()
    cycles = [back_edge(name, [name], done) for name in sorted(graph) if name not in done]
    assert [cycle for cycle in cycles if cycle] == []


def _call_sites(tree: ast.AST) -> Iterator[tuple[ast.Call, ast.expr | None, set[str]]]:
    """Each `publish(type, ...)` / `announce(bus, type, ...)` call, its type argument, and the
    enclosing function's parameters annotated `EventType` (the type checker vouches for those)."""
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        typed = {
            argument.arg
            for argument in function.args.args + function.args.kwonlyargs
            if isinstance(argument.annotation, ast.Name) and argument.annotation.id == "EventType"
        }
        for node in ast.walk(function):
            if not isinstance(node, ast.Call):
                continue
            callee = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
            position = {"publish": 0, "announce": 1}.get(str(callee))
            if position is not None:
                yield node, node.args[position] if len(node.args) > position else None, typed


def _resolve(expression: ast.expr, namespace: dict[str, Any]) -> Any:
    if isinstance(expression, ast.Name):
        return namespace.get(expression.id)
    if isinstance(expression, ast.Attribute):
        owner = _resolve(expression.value, namespace)
        return getattr(owner, expression.attr, None)
    return None


def uncatalogued_publishes(source: str, namespace: dict[str, Any]) -> list[str]:
    problems = []
    for call, argument, typed in _call_sites(ast.parse(source)):
        if isinstance(argument, ast.Name) and argument.id in typed:
            continue
        value = _resolve(argument, namespace) if argument is not None else None
        if not (isinstance(value, EventType) and CATALOG.get(value.name) is value):
            problems.append(f"line {call.lineno}: {ast.unparse(call)}")
    return problems


def test_the_package_publishes_only_catalogued_event_types() -> None:
    problems = []
    for source in sorted(PACKAGE_DIR.rglob("*.py")):
        if source == OPEN_PUBLISHER:
            continue
        module = importlib.import_module(_module_name(source))
        problems += [f"{source.name} {problem}" for problem in uncatalogued_publishes(source.read_text(), vars(module))]
    assert problems == []


def test_the_catalog_check_refuses_a_string_published_directly() -> None:
    source = "async def f(bus):\n    await bus.publish('order.shipped', {})\n"
    assert uncatalogued_publishes(source, {}) == ["line 2: bus.publish('order.shipped', {})"]


def test_an_event_type_declared_twice_differently_is_refused() -> None:
    with pytest.raises(ValueError, match="declared twice"):
        EventType(COMPONENT_HEALTH_CHANGED.name, "something else")


def test_the_asyncapi_document_has_a_message_per_catalogued_type(make_settings: SettingsFactory) -> None:
    messages = asyncapi_document(make_settings())["components"]["messages"]
    for event_type in CATALOG.values():
        message = messages[event_type.name]
        assert message["description"] == event_type.description
        assert message["payload"]["properties"]["type"] == {"const": event_type.name}
    assert "component.health_changed" in messages


def test_backoff_stays_jittered_once_capped() -> None:
    backoff = Backoff(initial=0.5, maximum=5.0)
    capped = [backoff.delay(attempt) for attempt in range(10, 30)]
    assert all(2.5 <= wait <= 5.0 for wait in capped)
    assert len(set(capped)) > 10  # clients retrying after one outage do not fall into step


def test_backoff_grows_from_its_initial_wait() -> None:
    backoff = Backoff(initial=0.1, maximum=10.0, jitter=0.0)
    assert [backoff.delay(attempt) for attempt in range(4)] == [0.1, 0.2, 0.4, 0.8]


def test_the_service_is_built_at_startup_with_the_bus_and_the_peers(settings: Settings) -> None:
    app = create_app(settings)
    assert not hasattr(app.state, "service")  # nothing is built before the lifespan runs
    with running_server(app) as url:
        service = app.state.service
        assert service.bus is app.state.bus
        assert isinstance(service.peers, Peers)
        answer = httpx.post(f"{url}/api/v1/process", json={"input": [1, 2]}, timeout=10)
        assert answer.json()["result"]["processed_by"] == package.__name__


LEAKY_TESTS = """
import socket


def test_closes_what_it_opens() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))


def test_leaves_a_socket_in_a_reference_cycle() -> None:
    sock = socket.socket()
    cycle: list[object] = [sock]
    cycle.append(cycle)  # only the garbage collector can close it
"""


@pytest.mark.long
def test_a_test_that_leaves_a_socket_open_fails_itself(tmp_path: Path) -> None:
    """Warnings are errors, and this suite's garbage collection after each test pins a leak on
    the test that left it (not on whichever test the collector would happen to run in)."""
    (tmp_path / "test_leaky.py").write_text(LEAKY_TESTS)
    project = PACKAGE_DIR.parent
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest"]
    command += ["-p", "no:xdist"]  # one test, one process (pyproject.toml turns off the other unused plugins)
    command += ["-c", str(project / "pyproject.toml"), "--rootdir", str(tmp_path), str(tmp_path / "test_leaky.py")]
    result = subprocess.run(command, cwd=project, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "2 passed, 1 error" in result.stdout, result.stdout  # the leaky test passes its call, fails its teardown
    assert "ERROR at teardown of test_leaves_a_socket_in_a_reference_cycle" in result.stdout, result.stdout
    assert "ResourceWarning: unclosed <socket.socket" in result.stdout, result.stdout
