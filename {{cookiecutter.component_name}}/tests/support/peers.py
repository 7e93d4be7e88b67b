"""Peers that fail on purpose, for the client package's tests: real servers on loopback."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .servers import running_server


@dataclass(frozen=True)
class Step:
    """One answer: a status and JSON body, after `delay` seconds (a long delay is a hang)."""

    status: int = 200
    body: Any = field(default_factory=lambda: {"ok": True})
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    at: float


class FlakyPeer:
    """Answers with the scripted steps in order, then with `default`; records every request."""

    def __init__(self) -> None:
        self.script: deque[Step] = deque()
        self.default = Step()
        self.received: list[Received] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self.app = Starlette(routes=[Route("/{path:path}", self._answer, methods=["GET", "POST", "PUT", "DELETE"])])

    def then(self, *steps: Step) -> FlakyPeer:
        self.script.extend(steps)
        return self

    def paths(self) -> list[str]:
        return [request.path for request in self.received]

    async def _answer(self, request: Request) -> Response:
        raw = await request.body()
        with self._lock:
            self.received.append(
                Received(
                    request.method,
                    request.url.path,
                    dict(request.headers),
                    _parsed(raw),
                    time.monotonic(),
                )
            )
            step = self.script.popleft() if self.script else self.default
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if step.delay:
                await asyncio.sleep(step.delay)
            return JSONResponse(step.body, status_code=step.status, headers=step.headers)
        finally:
            with self._lock:
                self.in_flight -= 1


def _parsed(raw: bytes) -> Any:
    """JSON bodies as data; anything else (e.g. Harmonia's form-encoded posts) as text."""
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


@contextmanager
def flaky_peer(*steps: Step) -> Iterator[tuple[FlakyPeer, str]]:
    peer = FlakyPeer().then(*steps)
    with running_server(peer.app) as url:
        yield peer, url


@contextmanager
def resetting_peer() -> Iterator[tuple[list[int], str]]:
    """A peer that reads each request and resets the connection (RST) without answering."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.02)  # how long stopping may wait for the accept loop to look
    port = listener.getsockname()[1]
    accepted: list[int] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            accepted.append(1)
            conn.settimeout(2)
            with suppress(OSError):
                conn.recv(65536)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield accepted, f"http://127.0.0.1:{port}"
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()
