"""Pooled client against the guide's client-per-call, on the same peer.

The peer is a baked default component in its own uvicorn process; every
call is `POST /api/v1/process` with a small JSON body. Variants, run
interleaved for several rounds (median calls/s reported, with the ratio to
the guide's pattern measured in the same run):

- guide: a new `httpx.AsyncClient` per call (the guide's `ComponentClient.call_api`);
- pooled httpx: one shared `httpx.AsyncClient`, nothing else (what pooling alone gives);
- client package: `ComponentClient.call_api` (pool + breaker + retries + metrics + logs + headers).

Each runs sequentially (one caller) and at concurrency 20; `comparisons()` reports the
client package against pooled httpx (the goal: >= 0.95x) and against the guide.

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
from benchmarks.table import Ratio, render

# Issue 11: the client package's layers cost at most 5% of a plain pooled httpx call.
GOAL = 0.95
CONCURRENCY = (1, 20)
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


async def figures(url: str, calls: int, rounds: int) -> dict[int, dict[str, float]]:
    """concurrency -> variant -> median calls/s, the variants interleaved round by round."""
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
    medians: dict[int, dict[str, float]] = {}
    for concurrency in CONCURRENCY:
        results: dict[str, list[float]] = {name: [] for name in variants}
        for call in variants.values():
            await measure(call, 40, concurrency)  # warm-up
        for _ in range(rounds):
            for name, call in variants.items():
                results[name].append(await measure(call, calls, concurrency))
        medians[concurrency] = {name: statistics.median(figures) for name, figures in results.items()}
    await shared.aclose()
    await close_pools()
    return medians


def rows(medians: dict[int, dict[str, float]]) -> list[Ratio]:
    table = []
    for concurrency, found in medians.items():
        pooled, ours, guide = found["pooled httpx"], found["client package"], found["guide"]
        callers = f"{concurrency} caller{'s' if concurrency > 1 else ''}"
        table.append(
            Ratio(
                f"client call_api, {callers} (calls/s)",
                f"pooled httpx {pooled:,.0f}/s",
                f"{ours:,.0f}/s",
                ours / pooled,
                GOAL,
            )
        )
        table.append(
            Ratio(
                f"client call_api vs the guide's client per call, {callers}",
                f"guide {guide:,.0f}/s",
                f"{ours:,.0f}/s",
                ours / guide,
            )
        )
    return table


def comparisons(quick: bool) -> list[Ratio]:
    calls, rounds = (200, 3) if quick else (400, 5)
    with baked_component() as project, serving(project) as url:
        return rows(asyncio.run(figures(url, calls, rounds)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with baked_component() as project, serving(project) as url:
        print(render(rows(asyncio.run(figures(url, args.calls, args.rounds))), "Client cost"))


if __name__ == "__main__":
    main()
