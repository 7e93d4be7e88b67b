"""The client package's own cost: `ComponentClient.call_api` against a plain pooled `httpx.AsyncClient`.

The peer is a baked default component in its own uvicorn process; every
call is `POST /api/v1/process` with a small JSON body and its decoded
answer. Variants, measured in the same run:

- pooled httpx (the baseline): one shared `httpx.AsyncClient` with the
  package's pool limits, nothing else;
- client package: `ComponentClient.call_api` (discovery cache, breaker,
  retry bookkeeping, metrics, log check, request id and `traceparent`,
  `X-API-Version`, the TektonAuth hook with no keys set), on the package's own
  pool, which keeps no cookies (plain httpx's looks for them in every answer:
  ~8% of its call);
- guide (context only): a new `httpx.AsyncClient` per call, as the guide's
  `ComponentClient.call_api` does; it is ~20x slower, so it runs in every
  fifth round only, a tenth of the calls.

Each runs with one caller and with 20 concurrent callers. Many short rounds
alternate which of the two compared variants goes first (ABBA), so a drift
in the machine's load hits both alike; the ratio reported is the median of
the per-round ratios (the goal: >= 0.95x), the calls/s the medians.

Usage: python -m benchmarks.client_pool [--calls 100] [--rounds 40] [--verbose]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from benchmarks.client_peer import baked_component, serving
from benchmarks.table import Ratio, render

# Issue 11: the client package's layers cost at most 5% of a plain pooled httpx call.
GOAL = 0.95
CONCURRENCY = (1, 20)
BODY = {"input": {"text": "hello", "n": 1}}
GUIDE_SHARE = 10  # the guide's variant runs calls // GUIDE_SHARE calls...
GUIDE_EVERY = 5  # ...in every fifth round
Call = Callable[[], Awaitable[Any]]


async def measure(call: Call, calls: int, concurrency: int) -> float:
    """Calls per second for `calls` calls spread over `concurrency` workers."""
    per_worker = max(1, calls // concurrency)

    async def worker() -> None:
        for _ in range(per_worker):
            await call()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return per_worker * concurrency / (time.perf_counter() - started)


@dataclass
class Figures:
    pooled: list[float]  # calls/s per round
    package: list[float]
    guide: list[float]

    @property
    def ratio(self) -> float:
        """Median of the per-round ratios: each round's pair ran back to back, under the same load."""
        return statistics.median(ours / base for ours, base in zip(self.package, self.pooled, strict=True))


async def figures(url: str, calls: int, rounds: int) -> dict[int, Figures]:
    """concurrency -> the variants' calls/s, round by round."""
    from my_component.client import ComponentClient, IntegrationConfig, close_pools  # type: ignore[import-not-found]  # baked at run time
    from my_component.client._pool import LIMITS  # type: ignore[import-not-found]

    endpoint = f"{url}/api/v1/process"

    async def guide() -> Any:
        async with httpx.AsyncClient() as client:
            response = await client.post(endpoint, json=BODY)
            response.raise_for_status()
            return response.json()

    shared = httpx.AsyncClient(limits=LIMITS)

    async def pooled_httpx() -> Any:
        response = await shared.post(endpoint, json=BODY)
        response.raise_for_status()  # the package checks the status too
        return response.json()

    component = ComponentClient("peer", base_url=url, config=IntegrationConfig())

    async def client_package() -> Any:
        return await component.call_api("process", "POST", BODY)

    results: dict[int, Figures] = {}
    for concurrency in CONCURRENCY:
        found = Figures([], [], [])
        for call in (pooled_httpx, client_package, guide):
            await measure(call, 2 * max(concurrency, 20), concurrency)  # warm-up: connections open, code paths hot
        for round_ in range(rounds):
            pair = [(pooled_httpx, found.pooled), (client_package, found.package)]
            for call, into in pair if round_ % 2 == 0 else reversed(pair):
                into.append(await measure(call, calls, concurrency))
            if round_ % GUIDE_EVERY == 0:
                found.guide.append(await measure(guide, max(calls // GUIDE_SHARE, concurrency), concurrency))
        results[concurrency] = found
    await shared.aclose()
    await close_pools()
    return results


def rows(results: dict[int, Figures]) -> list[Ratio]:
    table = []
    for concurrency, found in results.items():
        pooled, ours, guide = (statistics.median(f) for f in (found.pooled, found.package, found.guide))
        callers = f"{concurrency} caller{'s' if concurrency > 1 else ''}"
        table.append(
            Ratio(
                f"client call_api, {callers} (calls/s)",
                f"pooled httpx {pooled:,.0f}/s",
                f"{ours:,.0f}/s",
                found.ratio,
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
    calls, rounds = (60, 10) if quick else (100, 40)
    with baked_component() as project, serving(project) as url:
        return rows(asyncio.run(figures(url, calls, rounds)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=100, help="calls per variant and round")
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--verbose", action="store_true", help="print every round's calls/s")
    args = parser.parse_args()
    with baked_component() as project, serving(project) as url:
        results = asyncio.run(figures(url, args.calls, args.rounds))
    if args.verbose:
        for concurrency, found in results.items():
            for name in ("pooled", "package", "guide"):
                print(concurrency, name, [round(x) for x in getattr(found, name)])
    print(render(rows(results), "Client cost"))


if __name__ == "__main__":
    main()
