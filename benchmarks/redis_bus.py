"""The Redis Streams bus against raw `XADD` + `XREAD`: one publisher, to 1 and to 100 subscribers.

Both sides do the same job, end to end: the publisher appends events one at
a time (each awaited) to one stream, trimmed the same way, and N subscribers
in the same process each get every event, in the stream's order. The clock
runs from the first publish until the last subscriber has the last event.

- Baseline, raw redis-py (asyncio, its defaults): the publisher loops over
  `XADD`; each subscriber is its own connection looping over
  `XREAD BLOCK ... COUNT ...` from where it left off, keeping the entry ids.
  The event body is the same JSON envelope the bus writes.
- Component: `RedisBus.publish` in a loop; each subscriber is a bus
  subscription (one consuming task each, reading the event's JSON).
- Context rows (no goal): the same `XADD` loop with nobody reading, the most
  a publisher gets out of redis-py while the component still delivers to N;
  and 32 concurrent publishers (32 loops, each awaiting its own publishes) to
  one subscriber, where the bus sends publishes that queue up together.

Every subscriber's order is checked against the stream's on both sides.
Rounds rotate the order of the three sides against one throwaway
`redis-server`, on a fresh stream each time; medians are compared. The raw
side with 100 readers publishes a tenth of the events (it manages a few
dozen events/s): rates are compared, not times.

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
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from benchmarks.table import Ratio, render
from tooling import bake, free_port

GOAL = 0.8  # events/s at least 0.8x raw XADD + XREAD
REPLAY = 1000  # the bus's replay buffer; both sides trim the stream to REPLAY + 1 entries
READ_COUNT = 1000
DEADLINE = 120.0  # a subscriber that never gets every event fails the run instead of hanging it


def envelope(n: int) -> str:
    """The JSON the bus writes for one event, built per event as a raw publisher would."""
    body = {
        "type": "bench.tick",
        "source": "bench",
        "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "data": {"n": n},
        "request_id": None,
    }
    return json.dumps(body, separators=(",", ":"))


def stream_key(entry_id: str | bytes) -> tuple[int, ...]:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return tuple(int(part) for part in text.split("-"))


async def publish_all(publish: Callable[[int], Awaitable[Any]], events: int, publishers: int) -> list[Any]:
    """Events 0..events-1 from `publishers` concurrent loops, each awaiting its own publishes.

    Returns the ids in the stream's order (with one publisher, the order they were published in).
    """
    ids: list[Any] = [None] * events

    async def loop(first: int) -> None:
        for n in range(first, events, publishers):
            ids[n] = await publish(n)

    await asyncio.gather(*(loop(first) for first in range(publishers)))
    return ids if publishers == 1 else sorted(ids, key=stream_key)


async def xadd_alone_rate(redis_url: str, stream: str, events: int, _subscribers: int, publishers: int) -> float:
    return await raw_rate(redis_url, stream, events, 0, publishers)


async def raw_rate(redis_url: str, stream: str, events: int, subscribers: int, publishers: int) -> float:
    import redis.asyncio as redis

    publisher = redis.Redis.from_url(redis_url)  # its pool opens a connection per publish in flight
    readers = [redis.Redis.from_url(redis_url) for _ in range(subscribers)]
    try:
        await publisher.delete(stream)
        for reader in readers:
            await reader.ping()  # connected before the clock starts, like the bus's subscribers

        async def follow(reader: Any, order: list[bytes]) -> None:
            last = b"0-0"
            while len(order) < events:
                response = await reader.xread({stream: last}, count=READ_COUNT, block=1000)
                for _stream, entries in response:
                    for entry_id, _fields in entries:
                        order.append(entry_id)
                    last = entries[-1][0]

        async def xadd(n: int) -> bytes:
            entry = {"event": envelope(n)}
            return cast(bytes, await publisher.xadd(stream, entry, maxlen=REPLAY + 1, approximate=False))  # type: ignore[arg-type]

        orders: list[list[bytes]] = [[] for _ in readers]
        following = [asyncio.create_task(follow(r, o)) for r, o in zip(readers, orders, strict=True)]
        await asyncio.sleep(0.05)  # every reader is blocked in XREAD
        started = time.perf_counter()
        published = await publish_all(xadd, events, publishers)
        async with asyncio.timeout(DEADLINE):
            await asyncio.gather(*following)
        elapsed = time.perf_counter() - started
    finally:
        for client in (publisher, *readers):
            await client.aclose()
    assert all(order == published for order in orders), "a raw reader saw another order"
    return events / elapsed


async def bus_rate(redis_url: str, stream: str, events: int, subscribers: int, publishers: int) -> float:
    from my_component.events import Pattern  # type: ignore[import-not-found]
    from my_component.events.redis_bus import RedisBus  # type: ignore[import-not-found]

    async with RedisBus(redis_url, stream, "bench", "bench", replay_size=REPLAY) as bus:
        await bus.client.delete(stream)
        subscriptions = [
            await bus.subscribe([Pattern("bench.*")], channel="ws", queue_size=events) for _ in range(subscribers)
        ]
        orders: list[list[str]] = [[] for _ in subscriptions]

        async def consume(subscription: Any, order: list[str]) -> None:
            while len(order) < events and (event := await subscription.get()) is not None:
                _ = event.json
                order.append(event.id)

        async def publish(n: int) -> str:
            event_id: str = (await bus.publish("bench.tick", {"n": n})).id
            return event_id

        consumers = [asyncio.create_task(consume(s, order)) for s, order in zip(subscriptions, orders, strict=True)]
        await asyncio.sleep(0.05)  # the bus's reader is blocked in XREAD
        started = time.perf_counter()
        published = await publish_all(publish, events, publishers)
        async with asyncio.timeout(DEADLINE):
            await asyncio.gather(*consumers)
        elapsed = time.perf_counter() - started
    # One order for every subscriber: the stream's, every event once.
    assert all(order == published for order in orders), "a subscriber saw another order"
    return events / elapsed


# The baseline, the component, the context: each round starts with the next one.
SIDES: list[Callable[..., Awaitable[float]]] = [raw_rate, bus_rate, xadd_alone_rate]
# (publishers, subscribers, goal): the goal is for one publisher; many publishers are context.
CASES = [(1, 1, GOAL), (1, 100, GOAL), (32, 1, None)]


async def measure(
    redis_url: str, events: int, subscribers: int, publishers: int, rounds: int
) -> dict[str, list[float]]:
    """events/s per round for each side, keyed by the side's function name."""
    results: dict[str, list[float]] = {rate.__name__: [] for rate in SIDES}
    for n in range(rounds):
        for rate in SIDES[n % 3 :] + SIDES[: n % 3]:
            stream = f"bench:{rate.__name__}:{publishers}:{subscribers}:{n}"
            count = max(300, events // 10) if rate is raw_rate and subscribers > 1 else events
            results[rate.__name__].append(await rate(redis_url, stream, count, subscribers, publishers))
    return results


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
            for publishers, subscribers, goal in CASES:
                url = f"redis://127.0.0.1:{port}/0"
                results = asyncio.run(measure(url, events, subscribers, publishers, rounds))
                per_round = {side: [round(rate) for rate in rates] for side, rates in results.items()}
                print(f"{publishers} pub, {subscribers} sub, events/s per round: {per_round}", file=sys.stderr)
                raw, bus, alone = (statistics.median(results[side.__name__]) for side in SIDES)
                name = (
                    f"Redis bus, {publishers} publisher{'s' if publishers > 1 else ''}, "
                    f"to {subscribers} subscriber{'s' if subscribers > 1 else ''}"
                )
                baseline = f"raw XADD + {subscribers} XREAD {raw:,.0f}/s"
                rows.append(Ratio(name, baseline, f"{bus:,.0f}/s", bus / raw, goal))
                context = f"raw XADD, nobody reading {alone:,.0f}/s"
                rows.append(Ratio(f"{name} (context)", context, f"{bus:,.0f}/s", bus / alone))
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
    rows = comparisons(events=args.events, rounds=args.rounds)
    print(render(rows, "Redis event bus"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
