"""Test helpers shipped with the component: real servers on loopback, no mocks.

Enabled as a pytest plugin by `tests/conftest.py`; usable by peers' tests too.
"""

from .server import ComponentProcess, free_port, running_server

__all__ = ["ComponentProcess", "free_port", "running_server"]
