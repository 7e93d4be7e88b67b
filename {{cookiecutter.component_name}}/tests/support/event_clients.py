"""Small clients for the event tests: WebSocket frames, SSE parsing, publishing."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from websockets.asyncio.client import ClientConnection

DEADLINE = 15.0  # generous: an outcome, never a speed


def ws_url(base_url: str) -> str:
    return base_url.replace("http://", "ws://", 1) + "/ws"


async def recv_frame(ws: ClientConnection, within: float = DEADLINE) -> dict[str, Any]:
    frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), within))
    return frame


async def subscribe(ws: ClientConnection, *events: str) -> dict[str, Any]:
    """Subscribe and return the `subscribed` acknowledgement's data."""
    await ws.send(json.dumps({"type": "subscribe", "events": list(events)}))
    frame = await recv_frame(ws)
    assert frame["type"] == "subscribed", frame
    data: dict[str, Any] = frame["data"]
    return data


async def publish(http: httpx.AsyncClient, event_type: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
    response = await http.post("/api/v1/events", json={"type": event_type, "data": data or {}})
    assert response.status_code == 202, response.text
    envelope: dict[str, Any] = response.json()
    return envelope


@dataclass
class SseEvent:
    event: str
    id: str | None
    data: str

    @property
    def json(self) -> Any:
        return json.loads(self.data)


async def sse_events(response: httpx.Response) -> AsyncIterator[SseEvent]:
    """Parse a `text/event-stream` body; comments (keep-alive pings) are skipped."""
    event, event_id, data = "message", None, list[str]()
    async for line in response.aiter_lines():
        if not line:
            if data:
                yield SseEvent(event, event_id, "\n".join(data))
            event, event_id, data = "message", None, list[str]()
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                event = value
            elif field == "id":
                event_id = value
            elif field == "data":
                data.append(value)


async def next_sse(events: AsyncIterator[SseEvent], within: float = DEADLINE) -> SseEvent:
    return await asyncio.wait_for(anext(events), within)


def metric(text: str, name: str) -> float:
    """The value of one sample (`name` with its labels) in a Prometheus exposition."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


class RawWebSocket:
    """A bare-socket WebSocket client that reads only when asked.

    Client libraries keep reading into their own buffers; this one leaves the
    bytes in the kernel, with a tiny receive buffer, like a stuck peer.
    """

    def __init__(self, base_url: str, path: str = "/ws") -> None:
        host, port = base_url.removeprefix("http://").split(":")
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.settimeout(DEADLINE)
        self.sock.connect((host, int(port)))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        response = b""
        while b"\r\n\r\n" not in response:
            response += self.sock.recv(1)
        assert response.startswith(b"HTTP/1.1 101"), response

    def send_text(self, text: str) -> None:
        payload, mask = text.encode(), os.urandom(4)
        size = len(payload)
        header = bytes([0x81, 0x80 | size]) if size < 126 else bytes([0x81, 0x80 | 126, *size.to_bytes(2, "big")])
        self.sock.sendall(header + mask + bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload)))

    def _exactly(self, count: int) -> bytes:
        data = b""
        while len(data) < count:
            chunk = self.sock.recv(count - len(data))
            if not chunk:
                raise ConnectionError("server closed the connection")
            data += chunk
        return data

    def recv_frame(self) -> dict[str, Any]:
        """The next text frame as JSON; raises ConnectionError on a close frame."""
        first, second = self._exactly(2)
        size = second & 0x7F
        if size == 126:
            size = int.from_bytes(self._exactly(2), "big")
        elif size == 127:
            size = int.from_bytes(self._exactly(8), "big")
        payload = self._exactly(size)
        if first & 0x0F == 0x8:
            raise ConnectionError(f"closed with {int.from_bytes(payload[:2], 'big')}")
        frame: dict[str, Any] = json.loads(payload)
        return frame

    def close(self) -> None:
        self.sock.close()


class SeenSends:
    """ASGI middleware that notes every message the app sends, with its path: which frames
    went through the ASGI stack, and which went straight to the socket (`api/wire.py`)."""

    def __init__(self, app: ASGIApp, seen: list[tuple[str, Message]]) -> None:
        self.app = app
        self.seen = seen

    @classmethod
    def on(cls, app: Starlette) -> list[tuple[str, Message]]:
        """Install on `app` (outermost); returns the list it fills."""
        seen: list[tuple[str, Message]] = []
        app.add_middleware(cls, seen=seen)
        return seen

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def noting(message: Message) -> None:
            self.seen.append((scope.get("path", ""), message))
            await send(message)

        await self.app(scope, receive, noting)
