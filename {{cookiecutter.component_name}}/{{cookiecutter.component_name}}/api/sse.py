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
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.abc
from fastapi import APIRouter, Header, HTTPException, Query
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.background import BackgroundTask
from starlette.types import Message, Receive, Scope, Send

from ..events import InvalidEventType, parse_patterns
from ..events.backend import BusUnavailable
from ..events.metrics import DELIVERED, OPEN_CONNECTIONS
from ..events.subscription import Subscription
from .deps import BusDep, SettingsDep
from .ws import subscription_limit_error

router = APIRouter(tags=["events"])

CHANNEL = "sse"
DELIVERED_HERE = DELIVERED.labels(CHANNEL)


class WatchedEventSourceResponse(EventSourceResponse):
    """sse-starlette's response with one watchdog per stream instead of a timer per send.

    A per-send timeout arms and cancels a timer for every event on every
    stream, most of the cost of a fan-out; the watchdog looks every quarter
    of the timeout and ends a stream whose send has waited longer.
    """

    def __init__(self, *args: Any, stall_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stall_timeout = stall_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sending_since: float | None = None

        async def timed_send(message: Message) -> None:
            nonlocal sending_since
            sending_since = time.monotonic()
            try:
                await send(message)
            finally:
                sending_since = None

        async def watch(group: anyio.abc.TaskGroup) -> None:
            while True:
                await anyio.sleep(self.stall_timeout / 4)
                if sending_since is not None and time.monotonic() - sending_since > self.stall_timeout:
                    group.cancel_scope.cancel()  # the client stopped reading: end its stream
                    return

        async with anyio.create_task_group() as group:
            group.start_soon(watch, group)
            await super().__call__(scope, receive, timed_send)
            group.cancel_scope.cancel()


def control(event: str, data: object) -> ServerSentEvent:
    return ServerSentEvent(event=event, data=json.dumps(data, separators=(",", ":")))


async def stream(
    subscription: Subscription, last_event_id: str | None, shutdown: anyio.Event
) -> AsyncIterator[ServerSentEvent | bytes]:
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
            yield event.sse  # encoded once per event, not once per stream
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
    return WatchedEventSourceResponse(
        stream(subscription, last_event_id, shutdown),
        # Also runs when the stream never starts (HEAD, or a client gone at once).
        background=BackgroundTask(subscription.close),
        ping=settings.event_ping_interval,
        stall_timeout=settings.event_send_timeout,
        shutdown_event=shutdown,
        shutdown_grace_period=settings.event_shutdown_grace,
    )
