"""The `memory` state backend: one process (tests, the demo); every instance shares one store."""

from __future__ import annotations

import json
import threading

from ._state_entry import State, encode

# (namespace, key) -> (version, JSON text): text, so no caller can change a stored state in place.
_entries: dict[tuple[str, str], tuple[int, str]] = {}
_lock = threading.Lock()  # several loops or threads of one process may share the store


class MemoryState:
    name = "memory"
    atomic = True

    async def read(self, namespace: str, key: str) -> tuple[int, State] | None:
        with _lock:
            entry = _entries.get((namespace, key))
        return (entry[0], json.loads(entry[1])) if entry else None

    async def save(self, namespace: str, key: str, state: State) -> int:
        text = encode(key, state)
        with _lock:
            version = _entries.get((namespace, key), (0, ""))[0] + 1
            _entries[(namespace, key)] = (version, text)
        return version

    async def replace(self, namespace: str, key: str, state: State, expected: int) -> bool:
        text = encode(key, state)
        with _lock:
            version = _entries.get((namespace, key), (0, ""))[0]
            if version != expected:
                return False
            _entries[(namespace, key)] = (version + 1, text)
        return True

    async def aclose(self) -> None:
        return None
