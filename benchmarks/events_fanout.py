"""Event plane: fan-out latency of one event to N subscribers, over /ws and over /events (SSE).

Bakes the component and runs two servers side by side, each one uvicorn
process with one worker and the same flags:

- baseline: a bare FastAPI app doing the usual broadcast, the FastAPI docs'
  ConnectionManager loop (`for ws in sockets: await ws.send_text(text)`) for
  WebSocket and one `asyncio.Queue` per stream for SSE, with no envelope,
  patterns, bounded queues or metrics;
- component: the baked component (in-memory bus, access log off).

The latency of one subscriber is the time from just before the publishing
`POST /api/v1/events` leaves the client to the moment the kernel queued the
event on that subscriber's socket (`SO_TIMESTAMPNS`, the same clock): it
does not depend on how soon the client gets round to reading each socket,
so a slow client cannot hide a fast server. Per round, p50 and p99 are over
that round's subscribers; the figures are the medians over rounds, so a
round disturbed by the rest of the machine moves them little. Rounds
alternate between the two servers, the one going first swapping each round,
after two warm-up rounds each.

The client is the same for both servers and as cheap as it can be: one
process per core but one, each holding its share of raw sockets (a hand-made
WebSocket handshake, no compression offered) in one epoll loop that only
reads the kernel's stamp and looks for the round's marker (it polls while a
round is on: on loopback, waking a sleeping reader is work done in the
sender's write); the publish is a pre-built request on a kept-alive raw socket. The
servers are pinned to the first core (they take turns), the client and the
publisher to the others. Both servers run with `--ws-ping-interval 0`: the
raw client does not answer pings.

Usage: python -m benchmarks.events_fanout [--rounds 60] [--sizes 1000] [--channels ws,sse]
"""

from __future__ import annotations

import argparse
import base64
import json
import multiprocessing
import os
import selectors
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import cast

from benchmarks.table import Ratio, render
from tooling import DEFAULT_NAME, bake, free_port, wait_for_http

GOAL = 0.8  # p50 and p99 at most 0.8x the baseline's
WARMUP = 2  # rounds per server not counted
ROUND_TIMEOUT = 60.0  # seconds for every subscriber to get a round's event
# Both servers on the first core (they take turns), the client on the others.
SERVER_CORES = {0} if (os.cpu_count() or 1) > 1 else set()
CLIENT_CORES = set(range(1, os.cpu_count() or 1))
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux; the stdlib does not name it
CHANNEL_NAMES = {"ws": "WebSocket", "sse": "SSE"}
BASELINE_NAMES = {"ws": "broadcast loop", "sse": "a queue per stream"}

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


def pin(cores: set[int]) -> None:
    """Keep this process on `cores` (Linux), so the servers and the client never trade places."""
    if cores and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cores)


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
            [*command, "--no-access-log", "--log-level", "warning", "--ws-ping-interval", "0"],
            env=env,
            preexec_fn=lambda: pin(SERVER_CORES),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_http(f"{self.url}/docs", timeout=30, process=self.process)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


class Publisher:
    """`POST /api/v1/events` as pre-built bytes on one kept-alive socket: nothing to do between stamp and send."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.host = f"127.0.0.1:{port}"

    def request(self, marker: str) -> bytes:
        body = json.dumps({"type": "bench.tick", "data": {"r": marker}}).encode()
        head = (
            f"POST /api/v1/events HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body

    def publish(self, request: bytes) -> int:
        """Sends `request`; returns the wall-clock ns just before it left (the kernel stamps use that clock)."""
        started = time.time_ns()
        self.sock.sendall(request)
        response = _exactly_until(self.sock, b"\r\n\r\n")
        head, _, body = response.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 202"), response[:300]
        length = next(
            int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
        )
        while len(body) < length:
            body += self.sock.recv(65536)
        return started

    def close(self) -> None:
        self.sock.close()


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
    """A subscribed raw socket that stamps what it receives: WebSocket (no extensions offered) or SSE."""
    sock = socket.create_connection(("127.0.0.1", target.port), timeout=60)
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
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


def _stamp(ancillary: list[tuple[int, int, bytes]]) -> int:
    """The kernel's receive time (wall clock, ns) of the data just read."""
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
            seconds, nanoseconds = struct.unpack("qq", data[:16])
            return int(seconds) * 1_000_000_000 + int(nanoseconds)
    raise RuntimeError("no SO_TIMESTAMPNS stamp: this kernel does not time-stamp TCP receives")


def client_process(pipe: Connection, targets: list[Target]) -> None:
    """Holds its sockets; per round, the kernel's stamps of the round's marker on each socket of one server."""
    pin(CLIENT_CORES)
    sockets: dict[str, list[socket.socket]] = {}
    for target in targets:
        sockets[target.label] = [open_subscriber(target) for _ in range(target.count)]
    selector = selectors.EpollSelector()
    for group in sockets.values():
        for sock in group:
            selector.register(sock, selectors.EVENT_READ)
    ancillary_size = socket.CMSG_SPACE(16)
    pipe.send("ready")
    while (command := pipe.recv()) is not None:
        label, marker = command
        waiting = {sock.fileno(): b"" for sock in sockets[label]}
        arrived: list[int] = []
        pipe.send("armed")
        deadline = time.monotonic() + ROUND_TIMEOUT
        while waiting:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(waiting)} {label} subscribers never got {marker!r}")
            for key, _ in selector.select(timeout=0):
                sock = cast(socket.socket, key.fileobj)
                chunk, ancillary, _, _ = sock.recvmsg(65536, ancillary_size)
                fd = sock.fileno()
                if fd in waiting:
                    seen = waiting[fd] + chunk
                    if marker in seen:
                        del waiting[fd]
                        arrived.append(_stamp(ancillary))
                    else:
                        waiting[fd] = seen[-64:]
        pipe.send(arrived)
    for group in sockets.values():
        for sock in group:
            sock.close()


@dataclass
class Figures:
    """Per round: the p50 and p99 latency (ms) over that round's subscribers."""

    p50: list[float]
    p99: list[float]


def fanout(servers: dict[str, Server], channel: str, subscribers: int, rounds: int) -> dict[str, Figures]:
    """Per-round figures per server label, rounds alternating between the servers."""
    processes = max(1, len(CLIENT_CORES))  # the server has a core of its own
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
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
    pin(CLIENT_CORES)
    publishers = {label: Publisher(server.port) for label, server in servers.items()}
    figures = {label: Figures([], []) for label in servers}
    labels = list(servers)
    try:
        for n in range(-WARMUP, rounds):
            for label in labels if n % 2 == 0 else labels[::-1]:
                marker = f"R{n}x{label}"
                request = publishers[label].request(marker)
                for parent, _ in clients:
                    parent.send((label, marker.encode()))
                for parent, _ in clients:
                    assert parent.recv() == "armed"
                started = publishers[label].publish(request)
                latencies = [(at - started) / 1e6 for parent, _ in clients for at in parent.recv()]
                if n >= 0:
                    figures[label].p50.append(percentile(latencies, 0.5))
                    figures[label].p99.append(percentile(latencies, 0.99))
                time.sleep(0.02)
    finally:
        pin(affinity)
        for publisher in publishers.values():
            publisher.close()
        for parent, process in clients:
            parent.send(None)
            process.join(timeout=30)
    return figures


def comparisons(
    quick: bool = False, rounds: int = 60, sizes: tuple[int, ...] = (1000,), channels: tuple[str, ...] = ("ws", "sse")
) -> list[Ratio]:
    rounds = 8 if quick else rounds
    rows: list[Ratio] = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        bake(workdir, {"event_bus": "memory"})
        (workdir / "variants.py").write_text(VARIANTS_MODULE)
        for channel in channels:
            name = CHANNEL_NAMES[channel]
            servers = {"bare": Server(workdir, "bare"), "component": Server(workdir, "component")}
            try:
                for size in sizes:
                    figures = fanout(servers, channel, size, rounds)
                    for which in ("p50", "p99"):
                        bare = statistics.median(getattr(figures["bare"], which))
                        component = statistics.median(getattr(figures["component"], which))
                        rows.append(
                            Ratio(
                                f"{name} fan-out to {size:,}, {which} latency (median of {rounds} rounds)",
                                f"{BASELINE_NAMES[channel]} {bare:.2f} ms",
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
    parser.add_argument("--rounds", type=int, default=60, help="events per server and channel")
    parser.add_argument("--sizes", default="1000", help="subscriber counts, comma-separated")
    parser.add_argument("--channels", default="ws,sse", help="ws, sse or both, comma-separated")
    args = parser.parse_args()
    sizes = tuple(int(size) for size in args.sizes.split(","))
    channels = tuple(channel for channel in args.channels.split(",") if channel)
    if not set(channels) <= set(CHANNEL_NAMES):
        parser.error(f"--channels: choose from {', '.join(CHANNEL_NAMES)}")
    print(render(comparisons(rounds=args.rounds, sizes=sizes, channels=channels), "Event fan-out"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
