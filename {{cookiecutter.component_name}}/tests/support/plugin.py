"""Pytest fixtures for tests that need Hermes: load with
`pytest_plugins = ["tests.support.plugin"]` in `conftest.py`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest

from .hermes import LocalHermes

HermesFactory = Callable[..., LocalHermes]


@pytest.fixture
def local_hermes_factory() -> Iterator[HermesFactory]:
    """Start local Hermes instances (`port=`, `token_lifetime=`, `healthy_window=`, `start=`), closed afterwards."""
    with ExitStack() as stack:

        def make(
            port: int | None = None,
            *,
            token_lifetime: float = 3600.0,
            healthy_window: float = 60.0,
            start: bool = True,
        ) -> LocalHermes:
            hermes = LocalHermes(port, token_lifetime=token_lifetime, healthy_window=healthy_window)
            stack.callback(hermes.close)
            return hermes.start() if start else hermes

        yield make


@pytest.fixture
def local_hermes(local_hermes_factory: HermesFactory) -> LocalHermes:
    """A local Hermes speaking the real contract on a free loopback port."""
    return local_hermes_factory()
