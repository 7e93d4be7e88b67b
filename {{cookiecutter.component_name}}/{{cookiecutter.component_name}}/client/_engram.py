"""`EngramClient`: Engram's memory API (`/api/v1/memory`, `/api/v1/search`) as the guide imports it.

Built on `ComponentClient`, so Engram is found through Hermes like any peer
and every call gets the pool, breaker, retries, signing and metrics. A
failure is a `PeerHTTPError` naming Engram, the route, the status and
Engram's own message (at Tekton 0ed6aa59 its memory routes answer 500).
Engram's `content` is a string: anything else is sent as JSON text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..hermes import HermesClient
from ._component import ComponentClient
from ._config import IntegrationConfig

# The guide's `store({...})` passes these beside `content`; Engram keeps them in `metadata`.
_ROUTED = ("content", "namespace", "metadata")


class EngramClient:
    """`await EngramClient().store({"namespace", "content", ...})`, `await EngramClient().search({...})`."""

    def __init__(
        self,
        *,
        host: str | None = None,
        port: int | None = None,
        base_url: str | None = None,
        config: IntegrationConfig | None = None,
        discovery: HermesClient | None = None,
        default_namespace: str = "default",
    ) -> None:
        self.client = ComponentClient(
            "engram", host=host, port=port, base_url=base_url, config=config, discovery=discovery
        )
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
        answer = await self.client.call_api("memory", "POST", body)
        return dict(answer) if isinstance(answer, dict) else {"answer": answer}

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
        answer = await self.client.call_api("search", "POST", body)
        results = answer.get("results") if isinstance(answer, dict) else None
        return [entry for entry in results if isinstance(entry, dict)] if isinstance(results, list) else []

    async def get(self, memory_id: str) -> Any:
        """`GET /api/v1/memory/{id}` (today Engram knows only its demo ids)."""
        return await self.client.call_api(f"memory/{memory_id}")

    async def delete(self, memory_id: str) -> Any:
        """`DELETE /api/v1/memory/{id}` (a stub today: 200 for any id, nothing deleted)."""
        return await self.client.call_api(f"memory/{memory_id}", "DELETE")
