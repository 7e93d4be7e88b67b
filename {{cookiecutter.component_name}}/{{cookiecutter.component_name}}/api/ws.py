"""`/ws`: events over WebSocket, in the guide's frame shape.

The client sends `{"type": "subscribe", "events": ["workflow.*"]}`; every
server frame has `type` and `data`. Events are the envelope itself (their
type has a dot); control frames never have a dot: `subscribed`,
`unsubscribed`, `pong`, `error` (`code`, `message`), `dropped` (`count`).
A bad frame gets an `error` frame and the connection carries on; only an
oversized frame (1009), too many bad frames (1008) or a client too slow to
take a send (1008) closes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect, WebSocketState

from ..events import InvalidEventType, parse_patterns
from ..events.backend import EventBus
from ..events.eager import run_eagerly
from ..events.envelope import Event, dumps_strict, loads_strict
from ..events.metrics import DELIVERED, OPEN_CONNECTIONS
from ..events.subscription import Subscription
from ..settings import Settings, env_name
from .deps import BusDep, SettingsDep
from .wire import Tally, websocket_wire

router = APIRouter()

CHANNEL = "ws"
DELIVERED_HERE = DELIVERED.labels(CHANNEL)
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009


class FrameError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class SendTimedOut(Exception):
    """The client did not take a frame within the send timeout."""


def control(frame_type: str, data: Any) -> str:
    # Strict: never NaN, Infinity or a lone surrogate on the wire.
    return dumps_strict({"type": frame_type, "data": data})


def subscription_limit_error(count: int, limit: int) -> str | None:
    """The one subscription cap, for /ws and /events alike (`<NAME>_WS_MAX_SUBSCRIPTIONS`)."""
    if count <= limit:
        return None
    return (
        f"{count} subscriptions exceed the limit of {limit} per connection "
        f"(set by {env_name('ws_max_subscriptions')}): use wildcards such as 'workflow.*'"
    )


def parse_frame(text: str) -> tuple[str, dict[str, Any]]:
    try:
        # Strict: NaN/Infinity are not JSON, and deep nesting is an error, not a RecursionError.
        frame = loads_strict(text)
    except ValueError as exc:
        raise FrameError("invalid_json", f"frame is not JSON ({exc}): send one JSON object per frame") from None
    if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
        raise FrameError("invalid_frame", 'frame must be a JSON object with a string "type"')
    return frame["type"], frame


def event_list(frame: dict[str, Any], required: bool) -> list[str] | None:
    events = frame.get("events")
    if events is None and not required:
        return None
    if not isinstance(events, list) or not events or not all(isinstance(item, str) for item in events):
        raise FrameError(
            "invalid_field", '"events" must be a non-empty list of event types, e.g. ["workflow.completed", "task.*"]'
        )
    return events


class Connection:
    """One client: events go out as they are published, a receive loop handles its frames.

    While the client keeps up, each event is sent from the publisher's own
    call, without a task switch: its frame, built once for every subscriber,
    goes straight to the socket (`wire`), or through ASGI where there is no
    wire (`send_now`). A send that has to wait (the client is slow to read)
    finishes in a task, and events published meanwhile queue behind it, in
    order, in the subscription's bounded queue; a writer task (`drain`) runs
    only while that backlog lasts, and the wire stays shut meanwhile: a slow
    client holds up only itself. Only a send that waits arms a timer: past
    the send timeout it ends the connection.
    """

    def __init__(self, websocket: WebSocket, bus: EventBus, settings: Settings, subscription: Subscription) -> None:
        self.websocket = websocket
        self.bus = bus
        self.settings = settings
        self.subscription = subscription
        self.bad_frames = 0
        self.loop = asyncio.get_running_loop()
        self.in_flight: asyncio.Task[None] | None = None  # an event send through ASGI that had to wait
        self.writer: asyncio.Task[None] | None = None  # sends the backlog, while there is one
        self.failed: BaseException | None = None
        self.closing = False
        self.ended: asyncio.Future[BaseException] = self.loop.create_future()  # why the connection cannot go on
        self.delivered = Tally.here(DELIVERED_HERE)
        # Found from the endpoint's own task, which this runs in.
        self.wire = websocket_wire(websocket.scope, self.delivered)
        subscription.direct = self.send_now if self.wire is None else self.wire.write
        subscription.queued = self.start_writer

    def _update_wire(self) -> None:
        """The wire writes only while nothing is pending: no backlog, no failure, not closing."""
        if self.wire is not None:
            self.wire.open = self.writer is None and self.failed is None and not self.closing

    def end(self, error: BaseException) -> None:
        """The connection cannot go on: its socket failed, or a send outlasted the send timeout."""
        if self.failed is None:
            self.failed = error
            self._update_wire()
            self.ended.set_result(error)

    def send_now(self, event: Event) -> bool:
        """Without a wire, send `event` through ASGI, unless a send waits or a backlog drains (False: queue it)."""
        if self.in_flight is not None or self.writer is not None or self.failed is not None:
            return False
        try:
            task = run_eagerly(self.websocket.send_text(event.json))
        except Exception as exc:  # the socket is gone
            self.end(exc)
            return True
        if task is None:
            self.delivered.add()
        else:
            self.in_flight = task
            timer = self.loop.call_later(self.settings.event_send_timeout, self.end, SendTimedOut())
            task.add_done_callback(lambda task: self._sent(task, timer))
        return True

    def _sent(self, task: asyncio.Task[None], timer: asyncio.TimerHandle) -> None:
        timer.cancel()
        self.in_flight = None
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            self.end(error)
        else:
            self.delivered.add()

    async def send(self, text: str) -> None:
        """A control frame, or an event of the backlog, through ASGI, within the send timeout."""
        timer = self.loop.call_later(self.settings.event_send_timeout, self.end, SendTimedOut())
        try:
            await self.websocket.send_text(text)
        finally:
            timer.cancel()

    async def close(self, code: int, reason: str) -> None:
        self.closing = True
        self._update_wire()  # no event frame after the close frame
        # A client that stopped reading may never take the close frame either.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1.0):
                await self.websocket.close(code, reason)

    def start_writer(self) -> None:
        if self.writer is None and self.failed is None:
            self.writer = self.loop.create_task(self.drain())
            self._update_wire()

    async def drain(self) -> None:
        """Send the backlog, in order, telling the client what it lost; ends when the backlog does."""
        try:
            # `writer` stays set until the last queued event is out: nothing newer overtakes it.
            while self.subscription and self.failed is None:
                if self.in_flight is not None:
                    await asyncio.shield(self.in_flight)
                    continue  # its outcome is the in-flight send's own (`_sent`)
                event = await self.subscription.get()
                if event is None:
                    return
                dropped = self.subscription.take_dropped()
                if dropped:
                    await self.send(control("dropped", {"count": dropped}))
                await self.send(event.json)
                self.delivered.add()
        except Exception as exc:
            self.end(exc)
        finally:
            self.writer = None
            self._update_wire()

    async def receive_frames(self) -> None:
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                text = (message.get("bytes") or b"").decode("utf-8", errors="replace")
            if len(text.encode()) > self.settings.ws_max_frame_bytes:
                await self.send(
                    control(
                        "error",
                        {
                            "code": "frame_too_large",
                            "message": f"frame exceeds {self.settings.ws_max_frame_bytes} bytes",
                        },
                    )
                )
                await self.close(CLOSE_TOO_BIG, "frame too large")
                return
            try:
                await self.handle(text)
            except FrameError as exc:
                self.bad_frames += 1
                await self.send(control("error", {"code": exc.code, "message": exc.message}))
                if self.bad_frames >= self.settings.ws_max_bad_frames:
                    await self.close(CLOSE_POLICY, "too many bad frames")
                    return

    async def handle(self, text: str) -> None:
        frame_type, frame = parse_frame(text)
        patterns = self.subscription.patterns
        if frame_type == "ping":
            await self.send(control("pong", frame.get("data")))
        elif frame_type == "subscribe":
            try:
                added = parse_patterns(event_list(frame, required=True) or [])
            except InvalidEventType as exc:
                raise FrameError("invalid_subscription", str(exc)) from None
            names = [*patterns, *(pattern.text for pattern in added if pattern.text not in patterns)]
            too_many = subscription_limit_error(len(names), self.settings.ws_max_subscriptions)
            if too_many is not None:
                raise FrameError("too_many_subscriptions", too_many)
            # Acknowledge before the first matching event can be sent.
            await self.send(
                control(
                    "subscribed",
                    {"events": [p.text for p in added], "subscriptions": names, "instance": self.bus.instance},
                )
            )
            self.subscription.add_patterns(added)
        elif frame_type == "unsubscribe":
            events = event_list(frame, required=False)
            removed = [name for name in (list(patterns) if events is None else events) if name in patterns]
            self.subscription.remove_patterns(removed)
            await self.send(control("unsubscribed", {"events": removed, "subscriptions": list(patterns)}))
        else:
            raise FrameError(
                "unknown_type", f"unknown frame type {frame_type!r}: use 'subscribe', 'unsubscribe' or 'ping'"
            )


@router.websocket("/ws")
async def events_socket(websocket: WebSocket, settings: SettingsDep, bus: BusDep) -> None:
    await websocket.accept()
    subscription = await bus.subscribe([], channel=CHANNEL, queue_size=settings.event_queue_size)
    connection = Connection(websocket, bus, settings, subscription)
    OPEN_CONNECTIONS.labels(CHANNEL).inc()
    receiver = asyncio.create_task(connection.receive_frames())
    try:
        either: list[asyncio.Future[Any]] = [receiver, connection.ended]
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        if connection.ended.done():
            error: BaseException | None = connection.ended.result()
        else:
            error = None if receiver.cancelled() else receiver.exception()
        if isinstance(error, SendTimedOut):
            await connection.close(CLOSE_POLICY, "client too slow: a send timed out")
        elif error is not None and not isinstance(error, (WebSocketDisconnect, OSError)):
            logging.getLogger(settings.component_name).warning(
                "websocket connection failed", exc_info=error, extra={"client": str(websocket.client)}
            )
    finally:
        subscription.close()
        tasks = [task for task in (receiver, connection.writer, connection.in_flight) if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        OPEN_CONNECTIONS.labels(CHANNEL).dec()
        if websocket.client_state == WebSocketState.CONNECTED:
            await connection.close(1000, "")
