"""A Tekton component: its identity lives in ``about.py``, its app in ``app.py``."""

from .about import VERSION as __version__

__all__ = ["__version__"]
