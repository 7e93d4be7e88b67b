"""The fault test: a component with two workers on the Redis bus, driven through Redis restarts
(`appendonly yes`) and a worker killed, while a client publishes and follows `/events`.

Shows that no event is lost or duplicated on the bus (the stream holds each
accepted event once, and the resuming subscriber gets every entry once, in
the stream's order, never a reset) and that `/health` tells the truth about
the bus on every worker: degraded while Redis is down, healthy once it is back.
Redis bakes only.
"""

from __future__ import annotations
{%- if cookiecutter.event_bus == "redis" %}

import asyncio
import json
import os
import signal
from pathlib import Path
from typing import cast

import httpx
import redis.asyncio as redis

from .support.event_clients import DEADLINE, sse_events
from .support.faults import RestartableRedis
from .support.servers import ComponentProcess

PACKAGE = "{{ cookiecutter.component_name }}"
PREFIX = PACKAGE.upper() + "_"
STREAM = "fault:events"
CONSECUTIVE = 6  # answers in a row, so that both workers have been asked


def worker_pids(supervisor: int) -> list[int]:
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    return [int(pid) for pid in children if "resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_text()]


async def bus_statuses_settle(http: httpx.AsyncClient, status: str) -> None:
    """Until `CONSECUTIVE` answers of /health in a row report the bus as `status`."""
    in_a_row = 0
    async with asyncio.timeout(DEADLINE * 2):
        while in_a_row < CONSECUTIVE:
            try:
                health = (await http.get("/health")).json()
            except httpx.TransportError:
                in_a_row = 0
                continue
            (bus,) = [report for report in health["dependencies"] if report["name"] == "event_bus"]
            in_a_row = in_a_row + 1 if bus["status"] == status else 0
            await asyncio.sleep(0.02)


class Follower:
    """An SSE subscriber that reconnects with `Last-Event-ID`, as a browser's EventSource does."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.ids: list[str] = []
        self.resets = 0
        self.first = asyncio.Event()

    async def run(self) -> None:
        while True:
            headers = {"Last-Event-ID": self.ids[-1]} if self.ids else {}
            try:
                async with self.http.stream(
                    "GET", "/events", params={"types": "fault.*"}, headers=headers, timeout=None
                ) as response:
                    if response.status_code != 200:
                        await asyncio.sleep(0.1)  # 503 while Redis is down: try again
                        continue
                    async for event in sse_events(response):
                        if event.event == "reset":
                            self.resets += 1
                        elif event.event == "fault.tick" and event.id is not None:
                            self.ids.append(event.id)
                            self.first.set()
            except httpx.HTTPError:
                await asyncio.sleep(0.05)  # its worker went away: resume on another


class Publisher:
    """Publishes numbered events; remembers what was accepted and what may have been."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.accepted: dict[int, str] = {}
        self.unsure: set[int] = set()
        self.next = 0

    async def publish_one(self) -> None:
        n, self.next = self.next, self.next + 1
        self.unsure.add(n)  # until answered: a worker may die, or the test stop, mid-request
        try:
            response = await self.http.post("/api/v1/events", json={"type": "fault.tick", "data": {"n": n}})
        except httpx.TransportError:
            return
        if response.status_code == 202:
            self.accepted[n] = response.json()["id"]
            self.unsure.discard(n)
        else:
            assert response.status_code == 503, response.text

    async def run(self) -> None:
        while True:
            await self.publish_one()
            await asyncio.sleep(0.01)


async def stream_entries(url: str) -> list[tuple[str, int]]:
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        entries = cast(list[tuple[str, dict[str, str]]], await client.xrange(STREAM))
    finally:
        await client.aclose()
    bodies = [(entry_id, json.loads(fields["event"])) for entry_id, fields in entries]
    # The workers' own lifecycle events (component.started, ...) share the stream.
    return [(entry_id, body["data"]["n"]) for entry_id, body in bodies if body["type"] == "fault.tick"]


async def test_redis_restarts_and_a_killed_worker_lose_or_duplicate_no_event(tmp_path: Path) -> None:
    with RestartableRedis(tmp_path / "redis") as redis_server:
        env = {
            f"{PREFIX}EVENT_BUS": "redis",
            f"{PREFIX}REDIS_URL": redis_server.url,
            f"{PREFIX}EVENT_STREAM_KEY": STREAM,
            f"{PREFIX}HERMES_ENABLED": "false",
        }
        args = ("--workers", "2", "--timeout-worker-healthcheck", "2")
        with ComponentProcess(PACKAGE, env=env, log_dir=tmp_path, extra_args=args) as component:
            async with httpx.AsyncClient(base_url=component.base_url, timeout=DEADLINE) as http:
                follower, publisher = Follower(http), Publisher(http)
                following = asyncio.create_task(follower.run())
                async with asyncio.timeout(DEADLINE):
                    while not follower.first.is_set():  # the subscription is in place
                        await publisher.publish_one()
                        await asyncio.sleep(0.05)
                publishing = asyncio.create_task(publisher.run())
                try:
                    await bus_statuses_settle(http, "healthy")
                    for _ in range(2):
                        await asyncio.sleep(0.5)
                        await asyncio.to_thread(redis_server.stop)
                        await bus_statuses_settle(http, "degraded")  # the truth while Redis is down
                        await asyncio.to_thread(redis_server.start)
                        await bus_statuses_settle(http, "healthy")  # and once it is back
                    assert component.process is not None
                    os.kill(worker_pids(component.process.pid)[0], signal.SIGKILL)
                    await asyncio.sleep(3)  # uvicorn starts a new worker meanwhile
                    await bus_statuses_settle(http, "healthy")
                finally:
                    publishing.cancel()
                    await asyncio.gather(publishing, return_exceptions=True)
                # Every accepted event reaches the follower before it stops.
                last_accepted = publisher.accepted[max(publisher.accepted)]
                async with asyncio.timeout(DEADLINE):
                    while True:
                        if last_accepted in follower.ids:
                            break
                        await asyncio.sleep(0.05)
                following.cancel()
                await asyncio.gather(following, return_exceptions=True)
        entries = await stream_entries(redis_server.url)

    numbers = [n for _, n in entries]
    assert len(numbers) == len(set(numbers)), "an event is in the stream twice"
    assert set(publisher.accepted) <= set(numbers), "an accepted event is missing from the stream"
    assert not set(numbers) - set(publisher.accepted) - publisher.unsure
    assert [entry_id for entry_id, _ in entries if entry_id in publisher.accepted.values()] == sorted(
        publisher.accepted.values(), key=lambda event_id: tuple(map(int, event_id.split("-")))
    )
    # The follower saw the stream itself from its first event on: nothing lost, nothing twice.
    entry_ids = [entry_id for entry_id, _ in entries]
    first, last = entry_ids.index(follower.ids[0]), entry_ids.index(last_accepted)
    assert follower.ids[: last - first + 1] == entry_ids[first : last + 1]
    assert len(follower.ids) == len(set(follower.ids))
    assert follower.resets == 0
    assert len(publisher.accepted) > 50  # the faults happened while events flowed
{%- endif %}
