"""`EventIntegration` (the guide's Pattern 2): subscribe to a peer's `/ws` events.

Reconnects with backoff and jitter whenever the connection drops (a
restarting server closes with 1012) and subscribes again; handlers may be
plain or async functions; `workflow.*` and `*` subscriptions reach their
handlers; a handler that raises is logged and the loop carries on. Frames
whose type has no dot (`subscribed`, `pong`, `error`, `dropped`, ...) are
the server's control frames, never events.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, Unpack

from ..backoff import Backoff
from ._discovery import PeerAddress, PeerLocation
from ._errors import PeerUnavailableError
from ._signing import handshake_headers
from ._telemetry import logger, outgoing_headers

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

Handler = Callable[[Any], Any]
H = TypeVar("H", bound=Handler)


def matches(pattern: str, event_type: str) -> bool:
    """The server's rule: `*` matches one segment, a trailing `*` one or more; `*` alone matches all."""
    segments, parts = pattern.split("."), event_type.split(".")
    last = len(segments) - 1
    for index, segment in enumerate(segments):
        if index == last and segment == "*":
            return len(parts) > index
        if index >= len(parts) or segment not in ("*", parts[index]):
            return False
    return len(parts) == len(segments)


def ws_url(base_url: str) -> str:
    scheme, rest = base_url.split("://", 1)
    return f"{'wss' if scheme == 'https' else 'ws'}://{rest}/ws"


class EventIntegration:
    """`events = EventIntegration("harmonia")`, `@events.on_event("workflow.completed")`, `await events.connect()`."""

    def __init__(
        self,
        component: str,
        *,
        reconnect_delay: float = 0.5,
        max_reconnect_delay: float = 30.0,
        open_timeout: float = 10.0,
        **where: Unpack[PeerLocation],
    ) -> None:
        self.component = component
        self.handlers: dict[str, list[Handler]] = {}
        self.address = PeerAddress(component, **where)
        self.backoff = Backoff(reconnect_delay, max(reconnect_delay, max_reconnect_delay))
        self.open_timeout = open_timeout
        self.connections = 0  # successful subscriptions so far (1 + reconnects)
        self._closing = False
        self._socket: ClientConnection | None = None
        self._subscribed = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def on_event(self, event_type: str) -> Callable[[H], H]:
        """Register a handler for a type, `prefix.*` or `*` (several handlers per type are fine)."""
        if not event_type or (event_type != "*" and "." not in event_type):
            raise ValueError(
                f"event type {event_type!r} is not dotted: events look like 'workflow.completed'; "
                "use 'workflow.*' or '*' for wildcards"
            )

        def decorator(func: H) -> H:
            self.handlers.setdefault(event_type, []).append(func)
            return func

        return decorator

    async def connect(self) -> None:
        """Receive and dispatch events until `close()` (or cancellation), reconnecting as needed."""
        # websockets is loaded with the first subscriber, not with the client package (start-up time).
        from websockets.exceptions import WebSocketException

        self._closing = False
        loop = asyncio.get_running_loop()
        if self._loop is not None and self._loop is not loop:
            self._subscribed = asyncio.Event()  # an Event belongs to one loop: a later asyncio.run needs its own
        self._loop = loop
        failures = 0
        while not self._closing:
            try:
                await self._session()
                failures = 0  # the connection worked; the next drop starts the backoff afresh
            except (OSError, TimeoutError, WebSocketException, PeerUnavailableError) as exc:
                failures += 1
                logger.warning(
                    "event connection to %s lost, reconnecting",
                    self.component,
                    extra={"target": self.component, "error": f"{type(exc).__name__}: {exc}", "failures": failures},
                )
            if self._closing:
                break
            self._subscribed.clear()
            await asyncio.sleep(self.backoff.delay(failures - 1))

    async def close(self) -> None:
        """Stop `connect()`: the current connection is closed and no new one is opened."""
        self._closing = True
        if self._socket is not None:
            await self._socket.close()

    async def wait_until_subscribed(self) -> None:
        """Wait until the peer has acknowledged the subscription (again after each reconnect);
        bound it with `asyncio.timeout`."""
        await self._subscribed.wait()

    async def _session(self) -> None:
        url = ws_url(await self.address.base_url())
        # A fresh token per connection (DESIGN §10), in the header: never in the URL, where logs would show it.
        headers = outgoing_headers(handshake_headers(self.component))
        from websockets.asyncio.client import connect

        async with connect(url, open_timeout=self.open_timeout, additional_headers=headers) as socket:
            self._socket = socket
            try:
                await socket.send(json.dumps({"type": "subscribe", "events": list(self.handlers)}))
                async for message in socket:
                    await self._dispatch(message)
            finally:
                self._socket = None

    async def _dispatch(self, message: str | bytes) -> None:
        try:
            frame = json.loads(message)
        except ValueError:
            logger.warning("ignoring a frame that is not JSON", extra={"target": self.component})
            return
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            return
        event_type: str = frame["type"]
        if "." not in event_type:
            self._control(event_type, frame.get("data"))
            return
        for pattern, handlers in list(self.handlers.items()):
            if matches(pattern, event_type):
                for handler in handlers:
                    await self._run(handler, event_type, frame.get("data"))

    def _control(self, kind: str, data: Any) -> None:
        if kind == "subscribed":
            self.connections += 1
            self._subscribed.set()
        elif kind in ("error", "dropped"):
            logger.warning("event server says %s", kind, extra={"target": self.component, "detail": data})

    async def _run(self, handler: Handler, event_type: str, data: Any) -> None:
        try:
            result = handler(data)
            if inspect.isawaitable(result):
                await result
        except Exception:
            logger.exception("event handler failed", extra={"target": self.component, "event_type": event_type})
