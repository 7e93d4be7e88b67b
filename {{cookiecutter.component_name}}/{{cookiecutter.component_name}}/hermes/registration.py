"""What a component tells Hermes about itself: `POST /api/register` bodies.

`registration_body` describes this component; `registration_from_guide`
turns the guide's registration dict (any component's) into the same shape.
Neither imports the settings: `ComponentIdentity` names the few values
needed, and `Settings` provides them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from ..about import DESCRIPTION, VERSION

COMPONENT_TYPE = "component"
HEALTH_PATH = "/health"
WS_PATH = "/ws"
EVENTS_PATH = "/events"


class ComponentIdentity(Protocol):
    """What registration needs to know about this component; `Settings` has it all."""

    @property
    def component_id(self) -> str: ...
    @property
    def component_name(self) -> str: ...
    @property
    def base_url(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def ai_port(self) -> int: ...
    @property
    def instance_id(self) -> str | None: ...
    @property
    def api_version(self) -> str: ...
    @property
    def capabilities(self) -> Sequence[str]: ...
    @property
    def dependencies(self) -> Sequence[str]: ...


def registration_body(identity: ComponentIdentity, endpoints: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """This component's `POST /api/register` body. Peers find our address in `endpoint`:
    Hermes keeps `type` and `port` poorly, so they are repeated in `metadata`."""
    from ..actions import REGISTRY as ACTIONS  # here, not at the top: the client package must stay light

    return {
        "component_id": identity.component_id,
        "name": identity.component_name,
        "version": VERSION,
        "type": COMPONENT_TYPE,
        "endpoint": identity.base_url,
        "capabilities": list(identity.capabilities),
        "metadata": {
            "type": COMPONENT_TYPE,
            "port": identity.port,
            "ai_port": identity.ai_port,
            "instance_id": identity.instance_id,
            "health_check": HEALTH_PATH,
            "description": DESCRIPTION,
            "dependencies": list(identity.dependencies),
            "api_version": identity.api_version,
            "ws": WS_PATH,
            "events": EVENTS_PATH,
            "endpoints": endpoints or [],
            # Workflow steps (`@action`); `url` is where Harmonia's discovery code looks (Hermes keeps `endpoint`).
            "actions": sorted(ACTIONS),
            "url": identity.base_url,
        },
    }


def registration_from_guide(registration: Mapping[str, Any]) -> dict[str, Any]:
    """The guide's registration dict (`component`, `host`, `port`, ...) as a `POST /api/register` body:
    `host`/`port` become `endpoint`, everything Hermes has no field for goes to `metadata`."""
    data = dict(registration)
    name = data.pop("name", None) or data.pop("component", None)
    if not name:
        raise ValueError("registration needs a 'name' (or the guide's 'component')")
    data.pop("component", None)
    endpoint = data.pop("endpoint", None)
    host, port = data.get("host", "localhost"), data.get("port")
    if not endpoint:
        if port is None:
            raise ValueError(f"registration of {name!r} needs an 'endpoint' or a 'port'")
        endpoint = f"http://{host}:{port}"
    body: dict[str, Any] = {
        "component_id": data.pop("component_id", None) or name,
        "name": name,
        "version": str(data.pop("version", "0.0.0")),
        "type": data.pop("type", None) or data.pop("component_type", None) or "component",
        "endpoint": endpoint,
        "capabilities": list(data.pop("capabilities", [])),
    }
    extra = dict(data.pop("metadata", None) or {})
    body["metadata"] = {**data, **extra}  # host, port, description, health_check, dependencies, endpoints, ...
    return body
