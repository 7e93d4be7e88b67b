"""What this component tells Hermes about itself."""

from __future__ import annotations

from typing import Any

from ..about import DESCRIPTION, VERSION
from ..settings import Settings

COMPONENT_TYPE = "component"
HEALTH_PATH = "/health"
WS_PATH = "/ws"
EVENTS_PATH = "/events"


def registration_body(settings: Settings, endpoints: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The `POST /api/register` body. Peers find our address in `endpoint`:
    Hermes keeps `type` and `port` poorly, so they are repeated in `metadata`."""
    return {
        "component_id": settings.component_id,
        "name": settings.component_name,
        "version": VERSION,
        "type": COMPONENT_TYPE,
        "endpoint": settings.base_url,
        "capabilities": list(settings.capabilities),
        "metadata": {
            "type": COMPONENT_TYPE,
            "port": settings.port,
            "ai_port": settings.ai_port,
            "instance_id": settings.instance_id,
            "health_check": HEALTH_PATH,
            "description": DESCRIPTION,
            "dependencies": list(settings.dependencies),
            "api_version": settings.api_version,
            "ws": WS_PATH,
            "events": EVENTS_PATH,
            "endpoints": endpoints or [],
        },
    }
