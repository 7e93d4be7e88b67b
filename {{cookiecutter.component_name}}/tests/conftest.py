"""Fixtures: real uvicorn servers on loopback, settings built per test."""

from __future__ import annotations

import compileall
import contextlib
import gc
import itertools
import os
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from {{ cookiecutter.component_name }}.app import create_app
from {{ cookiecutter.component_name }}.settings import Settings, load_settings

from .support.event_clients import DEADLINE
from .support.forkserver import SHARED_SERVER, shared_server, shared_server_variable
from .support.servers import running_server


@pytest.hookimpl(optionalhook=True)  # xdist's hook: absent under `-p no:xdist`
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """`-n auto`: three workers per core. The suite mostly waits (on servers starting, sub-second timers,
    sockets), so more workers than cores fill that time: on 2 cores a Redis bake's suite took 69-72 s
    with two per core and 50-58 s with three (one per core: 114 s). `PYTEST_XDIST_AUTO_NUM_WORKERS`
    still decides when set (xdist's own hook reads it), e.g. for two suites sharing one machine."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    return 3 * (os.cpu_count() or 1)


# What the process that starts the xdist workers keeps running for them, until the run ends.
for_the_workers = contextlib.ExitStack()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "long: takes seconds (several processes, real outages): started first")
    if config.getoption("dist", "no") != "no" and not hasattr(config, "workerinput"):
        # The process that starts the xdist workers, before it starts them. Where PYTHONDONTWRITEBYTECODE
        # is set (CI, many containers) each worker and each component process would compile the package
        # again (`make install` compiles the dependencies): compiled once, here.
        tests = Path(__file__).resolve().parent
        for modules in (tests.parent / "{{ cookiecutter.component_name }}", tests / "support"):
            compileall.compile_dir(modules, quiet=2)  # a module that does not compile fails where imported
        directory = for_the_workers.enter_context(tempfile.TemporaryDirectory(prefix="forkserver-"))
        address = for_the_workers.enter_context(shared_server(Path(directory)))
        environment = for_the_workers.enter_context(pytest.MonkeyPatch.context())
        environment.setenv(SHARED_SERVER, shared_server_variable(address))  # the workers inherit it


def pytest_unconfigure(config: pytest.Config) -> None:
    for_the_workers.close()


@pytest.hookimpl(trylast=True)  # after `-k`/`-m` deselected what does not run
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under xdist, the `long` tests go to the heads of the workers' shares, a module's together.

    `--dist worksteal` hands each worker an equal, contiguous share of the collection and lets an idle
    worker take the tail of a busy one's: a long test at a head starts at once, while one near a tail
    would start late and keep the whole run waiting for it. A module's long tests share its imports and
    fixtures, so they stay on one worker; each module goes to the head with the fewest so far. The
    shares are cut as worksteal cuts them."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    modules: dict[object, list[pytest.Item]] = {}
    for item in items:
        if item.get_closest_marker("long"):
            modules.setdefault(item.path, []).append(item)
    if workers < 2 or not modules:
        return
    heads: list[list[pytest.Item]] = [[] for _ in range(workers)]
    for tests in sorted(modules.values(), key=len, reverse=True):
        min(heads, key=len).extend(tests)
    rest = iter([item for item in items if not item.get_closest_marker("long")])
    ordered: list[pytest.Item] = []
    left = len(items)
    for worker, head in enumerate(heads):
        share = left // (workers - worker)
        left -= share
        ordered += [*head, *itertools.islice(rest, max(0, share - len(head)))]
    items[:] = [*ordered, *rest]


# The local Hermes fixtures (`local_hermes`, `local_hermes_factory`).
pytest_plugins = ["tests.support.plugin"]
{%- if cookiecutter.event_bus == "redis" %}
# The event bus is Redis: every test gets a real `redis-server` (`redis_url`).
pytest_plugins.append("tests.support.redis_plugin")
{%- endif %}

SettingsFactory = Callable[..., Settings]


@pytest.fixture(scope="session", autouse=True)
def plain_http_loads_no_ca_bundle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Every test speaks plain HTTP on loopback, yet each httpx client loads the whole CA bundle
    (~40 ms of CPU; a run makes ~800 clients, the component processes it starts more). For this
    run and the processes it starts, httpx verifies against an empty CA directory instead, as
    `hermes/calls.py` does for a plain-http Hermes: nothing is loaded, nothing passes unverified."""
    environment = pytest.MonkeyPatch()
    environment.delenv("SSL_CERT_FILE", raising=False)
    environment.setenv("SSL_CERT_DIR", str(tmp_path_factory.mktemp("no-ca-certificates")))
    yield
    environment.undo()


@pytest.fixture(autouse=True)
def garbage_collected_at_teardown() -> Iterator[None]:
    """Whatever a test leaves unclosed (a socket, a response, a task) is reported as an error
    of that test's teardown (warnings are errors), not of whichever test the collector happens
    to run in later. `gc.freeze()` keeps each collection to what one test made (~10 ms)."""
    yield
    gc.collect()
    gc.freeze()


@pytest.fixture
def make_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> SettingsFactory:
    """Settings from overrides only: no `.env`, and Hermes off unless a test turns it on."""
    monkeypatch.chdir(tmp_path)

    def make(**overrides: Any) -> Settings:
        overrides.setdefault("hermes_enabled", False)
        return load_settings(**overrides)

    return make


@pytest.fixture
def settings(make_settings: SettingsFactory) -> Settings:
    return make_settings()


@pytest.fixture
def base_url(settings: Settings) -> Iterator[str]:
    with running_server(create_app(settings)) as url:
        yield url


@pytest.fixture
async def client(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url, timeout=10.0) as http:
        yield http


@pytest.fixture
async def http(events_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client for the event-plane server that each events test module defines as `events_url`."""
    async with httpx.AsyncClient(base_url=events_url, timeout=DEADLINE) as client:
        yield client
