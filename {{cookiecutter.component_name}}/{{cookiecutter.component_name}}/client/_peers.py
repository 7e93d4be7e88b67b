"""`Peers`: the client package as business code gets it, bound to this component.

`await peers.call("rhetor", "generate", "POST", {...})`, or
`peers.component("rhetor")` for the whole `ComponentClient`. One client per
peer, kept, so every call shares that peer's circuit breaker and the pooled
connections; peers are found through the Hermes this component uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..about import COMPONENT_NAME
from ..hermes import HermesClient

if TYPE_CHECKING:
    from ._component import ComponentClient
    from ._config import IntegrationConfig


class Peers:
    """`addresses` pins peers to base URLs (`{"rhetor": "http://10.0.0.5:8003"}`), skipping discovery."""

    def __init__(
        self,
        *,
        config: IntegrationConfig | None = None,
        discovery: HermesClient | None = None,
        addresses: Mapping[str, str] | None = None,
        source: str = COMPONENT_NAME,
    ) -> None:
        self._config = config
        self.discovery = discovery
        self.source = source
        self._addresses = {_key(name): url for name, url in (addresses or {}).items()}
        self._clients: dict[str, ComponentClient] = {}

    @property
    def config(self) -> IntegrationConfig:
        """Given, else read from the environment (`INTEGRATION_TIMEOUT`, ...) at the first use, as each
        integration reads it: the app makes its `Peers` at start-up, which need not pay for it."""
        if self._config is None:
            from ._config import IntegrationConfig

            self._config = IntegrationConfig.from_env()
        return self._config

    def component(self, name: str) -> ComponentClient:
        """The client of peer `name` (made on first use, then shared)."""
        key = _key(name)
        client = self._clients.get(key)
        if client is None:
            # Imported at the first call, not with `Peers`: the app makes its `Peers` at start-up,
            # and the HTTP stack (httpx) would hold up the component's first answer.
            from ._component import ComponentClient

            client = ComponentClient(
                name,
                base_url=self._addresses.get(key),
                config=self.config,
                source=self.source,
                discovery=self.discovery,
            )
            self._clients[key] = client
        return client

    async def call(
        self,
        component: str,
        endpoint: str,
        method: str = "GET",
        data: Any = None,
        *,
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        """`/api/v1/<endpoint>` on `component`; see `ComponentClient.call_api` for the errors it raises."""
        return await self.component(component).call_api(endpoint, method, data, headers=headers, params=params)

    async def aclose(self) -> None:
        """Close the discovery client given to it (the pooled connections close with `close_pools()`)."""
        if self.discovery is not None:
            await self.discovery.aclose()


def _key(name: str) -> str:
    return name.strip().casefold()
