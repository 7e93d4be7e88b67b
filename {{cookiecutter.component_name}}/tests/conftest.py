"""Fixtures: real uvicorn servers on loopback, settings built per test."""

from __future__ import annotations

import gc
import os
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from {{ cookiecutter.component_name }}.app import create_app
from {{ cookiecutter.component_name }}.settings import Settings, load_settings

from .support.event_clients import DEADLINE
from .support.servers import running_server


@pytest.hookimpl(optionalhook=True)  # xdist's hook: absent under `-p no:xdist`
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: two workers per core. The suite mostly waits (on servers starting, sub-second timers,
    sockets), so a second worker per core fills that time; one per core left the cores half idle."""
    return 2 * (os.cpu_count() or 1)


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
