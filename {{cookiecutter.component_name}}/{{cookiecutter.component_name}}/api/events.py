"""`/api/v1`: publish events, stream live figures, describe the event channels."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field, field_validator
from sse_starlette import EventSourceResponse, ServerSentEvent

from ..events import BusUnavailable, EventBus, check_event_type
from ..events.asyncapi import asyncapi_document
from ..events.envelope import now
from ..live_figures import FIGURES, LiveFigures
from .dependencies import SettingsDep

router = APIRouter(prefix="/api/v1", tags=["events"])


async def get_publisher(request: Request) -> EventBus:
    """The one gate in front of publishing over HTTP: guard it here (auth, rate limits)."""
    bus: EventBus = request.app.state.bus
    return bus


PublisherDep = Annotated[EventBus, Depends(get_publisher)]


class PublishRequest(BaseModel):
    type: str = Field(description="Dotted event type, e.g. `workflow.completed`", examples=["workflow.completed"])
    data: dict[str, Any] = Field(default_factory=dict, description="The event's payload")

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
    except BusUnavailable as exc:
        raise HTTPException(503, str(exc)) from None
    return EventEnvelope(**event.to_dict())


class MetricsStreamRequest(BaseModel):
    components: list[str] = Field(default_factory=list, description="Empty, or this component's name")
    metrics: list[str] = Field(default_factory=lambda: list(FIGURES), description=f"Any of {', '.join(FIGURES)}")


async def figure_stream(
    component: str, figures: list[str], interval: float, shutdown: anyio.Event
) -> AsyncIterator[ServerSentEvent]:
    live = LiveFigures()
    while not shutdown.is_set():
        with anyio.move_on_after(interval):
            await shutdown.wait()
        reading = {"component": component, "time": now(), **live.read(figures)}
        yield ServerSentEvent(data=json.dumps(reading, separators=(",", ":")))


@router.post(
    "/metrics/stream",
    summary="Stream this component's live figures as `data:` lines until the client leaves",
    response_class=EventSourceResponse,
)
async def metrics_stream(body: MetricsStreamRequest, settings: SettingsDep) -> EventSourceResponse:
    others = [name for name in body.components if name.lower() != settings.component_name]
    if others:
        raise HTTPException(
            422,
            f"components: this component streams only its own figures; "
            f"send [] or [{settings.component_name!r}], not {others}",
        )
    unknown = [name for name in body.metrics if name not in FIGURES]
    if unknown or not body.metrics:
        raise HTTPException(422, f"metrics: {unknown or 'empty'} is not valid; choose from {list(FIGURES)}")
    shutdown = anyio.Event()
    return EventSourceResponse(
        figure_stream(
            settings.component_name, list(dict.fromkeys(body.metrics)), settings.metrics_stream_interval, shutdown
        ),
        ping=settings.event_ping_interval,
        send_timeout=settings.event_send_timeout,
        shutdown_event=shutdown,
        shutdown_grace_period=settings.event_shutdown_grace,
    )


@router.get("/asyncapi.json", summary="AsyncAPI 3 description of /ws and /events")
async def asyncapi(settings: SettingsDep) -> dict[str, Any]:
    return asyncapi_document(settings)
