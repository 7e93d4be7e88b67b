"""Two components holding the same keys call each other through every pattern, with auth on.

The caller is the package's own client (as a component uses it) with
`TEKTON_AUTH_KEYS` in its environment; both servers verify every call, sign
every answer, and count no refusal. A caller with another key is refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from {{ cookiecutter.component_name }}.app import create_app
from {{ cookiecutter.component_name }}.client import (
    BatchIntegration,
    ComponentClient,
    EventIntegration,
    HealthMonitor,
    IntegrationConfig,
    LocalWorkflowEngine,
    PeerHTTPError,
    ResponseSignatureError,
    SecureIntegration,
    SharedStateIntegration,
    StreamIntegration,
    SyncIntegration,
    WorkflowIntegration,
    close_pools,
)
from {{ cookiecutter.component_name }}.client import {{ cookiecutter.component_name.replace('_', ' ').title().replace(' ', '') }}Client as OwnClient

from .conftest import SettingsFactory
from .support.auth import Key, keys_value
from .support.engram import local_engram
from .support.hermes import LocalHermes
from .support.servers import running_server
from .support.tekton import register_peer

NAME = "{{ cookiecutter.component_name }}"
KEY = Key("shared")
FAST = IntegrationConfig(timeout=10.0, retry_count=0, deadline=15.0)


@pytest.fixture
def pair(make_settings: SettingsFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Two components with the same keys; this process (the caller) holds them too."""
    monkeypatch.setenv("TEKTON_AUTH_KEYS", keys_value(KEY))
    apps = [create_app(make_settings()) for _ in range(2)]
    with running_server(apps[0]) as first, running_server(apps[1]) as second:
        yield [first, second]


@pytest.fixture(autouse=True)
async def fresh_pools() -> AsyncIterator[None]:
    yield
    await close_pools()


async def refusals(url: str) -> float:
    async with httpx.AsyncClient() as plain:
        metrics = (await plain.get(f"{url}/metrics")).text
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines() if line.startswith("auth_failures_total{")
    )


async def test_request_response_patterns_are_signed_and_verified(pair: list[str]) -> None:
    for url in pair:
        before = await refusals(url)  # (the counter is per process: both servers share it here)
        async with httpx.AsyncClient(base_url=url) as plain:
            assert (await plain.get("/health")).json()["auth"] == "enabled"
            assert (await plain.post("/api/v1/process", json={"input": 1})).status_code == 401  # unsigned: refused
        client = ComponentClient(NAME, base_url=url, config=FAST)
        assert (await client.call_api("process", "POST", {"input": "async"}))["result"]["echo"] == "async"
        answer = await asyncio.to_thread(client.request_sync, "POST", "/api/v1/process", json={"input": "sync"})
        assert answer.json()["result"]["echo"] == "sync"
        own = OwnClient(base_url=url, config=FAST)
        assert (await own.process({"typed": True}))["echo"] == {"typed": True}
        report = await own.batch([{"a": 1}, {}])
        assert len(report["processed"]) == 1 and len(report["failed"]) == 1
        assert (await own.health())["auth"] == "enabled"
        sync = SyncIntegration(NAME, base_url=url)
        assert (await asyncio.to_thread(sync.request, "process", {"input": "guide"}))["result"]["echo"] == "guide"
        secure = SecureIntegration(NAME, KEY.secret, base_url=url)
        assert (await secure.secure_request("process", {"input": "pattern 9"}))["result"]["echo"] == "pattern 9"
        assert await refusals(url) == before + 1  # only the unsigned call above


async def test_batch_stream_health_and_events_work_with_auth_on(pair: list[str]) -> None:
    first, second = pair
    before = await refusals(first)
    async with BatchIntegration(NAME, base_url=first, config=FAST, batch_size=5) as batch:
        futures = [await batch.add_item({"n": n}) for n in range(12)]
        results = await asyncio.gather(*futures)
    assert all(result.ok for result in results)

    stream = StreamIntegration(NAME, base_url=second, config=FAST)
    figures = stream.stream("metrics/stream", {"metrics": ["throughput"]})
    assert await asyncio.wait_for(anext(figures), 15) is not None
    await figures.aclose()

    monitor = HealthMonitor([NAME], addresses={NAME: first}, config=FAST)
    assert [result["status"] for result in await monitor.check_all()] == ["healthy"]

    # /ws (EventIntegration) on the first, /events (StreamIntegration.events) on the second:
    # each connection gets a fresh token; the events are published through signed calls.
    got_ws: asyncio.Queue[Any] = asyncio.Queue()
    events = EventIntegration(NAME, base_url=first)
    events.on_event("auth.*")(got_ws.put_nowait)
    listener = asyncio.create_task(events.connect())
    sse = StreamIntegration(NAME, base_url=second, config=FAST).events(["auth.sse"])  # (Redis: both share events)
    sse_first = asyncio.create_task(anext(sse))
    try:
        await asyncio.wait_for(events.wait_until_subscribed(), 15)
        publisher_one = ComponentClient(NAME, base_url=first, config=FAST)
        publisher_two = ComponentClient(NAME, base_url=second, config=FAST)
        await publisher_one.call_api("events", "POST", {"type": "auth.ws", "data": {"n": 1}})
        assert await asyncio.wait_for(got_ws.get(), 15) == {"n": 1}
        for _ in range(50):  # the SSE subscription is live once an event published now arrives
            await publisher_two.call_api("events", "POST", {"type": "auth.sse", "data": {"n": 2}})
            done, _ = await asyncio.wait({sse_first}, timeout=0.2)
            if done:
                break
        assert (await sse_first)["type"] == "auth.sse"
    finally:
        await events.close()
        listener.cancel()
        await sse.aclose()
    assert await refusals(first) == before  # not one call refused


async def test_workflows_work_with_auth_on(pair: list[str]) -> None:
    before = await refusals(pair[0])
    # Pattern 7 on the local engine: each task calls a component's action, signed like any call.
    definition = {
        "name": "signed_steps",
        "tasks": [
            {"id": "first", "component": NAME, "action": "process", "input": {"data": {"step": 1}}},
            {"id": "second", "component": NAME, "action": "process", "input": {"data": 2}, "depends_on": ["first"]},
        ],
    }
    engine = LocalWorkflowEngine(config=FAST, addresses={NAME: pair[0]})
    result = await WorkflowIntegration(engine).run(definition)
    assert result["state"] == "completed", result
    assert await refusals(pair[0]) == before


def test_shared_state_on_engram_works_with_keys_set(local_hermes: LocalHermes, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pattern 6 on Engram, which cannot verify (as stock Engram): it gets the headers and ignores them."""
    monkeypatch.setenv("TEKTON_AUTH_KEYS", keys_value(KEY))
    monkeypatch.setenv("HERMES_URL", local_hermes.url)

    async def main() -> Any:
        state = SharedStateIntegration("auth_test", backend="engram")
        await state.save_state("k", {"v": 1})
        loaded = await state.load_state("k")
        await close_pools()
        return loaded

    with local_engram() as engram:
        register_peer(local_hermes.url, "engram", engram.url)
        assert asyncio.run(main()) == {"v": 1}


async def test_a_caller_with_another_key_is_refused(pair: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEKTON_AUTH_KEYS", keys_value(Key("intruder")))
    with pytest.raises(PeerHTTPError) as refused:
        await ComponentClient(NAME, base_url=pair[0], config=FAST).call_api("process", "POST", {"input": 1})
    assert refused.value.status == 401 and refused.value.body["reason"] == "unknown_key"
    with pytest.raises(PeerHTTPError):
        await SecureIntegration(NAME, Key("other").secret, base_url=pair[1]).secure_request("process", {"input": 1})


@pytest.fixture
def forger(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A peer that says it verifies, but answers unsigned or with a wrong signature."""
    monkeypatch.setenv("TEKTON_AUTH_KEYS", keys_value(KEY))
    app = FastAPI()

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"component": NAME, "auth": "enabled"}

    @app.post("/api/v1/{name}")
    async def answer(name: str, request: Request) -> Response:
        headers = {"X-Tekton-Timestamp": "1", "X-Signature": "v1=" + "0" * 64} if name == "forged" else {}
        return Response('{"echo": "trust me"}', media_type="application/json", headers=headers)

    with running_server(app) as url:
        yield url


async def test_an_unsigned_or_forged_answer_raises_a_typed_error(forger: str) -> None:
    for endpoint in ("unsigned", "forged"):
        with pytest.raises(ResponseSignatureError):
            await ComponentClient(NAME, base_url=forger, config=FAST).call_api(endpoint, "POST", {})
        with pytest.raises(ValueError):  # the guide's SecureIntegration raised ValueError
            await SecureIntegration(NAME, KEY.secret, base_url=forger).secure_request(endpoint, {})
