"""Publishing over HTTP, the live-figures stream, the AsyncAPI document, and the
event plane's life in a real process (refusing workers, ending streams on SIGTERM)."""

from __future__ import annotations

import asyncio
import json
import signal
import threading
from collections.abc import AsyncGenerator
from contextlib import aclosing
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from {{ cookiecutter.component_name }}.events import EVENT_TYPE_PATTERN, MAX_TYPE_LENGTH

from .support.event_clients import DEADLINE, metric, next_sse, publish, recv_frame, sse_events, subscribe, ws_url
from .support.servers import ComponentProcess

PACKAGE = "{{ cookiecutter.component_name }}"
PREFIX = PACKAGE.upper() + "_"
MEMORY = {f"{PREFIX}EVENT_BUS": "memory", f"{PREFIX}HERMES_ENABLED": "false"}


async def test_publish_answers_202_with_the_envelope_the_server_stamped(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/events",
        json={"type": "workflow.completed", "data": {"workflow_id": "w1"}, "id": "mine", "source": "forged"},
        headers={"X-Request-ID": "trace-42"},
    )
    assert response.status_code == 202
    body = response.json()
    assert body["request_id"] == "trace-42"
    assert body["type"] == "workflow.completed"
    assert body["data"] == {"workflow_id": "w1"}
    assert body["source"] == PACKAGE
    assert body["id"] != "mine"
    assert body["time"].endswith("+00:00")


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"type": "completed"}, "dotted"),
        ({"type": "workflow.*"}, "dotted"),
        ({"data": {}}, "body.type"),
        # Matched in full: a trailing newline or any control character is refused.
        ({"type": "workflow.completed\n"}, "dotted"),
        ({"type": "workflow.completed\r\nevent: forged"}, "dotted"),
        ({"type": "workflow.\u0085done"}, "dotted"),
    ],
)
async def test_publish_rejects_a_bad_event_naming_the_problem(
    client: httpx.AsyncClient, body: dict[str, Any], named: str
) -> None:
    response = await client.post("/api/v1/events", json=body)
    assert response.status_code == 422
    assert named in response.json()["message"]


async def test_the_event_type_grammar_is_in_the_openapi_schema(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/api/v1/openapi.json")).json()["components"]["schemas"]["PublishRequest"]
    assert schema["properties"]["type"]["pattern"] == EVENT_TYPE_PATTERN
    assert schema["properties"]["type"]["maxLength"] == MAX_TYPE_LENGTH


@pytest.mark.parametrize(
    "body",
    [
        b'{"type": "leak.check", "data": {"text": "\\ud800"}}',  # a lone surrogate
        b'{"type": "leak.check", "data": {"n": NaN}}',
        b'{"type": "leak.check", "data": {"n": [1e400]}}',  # overflows to Infinity
    ],
    ids=["lone-surrogate", "nan", "infinity"],
)
async def test_publish_refuses_data_with_no_standard_json_form_and_publishes_nothing(
    client: httpx.AsyncClient, base_url: str, body: bytes
) -> None:
    async with connect(ws_url(base_url)) as ws, client.stream("GET", "/events", params={"types": "*"}) as stream:
        await subscribe(ws, "*")
        events = sse_events(stream)
        response = await client.post("/api/v1/events", content=body, headers={"content-type": "application/json"})
        assert response.status_code == 400, response.text
        # The next event is the first either subscriber sees: the refused one reached nobody.
        marker = await publish(client, "leak.marker")
        assert await recv_frame(ws) == marker
        assert (await next_sse(events)).json == marker


async def test_the_component_announces_that_it_started(client: httpx.AsyncClient) -> None:
    async with client.stream("GET", "/events", headers={"Last-Event-ID": "none-0"}) as response:
        events = sse_events(response)
        assert (await next_sse(events)).event == "reset"
        started = await next_sse(events)
    assert started.event == "component.started"
    assert started.json["data"]["component"] == PACKAGE


# Compressed, an event goes out through ASGI; uncompressed, straight to the socket: both count.
@pytest.mark.parametrize("compression", ["deflate", None])
async def test_metrics_count_published_and_delivered_events(
    client: httpx.AsyncClient, base_url: str, compression: str | None
) -> None:
    def read(text: str) -> tuple[float, float]:
        return metric(text, "events_published_total"), metric(text, 'events_delivered_total{channel="ws"}')

    published, delivered = read((await client.get("/metrics")).text)
    async with connect(ws_url(base_url), compression=compression) as ws:
        await subscribe(ws, "*")
        await publish(client, "task.completed")
        await recv_frame(ws)
    assert read((await client.get("/metrics")).text) == (published + 1, delivered + 1)


async def test_asyncapi_document_describes_both_channels(client: httpx.AsyncClient) -> None:
    document = (await client.get("/api/v1/asyncapi.json")).json()
    assert document["asyncapi"].startswith("3.")
    assert {channel["address"] for channel in document["channels"].values()} == {"/ws", "/events"}
    messages = document["components"]["messages"]
    for name in ("event", "subscribe", "subscribed", "unsubscribed", "pong", "error", "dropped", "sseReset"):
        assert name in messages
    assert "component.started" in messages["event"]["description"]


# The guide's Pattern 3 client, verbatim but for discovery.
class StreamIntegration:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    async def stream(self, endpoint: str, params: dict[str, Any]) -> AsyncGenerator[dict[str, Any]]:
        async with (
            httpx.AsyncClient() as client,
            client.stream("POST", f"{self.base_url}/api/v1/{endpoint}", json=params) as response,
        ):
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    data = json.loads(line[6:])
                    yield data


async def test_metrics_stream_sends_live_figures_until_the_client_leaves(
    make_settings: Any,
) -> None:
    from {{ cookiecutter.component_name }}.app import create_app

    from .support.servers import running_server

    with running_server(create_app(make_settings(metrics_stream_interval=0.1))) as url:
        stream = StreamIntegration(url)
        readings = []
        params = {"components": [PACKAGE], "metrics": ["latency", "throughput", "events"]}
        # aclosing: leaving the loop closes the stream at once, as the client "leaves".
        async with asyncio.timeout(DEADLINE), aclosing(stream.stream("metrics/stream", params)) as updates:
            async for metric_update in updates:
                readings.append(metric_update)
                if len(readings) == 3:
                    break
    assert all(reading["component"] == PACKAGE for reading in readings)
    assert set(readings[0]) == {"component", "time", "latency", "throughput", "events"}
    assert readings[-1]["events"]["published"] >= 1  # component.started at least


@pytest.mark.parametrize(
    ("body", "named"),
    [({"metrics": ["cpu"]}, "'cpu'"), ({"metrics": []}, "empty")],  # other components: see test_guide_snippets
)
async def test_metrics_stream_rejects_what_it_cannot_stream(
    client: httpx.AsyncClient, body: dict[str, Any], named: str
) -> None:
    response = await client.post("/api/v1/metrics/stream", json=body)
    assert response.status_code == 422
    assert named in response.json()["message"]


@pytest.mark.long
def test_memory_bus_with_two_workers_refuses_to_start(tmp_path: Path) -> None:
    # uvicorn's own worker health check (5 s) is left alone: a shorter one kills a worker that is
    # still importing on a busy machine, and the supervisor restarts it instead of stopping.
    component = ComponentProcess(PACKAGE, env=MEMORY, log_dir=tmp_path, extra_args=("--workers", "2"))
    with pytest.raises(RuntimeError, match="component exited"):
        component.start(wait=30)
    # Each worker refuses in one line, without a traceback, and uvicorn's supervisor stops instead of
    # restarting them (its own exit code is 0).
    refusals = [line for line in component.log.splitlines() if line.startswith("error: ")]
    assert refusals, component.log
    assert all(f"{PREFIX}EVENT_BUS=memory with 2 uvicorn workers" in line for line in refusals), component.log
    assert "Traceback" not in component.log, component.log
    assert "failed to start, stopping the parent process" in component.log, component.log


def test_sigterm_ends_open_streams_and_sockets_cleanly(tmp_path: Path) -> None:
    env = {**MEMORY, f"{PREFIX}EVENT_PING_INTERVAL": "0.2", f"{PREFIX}EVENT_SHUTDOWN_GRACE": "2"}
    component = ComponentProcess(PACKAGE, env=env, log_dir=tmp_path).start()
    outcome: dict[str, Any] = {}
    connected = threading.Barrier(3, timeout=DEADLINE)

    def follow_sse() -> None:
        with httpx.stream("GET", f"{component.base_url}/events", timeout=DEADLINE) as response:
            lines = response.iter_lines()
            next(lines)
            connected.wait()
            outcome["sse_rest"] = list(lines)  # returns only when the server ends the stream

    async def follow_ws() -> None:
        async with connect(ws_url(component.base_url)) as ws:
            await subscribe(ws, "*")
            connected.wait()
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await recv_frame(ws)
            outcome["ws_close"] = closed.value.rcvd.code if closed.value.rcvd else None

    threads = [threading.Thread(target=follow_sse), threading.Thread(target=lambda: asyncio.run(follow_ws()))]
    for thread in threads:
        thread.start()
    connected.wait()
    code = component.stop(signal.SIGTERM, wait=DEADLINE)
    for thread in threads:
        thread.join(DEADLINE)
    assert code in (0, -signal.SIGTERM), component.log
    assert "sse_rest" in outcome, "the SSE stream did not end"
    assert outcome["ws_close"] == 1012
    assert "ASGI callable returned without completing response" not in component.log
    assert "Traceback" not in component.log
