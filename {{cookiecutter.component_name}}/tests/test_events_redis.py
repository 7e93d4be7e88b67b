"""The Redis Streams bus, against a real `redis-server` this module starts.

Only in components generated with `event_bus=redis`, where `redis_url` (from
`tests/support/redis_plugin.py`) is a real `redis-server` for the session. Without
`redis-server` on PATH these tests FAIL with an install hint: never skip.
"""

from __future__ import annotations

import asyncio
import gc
import json
import socket
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import httpx
import pytest
import redis.asyncio as redis
from websockets.asyncio.client import ClientConnection, connect

from {{ cookiecutter.component_name }}.app import create_app
from {{ cookiecutter.component_name }}.events import Pattern, redis_bus
from {{ cookiecutter.component_name }}.events.backend import BusUnavailable
from {{ cookiecutter.component_name }}.events.redis_bus import RedisBus
from {{ cookiecutter.component_name }}.events.subscription import Subscription

from .conftest import SettingsFactory
from .support.event_clients import DEADLINE, next_sse, publish, recv_frame, sse_events, subscribe, ws_url
from .support.faults import CuttingProxy, RestartableRedis
from .support.redis_server import RedisServer, RedisServerMissing
from .support.servers import ComponentProcess, running_server, serving

PACKAGE = "{{ cookiecutter.component_name }}"
PREFIX = PACKAGE.upper() + "_"


@pytest.fixture
def events_url(make_settings: SettingsFactory) -> Iterator[str]:
    # redis_url and a stream of this test's own come from the environment (tests/support/redis_plugin.py).
    with running_server(create_app(make_settings(event_bus="redis", event_replay_size=5))) as url:
        yield url


def test_missing_redis_server_fails_with_an_install_hint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RedisServerMissing, match="apt-get install -y redis-server"):
        RedisServer(tmp_path).start()


async def test_redis_bus_delivers_matching_events_in_order_with_stream_ids(
    events_url: str, http: httpx.AsyncClient
) -> None:
    async with connect(ws_url(events_url)) as ws:
        await subscribe(ws, "task.*")
        await publish(http, "workflow.started")
        sent = [await publish(http, "task.progress", {"n": n}) for n in range(5)]
        received = [await recv_frame(ws) for _ in sent]
    assert received == sent
    assert all(event["id"].replace("-", "").isdigit() for event in sent)


async def test_redis_subscription_never_gets_an_event_published_before_it(
    events_url: str, http: httpx.AsyncClient
) -> None:
    async with connect(ws_url(events_url)) as early:
        await subscribe(early, "*")
        first = await publish(http, "task.first")
        async with connect(ws_url(events_url)) as late:
            await subscribe(late, "*")
            second = await publish(http, "task.second")
            # Like the in-memory bus: an event published before a subscription never reaches it.
            assert await recv_frame(late) == second
        assert [await recv_frame(early) for _ in range(2)] == [first, second]


async def test_redis_sse_resumes_after_a_forced_disconnect_from_the_stream(http: httpx.AsyncClient) -> None:
    async with http.stream("GET", "/events", params={"types": "task.*"}) as response:
        events = sse_events(response)
        await publish(http, "task.progress", {"n": 0})
        last_seen = await next_sse(events)
    missed = [await publish(http, "task.progress", {"n": n}) for n in (1, 2)]
    async with http.stream("GET", "/events", headers={"Last-Event-ID": last_seen.id or ""}) as response:
        events = sse_events(response)
        resumed = [await next_sse(events) for _ in missed]
    assert [event.id for event in resumed] == [event["id"] for event in missed]


async def test_redis_sse_resume_from_a_trimmed_id_starts_with_reset(http: httpx.AsyncClient) -> None:
    old = await publish(http, "task.progress", {"n": 0})
    recent = [await publish(http, "task.progress", {"n": n}) for n in range(1, 8)]  # the stream keeps 5
    async with http.stream("GET", "/events", headers={"Last-Event-ID": old["id"]}) as response:
        events = sse_events(response)
        received = [await next_sse(events) for _ in range(6)]
    assert received[0].event == "reset"
    assert [event.id for event in received[1:]] == [event["id"] for event in recent[-5:]]


async def test_redis_sse_resume_from_just_before_the_buffer_has_no_reset(http: httpx.AsyncClient) -> None:
    published = [await publish(http, "task.progress", {"n": n}) for n in range(8)]  # the buffer keeps 5
    just_before = published[-6]
    async with http.stream("GET", "/events", headers={"Last-Event-ID": just_before["id"]}) as response:
        events = sse_events(response)
        received = [await next_sse(events) for _ in range(5)]
    assert [event.event for event in received] == ["task.progress"] * 5  # no reset: nothing was missed
    assert [event.id for event in received] == [event["id"] for event in published[-5:]]


def test_redis_down_gives_503_without_the_password_and_degraded_health(
    make_settings: SettingsFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_bus, "PUBLISH_PATIENCE", 0.3)  # each publish gives up sooner, by the same path
    settings = make_settings(event_bus="redis", redis_url="redis://:hunter2-secret@127.0.0.1:1/0")
    with running_server(create_app(settings)) as url:
        response = httpx.post(f"{url}/api/v1/events", json={"type": "task.completed"}, timeout=DEADLINE)
        health = httpx.get(f"{url}/health", timeout=DEADLINE)
    assert response.status_code == 503
    assert "redis://:***@127.0.0.1:1/0" in response.json()["message"]
    for text in (response.text, health.text):
        assert "hunter2-secret" not in text
    (bus,) = [report for report in health.json()["dependencies"] if report["name"] == "event_bus"]
    assert (bus["status"], bus["required"]) == ("degraded", False)


async def stream_entries(redis_url: str, stream: str) -> list[dict[str, Any]]:
    """The `data` of every entry in the stream, in order."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        entries = cast(list[tuple[str, dict[str, str]]], await client.xrange(stream))
    finally:
        await client.aclose()
    return [json.loads(fields["event"])["data"] for _, fields in entries]


def port_of(redis_url: str) -> int:
    port = urlsplit(redis_url).port
    assert port is not None, redis_url
    return port


async def test_a_publish_cut_off_after_it_was_sent_is_never_sent_again(
    make_settings: SettingsFactory, redis_url: str, redis_event_bus: str
) -> None:
    """XADD is not idempotent: when the reply is lost, answer 503 rather than risk a duplicate."""
    redis_port = port_of(redis_url)
    async with CuttingProxy(redis_port, password=urlsplit(redis_url).password) as proxy:
        settings = make_settings(event_bus="redis", redis_url=proxy.url)
        async with serving(create_app(settings)) as url, httpx.AsyncClient(base_url=url, timeout=DEADLINE) as http:
            await publish(http, "cut.before", {"n": 0})
            proxy.cut_after(b"cut.during")  # the chunk that carries this event to Redis
            cut = await http.post("/api/v1/events", json={"type": "cut.during", "data": {"n": 1}})
            after = await http.post("/api/v1/events", json={"type": "cut.after", "data": {"n": 2}})
    assert proxy.cuts == 1
    assert cut.status_code == 503
    assert "may have been published" in cut.json()["message"]
    assert after.status_code == 202  # the next publish reconnects by itself
    data = [entry for entry in await stream_entries(redis_url, redis_event_bus) if "n" in entry]
    assert data == [{"n": 0}, {"n": 1}, {"n": 2}]  # Redis ran the cut one once: no duplicate


async def test_the_cutting_proxy_closes_both_sides_whenever_its_exit_comes(redis_url: str) -> None:
    """A writer left unclosed warns in whichever later test collects it: a flake seen in CI."""
    redis_port = port_of(redis_url)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for pause in range(12):  # the proxy's exit lands at each step of its handler closing up
            async with CuttingProxy(redis_port) as proxy:
                reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
                writer.write(b"PING\r\n")
                await writer.drain()
                await reader.readline()  # relayed both ways: the handler holds both sides
                writer.close()
                await writer.wait_closed()
                for _ in range(pause):
                    await asyncio.sleep(0)
            gc.collect()
    assert [str(warning.message) for warning in caught if warning.category is ResourceWarning] == []


async def received_ids(subscription: Subscription, count: int) -> list[str]:
    async with asyncio.timeout(DEADLINE):
        return [event.id for event in [await subscription.get() for _ in range(count)] if event is not None]


async def entry_ids(bus: RedisBus, stream: str) -> list[str]:
    return [entry_id for entry_id, _ in cast(list[tuple[str, Any]], await bus.client.xrange(stream))]


async def test_events_from_another_process_reach_local_subscribers_in_the_streams_one_order(
    redis_url: str, redis_event_bus: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A publish brings back at most 2 of the events other processes appended since the last one
    # delivered here; beyond that the reader delivers the rest, then the event just published.
    monkeypatch.setattr(redis_bus, "READ_COUNT", 2)
    async with (
        RedisBus(redis_url, redis_event_bus, "here", "a", replay_size=50) as here,
        RedisBus(redis_url, redis_event_bus, "there", "b", replay_size=50) as there,
    ):
        subscription = await here.subscribe([Pattern("order.*")], channel="ws", queue_size=100)
        await there.publish("order.there", {"n": 0})
        await here.publish("order.here", {"n": 1})
        assert len(subscription) == 2  # both delivered here by the time publish returns
        for n in range(2, 6):
            await there.publish("order.there", {"n": n})
        await here.publish("order.here", {"n": 6})
        stream_ids = await entry_ids(here, redis_event_bus)
        received = await received_ids(subscription, len(stream_ids))
    assert len(stream_ids) == 7
    assert received == stream_ids


async def script_calls(bus: RedisBus) -> int:
    stats = cast(dict[str, dict[str, Any]], await bus.client.info("commandstats"))
    return sum(int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in ("evalsha", "eval"))


async def test_concurrent_publishes_go_together_and_keep_one_order(redis_url: str, redis_event_bus: str) -> None:
    async with RedisBus(redis_url, redis_event_bus, "here", "a", replay_size=500) as bus:
        subscription = await bus.subscribe([Pattern("batch.*")], channel="ws", queue_size=500)
        calls_before = await script_calls(bus)
        published = await asyncio.gather(*(bus.publish("batch.tick", {"n": n}) for n in range(200)))
        calls = await script_calls(bus) - calls_before
        stream_ids = await entry_ids(bus, redis_event_bus)
        received = await received_ids(subscription, len(published))
    assert [event.data["n"] for event in published] == list(range(200))  # each publish got its own event
    assert [event.id for event in published] == stream_ids == received  # in the order they came, everywhere
    assert calls < 20  # many publishes per round trip while one is on its way


async def test_a_redis_that_forgot_the_publish_script_still_takes_each_event_once(
    redis_url: str, redis_event_bus: str
) -> None:
    async with RedisBus(redis_url, redis_event_bus, "here", "a", replay_size=50) as bus:
        subscription = await bus.subscribe([Pattern("script.*")], channel="ws", queue_size=10)
        before = await bus.publish("script.before")
        await bus.client.script_flush()  # as after a Redis restart
        after = await bus.publish("script.after")
        stream_ids = await entry_ids(bus, redis_event_bus)
        received = await received_ids(subscription, 2)
    assert stream_ids == received == [before.id, after.id]


async def test_a_redis_that_accepts_connections_but_never_answers_fails_a_publish_in_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(redis_bus, "SOCKET_TIMEOUT", 0.5)  # shorter waits, same path
    monkeypatch.setattr(redis_bus, "PUBLISH_PATIENCE", 0.5)
    with socket.socket() as silent:  # the kernel accepts connections; nothing ever answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        async with RedisBus(url, "silent:events", "here", "a", replay_size=5) as bus:
            with pytest.raises(BusUnavailable, match="did not"):
                async with asyncio.timeout(DEADLINE):
                    await bus.publish("silent.tick")
            assert bus.probe().status == "degraded"


async def bus_status(http: httpx.AsyncClient) -> str:
    health = (await http.get("/health")).json()
    (bus,) = [report for report in health["dependencies"] if report["name"] == "event_bus"]
    status: str = bus["status"]
    return status


async def until_bus_status(http: httpx.AsyncClient, status: str) -> None:
    async with asyncio.timeout(DEADLINE):
        while True:
            if await bus_status(http) == status:
                return
            await asyncio.sleep(0.05)


async def test_a_redis_restart_costs_no_publish_and_no_event_and_health_follows(
    tmp_path: Path, make_settings: SettingsFactory
) -> None:
    with RestartableRedis(tmp_path) as redis_server:
        settings = make_settings(event_bus="redis", redis_url=redis_server.url, event_stream_key="restart:events")
        with running_server(create_app(settings)) as url:
            async with (
                httpx.AsyncClient(base_url=url, timeout=DEADLINE) as http,
                connect(ws_url(url)) as ws,
                http.stream("GET", "/events", params={"types": "restart.*"}) as stream,
            ):
                await subscribe(ws, "restart.*")
                sse = sse_events(stream)
                sent = [await publish(http, "restart.tick", {"n": 0})]
                assert await bus_status(http) == "healthy"

                redis_server.stop()
                await until_bus_status(http, "degraded")  # the truth while Redis is down
                down = await http.post("/api/v1/events", json={"type": "restart.tick", "data": {"n": -1}})
                assert down.status_code == 503

                await asyncio.to_thread(redis_server.start)
                # At once, with no wait: the publish reconnects by itself.
                sent += [await publish(http, "restart.tick", {"n": n}) for n in range(1, 6)]
                await until_bus_status(http, "healthy")

                received_ws = [await recv_frame(ws) for _ in sent]
                received_sse = [(await next_sse(sse)).json for _ in sent]
        entries = await stream_entries(redis_server.url, "restart:events")
    assert received_ws == sent
    assert received_sse == sent
    assert [entry["n"] for entry in entries if entry and "n" in entry] == [0, 1, 2, 3, 4, 5]


async def connections_on_two_workers(url: str) -> list[tuple[ClientConnection, str]]:
    """One socket on each of two worker processes (the second may still be starting)."""
    kept: dict[str, ClientConnection] = {}
    async with asyncio.timeout(DEADLINE * 2):
        while len(kept) < 2:
            ws = await connect(ws_url(url))
            instance = (await subscribe(ws, "fanout.*"))["instance"]
            if instance in kept:
                await ws.close()
                await asyncio.sleep(0.02)
            else:
                kept[instance] = ws
    return [(ws, instance) for instance, ws in kept.items()]


@pytest.mark.long
async def test_two_uvicorn_workers_share_events_through_redis(tmp_path: Path, redis_url: str) -> None:
    env = {f"{PREFIX}EVENT_BUS": "redis", f"{PREFIX}REDIS_URL": redis_url, f"{PREFIX}HERMES_ENABLED": "false"}
    args = ("--workers", "2", "--timeout-worker-healthcheck", "2")
    with ComponentProcess(PACKAGE, env=env, log_dir=tmp_path, extra_args=args) as component:
        opened = await connections_on_two_workers(component.base_url)
        try:
            async with httpx.AsyncClient(base_url=component.base_url, timeout=DEADLINE) as http:
                sent = await publish(http, "fanout.hello", {"n": 1})
            received = await asyncio.gather(*(recv_frame(ws) for ws, _ in opened))
        finally:
            for ws, _ in opened:
                await ws.close()
    assert all(frame == sent for frame in received), json.dumps(received)
    assert len({instance for _, instance in opened}) == 2
