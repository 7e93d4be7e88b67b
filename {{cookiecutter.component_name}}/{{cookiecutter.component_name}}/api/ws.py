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
import json
import logging
import time
from typing import Any

from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect, WebSocketState

from ..events import InvalidEventType, parse_patterns
from ..events.backend import EventBus
from ..events.metrics import DELIVERED, OPEN_CONNECTIONS
from ..events.subscription import Subscription
from ..settings import Settings, env_name
from .deps import BusDep, SettingsDep

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
    return json.dumps({"type": frame_type, "data": data}, separators=(",", ":"))


def parse_frame(text: str) -> tuple[str, dict[str, Any]]:
    try:
        frame = json.loads(text)
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
    """One client: a receive loop for its frames, a send loop for its events."""

    def __init__(self, websocket: WebSocket, bus: EventBus, settings: Settings, subscription: Subscription) -> None:
        self.websocket = websocket
        self.bus = bus
        self.settings = settings
        self.subscription = subscription
        self.bad_frames = 0
        self.sending_since: float | None = None

    async def send(self, text: str) -> None:
        # Timed by `watch_sends`, not a timer per frame: cheaper when fanning out to many sockets.
        self.sending_since = time.monotonic()
        try:
            await self.websocket.send_text(text)
        finally:
            self.sending_since = None

    async def watch_sends(self) -> None:
        """Give up on a client that has not taken a frame within the send timeout."""
        limit = self.settings.event_send_timeout
        while True:
            await asyncio.sleep(limit / 4)
            started = self.sending_since
            if started is not None and time.monotonic() - started > limit:
                raise SendTimedOut

    async def close(self, code: int, reason: str) -> None:
        # A client that stopped reading may never take the close frame either.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1.0):
                await self.websocket.close(code, reason)

    async def send_events(self) -> None:
        while (event := await self.subscription.get()) is not None:
            dropped = self.subscription.take_dropped()
            if dropped:
                await self.send(control("dropped", {"count": dropped}))
            await self.send(event.json)
            DELIVERED_HERE.inc()

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
            limit = self.settings.ws_max_subscriptions
            if len(names) > limit:
                raise FrameError(
                    "too_many_subscriptions",
                    f"{len(names)} subscriptions exceed the limit of {limit} per connection "
                    f"(set by {env_name('ws_max_subscriptions')}): use wildcards such as 'workflow.*'",
                )
            # Acknowledge before the first matching event can be sent.
            await self.send(
                control(
                    "subscribed",
                    {"events": [p.text for p in added], "subscriptions": names, "instance": self.bus.instance},
                )
            )
            patterns.update((pattern.text, pattern) for pattern in added)
        elif frame_type == "unsubscribe":
            events = event_list(frame, required=False)
            removed = [name for name in (list(patterns) if events is None else events) if name in patterns]
            for name in removed:
                del patterns[name]
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
    tasks = [
        asyncio.create_task(connection.receive_frames()),
        asyncio.create_task(connection.send_events()),
        asyncio.create_task(connection.watch_sends()),
    ]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            error = task.exception()
            if isinstance(error, SendTimedOut):
                await connection.close(CLOSE_POLICY, "client too slow: a send timed out")
            elif error is not None and not isinstance(error, (WebSocketDisconnect, OSError)):
                logging.getLogger(settings.component_name).warning(
                    "websocket connection failed", exc_info=error, extra={"client": str(websocket.client)}
                )
    finally:
        subscription.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        OPEN_CONNECTIONS.labels(CHANNEL).dec()
        if websocket.client_state == WebSocketState.CONNECTED:
            await connection.close(1000, "")
