"""Test helpers shipped with the component: real servers on loopback, no mocks.

Enabled as a pytest plugin by `tests/conftest.py` (`pytest_plugins`); usable
by peers' tests too.
"""

from .hermes import HermesRegistry, LocalHermes, create_hermes_app
from .server import ComponentProcess, free_port, running_server
from .waiting import aeventually, eventually

__all__ = [
    "ComponentProcess",
    "HermesRegistry",
    "LocalHermes",
    "aeventually",
    "create_hermes_app",
    "eventually",
    "free_port",
    "running_server",
]
