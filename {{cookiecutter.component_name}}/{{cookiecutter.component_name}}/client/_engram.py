"""`EngramClient`: Engram's memory API (`/api/v1/memory`, `/api/v1/search`) as the guide imports it.

Found, called and failing as every Tekton peer's API does (`_tekton_api.py`):
a failure is a `PeerHTTPError` naming Engram, the route, the status and
Engram's own `error` (at Tekton 0ed6aa59 its memory routes answer 500).
Engram's `content` is a string: anything else is sent as JSON text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Unpack

from ._config import IntegrationConfig
from ._discovery import PeerLocation
from ._tekton_api import TektonAPI, as_object

# The guide's `store({...})` passes these beside `content`; Engram keeps them in `metadata`.
_ROUTED = ("content", "namespace", "metadata")


class EngramClient(TektonAPI):
    """`await EngramClient().store({"namespace", "content", ...})`, `await EngramClient().search({...})`."""

    peer = "engram"

    def __init__(
        self,
        *,
        config: IntegrationConfig | None = None,
        default_namespace: str = "default",
        **where: Unpack[PeerLocation],
    ) -> None:
        super().__init__(config=config, **where)
        self.default_namespace = default_namespace

    async def store(self, memory: Mapping[str, Any]) -> dict[str, Any]:
        """`POST /api/v1/memory` `{content, namespace, metadata}` -> Engram's `{id, status}`."""
        content = memory.get("content")
        metadata = {**{k: v for k, v in memory.items() if k not in _ROUTED}, **dict(memory.get("metadata") or {})}
        body = {
            "content": content if isinstance(content, str) else json.dumps(content, separators=(",", ":")),
            "namespace": memory.get("namespace") or self.default_namespace,
            "metadata": metadata,
        }
        return as_object(await self.call("memory", "POST", body), "answer")

    async def search(
        self, query: str | Mapping[str, Any], *, namespace: str | None = None, limit: int = 10
    ) -> list[dict[str, Any]]:
        """`POST /api/v1/search` -> the `results` list (`{id, content, metadata}`; Engram's search is fuzzy).

        The guide passes a dict (`{"namespace", "key", ...}`): its `query` or `key` is the query text.
        """
        if isinstance(query, Mapping):
            namespace = namespace or query.get("namespace")
            limit = int(query.get("limit", limit))
            query = str(query.get("query") or query.get("key") or "")
        body = {"query": query, "namespace": namespace or self.default_namespace, "limit": limit}
        answer = await self.call("search", "POST", body)
        results = answer.get("results") if isinstance(answer, dict) else None
        return [entry for entry in results if isinstance(entry, dict)] if isinstance(results, list) else []

    async def get(self, memory_id: str) -> Any:
        """`GET /api/v1/memory/{id}` (today Engram knows only its demo ids)."""
        return await self.call(f"memory/{memory_id}")

    async def delete(self, memory_id: str) -> Any:
        """`DELETE /api/v1/memory/{id}` (a stub today: 200 for any id, nothing deleted)."""
        return await self.call(f"memory/{memory_id}", "DELETE")
