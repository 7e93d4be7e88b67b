"""`POST /api/v1/events`: publish an event from outside the component.

Any valid dotted type is accepted here (peers publish their own); the
component's own code publishes only the types of `events/catalog.py`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field, field_validator

from ..events import EVENT_TYPE_PATTERN, MAX_TYPE_LENGTH, InvalidEventData, check_event_type
from ..events.backend import BusUnavailable
from .deps import PublisherDep

router = APIRouter(prefix="/api/v1", tags=["events"])


class PublishRequest(BaseModel):
    type: str = Field(
        description="Dotted event type, e.g. `workflow.completed`",
        examples=["workflow.completed"],
        # In the schema only: the validator below gives the clearer message.
        json_schema_extra={"pattern": EVENT_TYPE_PATTERN, "maxLength": MAX_TYPE_LENGTH},
    )
    data: dict[str, Any] = Field({}, description="The event's payload")  # copied per instance (api/actions.py)

    @field_validator("type")
    @classmethod
    def _dotted(cls, value: str) -> str:
        return check_event_type(value)


class EventEnvelope(BaseModel):
    id: str
    type: str
    source: str
    time: str
    data: Any
    request_id: str | None = Field(None, description="The HTTP request that published it, when there was one")


@router.post("/events", status_code=202, response_model=EventEnvelope, summary="Publish an event")
async def publish(body: PublishRequest, bus: PublisherDep) -> EventEnvelope:
    try:
        event = await bus.publish(body.type, body.data)
    except InvalidEventData as exc:
        # Checked before anything is published: no subscriber sees a refused event.
        raise HTTPException(400, str(exc)) from None
    except BusUnavailable as exc:
        raise HTTPException(503, str(exc)) from None
    return EventEnvelope(**event.to_dict())
