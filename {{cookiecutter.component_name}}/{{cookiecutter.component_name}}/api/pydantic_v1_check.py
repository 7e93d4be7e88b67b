"""FastAPI's check for pydantic.v1 models, without importing pydantic.v1 to make it.

FastAPI refuses a route whose model is a `pydantic.v1` one, and to find out
it imports `pydantic.v1` at the first route with a parameter or a model:
some 80 million instructions, about 6% of what a bare FastAPI app runs up to
its first answer. No such model can exist while `pydantic.v1` is not
imported, so the check here answers "no" at once then, and asks FastAPI's
own check otherwise: the same answers, and a component that never uses
`pydantic.v1` never loads it. `tests/test_startup.py` checks both halves,
and fails if FastAPI moves the function.
"""

from __future__ import annotations

import sys
from typing import Any


def _install() -> None:
    try:
        from fastapi._compat import shared
    except ImportError:  # a FastAPI laid out otherwise (not the pinned one): its own check stays, at its cost
        return
    fastapis_check = getattr(shared, "is_pydantic_v1_model_class", None)
    if fastapis_check is None:
        return

    def is_pydantic_v1_model_class(cls: Any) -> bool:
        return "pydantic.v1" in sys.modules and bool(fastapis_check(cls))

    # FastAPI's `annotation_is_pydantic_v1` (called for each route's parameters and models) looks it up here.
    shared.is_pydantic_v1_model_class = is_pydantic_v1_model_class


_install()
