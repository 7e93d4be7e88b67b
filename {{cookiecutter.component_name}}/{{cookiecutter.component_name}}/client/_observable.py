"""`ObservableIntegration` (the guide's Best Practice 3).

Every client in this package already counts `integration_requests_total`,
times `integration_duration_seconds` (labelled source/target/endpoint) and
logs each call; this class keeps the guide's shape for code written to it.
"""

from __future__ import annotations

import logging
from typing import Any

from ..hermes import HermesClient
from ._component import ComponentClient
from ._config import IntegrationConfig
from ._telemetry import logger as client_logger


class ObservableIntegration:
    def __init__(
        self,
        source: str,
        target: str,
        *,
        host: str | None = None,
        port: int | None = None,
        base_url: str | None = None,
        config: IntegrationConfig | None = None,
        discovery: HermesClient | None = None,
    ) -> None:
        self.source = source
        self.target = target
        self.logger = logging.LoggerAdapter(client_logger, {"source": source, "target": target})
        self.client = ComponentClient(
            target, host=host, port=port, base_url=base_url, config=config, source=source, discovery=discovery
        )

    async def request(self, endpoint: str, data: dict[str, Any]) -> Any:
        """POST `data` to the target's `endpoint`, measured and logged."""
        return await self._make_request(endpoint, data)

    async def _make_request(self, endpoint: str, data: dict[str, Any]) -> Any:
        return await self.client.call_api(endpoint, "POST", data)
