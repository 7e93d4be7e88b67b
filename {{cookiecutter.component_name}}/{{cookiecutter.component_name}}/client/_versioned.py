"""`VersionedIntegration` (the guide's Best Practice 4): pin a peer's API version."""

from __future__ import annotations

from typing import Any, Unpack

from ._component import ComponentClient
from ._config import IntegrationConfig
from ._discovery import PeerLocation
from ._transport import api_path


class VersionedIntegration:
    """`await VersionedIntegration("rhetor", "v2").request("generate", {...})` -> `POST /api/v2/generate`
    with `X-API-Version: v2` (not the guide's `/api/v1/v2/...`)."""

    def __init__(
        self,
        component: str,
        version: str = "v1",
        *,
        config: IntegrationConfig | None = None,
        **where: Unpack[PeerLocation],
    ) -> None:
        if not (version.startswith("v") and version[1:].isdigit()):
            raise ValueError(f"version={version!r} is not an API version: use 'v1', 'v2', ...")
        self.component = component
        self.version = version
        self.client = ComponentClient(component, config=config, **where)

    async def request(self, endpoint: str, data: dict[str, Any]) -> Any:
        # `gen` -> `v2/gen`; an endpoint naming its own version (`v3/gen`) keeps it, never `v2/v3/gen`.
        path, version = api_path(endpoint, self.version)
        versioned_endpoint = path.removeprefix("/api/")
        return await self.client.call_api(versioned_endpoint, "POST", data, headers={"X-API-Version": version})
