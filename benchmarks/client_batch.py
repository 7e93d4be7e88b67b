"""Batch throughput for the guide's 250-item example: its design against the client package's.

The peer is a baked default component (`POST /api/v1/batch`) in its own
process. Both sides send the same 250 items in batches of 100:

- guide: the guide's `BatchIntegration` verbatim (discovery replaced by the
  URL): a batch leaves when full or after 1 s without a new item, one batch
  at a time, a new `httpx.AsyncClient` per batch;
- client package: `BatchIntegration` (a batch leaves when full or 50 ms
  after its first item; pooled client; up to 4 batches in flight).

Reported: time from the first `add_item` until every item is processed,
as items/s, median of several rounds, and the ratio in the same run.

Usage: python -m benchmarks.client_batch [--items 250] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

import httpx

from benchmarks.client_peer import baked_component, serving
from benchmarks.table import Ratio, render


class GuideBatchIntegration:
    """The guide's Pattern 4, with `_discover_endpoint` replaced by a base URL."""

    def __init__(self, base_url: str, batch_size: int = 100) -> None:
        self.batch_size = batch_size
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.base_url = base_url
        self.processed = 0
        self.expected = 0
        self.all_processed = asyncio.Event()  # ours: lets the benchmark stop the clock

    async def add_item(self, item: dict[str, Any]) -> None:
        await self.queue.put(item)

    async def process_batch(self) -> Any:
        batch: list[dict[str, Any]] = []
        while len(batch) < self.batch_size:
            try:
                item = await asyncio.wait_for(self.queue.get(), timeout=1.0)
                batch.append(item)
            except TimeoutError:
                break
        if batch:
            async with httpx.AsyncClient() as client:
                response = await client.post(f"{self.base_url}/api/v1/batch", json={"items": batch})
                return response.json()
        return None

    async def run(self) -> None:
        while True:
            result = await self.process_batch()
            if result:
                self.processed += len(result["processed"])  # the guide prints this
                if self.processed >= self.expected:
                    self.all_processed.set()


def items(count: int) -> list[dict[str, Any]]:
    return [{"task": f"Task {i}", "priority": "medium"} for i in range(count)]


async def guide_round(url: str, count: int) -> float:
    batch = GuideBatchIntegration(url)
    batch.expected = count
    started = time.perf_counter()
    processor = asyncio.create_task(batch.run())
    for item in items(count):
        await batch.add_item(item)
    await batch.all_processed.wait()
    elapsed = time.perf_counter() - started
    processor.cancel()
    return elapsed


async def package_round(url: str, count: int) -> float:
    from my_component.client import BatchIntegration  # type: ignore[import-not-found]  # baked at run time

    started = time.perf_counter()
    async with BatchIntegration("peer", base_url=url) as batch:
        futures = [await batch.add_item(item) for item in items(count)]
        results = await asyncio.gather(*futures)
    elapsed = time.perf_counter() - started
    assert all(result.ok for result in results)
    return elapsed


async def rates(url: str, count: int, rounds: int) -> dict[str, float]:
    """variant -> items/s (median of `rounds` interleaved rounds)."""
    from my_component.client import close_pools

    await package_round(url, count)  # warm-up
    times: dict[str, list[float]] = {"guide": [], "client package": []}
    for _ in range(rounds):
        times["guide"].append(await guide_round(url, count))
        times["client package"].append(await package_round(url, count))
    await close_pools()
    return {name: count / statistics.median(figures) for name, figures in times.items()}


def rows(found: dict[str, float], count: int) -> list[Ratio]:
    guide, ours = found["guide"], found["client package"]
    name = f"BatchIntegration, {count} items in batches of 100 (items/s)"
    return [Ratio(name, f"the guide's pattern {guide:,.0f}/s", f"{ours:,.0f}/s", ours / guide)]


def comparisons(quick: bool) -> list[Ratio]:
    rounds = 2 if quick else 5
    with baked_component() as project, serving(project) as url:
        return rows(asyncio.run(rates(url, 250, rounds)), 250)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=250)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with baked_component() as project, serving(project) as url:
        print(render(rows(asyncio.run(rates(url, args.items, args.rounds)), args.items), "Batches"))


if __name__ == "__main__":
    main()
