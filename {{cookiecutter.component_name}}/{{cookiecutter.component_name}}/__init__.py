"""A Tekton component: its identity lives in ``about.py``, its app in ``app.py``."""

import sys

from .about import VERSION as __version__

# `import httpx` also imports httpx's command-line client (click, rich, pygments: about as
# long as httpx itself) whenever those happen to be installed (encode/httpx#3547). Nothing
# here runs that command line; without the module, httpx falls back to a stub `httpx.main`.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

__all__ = ["__version__"]
