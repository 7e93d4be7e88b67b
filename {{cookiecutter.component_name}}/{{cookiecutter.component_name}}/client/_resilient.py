"""`ResilientIntegration` (the guide's Pattern 5 usage): calls under the peer's circuit breaker."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, Unpack

from ._component import ComponentClient, peer_breaker
from ._config import IntegrationConfig
from ._discovery import PeerLocation


class ResilientIntegration:
    """`await ResilientIntegration("rhetor").request("generate", {...})`.

    `circuit_breaker` is the peer's one shared breaker (also used by every
    other client of that peer); the inner client has none, so each call is
    counted once, with its retries inside.
    """

    def __init__(
        self,
        component: str,
        *,
        config: IntegrationConfig | None = None,
        **where: Unpack[PeerLocation],
    ) -> None:
        self.component = component
        config = config or IntegrationConfig.from_env()
        self.circuit_breaker = peer_breaker(component, config)
        self.client = ComponentClient(
            component,
            config=config,
            circuit_breaker=False,
            **where,
        )

    def request(self, endpoint: str, data: dict[str, Any]) -> Coroutine[Any, Any, Any]:
        return self.circuit_breaker.call(self.client.call_api, endpoint, "POST", data)
