"""`ObservableIntegration` (the guide's Best Practice 3).

Every client in this package already counts `integration_requests_total`,
times `integration_duration_seconds` (labelled source/target/endpoint) and
logs each call; this class keeps the guide's shape for code written to it.
"""

from __future__ import annotations

import logging
from typing import Any, Unpack

from ._component import ComponentClient
from ._config import IntegrationConfig
from ._discovery import PeerLocation
from ._telemetry import logger as client_logger


class ObservableIntegration:
    def __init__(
        self,
        source: str,
        target: str,
        *,
        config: IntegrationConfig | None = None,
        **where: Unpack[PeerLocation],
    ) -> None:
        self.source = source
        self.target = target
        self.logger = logging.LoggerAdapter(client_logger, {"source": source, "target": target})
        self.client = ComponentClient(target, config=config, source=source, **where)

    async def request(self, endpoint: str, data: dict[str, Any]) -> Any:
        """POST `data` to the target's `endpoint`, measured and logged."""
        return await self._make_request(endpoint, data)

    async def _make_request(self, endpoint: str, data: dict[str, Any]) -> Any:
        return await self.client.call_api(endpoint, "POST", data)
