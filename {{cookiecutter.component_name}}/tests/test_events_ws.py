"""`/ws` over real sockets to a real uvicorn: the guide's client, control frames, bad frames, slow clients."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from {{ cookiecutter.component_name }}.app import create_app

from .conftest import SettingsFactory
from .support.event_clients import (
    DEADLINE,
    RawWebSocket,
    SeenSends,
    metric,
    publish,
    recv_frame,
    subscribe,
    ws_url,
)
from .support.servers import running_server


@pytest.fixture
def events_url(make_settings: SettingsFactory) -> Iterator[str]:
    with running_server(create_app(make_settings(event_bus="memory", ws_max_frame_bytes=1024))) as url:
        yield url


# Both ways events leave: a compressed connection's frames go through the ASGI
# stack (each socket compresses its own), an uncompressed one's are written
# straight to its socket (`api/wire.py`).
@pytest.fixture(params=["deflate", None], ids=["compressed", "uncompressed"])
async def ws(events_url: str, request: pytest.FixtureRequest) -> AsyncIterator[ClientConnection]:
    async with connect(ws_url(events_url), compression=request.param) as connection:
        yield connection


# The guide's Pattern 2 client, verbatim but for discovery (no Hermes here):
# it must work against /ws unchanged.
class EventIntegration:
    def __init__(self, component: str):
        self.component = component
        self.handlers = {}  # type: ignore[var-annotated]
        self._discover_websocket()  # type: ignore[no-untyped-call]

    def _discover_websocket(self):  # type: ignore[no-untyped-def]
        hermes = HermesClient()  # type: ignore[name-defined]  # noqa: F821
        info = hermes.discover_component(self.component)
        self.ws_url = f"ws://{info['host']}:{info['port']}/ws"

    def on_event(self, event_type: str):  # type: ignore[no-untyped-def]
        def decorator(func: Callable):  # type: ignore[no-untyped-def,type-arg]
            self.handlers[event_type] = func
            return func

        return decorator

    async def connect(self):  # type: ignore[no-untyped-def]
        async with websockets.connect(self.ws_url) as websocket:
            # Send subscription message
            await websocket.send(json.dumps({"type": "subscribe", "events": list(self.handlers.keys())}))

            # Handle incoming events
            async for message in websocket:
                event = json.loads(message)
                if event["type"] in self.handlers:
                    await self.handlers[event["type"]](event["data"])


async def test_guide_event_integration_receives_and_dispatches_events(events_url: str, http: httpx.AsyncClient) -> None:
    class LocalEventIntegration(EventIntegration):
        def _discover_websocket(self) -> None:
            self.ws_url = ws_url(events_url)

    events = LocalEventIntegration("{{ cookiecutter.component_name }}")
    completed: list[dict[str, Any]] = []
    done = asyncio.Event()

    @events.on_event("workflow.completed")  # type: ignore[untyped-decorator]
    async def handle_completion(data: dict[str, Any]) -> None:
        completed.append(data)
        if len(completed) == 2:
            done.set()

    loop = asyncio.create_task(events.connect())  # type: ignore[no-untyped-call]
    try:
        async with connect(ws_url(events_url)) as probe:
            await subscribe(probe, "*")
            # Publish until the guide's client has subscribed (it sends no acknowledgement wait).
            async with asyncio.timeout(DEADLINE):
                while not completed:
                    await publish(http, "workflow.completed", {"workflow_id": "w-first"})
                    await asyncio.sleep(0.05)
                await publish(http, "workflow.started", {"workflow_id": "w-ignored"})
                await publish(http, "workflow.completed", {"workflow_id": "w-second"})
                await done.wait()
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
    assert completed[0] == {"workflow_id": "w-first"}
    assert completed[-1] == {"workflow_id": "w-second"}
    assert {"workflow_id": "w-ignored"} not in completed


async def test_subscribed_frame_names_the_events_and_the_serving_instance(ws: ClientConnection) -> None:
    first = await subscribe(ws, "workflow.*", "task.completed")
    assert first["events"] == ["workflow.*", "task.completed"]
    # Opaque: tells instances apart without naming the host, the pid or the component.
    instance = first["instance"]
    assert re.fullmatch(r"[0-9a-f]{16}", instance), instance
    assert socket.gethostname() not in instance
    assert "{{ cookiecutter.component_name }}" not in instance
    second = await subscribe(ws, "task.completed", "agent.*")
    assert second["subscriptions"] == ["workflow.*", "task.completed", "agent.*"]


async def test_events_arrive_as_the_envelope_for_matching_subscriptions_only(
    ws: ClientConnection, http: httpx.AsyncClient
) -> None:
    await subscribe(ws, "workflow.*")
    await publish(http, "task.completed", {"n": 0})
    published = await publish(http, "workflow.completed", {"n": 1})
    frame = await recv_frame(ws)
    assert frame == published
    # Published over HTTP, so the envelope also names the publishing request.
    assert set(frame) == {"id", "type", "source", "time", "data", "request_id"}
    assert frame["source"] == "{{ cookiecutter.component_name }}"


async def test_star_subscribes_to_every_event_in_order(ws: ClientConnection, http: httpx.AsyncClient) -> None:
    await subscribe(ws, "*")
    sent = [await publish(http, f"kind{n % 3}.happened", {"n": n}) for n in range(10)]
    received = [await recv_frame(ws) for _ in sent]
    assert [frame["id"] for frame in received] == [event["id"] for event in sent]


async def test_unsubscribe_stops_delivery(ws: ClientConnection, http: httpx.AsyncClient) -> None:
    await subscribe(ws, "workflow.*", "task.*")
    await ws.send(json.dumps({"type": "unsubscribe", "events": ["workflow.*"]}))
    acknowledgement = await recv_frame(ws)
    assert acknowledgement == {"type": "unsubscribed", "data": {"events": ["workflow.*"], "subscriptions": ["task.*"]}}
    await publish(http, "workflow.completed")
    task = await publish(http, "task.completed")
    assert (await recv_frame(ws))["id"] == task["id"]


async def test_ping_gets_a_pong_echoing_its_data(ws: ClientConnection) -> None:
    await ws.send(json.dumps({"type": "ping", "data": {"nonce": 7}}))
    assert await recv_frame(ws) == {"type": "pong", "data": {"nonce": 7}}


@pytest.mark.parametrize(
    ("frame", "code", "named"),
    [
        ("not json", "invalid_json", "not JSON"),
        ("[1, 2]", "invalid_frame", '"type"'),
        ('{"events": ["a.b"]}', "invalid_frame", '"type"'),
        ('{"type": "publish", "events": ["a.b"]}', "unknown_type", "'publish'"),
        ('{"type": "subscribe"}', "invalid_field", '"events"'),
        ('{"type": "subscribe", "events": "workflow.*"}', "invalid_field", '"events"'),
        ('{"type": "subscribe", "events": [1]}', "invalid_field", '"events"'),
        ('{"type": "subscribe", "events": ["workflow"]}', "invalid_subscription", "'workflow'"),
        ('{"type": "unsubscribe", "events": []}', "invalid_field", '"events"'),
        # Matched in full: `re.match` with `$` let a trailing newline through.
        ('{"type": "subscribe", "events": ["workflow.done\\n"]}', "invalid_subscription", "'workflow.done\\n'"),
        ('{"type": "subscribe", "events": ["workflow.*\\n"]}', "invalid_subscription", "'workflow.*\\n'"),
        ('{"type": "subscribe", "events": ["workflow.\\u0000"]}', "invalid_subscription", "'workflow.\\x00'"),
        # Not JSON: NaN and Infinity are refused, not echoed back as non-standard JSON.
        ('{"type": "ping", "data": NaN}', "invalid_json", "NaN"),
        ('{"type": "ping", "data": [Infinity]}', "invalid_json", "Infinity"),
        ('{"type": "ping", "data": -1e400}', "invalid_json", "out of range"),
    ],
)
async def test_a_bad_frame_gets_an_error_frame_and_the_connection_carries_on(
    ws: ClientConnection, frame: str, code: str, named: str
) -> None:
    await ws.send(frame)
    error = await recv_frame(ws)
    assert error["type"] == "error"
    assert error["data"]["code"] == code
    assert named in error["data"]["message"]
    assert (await subscribe(ws, "task.*"))["events"] == ["task.*"]


async def test_a_deeply_nested_frame_gets_an_error_frame_and_the_connection_carries_on(
    make_settings: SettingsFactory, caplog: pytest.LogCaptureFixture
) -> None:
    nested = '{"type": "ping", "data": ' + "[" * 5000 + "]" * 5000 + "}"  # 10 KB, under the frame limit
    with running_server(create_app(make_settings(event_bus="memory"))) as url, caplog.at_level(logging.WARNING):
        async with connect(ws_url(url)) as ws:
            await ws.send(nested)
            error = await recv_frame(ws)
            assert error["type"] == "error"
            assert error["data"]["code"] == "invalid_json"
            assert "nested too deeply" in error["data"]["message"]
            assert (await subscribe(ws, "task.*"))["events"] == ["task.*"]
    assert not [record for record in caplog.records if record.exc_info], "a bad frame must not log a traceback"


async def test_every_frame_the_server_sends_is_standard_json(ws: ClientConnection) -> None:
    await ws.send('{"type": "ping", "data": {"big": 1e308, "tiny": -1e-320, "text": "\\ud83d\\ude00"}}')
    raw = await asyncio.wait_for(ws.recv(), DEADLINE)

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} in a frame: {raw!r}")

    pong = json.loads(raw, parse_constant=refuse)
    assert pong == {"type": "pong", "data": {"big": 1e308, "tiny": -1e-320, "text": "\U0001f600"}}


async def test_an_oversized_frame_gets_an_error_then_close_1009(ws: ClientConnection) -> None:
    await ws.send(json.dumps({"type": "ping", "data": "x" * 2000}))
    error = await recv_frame(ws)
    assert error["data"]["code"] == "frame_too_large"
    with pytest.raises(ConnectionClosed) as closed:
        await recv_frame(ws)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


async def test_too_many_bad_frames_close_with_1008(make_settings: SettingsFactory) -> None:
    with running_server(create_app(make_settings(event_bus="memory", ws_max_bad_frames=3))) as url:
        async with connect(ws_url(url)) as ws:
            for _ in range(3):
                await ws.send("garbage")
            codes = [(await recv_frame(ws))["data"]["code"] for _ in range(3)]
            with pytest.raises(ConnectionClosed) as closed:
                await recv_frame(ws)
    assert codes == ["invalid_json"] * 3
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


async def test_subscriptions_per_connection_are_capped(make_settings: SettingsFactory) -> None:
    with running_server(create_app(make_settings(event_bus="memory", ws_max_subscriptions=3))) as url:
        async with connect(ws_url(url)) as ws:
            assert (await subscribe(ws, "a.one", "a.two"))["subscriptions"] == ["a.one", "a.two"]
            await ws.send(json.dumps({"type": "subscribe", "events": ["b.one", "b.two"]}))
            error = await recv_frame(ws)
            assert error["data"]["code"] == "too_many_subscriptions"
            assert "WS_MAX_SUBSCRIPTIONS" in error["data"]["message"]
            # Nothing half-applied: the connection keeps its two and may still add one.
            assert (await subscribe(ws, "c.one"))["subscriptions"] == ["a.one", "a.two", "c.one"]


def never_reading_client(url: str) -> RawWebSocket:
    """Subscribed to everything, then reads nothing."""
    client = RawWebSocket(url)
    client.send_text(json.dumps({"type": "subscribe", "events": ["*"]}))
    assert client.recv_frame()["type"] == "subscribed"
    return client


def read_until_last(client: RawWebSocket) -> tuple[int, int]:
    """(events received, events the server said were dropped), up to the last one published."""
    got, told = 0, 0
    while True:
        frame = client.recv_frame()
        if frame["type"] == "dropped":
            told += frame["data"]["count"]
        elif frame["type"] == "load.tick":
            got += 1
            if frame["data"]["n"] == EVENTS - 1:
                return got, told


BIG = "x" * 64 * 1024
EVENTS = 100  # 6 MiB: more than the kernel buffers between server and client hold


async def test_a_never_reading_client_loses_only_its_own_events(make_settings: SettingsFactory) -> None:
    settings = make_settings(event_bus="memory", event_queue_size=4, event_send_timeout=60)
    with running_server(create_app(settings)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=DEADLINE) as http, connect(ws_url(url)) as reader:
            dropped_before = metric((await http.get("/metrics")).text, 'events_dropped_total{channel="ws"}')
            await subscribe(reader, "*")
            slow = await asyncio.to_thread(never_reading_client, url)
            received: list[dict[str, Any]] = []

            async def read_all() -> None:
                while len(received) < EVENTS:
                    received.append(await recv_frame(reader))

            reading = asyncio.create_task(read_all())
            sent = [await publish(http, "load.tick", {"n": n, "pad": BIG}) for n in range(EVENTS)]
            await asyncio.wait_for(reading, DEADLINE)
            assert [event["id"] for event in received] == [event["id"] for event in sent]
            dropped_after = metric((await http.get("/metrics")).text, 'events_dropped_total{channel="ws"}')
            assert dropped_after > dropped_before
            assert (await http.get("/health")).status_code == 200

            # Reading again, the slow client learns exactly what it lost: nothing vanishes silently.
            got, told = await asyncio.to_thread(read_until_last, slow)
            slow.close()
            assert told > 0
            assert got + told == EVENTS


async def test_a_client_that_stops_reading_is_disconnected_after_the_send_timeout(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings(event_bus="memory", event_queue_size=4, event_send_timeout=0.3)
    with running_server(create_app(settings)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=DEADLINE) as http:
            gauge = 'event_connections{channel="ws"}'
            before = metric((await http.get("/metrics")).text, gauge)
            slow = await asyncio.to_thread(never_reading_client, url)
            assert metric((await http.get("/metrics")).text, gauge) == before + 1
            async with asyncio.timeout(DEADLINE):
                n = 0
                while metric((await http.get("/metrics")).text, gauge) > before:
                    await publish(http, "load.tick", {"n": n, "pad": BIG})
                    n += 1
            slow.close()


@pytest.mark.parametrize(("compression", "through_asgi"), [("deflate", True), (None, False)])
async def test_event_frames_skip_the_asgi_stack_on_an_uncompressed_connection(
    make_settings: SettingsFactory, compression: str | None, through_asgi: bool
) -> None:
    # Under uvicorn, one frame built for every subscriber goes straight to each socket; a
    # uvicorn that stops offering its connection to the wire fails here, not silently.
    app = create_app(make_settings(event_bus="memory"))
    seen = SeenSends.on(app)
    with running_server(app) as url:
        async with (
            httpx.AsyncClient(base_url=url, timeout=DEADLINE) as http,
            connect(ws_url(url), compression=compression) as ws,
        ):
            await subscribe(ws, "load.*")
            sent = [await publish(http, "load.tick", {"n": n}) for n in range(3)]
            assert [(await recv_frame(ws))["id"] for _ in sent] == [event["id"] for event in sent]
            await ws.send(json.dumps({"type": "ping"}))
            assert (await recv_frame(ws))["type"] == "pong"
    frames = [json.loads(message["text"]) for path, message in seen if path == "/ws" and "text" in message]
    # Control frames always go through the stack.
    assert [frame["type"] for frame in frames if "." not in frame["type"]] == ["subscribed", "pong"]
    assert len([frame for frame in frames if frame["type"] == "load.tick"]) == (3 if through_asgi else 0)


async def test_an_uncompressed_client_that_falls_behind_gets_every_event_in_order(
    make_settings: SettingsFactory,
) -> None:
    # Its socket fills up: the wire shuts, events queue behind what is pending, and go out
    # in order as the client reads; nothing is lost while the queue has room.
    settings = make_settings(event_bus="memory", event_queue_size=EVENTS + 1, event_send_timeout=60)
    with running_server(create_app(settings)) as url:
        late = await asyncio.to_thread(never_reading_client, url)
        try:
            async with httpx.AsyncClient(base_url=url, timeout=DEADLINE) as http:
                sent = [await publish(http, "load.tick", {"n": n, "pad": BIG}) for n in range(EVENTS)]
                received = await asyncio.to_thread(lambda: [late.recv_frame() for _ in sent])
                assert [frame["id"] for frame in received] == [event["id"] for event in sent]
                # Caught up: the next event goes out as it is published.
                last = await publish(http, "load.tick", {"n": EVENTS})
                assert (await asyncio.to_thread(late.recv_frame))["id"] == last["id"]
        finally:
            late.close()
