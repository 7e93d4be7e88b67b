"""A typed client for this component's own API, so its peers get a ready SDK.

Exported from the package as `<ComponentName>Client` (e.g. `MyComponentClient`).
"""

from __future__ import annotations

from typing import Any, TypedDict, Unpack, cast

from ..about import COMPONENT_NAME
from ._breaker import CircuitBreaker
from ._component import ComponentClient
from ._config import IntegrationConfig
from ._discovery import PeerLocation


class ItemError(TypedDict):
    code: str
    message: str


class ProcessedItem(TypedDict):
    index: int
    result: Any


class FailedItem(TypedDict):
    index: int
    error: ItemError


class BatchReport(TypedDict):
    processed: list[ProcessedItem]
    failed: list[FailedItem]


class OwnClient(ComponentClient):
    """Calls this component (found through Hermes, or at `host`/`port`/`base_url`)."""

    def __init__(
        self,
        *,
        config: IntegrationConfig | None = None,
        circuit_breaker: CircuitBreaker | bool = True,
        source: str = COMPONENT_NAME,
        **where: Unpack[PeerLocation],
    ) -> None:
        super().__init__(
            COMPONENT_NAME,
            config=config,
            circuit_breaker=circuit_breaker,
            source=source,
            **where,
        )

    async def process(self, input: Any) -> Any:
        """`POST /api/v1/process`: the result for one input (a 422 `PeerHTTPError` if it cannot be processed)."""
        answer = await self.call_api("process", "POST", {"input": input})
        return answer["result"]

    async def batch(self, items: list[dict[str, Any]]) -> BatchReport:
        """`POST /api/v1/batch`: results and failures per item index."""
        return cast(BatchReport, await self.call_api("batch", "POST", {"items": items}))

    async def discovery_document(self) -> dict[str, Any]:
        """`GET /api/v1/discovery`: what the component is and serves."""
        return cast(dict[str, Any], await self.call_api("discovery"))

    async def health(self) -> dict[str, Any]:
        """`GET /health` (a 503 answer still returns its body)."""
        response = await self.request("GET", "/health", label="/health")
        return cast(dict[str, Any], response.json())
