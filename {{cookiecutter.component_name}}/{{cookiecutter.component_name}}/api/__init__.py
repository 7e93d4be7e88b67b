"""The HTTP surface: routes call the service, never the reverse.

`v1.py` holds your routes; every other module here is the framework's
(health, discovery, publishing, live figures, AsyncAPI, `/ws`, `/events`,
errors, middleware, metrics), and `deps.py` every dependency a route can
ask for.
"""

from . import pydantic_v1_check  # noqa: F401  (before any route is declared: see its docstring)
