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
from typing import Any

import anyio
from fastapi import APIRouter, Header, HTTPException, Query, Request
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.background import BackgroundTask
from starlette.types import Message, Receive, Scope, Send

from ..events import InvalidEventType, parse_patterns
from ..events.backend import BusUnavailable
from ..events.metrics import DELIVERED, OPEN_CONNECTIONS
from ..events.subscription import Subscription
from .deps import BusDep, SettingsDep
from .wire import StreamWire, Tally, stream_wire
from .ws import subscription_limit_error

router = APIRouter(tags=["events"])

CHANNEL = "sse"
DELIVERED_HERE = DELIVERED.labels(CHANNEL)


class WatchedEventSourceResponse(EventSourceResponse):
    """sse-starlette's response, ending a stream whose send waits longer than `stall_timeout`.

    sse-starlette's own per-send timeout enters a cancel scope for every
    send; here a send through ASGI arms one timer, and an event written
    straight to the socket (see `stream`) never waits, so it arms none.
    """

    def __init__(self, *args: Any, stall_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stall_timeout = stall_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        loop = asyncio.get_running_loop()
        with anyio.CancelScope() as stalled:

            async def timed_send(message: Message) -> None:
                # Past the timeout the client has stopped reading: end its stream.
                timer = loop.call_later(self.stall_timeout, stalled.cancel)
                try:
                    await send(message)
                finally:
                    timer.cancel()

            await super().__call__(scope, receive, timed_send)


def control(event: str, data: object) -> ServerSentEvent:
    return ServerSentEvent(event=event, data=json.dumps(data, separators=(",", ":")))


async def stream(
    subscription: Subscription, last_event_id: str | None, shutdown: anyio.Event, wire: StreamWire | None = None
) -> AsyncIterator[ServerSentEvent | bytes]:
    """The stream's frames; with a `wire`, events that find it idle skip this generator.

    While the generator holds nothing and the client keeps up, the publisher's
    own call writes each event's chunk, built once for every stream, straight
    to the socket (the wire is open), without waking this generator.
    Otherwise (a send waiting on a slow client, a backlog, a `dropped` notice
    owed) events queue and come out here, in order.
    """
    delivered = Tally.here(DELIVERED_HERE)

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
        live = wire if wire is not None and wire.started() else None  # the response's head is out
        if live is not None:
            subscription.direct = live.write
        while True:
            if live is not None:
                live.open = True  # this generator holds nothing: an event may skip it
            event = await subscription.get()
            if live is not None:
                live.open = False  # before any wait: a newer event must not overtake this one
            if event is None:
                break
            dropped = subscription.take_dropped()
            if dropped:
                yield control("dropped", {"count": dropped})
            yield event.sse  # encoded once per event, not once per stream
            delivered.add()
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
    request: Request,
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
        stream(subscription, last_event_id, shutdown, stream_wire(request.scope, Tally.here(DELIVERED_HERE))),
        # Also runs when the stream never starts (HEAD, or a client gone at once).
        background=BackgroundTask(subscription.close),
        ping=settings.event_ping_interval,
        stall_timeout=settings.event_send_timeout,
        shutdown_event=shutdown,
        shutdown_grace_period=settings.event_shutdown_grace,
    )
