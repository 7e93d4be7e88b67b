"""The fault test: a component with two workers on the Redis bus, registered with a local Hermes,
driven through Redis restarts (`appendonly yes`), Hermes restarts (one forgetting every
registration, one keeping them) and a worker killed, while a client publishes and follows `/events`.

Shows that no event is lost or duplicated on the bus (the stream holds each
accepted event once, and the resuming subscriber gets every entry once, in
the stream's order, never a reset) and that `/health` tells the truth on every
worker: the bus degraded while Redis is down and healthy once it is back; never
`registered` once Hermes has been gone for longer than a presence check takes
to notice, and registered again soon after it is back, with Hermes listing the
component once, under its one id. Redis bakes only.
"""

from __future__ import annotations
{%- if cookiecutter.event_bus == "redis" %}

import asyncio
import json
import os
import signal
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import redis.asyncio as redis

from .support.event_clients import DEADLINE, sse_events
from .support.faults import RestartableRedis
from .support.hermes import LocalHermes
from .support.servers import ComponentProcess
from .support.waiting import aeventually
from .test_hermes_registrar import component_env
from .test_hermes_workers import workers_started

PACKAGE = "{{ cookiecutter.component_name }}"
PREFIX = PACKAGE.upper() + "_"
STREAM = "fault:events"
CONSECUTIVE = 6  # answers in a row, so that both workers have been asked
PRESENCE_INTERVAL, PROBE_INTERVAL, HERMES_TIMEOUT = 0.3, 0.2, 0.5
# A worker's `registered` may be one presence interval old, plus a check under way (refused at once,
# or timed out) and a busy loop: after this long without Hermes, no answer may claim registration.
STALE_AT_MOST = PRESENCE_INTERVAL + PROBE_INTERVAL + HERMES_TIMEOUT + 1.0
HERMES_DOWN_FOR = STALE_AT_MOST + 1.5  # leaves dozens of answers to check


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


async def hermes_detail(health_http: httpx.AsyncClient) -> dict[str, Any] | None:
    try:
        health = (await health_http.get("/health")).json()
    except httpx.TransportError:
        return None
    return cast(dict[str, Any], health["hermes"])


async def refuses_connections(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return True
    writer.close()
    return False


async def answers_while_hermes_is_gone(health_http: httpx.AsyncClient, port: int) -> list[dict[str, Any]]:
    """The hermes detail of each /health answer given while Hermes had refused connections, as the
    test itself saw before and after asking, for longer than `STALE_AT_MOST`; until it serves again."""
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(DEADLINE):
        while True:
            if await refuses_connections(port):
                break
            await asyncio.sleep(0.01)
    gone_since = loop.time()  # no earlier than Hermes really went away
    late: list[dict[str, Any]] = []
    while await refuses_connections(port):
        detail = await hermes_detail(health_http)
        if detail is not None and loop.time() - gone_since > STALE_AT_MOST and await refuses_connections(port):
            late.append(detail)
        await asyncio.sleep(0.02)
    return late


async def listed_once_and_registered(health_http: httpx.AsyncClient, hermes: LocalHermes) -> None:
    """Until both workers, `CONSECUTIVE` answers in a row, say registered under the one id Hermes lists."""
    in_a_row, owners, detail = 0, set[bool](), None
    try:
        async with asyncio.timeout(DEADLINE * 2):
            while in_a_row < CONSECUTIVE or owners != {True, False}:
                detail = await hermes_detail(health_http)
                if detail is not None and detail["registered"] and PACKAGE in hermes.component_ids():
                    assert detail["component_id"] == PACKAGE
                    in_a_row, owners = in_a_row + 1, owners | {detail["owner"]}
                else:
                    in_a_row, owners = 0, set()
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"not registered and listed again: {detail}, Hermes lists {hermes.components()}") from None
    # Both workers may have registered (while Redis was down): under one id, so one entry.
    assert [record["component_id"] for record in hermes.components() if record["name"] == PACKAGE] == [PACKAGE]


async def bounce_hermes(health_http: httpx.AsyncClient, hermes: LocalHermes, *, forget: bool) -> None:
    """Hermes refuses connections for a while, then serves again (`forget`: having lost every registration)."""
    bouncing = asyncio.create_task(asyncio.to_thread(hermes.bounce, forget=forget, down_for=HERMES_DOWN_FOR))
    try:
        late = await answers_while_hermes_is_gone(health_http, hermes.port)
    finally:
        await bouncing
    assert len(late) >= CONSECUTIVE, late
    assert [detail for detail in late if detail["registered"]] == [], "registered claimed while Hermes was gone"
    assert {detail["owner"] for detail in late} == {True, False}, "both workers answered"
    await listed_once_and_registered(health_http, hermes)


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


@pytest.mark.long
async def test_redis_and_hermes_restarts_and_a_killed_worker_lose_or_duplicate_no_event(
    local_hermes: LocalHermes, tmp_path: Path
) -> None:
    with RestartableRedis(tmp_path / "redis") as redis_server:
        env = {
            **component_env(
                local_hermes.url,
                presence_check_interval=str(PRESENCE_INTERVAL),
                hermes_probe_interval=str(PROBE_INTERVAL),
                hermes_timeout=str(HERMES_TIMEOUT),
                hermes_lease_ttl="1.5",
                # Failed heartbeats never give the registration up: only the presence check can tell
                # that a restarted Hermes forgot the component.
                heartbeat_failures_before_reregister="1000",
            ),
            f"{PREFIX}EVENT_BUS": "redis",
            f"{PREFIX}REDIS_URL": redis_server.url,
            f"{PREFIX}EVENT_STREAM_KEY": STREAM,
            # The stream keeps every event of the run (its MAXLEN), so the check below sees them all.
            f"{PREFIX}EVENT_REPLAY_SIZE": "1000000",
        }
        args = ("--workers", "2", "--timeout-worker-healthcheck", "2")
        with ComponentProcess(PACKAGE, env=env, log_dir=tmp_path, extra_args=args) as component:
            # /health on a new connection each time, so that the kernel hands it to either worker.
            async with (
                httpx.AsyncClient(base_url=component.base_url, timeout=DEADLINE) as http,
                httpx.AsyncClient(
                    base_url=component.base_url, timeout=DEADLINE, limits=httpx.Limits(max_keepalive_connections=0)
                ) as health_http,
            ):
                follower, publisher = Follower(http), Publisher(http)
                following = asyncio.create_task(follower.run())
                async with asyncio.timeout(DEADLINE):
                    while not follower.first.is_set():  # the subscription is in place
                        await publisher.publish_one()
                        await asyncio.sleep(0.05)
                publishing = asyncio.create_task(publisher.run())
                try:
                    await bus_statuses_settle(health_http, "healthy")
                    await listed_once_and_registered(health_http, local_hermes)
                    for _ in range(2):
                        await asyncio.sleep(0.5)
                        await asyncio.to_thread(redis_server.stop)
                        await bus_statuses_settle(health_http, "degraded")  # the truth while Redis is down
                        await asyncio.to_thread(redis_server.start)
                        await bus_statuses_settle(health_http, "healthy")  # and once it is back
                    await listed_once_and_registered(health_http, local_hermes)
                    await bounce_hermes(health_http, local_hermes, forget=True)  # a Hermes restart
                    await bounce_hermes(health_http, local_hermes, forget=False)  # a network outage
                    assert component.process is not None
                    os.kill(worker_pids(component.process.pid)[0], signal.SIGKILL)
                    await aeventually(
                        lambda: workers_started(component.log) >= 3, DEADLINE * 2, what="a worker in its place"
                    )
                    await bus_statuses_settle(health_http, "healthy")
                    await listed_once_and_registered(health_http, local_hermes)
                    assert local_hermes.registry.count("/api/unregister") == 0  # no worker took the id away
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
