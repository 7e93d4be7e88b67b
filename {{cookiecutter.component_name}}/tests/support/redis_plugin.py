"""Pytest fixtures for a component whose event bus is Redis: every test gets a real one.

One `redis-server` per test session on a free port; each test gets its own
stream, set through the environment so that both `load_settings()` and
`ComponentProcess` (which inherits the environment) use it. Without
`redis-server` on PATH the tests FAIL with an install hint: never skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from {{ cookiecutter.component_name }}.settings import env_name

from .redis_server import RedisServer, RedisServerMissing
from .secret_scan import PASSWORD_VARIABLE


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `redis-server` for the whole session (one per xdist worker); it requires a
    password when the secret scan gives one (`support/secret_scan.py`)."""
    try:
        password = os.environ.get(PASSWORD_VARIABLE) or None
        server = RedisServer(tmp_path_factory.mktemp("redis"), password=password).start()
    except RedisServerMissing as exc:
        pytest.fail(str(exc))
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def redis_event_bus(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point the event bus at the session's Redis, on a stream of this test's own."""
    stream = f"test:{uuid.uuid4().hex}"
    monkeypatch.setenv(env_name("redis_url"), redis_url)
    monkeypatch.setenv(env_name("event_stream_key"), stream)
    return stream
