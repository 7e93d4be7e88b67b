"""Event plane: fan-out latency to many subscribers, and events/s through the bus.

Bakes the component (event_bus=redis, so both backends are there) and, each
against a baseline measured in the same run:

1. Fan-out latency, one event to N subscribers (N = 100, 1000), over /ws and
   over /events (SSE): the time from the publishing `POST /api/v1/events` to
   each subscriber's receipt, p50 and p99 over all subscribers and rounds.
   Server: the component under uvicorn, one worker, in-memory bus, access log
   off. Baseline: a bare FastAPI app doing the usual broadcast (the FastAPI
   docs' ConnectionManager loop for WebSocket, one asyncio.Queue per stream
   for SSE), with no envelope, patterns, bounded queues or metrics.
2. Events/s through the bus, in process, publisher and one consuming task per
   subscriber: the in-memory bus against a plain asyncio.Queue fan-out; the
   Redis Streams bus (a throwaway redis-server) against raw XADD calls.

Subscribers and publisher share one client process; server and client share
the machine's cores, so read the ratios, not the absolute figures.

Usage: python -m benchmarks.events_fanout [--rounds 20] [--sizes 100,1000] [--events 20000]
Needs redis-server on PATH for the Redis rows (apt-get install -y redis-server).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import websockets

from tooling import DEFAULT_NAME, bake, free_port, wait_for_http

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
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                f"variants:{factory}",
                "--factory",
                "--port",
                str(self.port),
                "--no-access-log",
                "--log-level",
                "warning",
                "--ws-max-queue",
                "32",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_http(f"{self.url}/docs", timeout=30, process=self.process)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


async def fanout_ws(url: str, subscribers: int, rounds: int) -> list[float]:
    ws_url = url.replace("http://", "ws://") + "/ws"

    async def open_one() -> Any:
        connection = await websockets.connect(ws_url, max_size=None, open_timeout=60)
        await connection.send(json.dumps({"type": "subscribe", "events": ["bench.*"]}))
        assert json.loads(await connection.recv())["type"] == "subscribed"
        return connection

    connections = []
    for start in range(0, subscribers, 100):
        connections += await asyncio.gather(*(open_one() for _ in range(min(100, subscribers - start))))

    async def receipt(connection: Any) -> float:
        await connection.recv()
        return time.perf_counter()

    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        for n in range(rounds):
            receipts = [asyncio.create_task(receipt(connection)) for connection in connections]
            started = time.perf_counter()
            await http.post("/api/v1/events", json={"type": "bench.tick", "data": {"n": n}})
            latencies += [at - started for at in await asyncio.gather(*receipts)]
            await asyncio.sleep(0.05)
    await asyncio.gather(*(connection.close() for connection in connections))
    return latencies


async def fanout_sse(url: str, subscribers: int, rounds: int) -> list[float]:
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    inboxes: list[asyncio.Queue[float]] = [asyncio.Queue() for _ in range(subscribers)]
    ready = asyncio.Semaphore(0)

    async def follow(http: httpx.AsyncClient, inbox: asyncio.Queue[float]) -> None:
        async with http.stream("GET", "/events", params={"types": "bench.*"}) as response:
            ready.release()
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    inbox.put_nowait(time.perf_counter())

    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:
        followers = [asyncio.create_task(follow(http, inbox)) for inbox in inboxes]
        for _ in range(subscribers):
            await ready.acquire()
        await asyncio.sleep(0.5)  # the last streams' subscriptions are in place
        for n in range(rounds):
            started = time.perf_counter()
            await http.post("/api/v1/events", json={"type": "bench.tick", "data": {"n": n}})
            latencies += [await inbox.get() - started for inbox in inboxes]
            await asyncio.sleep(0.05)
        for follower in followers:
            follower.cancel()
        await asyncio.gather(*followers, return_exceptions=True)
    return latencies


async def rate(
    publish: Callable[[int], Awaitable[None]], events: int, drained: Callable[[], bool], concurrency: int = 1
) -> float:
    """Events/s from the first publish until every consumer has had every event."""

    async def worker(offset: int) -> None:
        for n in range(offset, events, concurrency):
            await publish(n)

    started = time.perf_counter()
    await asyncio.gather(*(worker(offset) for offset in range(concurrency)))
    while True:
        if drained():
            return events / (time.perf_counter() - started)
        await asyncio.sleep(0.001)


async def bus_rates(events: int, subscribers: int, redis_url: str | None) -> list[tuple[str, float]]:
    from my_component.events import Pattern  # type: ignore[import-not-found]
    from my_component.events.memory_bus import MemoryBus  # type: ignore[import-not-found]

    results: list[tuple[str, float]] = []
    consumed = [0]

    def drained(target: int) -> Callable[[], bool]:
        return lambda: consumed[0] >= target

    # Baseline: a plain asyncio.Queue per subscriber, each consumer serializing what it gets.
    queues: list[asyncio.Queue[dict[str, Any]]] = [asyncio.Queue() for _ in range(subscribers)]

    async def consume_queue(queue: asyncio.Queue[dict[str, Any]]) -> None:
        while True:
            json.dumps(await queue.get())
            consumed[0] += 1

    consumers = [asyncio.create_task(consume_queue(queue)) for queue in queues]

    async def put(n: int) -> None:
        event = {"type": "bench.tick", "data": {"n": n}}
        for queue in queues:
            queue.put_nowait(event)
        if n % 100 == 0:
            await asyncio.sleep(0)  # let consumers run, as the bus's publisher does

    consumed[0] = 0
    per_second = await rate(put, events, drained(events * subscribers))
    results.append((f"asyncio.Queue fan-out to {subscribers} (baseline)", per_second))
    for consumer in consumers:
        consumer.cancel()

    async with MemoryBus("bench", "bench", replay_size=1000) as bus:
        subscriptions = [
            await bus.subscribe([Pattern("bench.*")], channel="ws", queue_size=events) for _ in range(subscribers)
        ]

        async def consume(subscription: Any) -> None:
            while (event := await subscription.get()) is not None:
                _ = event.json
                consumed[0] += 1

        consumers = [asyncio.create_task(consume(subscription)) for subscription in subscriptions]

        async def publish(n: int) -> None:
            await bus.publish("bench.tick", {"n": n})
            if n % 100 == 0:
                await asyncio.sleep(0)

        consumed[0] = 0
        results.append((f"in-memory bus to {subscribers}", await rate(publish, events, drained(events * subscribers))))
        for consumer in consumers:
            consumer.cancel()

    if redis_url is None:
        return results
    import redis.asyncio as redis
    from my_component.events.redis_bus import RedisBus  # type: ignore[import-not-found]

    redis_events = min(events, 5000)
    client = redis.Redis.from_url(redis_url)
    for concurrency in (1, 32):

        async def xadd(n: int) -> None:
            await client.xadd(
                "bench:raw",
                {"event": json.dumps({"type": "bench.tick", "data": {"n": n}})},
                maxlen=1000,
                approximate=False,
            )

        per_second = await rate(xadd, redis_events, lambda: True, concurrency)
        results.append((f"raw XADD, {concurrency} publisher(s) (baseline)", per_second))
        async with RedisBus(redis_url, f"bench:bus:{concurrency}", "bench", "bench", replay_size=1000) as redis_bus:
            subscriptions = [
                await redis_bus.subscribe([Pattern("bench.*")], channel="ws", queue_size=redis_events)
                for _ in range(subscribers)
            ]
            consumers = [asyncio.create_task(consume(subscription)) for subscription in subscriptions]

            async def publish_redis(n: int) -> None:
                await redis_bus.publish("bench.tick", {"n": n})

            consumed[0] = 0
            per_second = await rate(publish_redis, redis_events, drained(redis_events * subscribers), concurrency)
            results.append((f"Redis Streams bus to {subscribers}, {concurrency} publisher(s)", per_second))
            for consumer in consumers:
                consumer.cancel()
    await client.aclose()
    return results


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20, help="events per fan-out measurement")
    parser.add_argument("--sizes", default="100,1000", help="subscriber counts")
    parser.add_argument("--events", type=int, default=20000, help="events for the bus rate")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        project = bake(workdir, {"event_bus": "redis"})
        (workdir / "variants.py").write_text(VARIANTS_MODULE)
        sys.path[:0] = [str(project)]

        print("Fan-out latency: one event to N subscribers, from POST to receipt (ms)")
        print(f"{'variant':<44}{'N':>6}{'p50':>9}{'p99':>9}{'p50 ratio':>11}")
        for channel, fanout in (("WebSocket", fanout_ws), ("SSE", fanout_sse)):
            for size in sizes:
                figures = {}
                for label, factory in (("bare broadcast (baseline)", "bare"), ("component", "component")):
                    server = Server(workdir, factory)
                    try:
                        latencies = asyncio.run(fanout(server.url, size, args.rounds))
                    finally:
                        server.stop()
                    p50, p99 = percentile(latencies, 0.5) * 1000, percentile(latencies, 0.99) * 1000
                    figures[factory] = p50
                    ratio = p50 / figures["bare"]
                    print(f"{channel + ' ' + label:<44}{size:>6}{p50:>9.2f}{p99:>9.2f}{ratio:>10.2f}x", flush=True)

        redis_url = None
        redis_process = None
        if shutil.which("redis-server"):
            port = free_port()
            redis_process = subprocess.Popen(
                ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                stdout=subprocess.DEVNULL,
            )
            redis_url = f"redis://127.0.0.1:{port}/0"
            time.sleep(0.5)
        else:
            print("redis-server not found: Redis rows left out (apt-get install -y redis-server)")
        try:
            print()
            print("Events/s through the bus, in process (publisher + one consumer task per subscriber)")
            for subscribers in (1, 100):
                results = asyncio.run(bus_rates(args.events, subscribers, redis_url))
                baseline: float | None = None
                for label, per_second in results:
                    if "(baseline)" in label:
                        baseline = per_second
                    ratio = per_second / baseline if baseline else 1.0
                    print(f"{label:<58}{per_second:>12,.0f}/s{ratio:>9.2f}x", flush=True)
        finally:
            if redis_process is not None:
                redis_process.terminate()
                redis_process.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
