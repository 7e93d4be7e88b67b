"""What the template's tests, scripts and benchmarks share: the template and
its options, baking it in isolation, a free port, waiting for a server.

Imports only the standard library and cookiecutter, so `make demo` can use it
before anything else is installed.
"""

from .baking import bake, isolated_config
from .ports import free_port
from .template import DEFAULT_NAME, OPTIONS, ROOT, TEKTON_COMPONENTS
from .waiting import wait_for_http

__all__ = [
    "DEFAULT_NAME",
    "OPTIONS",
    "ROOT",
    "TEKTON_COMPONENTS",
    "bake",
    "free_port",
    "isolated_config",
    "wait_for_http",
]
