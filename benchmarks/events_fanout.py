"""Event plane: fan-out latency of one event to N subscribers, over /ws and over /events (SSE).

Bakes the component and runs two servers side by side, each one uvicorn
process with one worker and the same flags:

- baseline: a bare FastAPI app doing the usual broadcast, the FastAPI docs'
  ConnectionManager loop (`for ws in sockets: await ws.send_text(text)`) for
  WebSocket and one `asyncio.Queue` per stream for SSE, with no envelope,
  patterns, bounded queues or metrics;
- component: the baked component (in-memory bus, access log off).

The latency of one subscriber is the time from just before the publishing
`POST /api/v1/events` to that subscriber's socket receiving the event; p50
and p99 are over every subscriber and every round. Rounds alternate between
the two servers, so a busy machine slows both alike.

The client is kept as cheap as it can be, so that it measures the servers:
one process per core, each holding its share of raw sockets (a hand-made
WebSocket handshake, no compression, no frame parsing beyond finding the
round's marker) in one epoll loop that only timestamps arrivals.

Usage: python -m benchmarks.events_fanout [--rounds 30] [--sizes 1000]
"""

from __future__ import annotations

import argparse
import base64
import multiprocessing
import os
import selectors
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import cast

import httpx

from benchmarks.table import Ratio, render
from tooling import DEFAULT_NAME, bake, free_port, wait_for_http

GOAL = 0.8  # p50 and p99 at most 0.8x the baseline's

VARIANTS_MODULE = textwrap.dedent(
    """
    import asyncio
    import json

    from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
    from sse_starlette import EventSourceResponse

    from my_component.app import create_app
    from my_component.settings import load_settings


    def component():
        return create_app(
            load_settings(hermes_enabled=False, access_log=False, log_level="warning", event_bus="memory")
        )


    def bare():
        app = FastAPI()
        sockets = []
        queues = set()

        @app.websocket("/ws")
        async def ws(websocket: WebSocket):
            await websocket.accept()
            await websocket.receive_text()
            await websocket.send_text('{"type": "subscribed", "data": {}}')
            sockets.append(websocket)
            try:
                while True:
                    await websocket.receive_text()
            except WebSocketDisconnect:
                sockets.remove(websocket)

        @app.get("/events")
        async def events():
            queue = asyncio.Queue()
            queues.add(queue)

            async def stream():
                try:
                    while True:
                        yield await queue.get()
                finally:
                    queues.discard(queue)

            return EventSourceResponse(stream())

        @app.post("/api/v1/events", status_code=202)
        async def publish(request: Request):
            body = await request.json()
            text = json.dumps(body)
            for queue in queues:
                queue.put_nowait({"event": body["type"], "data": text})
            for websocket in sockets:
                await websocket.send_text(text)
            return body

        return app
    """
)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Server:
    def __init__(self, workdir: Path, factory: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "PYTHONPATH": f"{workdir}:{workdir / DEFAULT_NAME}",
            "MY_COMPONENT_HERMES_ENABLED": "false",
        }
        command = [sys.executable, "-m", "uvicorn", f"variants:{factory}", "--factory", "--port", str(self.port)]
        self.process = subprocess.Popen(
            [*command, "--no-access-log", "--log-level", "warning"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_http(f"{self.url}/docs", timeout=30, process=self.process)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


@dataclass(frozen=True)
class Target:
    label: str  # which server
    port: int
    channel: str  # "ws" or "sse"
    count: int  # sockets this client process opens to it


def _exactly_until(sock: socket.socket, marker: bytes) -> bytes:
    data = b""
    while marker not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before {marker!r}: {data[:200]!r}")
        data += chunk
    return data


def _masked_text_frame(text: str) -> bytes:
    payload, mask = text.encode(), os.urandom(4)
    masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
    return bytes([0x81, 0x80 | len(payload)]) + mask + masked


def open_subscriber(target: Target) -> socket.socket:
    """A subscribed raw socket: WebSocket (no extensions offered) or an SSE stream."""
    sock = socket.create_connection(("127.0.0.1", target.port), timeout=60)
    host = f"127.0.0.1:{target.port}"
    if target.channel == "ws":
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            f"GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        _exactly_until(sock, b"\r\n\r\n")
        sock.sendall(_masked_text_frame('{"type": "subscribe", "events": ["bench.*"]}'))
        _exactly_until(sock, b"subscribed")
    else:
        request = f"GET /events?types=bench.* HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n"
        sock.sendall(request.encode())
        _exactly_until(sock, b"\r\n\r\n")
    sock.setblocking(False)
    return sock


def client_process(pipe: Connection, targets: list[Target]) -> None:
    """Holds its sockets; per round, timestamps when each socket of one server got the round's marker."""
    sockets: dict[str, list[socket.socket]] = {}
    for target in targets:
        sockets[target.label] = [open_subscriber(target) for _ in range(target.count)]
    selector = selectors.EpollSelector()
    for group in sockets.values():
        for sock in group:
            selector.register(sock, selectors.EVENT_READ)
    pipe.send("ready")
    while (command := pipe.recv()) is not None:
        label, marker = command
        waiting = {sock.fileno(): b"" for sock in sockets[label]}
        arrived: list[int] = []
        pipe.send("armed")
        while waiting:
            for key, _ in selector.select(timeout=30):
                sock = cast(socket.socket, key.fileobj)
                chunk = sock.recv(65536)
                now = time.monotonic_ns()
                fd = sock.fileno()
                if fd in waiting:
                    seen = waiting[fd] + chunk
                    if marker in seen:
                        del waiting[fd]
                        arrived.append(now)
                    else:
                        waiting[fd] = seen[-64:]
        pipe.send(arrived)
    for group in sockets.values():
        for sock in group:
            sock.close()


def fanout(servers: dict[str, Server], channel: str, subscribers: int, rounds: int) -> dict[str, list[float]]:
    """Latencies (ms) per server label, rounds alternating between the servers."""
    processes = max(1, (os.cpu_count() or 2) - 1)  # one core left for the server
    shares = [subscribers // processes + (1 if n < subscribers % processes else 0) for n in range(processes)]
    context = multiprocessing.get_context("fork")
    clients = []
    for share in shares:
        parent, child = context.Pipe()
        targets = [Target(label, server.port, channel, share) for label, server in servers.items()]
        process = context.Process(target=client_process, args=(child, targets), daemon=True)
        process.start()
        clients.append((parent, process))
    for parent, _ in clients:
        assert parent.recv() == "ready"
    latencies: dict[str, list[float]] = {label: [] for label in servers}
    with httpx.Client(timeout=60) as http:
        for n in range(rounds):
            for label, server in servers.items():
                marker = f"R{n}x{label}".encode()
                for parent, _ in clients:
                    parent.send((label, marker))
                for parent, _ in clients:
                    assert parent.recv() == "armed"
                started = time.monotonic_ns()
                response = http.post(
                    f"{server.url}/api/v1/events", json={"type": "bench.tick", "data": {"r": marker.decode()}}
                )
                assert response.status_code == 202, response.text
                for parent, _ in clients:
                    latencies[label] += [(at - started) / 1e6 for at in parent.recv()]
                time.sleep(0.02)
    for parent, process in clients:
        parent.send(None)
        process.join(timeout=30)
    return latencies


def comparisons(quick: bool = False, rounds: int = 30, sizes: tuple[int, ...] = (1000,)) -> list[Ratio]:
    rounds = 8 if quick else rounds
    rows: list[Ratio] = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        bake(workdir, {"event_bus": "memory"})
        (workdir / "variants.py").write_text(VARIANTS_MODULE)
        for channel, name in (("ws", "WebSocket"), ("sse", "SSE")):
            servers = {"bare": Server(workdir, "bare"), "component": Server(workdir, "component")}
            try:
                for size in sizes:
                    figures = fanout(servers, channel, size, rounds)
                    for q, which in ((0.5, "p50"), (0.99, "p99")):
                        bare, component = percentile(figures["bare"], q), percentile(figures["component"], q)
                        rows.append(
                            Ratio(
                                f"{name} fan-out to {size:,}, {which} latency",
                                f"broadcast loop {bare:.2f} ms",
                                f"{component:.2f} ms",
                                component / bare,
                                GOAL,
                                lower_is_better=True,
                            )
                        )
            finally:
                for server in servers.values():
                    server.stop()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=30, help="events per server and channel")
    parser.add_argument("--sizes", default="1000", help="subscriber counts, comma-separated")
    args = parser.parse_args()
    sizes = tuple(int(size) for size in args.sizes.split(","))
    print(render(comparisons(rounds=args.rounds, sizes=sizes), "Event fan-out"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
