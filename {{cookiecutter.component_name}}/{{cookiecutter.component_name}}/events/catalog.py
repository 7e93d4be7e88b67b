"""The catalog: every event type this component publishes, with what it means
and the shape of its `data`.

An `EventType` is a `str` (so it goes wherever an event type goes) that
enters the catalog when it is declared. The framework's types are declared
here; declare your own next to the code that publishes them:

    ORDER_SHIPPED = EventType("order.shipped", "An order left the warehouse.", {"type": "object"})
    await self.bus.publish(ORDER_SHIPPED, {"order": 42})

The AsyncAPI document (`/api/v1/asyncapi.json`) is generated from the
catalog, and a test fails when the package publishes a type that is not in
it. `POST /api/v1/events` still accepts any valid type from outside.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

from .envelope import check_event_type

JsonSchema = Mapping[str, Any]

CATALOG: dict[str, EventType] = {}


def _object(**properties: JsonSchema) -> JsonSchema:
    return {"type": "object", "required": list(properties), "properties": properties}


STRING: JsonSchema = {"type": "string"}


class EventType(str):
    """A dotted event type, declared once with its description and payload schema."""

    description: str
    schema: JsonSchema

    def __new__(cls, name: str, description: str, schema: JsonSchema | None = None) -> Self:
        check_event_type(name)
        declared = CATALOG.get(name)
        if declared is not None and (declared.description, declared.schema) != (description, schema or {}):
            raise ValueError(f"event type {name!r} is declared twice, differently: declare it once and import it")
        event_type = super().__new__(cls, name)
        event_type.description = description
        event_type.schema = schema or {}
        CATALOG[name] = event_type
        return event_type

    @property
    def name(self) -> str:
        return str(self)


_IDENTITY = {"component": STRING, "version": STRING, "instance": STRING}

COMPONENT_STARTED = EventType(
    "component.started",
    "The component finished starting and serves traffic.",
    _object(**_IDENTITY, url=STRING),
)
COMPONENT_STOPPING = EventType(
    "component.stopping",
    "The component received a shutdown signal and is stopping.",
    _object(**_IDENTITY),
)
COMPONENT_REGISTERED = EventType(
    "component.registered",
    "The component registered (or registered again) with Hermes.",
    _object(component_id=STRING, name=STRING, endpoint=STRING, hermes=STRING, reason=STRING),
)
COMPONENT_HEALTH_CHANGED = EventType(
    "component.health_changed",
    "A peer watched by a HealthMonitor changed verdict (up, down).",
    _object(
        component=STRING,
        status={"enum": ["up", "down", "unknown"]},
        previous={"enum": ["up", "down", "unknown"]},
        check={"type": "object"},
    ),
)
