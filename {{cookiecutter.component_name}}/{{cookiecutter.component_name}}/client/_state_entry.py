"""What every shared-state backend shares: the entry type, its JSON encoding, the backend protocol."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Protocol

from ..about import COMPONENT_NAME

State = dict[str, Any]
ENV_PREFIX = f"{COMPONENT_NAME.upper()}_"


class StateBackend(Protocol):
    """Where entries live. `replace` is the compare-and-set (`expected` 0: the key must be absent)."""

    name: str
    atomic: bool  # False: `replace` is not offered (Engram)

    async def read(self, namespace: str, key: str) -> tuple[int, State] | None: ...

    async def save(self, namespace: str, key: str, state: State) -> int: ...

    async def replace(self, namespace: str, key: str, state: State, expected: int) -> bool: ...

    async def aclose(self) -> None: ...


def encode(key: str, state: Any) -> str:
    """The state as JSON text; a clear error for anything that is not a JSON object."""
    if not isinstance(state, Mapping):
        raise TypeError(f"state for {key!r} must be a dict, got {type(state).__name__}")
    try:
        return json.dumps(state, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"state for {key!r} is not JSON-serializable: {exc}") from exc
