"""The Redis Streams bus against raw `XADD`, one publisher, to 1 and to 100 subscribers.

Baseline: a loop of raw `XADD` calls (redis-py's asyncio client, the same
trimming) with one publisher: the most a bus built on one stream can do.
Component: the bus's `publish` with one publisher, until every subscriber in
the process (one consuming task each, reading the event's JSON) has had every
event, which also checks the promise kept on the way: every subscriber gets
every event, in the stream's one order. Both run in the same process against
one throwaway `redis-server`, alternating rounds.

Usage: python -m benchmarks.redis_bus [--events 5000] [--rounds 3]
Needs redis-server on PATH (apt-get install -y redis-server).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.table import Ratio, render
from tooling import bake, free_port

GOAL = 0.8  # events/s at least 0.8x raw XADD


async def raw_xadd_rate(client: Any, events: int) -> float:
    started = time.perf_counter()
    for n in range(events):
        await client.xadd(
            "bench:raw", {"event": json.dumps({"type": "bench.tick", "data": {"n": n}})}, maxlen=1001, approximate=False
        )
    return events / (time.perf_counter() - started)


async def bus_rate(redis_url: str, stream: str, events: int, subscribers: int) -> float:
    from my_component.events import Pattern  # type: ignore[import-not-found]
    from my_component.events.redis_bus import RedisBus  # type: ignore[import-not-found]

    async with RedisBus(redis_url, stream, "bench", "bench", replay_size=1000) as bus:
        subscriptions = [
            await bus.subscribe([Pattern("bench.*")], channel="ws", queue_size=events) for _ in range(subscribers)
        ]
        orders: list[list[str]] = [[] for _ in subscriptions]

        async def consume(subscription: Any, order: list[str]) -> None:
            while len(order) < events and (event := await subscription.get()) is not None:
                _ = event.json
                order.append(event.id)

        consumers = [asyncio.create_task(consume(s, order)) for s, order in zip(subscriptions, orders, strict=True)]
        started = time.perf_counter()
        published = [(await bus.publish("bench.tick", {"n": n})).id for n in range(events)]
        await asyncio.gather(*consumers)
        elapsed = time.perf_counter() - started
    # One order for every subscriber: the stream's, every event once.
    assert all(order == published for order in orders), "a subscriber saw another order"
    return events / elapsed


async def measure(redis_url: str, events: int, subscribers: int, rounds: int) -> tuple[float, float]:
    import redis.asyncio as redis

    client = redis.Redis.from_url(redis_url)
    raw, bus = [], []
    try:
        for n in range(rounds):
            raw.append(await raw_xadd_rate(client, events))
            bus.append(await bus_rate(redis_url, f"bench:bus:{subscribers}:{n}", events, subscribers))
    finally:
        await client.aclose()
    return statistics.median(raw), statistics.median(bus)


def comparisons(quick: bool = False, events: int = 5000, rounds: int = 3) -> list[Ratio]:
    if shutil.which("redis-server") is None:
        print("redis-server not found: Redis rows left out (apt-get install -y redis-server)")
        return []
    events, rounds = (1000, 1) if quick else (events, rounds)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        project = bake(Path(tmp), {"event_bus": "redis"})
        sys.path.insert(0, str(project))
        port = free_port()
        server = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        try:
            time.sleep(0.5)
            for subscribers in (1, 100):
                raw, bus = asyncio.run(measure(f"redis://127.0.0.1:{port}/0", events, subscribers, rounds))
                rows.append(
                    Ratio(
                        f"Redis bus, 1 publisher, to {subscribers} subscriber{'s' if subscribers > 1 else ''}",
                        f"raw XADD {raw:,.0f}/s",
                        f"{bus:,.0f}/s",
                        bus / raw,
                        GOAL,
                    )
                )
        finally:
            server.terminate()
            server.wait()
            sys.path.remove(str(project))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=5000, help="events per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; medians are compared")
    args = parser.parse_args()
    print(render(comparisons(events=args.events, rounds=args.rounds), "Redis event bus"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
