"""`/events`: Server-Sent Events, filtered with the same patterns as `/ws`.

`event:` is the type, `id:` the event id, `data:` the JSON envelope. A client
reconnecting with `Last-Event-ID` gets what it missed from the replay buffer;
when that id is too old (or from before a restart) it first gets a `reset`
event, never a silent gap. A slow client gets `dropped` with a count. On
SIGTERM, streams end cleanly within the grace period.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import anyio
from fastapi import APIRouter, Header, HTTPException, Query
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.background import BackgroundTask

from ..events import InvalidEventType, parse_patterns
from ..events.backend import BusUnavailable
from ..events.metrics import DELIVERED, OPEN_CONNECTIONS
from ..events.subscription import Subscription
from .deps import BusDep, SettingsDep
from .ws import subscription_limit_error

router = APIRouter(tags=["events"])

CHANNEL = "sse"
DELIVERED_HERE = DELIVERED.labels(CHANNEL)


def control(event: str, data: object) -> ServerSentEvent:
    return ServerSentEvent(event=event, data=json.dumps(data, separators=(",", ":")))


async def stream(
    subscription: Subscription, last_event_id: str | None, shutdown: anyio.Event
) -> AsyncIterator[ServerSentEvent]:
    async def close_on_shutdown() -> None:
        await shutdown.wait()
        subscription.close()

    watcher = asyncio.create_task(close_on_shutdown())
    OPEN_CONNECTIONS.labels(CHANNEL).inc()
    try:
        if subscription.reset:
            yield control(
                "reset",
                {
                    "last_event_id": last_event_id,
                    "message": "events after this id are no longer buffered (or the component restarted): "
                    "resync your state; buffered events follow",
                },
            )
        while (event := await subscription.get()) is not None:
            dropped = subscription.take_dropped()
            if dropped:
                yield control("dropped", {"count": dropped})
            yield ServerSentEvent(event=event.type, id=event.id, data=event.json)
            DELIVERED_HERE.inc()
    finally:
        watcher.cancel()  # not awaited: this may run while the stream itself is being cancelled
        subscription.close()
        OPEN_CONNECTIONS.labels(CHANNEL).dec()


@router.get(
    "/events",
    summary="Server-Sent Events (filter with ?types=workflow.*,task.completed)",
    response_class=EventSourceResponse,
)
async def events(
    settings: SettingsDep,
    bus: BusDep,
    types: str = Query("*", description="Comma-separated event types or patterns: `workflow.*`, `*`"),
    last_event_id: str | None = Header(None, description="Resume after this event id"),
) -> EventSourceResponse:
    # Spaces around commas are fine; any other character is checked by the grammar (no strip()).
    texts = [item.strip(" ") for item in types.split(",") if item.strip(" ")]
    # Counted before parsing: the same cap as /ws, whatever the query holds.
    too_many = subscription_limit_error(len(set(texts)), settings.ws_max_subscriptions)
    if too_many is not None:
        raise HTTPException(422, f"types: {too_many}")
    try:
        patterns = parse_patterns(texts)
    except InvalidEventType as exc:
        raise HTTPException(422, f"types: {exc}") from None
    if not patterns:
        raise HTTPException(422, "types: name at least one event type or pattern, or '*' for every event")
    try:
        subscription = await bus.subscribe(
            patterns, channel=CHANNEL, queue_size=settings.event_queue_size, after=last_event_id
        )
    except BusUnavailable as exc:
        raise HTTPException(503, str(exc)) from None
    shutdown = anyio.Event()
    return EventSourceResponse(
        stream(subscription, last_event_id, shutdown),
        # Also runs when the stream never starts (HEAD, or a client gone at once).
        background=BackgroundTask(subscription.close),
        ping=settings.event_ping_interval,
        send_timeout=settings.event_send_timeout,
        shutdown_event=shutdown,
        shutdown_grace_period=settings.event_shutdown_grace,
    )
