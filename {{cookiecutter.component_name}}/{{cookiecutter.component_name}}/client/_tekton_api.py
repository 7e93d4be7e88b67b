"""`TektonAPI`: the base of the clients of one named Tekton peer's HTTP API (Engram, Harmonia).

The peer is found through Hermes by its name like any other (or pinned with
`host`/`port`/`base_url`), and every call goes through `ComponentClient`:
the pool, breaker, retries, signing and metrics. A failure is a typed error:
`PeerHTTPError` naming the peer, the route, the status and the peer's own
message (Engram's `error`, Harmonia's `message`, FastAPI's `detail`; at
Tekton 0ed6aa59 many of these routes answer 500), else `PeerTimeoutError`,
`PeerUnavailableError` or `CircuitOpenError`. An answer that is not the
JSON object the route promises is kept under a key, never dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Unpack

from ._component import ComponentClient
from ._config import IntegrationConfig
from ._discovery import PeerLocation


class TektonAPI:
    """Subclasses name their peer (`peer = "engram"`) and add its routes."""

    peer: ClassVar[str]

    def __init__(self, *, config: IntegrationConfig | None = None, **where: Unpack[PeerLocation]) -> None:
        self.client = ComponentClient(self.peer, config=config, **where)

    async def call(self, endpoint: str, method: str = "GET", body: Any = None) -> Any:
        """`/api/v1/<endpoint>` on the peer: its decoded answer, or one of the typed errors above."""
        return await self.client.call_api(endpoint, method, body)


def as_object(answer: Any, key: str) -> dict[str, Any]:
    """`answer` as a dict when it is a JSON object, else wrapped as `{key: answer}`."""
    return dict(answer) if isinstance(answer, Mapping) else {key: answer}
