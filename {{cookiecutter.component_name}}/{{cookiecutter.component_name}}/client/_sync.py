"""`SyncIntegration` (the guide's Pattern 1): blocking request/response, for sync code."""

from __future__ import annotations

import asyncio
from typing import Any, Unpack

import httpx

from ._breaker import CircuitBreaker
from ._component import ComponentClient, decode
from ._config import IntegrationConfig
from ._discovery import PeerLocation
from ._errors import IntegrationError, error_dict
from ._pool import sync_client
from ._transport import api_path


class SyncIntegration:
    """`SyncIntegration("rhetor").request("generate", {...})` -> the peer's JSON, or `{"error": ...}`."""

    def __init__(
        self,
        target_component: str,
        *,
        config: IntegrationConfig | None = None,
        circuit_breaker: CircuitBreaker | bool = True,
        **where: Unpack[PeerLocation],
    ) -> None:
        self.target = target_component
        self._client = ComponentClient(
            target_component,
            config=config,
            circuit_breaker=circuit_breaker,
            **where,
        )

    @property
    def client(self) -> httpx.Client:
        """The shared sync connection pool (the guide keeps one per integration)."""
        return sync_client()

    @property
    def base_url(self) -> str:
        return self._client.base_url

    def request(self, endpoint: str, data: dict[str, Any]) -> Any:
        """POST `data` to `endpoint`; a failure comes back as the guide's error dict, never raised.

        Outside an event loop this blocks and returns the dict (Pattern 1). Inside a
        running loop it returns an awaitable of the same dict instead of blocking
        the loop, so the guide's `await integration.request(...)` (Pattern 10,
        Troubleshooting 3) works too.
        """
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            try:
                return self.call(endpoint, "POST", data)
            except IntegrationError as exc:
                return error_dict(exc, self.target)
        return self.arequest(endpoint, data)

    async def arequest(self, endpoint: str, data: dict[str, Any]) -> Any:
        """`request` for async code: the peer's JSON, or the guide's error dict."""
        try:
            return await self._client.call_api(endpoint, "POST", data)
        except IntegrationError as exc:
            return error_dict(exc, self.target)

    def call(
        self, endpoint: str, method: str = "GET", data: Any = None, *, headers: dict[str, str] | None = None
    ) -> Any:
        """Like `ComponentClient.call_api`, blocking, raising typed errors."""
        path, version = api_path(endpoint, self._client.api_version)
        response = self._client.request_sync(
            method, path, json=data, headers={"X-API-Version": version, **(headers or {})}, label=endpoint
        )
        return decode(response)
