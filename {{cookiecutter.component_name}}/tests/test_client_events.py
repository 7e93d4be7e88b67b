"""EventIntegration (/ws) and StreamIntegration (/events, POST streams) against the component's own server."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import aclosing, asynccontextmanager, suppress
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from {{ cookiecutter.component_name }}.app import create_app
from {{ cookiecutter.component_name }}.client import EventIntegration, StreamIntegration
from {{ cookiecutter.component_name }}.settings import Settings

from .conftest import SettingsFactory
from .support.servers import free_port, running_server
from .support.waiting import aeventually


async def publish(base_url: str, event_type: str, data: dict[str, Any]) -> str:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        response = await http.post("/api/v1/events", json={"type": event_type, "data": data})
        assert response.status_code == 202, response.text
        event_id: str = response.json()["id"]
        return event_id


@asynccontextmanager
async def listening(events: EventIntegration) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.get_running_loop().create_task(events.connect())
    try:
        yield task
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task  # the WebSocket closes now, not later in the garbage collector


async def test_sync_async_and_wildcard_handlers_get_their_events_and_no_control_frames(base_url: str) -> None:
    events = EventIntegration("self", base_url=base_url)
    exact: list[Any] = []
    wildcard: list[Any] = []
    everything: list[Any] = []

    @events.on_event("order.created")
    def on_created(data: Any) -> None:
        exact.append(data)

    @events.on_event("order.*")
    async def on_order(data: Any) -> None:
        wildcard.append(data)

    @events.on_event("*")
    def on_any(data: Any) -> None:
        everything.append(data)

    async with listening(events):
        async with asyncio.timeout(10):
            await events.wait_until_subscribed()
        await publish(base_url, "order.created", {"n": 1})
        await publish(base_url, "order.line.shipped", {"n": 2})
        await publish(base_url, "invoice.paid", {"n": 3})
        await aeventually(lambda: len(everything) >= 3, within=10)
    assert exact == [{"n": 1}]
    assert wildcard == [{"n": 1}, {"n": 2}]
    assert everything == [{"n": 1}, {"n": 2}, {"n": 3}]  # the `subscribed` frame was not taken for an event
    assert events.connections == 1


async def test_a_handler_that_raises_does_not_stop_the_loop(base_url: str) -> None:
    events = EventIntegration("self", base_url=base_url)
    seen: list[int] = []

    @events.on_event("job.done")
    def fragile(data: Any) -> None:
        seen.append(data["n"])
        if data["n"] == 1:
            raise RuntimeError("handler bug")

    async with listening(events) as task:
        async with asyncio.timeout(10):
            await events.wait_until_subscribed()
        await publish(base_url, "job.done", {"n": 1})
        await publish(base_url, "job.done", {"n": 2})
        await aeventually(lambda: seen == [1, 2], within=10)
        assert not task.done()


async def test_the_subscriber_survives_a_server_restart_and_subscribes_again(make_settings: SettingsFactory) -> None:
    port = free_port()
    settings = make_settings()
    events = EventIntegration("self", port=port, host="127.0.0.1", reconnect_delay=0.1, max_reconnect_delay=0.5)
    seen: list[int] = []

    @events.on_event("deploy.*")
    async def on_deploy(data: Any) -> None:
        seen.append(data["n"])

    def serve(settings: Settings, stop: threading.Event) -> None:
        with running_server(create_app(settings), port=port):
            stop.wait(30)

    async with listening(events):
        first_stop = threading.Event()
        first = threading.Thread(target=serve, args=(settings, first_stop), daemon=True)
        first.start()
        async with asyncio.timeout(15):
            await events.wait_until_subscribed()
        await publish(f"http://127.0.0.1:{port}", "deploy.started", {"n": 1})
        await aeventually(lambda: seen == [1], within=10)
        first_stop.set()  # uvicorn closes the socket with 1012
        await asyncio.to_thread(first.join, 20)
        second_stop = threading.Event()
        second = threading.Thread(target=serve, args=(settings, second_stop), daemon=True)
        second.start()
        try:
            await aeventually(lambda: events.connections == 2, within=15, what="subscribed again")
            await publish(f"http://127.0.0.1:{port}", "deploy.finished", {"n": 2})
            await aeventually(lambda: seen == [1, 2], within=10)
        finally:
            second_stop.set()
            await asyncio.to_thread(second.join, 20)


async def test_stream_keeps_the_guides_post_shape(make_settings: SettingsFactory) -> None:
    with running_server(create_app(make_settings(metrics_stream_interval=0.05))) as url:
        stream = StreamIntegration("self", base_url=url)
        readings = []
        params = {"components": [], "metrics": ["throughput", "latency"]}
        async with aclosing(stream.stream("metrics/stream", params)) as metrics:
            async for metric in metrics:
                readings.append(metric)
                if len(readings) == 2:
                    break
    assert all({"throughput", "latency"} <= set(reading) for reading in readings)


async def test_events_resume_after_a_dropped_connection_without_losing_any(make_settings: SettingsFactory) -> None:
    settings = make_settings(event_ping_interval=30.0)
    with running_server(create_app(settings)) as url:
        # Nothing is sent for longer than the read timeout: the client drops the connection itself.
        stream = StreamIntegration("self", base_url=url, read_timeout=0.5, reconnect_delay=0.4, max_reconnect_delay=0.5)
        received: list[dict[str, Any]] = []

        async def consume() -> None:
            async for envelope in stream.events(["audit.*"]):
                received.append(envelope)

        consumer = asyncio.create_task(consume())
        try:
            await aeventually(lambda: stream.connections == 1, within=10)
            sent = [await publish(url, "audit.logged", {"n": n}) for n in range(5)]
            await aeventually(lambda: len(received) == 5, within=10)
            await aeventually(lambda: stream.disconnects >= 1, within=10, what="the idle connection dropped")
            sent += [await publish(url, "audit.logged", {"n": n}) for n in range(5, 10)]  # while disconnected
            await aeventually(lambda: len(received) >= 10, within=15)
        finally:
            consumer.cancel()
            with suppress(asyncio.CancelledError):
                await consumer
        assert [envelope["id"] for envelope in received] == sent  # all, once, in order
        assert [envelope["data"]["n"] for envelope in received] == list(range(10))
        assert stream.connections >= 2
        assert stream.resets == 0


def control_events_peer() -> Starlette:
    """An `/events` stream with a `dropped` control event between two events."""

    async def events(request: Request) -> StreamingResponse:
        async def body() -> AsyncIterator[str]:
            yield 'event: audit.logged\nid: b-1\ndata: {"id": "b-1", "type": "audit.logged", "data": {"n": 1}}\n\n'
            yield 'event: dropped\ndata: {"count": 3}\n\n'
            yield 'event: audit.logged\nid: b-5\ndata: {"id": "b-5", "type": "audit.logged", "data": {"n": 5}}\n\n'
            await asyncio.sleep(30)

        return StreamingResponse(body(), media_type="text/event-stream")

    return Starlette(routes=[Route("/events", events)])


async def test_stream_events_yields_envelopes_only_never_control_messages() -> None:
    with running_server(control_events_peer()) as url:
        stream = StreamIntegration("self", base_url=url)
        received: list[dict[str, Any]] = []
        async with asyncio.timeout(10), aclosing(stream.events(["audit.*"])) as envelopes:
            async for envelope in envelopes:
                received.append(envelope)
                if len(received) == 2:
                    break
    assert [envelope["id"] for envelope in received] == ["b-1", "b-5"]
