"""The guide's Usage snippets, with only their imports changed, against real servers found
through the local Hermes: the baked component (as harmonia and metis) and small stand-ins
for peers whose APIs a baked component does not serve (rhetor's `generate`, apollo's
metrics of other components)."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from contextlib import aclosing, contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sse_starlette import EventSourceResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from {{ cookiecutter.component_name }}.about import COMPONENT_NAME
from {{ cookiecutter.component_name }}.app import create_app
from {{ cookiecutter.component_name }}.client import (
    BatchIntegration,
    ComponentClient,
    EventIntegration,
    HealthMonitor,
    IntegrationConfig,
    ObservableIntegration,
    ResilientIntegration,
    RobustIntegration,
    StreamIntegration,
    SyncIntegration,
    VersionedIntegration,
    close_pools,
)
from {{ cookiecutter.component_name }}.client._pool import async_client

from .conftest import SettingsFactory
from .support.hermes import LocalHermes
from .support.peers import FlakyPeer, Step, flaky_peer
from .support.servers import refused_port, running_server
from .support.waiting import eventually

ANSWER = {"text": "Quantum computers use qubits."}


def apollo_app() -> Starlette:
    async def metrics(request: Request) -> EventSourceResponse:
        wanted = await request.json()

        async def figures() -> AsyncIterator[str]:
            n = 0
            while True:
                n += 1
                yield json.dumps({"component": wanted["components"][n % 2], "latency": 0.01 * n, "throughput": n})
                await asyncio.sleep(0.05)

        return EventSourceResponse(figures())

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "healthy"})

    return Starlette(routes=[Route("/api/v1/metrics/stream", metrics, methods=["POST"]), Route("/health", health)])


@dataclass
class Tekton:
    component_url: str
    rhetor: FlakyPeer
    rhetor_url: str


def register(hermes: LocalHermes, name: str, base_url: str) -> None:
    body = {"component_id": name, "name": name, "version": "1.0.0", "type": "component", "endpoint": base_url}
    assert httpx.post(f"{hermes.url}/api/register", json=body).status_code == 200


@pytest.fixture
def tekton(
    local_hermes: LocalHermes, make_settings: SettingsFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Tekton]:
    """A small Tekton: Hermes, the baked component as harmonia and metis, rhetor and apollo stand-ins."""
    monkeypatch.setenv("HERMES_URL", local_hermes.url)
    # Hermes' own static port points nowhere: finding "hermes" must follow HERMES_URL (Troubleshooting 1).
    monkeypatch.setenv("HERMES_PORT", str(refused_port()))
    for absent in ("ENGRAM", "ATHENA"):
        monkeypatch.setenv(f"{absent}_PORT", str(refused_port()))  # nothing listens there
    rhetor = FlakyPeer()
    rhetor.default = Step(200, ANSWER)
    with (
        running_server(create_app(make_settings())) as component_url,
        running_server(rhetor.app) as rhetor_url,
        running_server(apollo_app()) as apollo_url,
    ):
        for name, url in (("harmonia", component_url), ("metis", component_url), ("rhetor", rhetor_url)):
            register(local_hermes, name, url)
        register(local_hermes, "apollo", apollo_url)
        yield Tekton(component_url, rhetor, rhetor_url)


@contextmanager
def in_background(coro: Coroutine[Any, Any, Any]) -> Iterator[None]:
    """Run a snippet's never-ending `asyncio.run(...)` on its own loop in a thread; cancel it after."""
    loop = asyncio.new_event_loop()

    async def guarded() -> None:
        try:
            await coro
        finally:
            await close_pools()

    task = loop.create_task(guarded())

    def run() -> None:
        with suppress(asyncio.CancelledError):
            loop.run_until_complete(task)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        loop.call_soon_threadsafe(task.cancel)
        thread.join(15)
        loop.close()


class Output:
    """Everything printed so far (capsys hands out each chunk once)."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys
        self.text = ""

    def __contains__(self, wanted: str) -> bool:
        self.text += self.capsys.readouterr().out
        return wanted in self.text


def test_pattern_1_request_response(tekton: Tekton) -> None:
    # Usage
    integration = SyncIntegration("rhetor")
    result = integration.request("generate", {"prompt": "Explain quantum computing", "max_tokens": 500})
    assert result == ANSWER
    assert tekton.rhetor.received[-1].body == {"prompt": "Explain quantum computing", "max_tokens": 500}


def test_pattern_2_events(tekton: Tekton, capsys: pytest.CaptureFixture[str]) -> None:
    # Usage
    events = EventIntegration("harmonia")

    @events.on_event("workflow.completed")
    async def handle_completion(data: dict[str, Any]) -> None:
        print(f"Workflow {data['workflow_id']} completed")

    output = Output(capsys)
    with in_background(events.connect()):  # the guide: asyncio.run(events.connect())
        eventually(lambda: events.connections == 1, what="subscribed")
        body = {"type": "workflow.completed", "data": {"workflow_id": "wf-123"}}
        assert httpx.post(f"{tekton.component_url}/api/v1/events", json=body).status_code == 202
        eventually(lambda: "Workflow wf-123 completed" in output)


def test_pattern_3_streaming(tekton: Tekton, capsys: pytest.CaptureFixture[str]) -> None:
    # Usage
    stream = StreamIntegration("apollo")

    async def monitor_metrics() -> None:
        async for metric in stream.stream(
            "metrics/stream", {"components": ["rhetor", "engram"], "metrics": ["latency", "throughput"]}
        ):
            print(f"Metric update: {metric}")

    output = Output(capsys)
    with in_background(monitor_metrics()):  # the guide: asyncio.run(monitor_metrics())
        eventually(lambda: "Metric update: {'component': 'rhetor'" in output)


@pytest.mark.long
def test_pattern_4_batch(tekton: Tekton, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=f"{COMPONENT_NAME}.client")
    # Usage
    batch = BatchIntegration("metis")

    async def main() -> None:
        # Start processor
        processor = asyncio.create_task(batch.run())

        # Add items
        for i in range(250):
            await batch.add_item({"task": f"Task {i}", "priority": "medium"})

        # Wait for processing
        await asyncio.sleep(5)
        processor.cancel()  # not in the guide: ends the loop it left running

    asyncio.run(main())
    assert (batch.processed_count, batch.failed_count) == (250, 0)
    # The guide's run() prints "Processed N items" per batch; ours logs it.
    reported = [int(m.group(1)) for r in caplog.records if (m := re.match(r"Processed (\d+) items", r.getMessage()))]
    assert len(reported) >= 3 and sum(reported) == 250  # batches of at most 100


def test_pattern_4_batch_reports_each_batch_to_a_callback(tekton: Tekton) -> None:
    reports: list[tuple[int, int]] = []
    batch = BatchIntegration("metis", batch_size=10, on_batch=lambda ok, failed: reports.append((ok, failed)))

    async def main() -> None:
        async with batch:
            for i in range(25):
                await batch.add_item({"task": f"Task {i}"})

    asyncio.run(main())
    assert sum(ok for ok, _ in reports) == 25 and all(failed == 0 for _, failed in reports)


def test_pattern_3_a_component_streams_its_own_figures_and_names_the_ones_it_does_not_serve(
    tekton: Tekton,
) -> None:
    stream = StreamIntegration("metis")  # the baked component, not an Apollo stand-in

    async def first_two() -> list[dict[str, Any]]:
        updates: list[dict[str, Any]] = []
        params = {"components": ["rhetor", "engram"], "metrics": ["latency", "throughput"]}
        async with asyncio.timeout(20), aclosing(stream.stream("metrics/stream", params)) as metrics:
            async for metric in metrics:
                updates.append(metric)
                if len(updates) == 2:
                    break
        await close_pools()
        return updates

    notice, reading = asyncio.run(first_two())
    assert notice["not_served"] == ["rhetor", "engram"]
    assert "rhetor, engram" in notice["message"]
    assert reading["component"] == COMPONENT_NAME
    assert {"latency", "throughput"} <= set(reading)


def test_pattern_5_resilient_integration(tekton: Tekton) -> None:
    integration = ResilientIntegration("rhetor")
    assert asyncio.run(integration.request("generate", {"prompt": "hi"})) == ANSWER


def test_pattern_8_health_monitoring(tekton: Tekton) -> None:
    # Usage
    monitor = HealthMonitor(["hermes", "engram", "rhetor", "athena", "apollo"])

    with in_background(monitor.monitor_all()):  # the guide: asyncio.run(monitor.monitor_all())
        eventually(lambda: len(monitor.health_status) == 5)
    statuses = {name: result["status"] for name, result in monitor.health_status.items()}
    assert statuses == {
        "hermes": "healthy",
        "engram": "unreachable",
        "rhetor": "healthy",
        "athena": "unreachable",
        "apollo": "healthy",
    }


def test_core_3_component_client_by_host_and_port_alone(tekton: Tekton) -> None:
    port = httpx.URL(tekton.rhetor_url).port

    async def main() -> Any:
        client = ComponentClient(host="localhost", port=port)  # the guide names no component
        return await client.call_api("generate", "POST", {"prompt": "hi"})

    assert asyncio.run(main()) == ANSWER
    assert tekton.rhetor.received[-1].path == "/api/v1/generate"


def test_pattern_10_request_awaited_inside_a_loop_and_called_plainly_outside(tekton: Tekton) -> None:
    integration = SyncIntegration("rhetor")

    async def main() -> Any:
        return await integration.request("generate", {"prompt": "awaited"})

    assert asyncio.run(main()) == ANSWER
    assert integration.request("generate", {"prompt": "plain"}) == ANSWER
    assert [r.body["prompt"] for r in tekton.rhetor.received[-2:]] == ["awaited", "plain"]


def test_a_snippets_asyncio_run_leaves_no_open_connections_behind(tekton: Tekton) -> None:
    async def main() -> httpx.AsyncClient:
        await ComponentClient("rhetor").call_api("generate", "POST", {"prompt": "hi"})
        return async_client()

    pool = asyncio.run(main())  # no close_pools(): the guide never calls it
    assert pool.is_closed  # closed with its loop, not left to the garbage collector


def test_a_failed_call_logs_peer_route_status_and_reason(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=f"{COMPONENT_NAME}.client")
    with flaky_peer(Step(500, {"message": "disk full"})) as (_peer, url):
        config = IntegrationConfig(timeout=2.0, retry_count=0)
        answer = SyncIntegration("scribe", base_url=url, config=config).request("save", {"x": 1})
    assert answer["status"] == 500
    (line,) = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    assert "scribe" in line and "POST /api/v1/save" in line and "500" in line and "disk full" in line


def test_standardized_component_client(tekton: Tekton) -> None:
    async def main() -> Any:
        client = ComponentClient("rhetor")
        return await client.call_api("generate", "POST", {"prompt": "hi"})

    assert asyncio.run(main()) == ANSWER


def test_best_practice_1_error_handling(tekton: Tekton) -> None:
    async def main() -> tuple[Any, Any]:
        robust = RobustIntegration()
        return (
            await robust.safe_request("rhetor", "generate", {"prompt": "hi"}),
            await robust.safe_request("nobody_knows_me", "generate", {"prompt": "hi"}),
        )

    found, unknown = asyncio.run(main())
    assert found == ANSWER
    assert unknown["error"] == "unavailable"
    assert "NOBODY_KNOWS_ME_PORT" in unknown["message"]  # names the fix


def test_best_practice_3_observability(tekton: Tekton) -> None:
    integration = ObservableIntegration(COMPONENT_NAME, "rhetor")
    assert asyncio.run(integration.request("generate", {"prompt": "hi"})) == ANSWER


def test_best_practice_4_versioning(tekton: Tekton) -> None:
    integration = VersionedIntegration("rhetor", version="v1")
    assert asyncio.run(integration.request("generate", {"prompt": "hi"})) == ANSWER
    last = tekton.rhetor.received[-1]
    assert (last.path, last.headers["x-api-version"]) == ("/api/v1/generate", "v1")
