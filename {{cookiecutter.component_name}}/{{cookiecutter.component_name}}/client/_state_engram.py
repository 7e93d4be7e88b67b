"""The `engram` state backend: entries as Engram memories `{key, version, state}`.

Engram has no update, version, ETag or compare-and-set (its `PUT` is a stub),
so every save adds a memory with the next version, and a load searches the
namespace (Engram's search is fuzzy) and takes the highest version whose key
matches exactly. Two writers can both write version n+1: `atomic` is False,
and `SharedStateIntegration.sync_state` refuses unless last-writer-wins is
accepted.
"""

from __future__ import annotations

import json
from typing import Any

from ._engram import EngramClient
from ._state_entry import State, encode

SEARCH_LIMIT = 100  # versions of one key a load looks through


class EngramState:
    name = "engram"
    atomic = False

    def __init__(self, engram: EngramClient | None = None) -> None:
        self.engram = engram or EngramClient()

    async def read(self, namespace: str, key: str) -> tuple[int, State] | None:
        best: tuple[int, State] | None = None
        for memory in await self.engram.search(key, namespace=namespace, limit=SEARCH_LIMIT):
            entry = _entry(memory.get("content"))
            if entry is None or entry.get("key") != key:
                continue  # fuzzy search: other keys, other memories
            version, state = entry.get("version"), entry.get("state")
            if isinstance(version, int) and isinstance(state, dict) and (best is None or version > best[0]):
                best = (version, state)
        return best

    async def save(self, namespace: str, key: str, state: State) -> int:
        found = await self.read(namespace, key)
        version = (found[0] if found else 0) + 1
        encode(key, state)
        content = {"key": key, "version": version, "state": state}
        await self.engram.store(
            {
                "namespace": namespace,
                "content": content,
                "metadata": {"key": key, "version": version, "type": "state"},
            }
        )
        return version

    async def replace(self, namespace: str, key: str, state: State, expected: int) -> bool:
        raise NotImplementedError("Engram has no compare-and-set")

    async def aclose(self) -> None:
        return None


def _entry(content: Any) -> dict[str, Any] | None:
    if isinstance(content, dict):
        return content
    if not isinstance(content, str):
        return None
    try:
        parsed = json.loads(content)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None
