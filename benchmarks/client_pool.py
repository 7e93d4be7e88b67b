"""Pooled client against the guide's client-per-call, on the same peer.

The peer is a baked default component in its own uvicorn process; every
call is `POST /api/v1/process` with a small JSON body. Variants, run
interleaved for several rounds (median calls/s reported, with the ratio to
the guide's pattern measured in the same run):

- guide: a new `httpx.AsyncClient` per call (the guide's `ComponentClient.call_api`);
- pooled httpx: one shared `httpx.AsyncClient`, nothing else (what pooling alone gives);
- client package: `ComponentClient.call_api` (pool + breaker + retries + metrics + logs + headers).

Each runs sequentially (one caller) and at concurrency 20.

Usage: python -m benchmarks.client_pool [--calls 400] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from benchmarks.client_peer import baked_component, serving

BODY = {"input": {"text": "hello", "n": 1}}
Call = Callable[[], Awaitable[Any]]


async def measure(call: Call, calls: int, concurrency: int) -> float:
    """Calls per second for `calls` calls spread over `concurrency` workers."""
    per_worker = calls // concurrency

    async def worker() -> None:
        for _ in range(per_worker):
            await call()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return per_worker * concurrency / (time.perf_counter() - started)


async def run(url: str, calls: int, rounds: int) -> None:
    from my_component.client import ComponentClient, IntegrationConfig, close_pools  # type: ignore[import-not-found]  # baked at run time

    async def guide() -> Any:
        async with httpx.AsyncClient() as client:
            response = await client.request("POST", f"{url}/api/v1/process", json=BODY)
            return response.json()

    shared = httpx.AsyncClient(limits=httpx.Limits(max_keepalive_connections=50))

    async def pooled_httpx() -> Any:
        response = await shared.post(f"{url}/api/v1/process", json=BODY)
        return response.json()

    component = ComponentClient("peer", base_url=url, config=IntegrationConfig())

    async def client_package() -> Any:
        return await component.call_api("process", "POST", BODY)

    variants: dict[str, Call] = {"guide": guide, "pooled httpx": pooled_httpx, "client package": client_package}
    for concurrency in (1, 20):
        results: dict[str, list[float]] = {name: [] for name in variants}
        for call in variants.values():
            await measure(call, 40, concurrency)  # warm-up
        for _ in range(rounds):
            for name, call in variants.items():
                results[name].append(await measure(call, calls, concurrency))
        baseline = statistics.median(results["guide"])
        print(f"\nconcurrency {concurrency} ({calls} calls x {rounds} rounds, median):")
        for name, figures in results.items():
            median = statistics.median(figures)
            print(f"  {name:15s} {median:8.0f} calls/s   x{median / baseline:5.1f} vs guide")
    await shared.aclose()
    await close_pools()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with baked_component() as project, serving(project) as url:
        asyncio.run(run(url, args.calls, args.rounds))


if __name__ == "__main__":
    main()
