"""`RobustIntegration` (the guide's Best Practice 1): calls that return error dicts instead of raising."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._component import ComponentClient
from ._config import IntegrationConfig
from ._errors import error_dict
from ._telemetry import logger


class RobustIntegration:
    """`await RobustIntegration().safe_request("rhetor", "generate", {...})` -> JSON or `{"error": code, ...}`.

    Codes: `timeout`, `http_error` (with `status` and the peer's `body`),
    `unavailable`, `circuit_open`, `internal_error`. `addresses` maps a
    component to a base URL when discovery should be skipped.
    """

    def __init__(self, config: IntegrationConfig | None = None, addresses: Mapping[str, str] | None = None) -> None:
        self.config = config or IntegrationConfig.from_env()
        self.addresses = dict(addresses or {})

    async def safe_request(self, component: str, endpoint: str, data: dict[str, Any]) -> Any:
        try:
            client = ComponentClient(component, base_url=self.addresses.get(component), config=self.config)
            return await client.call_api(endpoint, "POST", data)
        except Exception as exc:
            result = error_dict(exc, component)
            if result["error"] == "internal_error":
                logger.exception("unexpected error calling %s", component)
            return result
