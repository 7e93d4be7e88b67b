"""BatchIntegration and the component's own typed client, against real servers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from {{ cookiecutter.component_name }} import client as client_package
from {{ cookiecutter.component_name }}.about import COMPONENT_NAME
from {{ cookiecutter.component_name }}.client import (
    BatchClosedError,
    BatchIntegration,
    IntegrationConfig,
    PeerHTTPError,
)

from .support.servers import refused_port, running_server

FAST = IntegrationConfig(timeout=5.0, retry_count=0, batch_linger=0.02)


class BatchPeer:
    """Processes every item after `delay`; records what it got and how many batches overlapped."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.items: list[dict[str, Any]] = []
        self.in_flight = self.max_in_flight = 0
        self.app = Starlette(routes=[Route("/api/v1/batch", self.batch, methods=["POST"])])

    async def batch(self, request: Request) -> JSONResponse:
        items = (await request.json())["items"]
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        await asyncio.sleep(self.delay)
        self.in_flight -= 1
        self.items.extend(items)
        return JSONResponse({"processed": [{"index": i, "result": item} for i, item in enumerate(items)], "failed": []})


@pytest.fixture
def batch_peer() -> Iterator[tuple[BatchPeer, str]]:
    peer = BatchPeer(delay=0.05)
    with running_server(peer.app) as url:
        yield peer, url


async def test_the_guides_250_items_all_get_a_result_with_failures_per_item(base_url: str) -> None:
    async with BatchIntegration(COMPONENT_NAME, base_url=base_url, config=FAST) as batch:
        items = [{} if i % 10 == 0 else {"task": f"Task {i}", "priority": "medium"} for i in range(250)]
        futures = [await batch.add_item(item) for item in items]
        results = await asyncio.gather(*futures)
    assert [result.item for result in results] == items
    failed = [result for result in results if not result.ok]
    assert len(failed) == 25
    assert {result.error["code"] for result in failed if result.error} == {"empty_input"}
    assert all(result.result["echo"] == result.item for result in results if result.ok)
    assert (batch.processed_count, batch.failed_count) == (225, 25)


async def test_a_partial_batch_leaves_after_the_linger_without_waiting_for_more(
    batch_peer: tuple[BatchPeer, str],
) -> None:
    _peer, url = batch_peer
    async with BatchIntegration("batcher", base_url=url, config=FAST, batch_size=100) as batch:
        futures = [await batch.add_item({"n": n}) for n in range(3)]
        async with asyncio.timeout(10):
            results = await asyncio.gather(*futures)
        assert [result.result for result in results] == [{"n": 0}, {"n": 1}, {"n": 2}]


async def test_close_sends_everything_still_queued(batch_peer: tuple[BatchPeer, str]) -> None:
    peer, url = batch_peer
    batch = BatchIntegration("batcher", base_url=url, config=FAST, batch_size=10, concurrency=1)
    runner = asyncio.create_task(batch.run())
    futures = [await batch.add_item({"n": n}) for n in range(100)]
    await batch.close()
    await runner
    assert all(future.done() and future.result().ok for future in futures)
    assert sorted(item["n"] for item in peer.items) == list(range(100))  # each exactly once
    with pytest.raises(BatchClosedError):
        await batch.add_item({"n": 100})


async def test_close_without_a_running_loop_still_drains(batch_peer: tuple[BatchPeer, str]) -> None:
    peer, url = batch_peer
    batch = BatchIntegration("batcher", base_url=url, config=FAST, batch_size=7)
    futures = [await batch.add_item({"n": n}) for n in range(20)]
    await batch.close()
    assert all(future.result().ok for future in futures)
    assert len(peer.items) == 20


async def test_close_with_a_full_queue_and_no_running_loop_drains_instead_of_blocking(
    batch_peer: tuple[BatchPeer, str],
) -> None:
    peer, url = batch_peer
    batch = BatchIntegration("batcher", base_url=url, config=FAST, queue_size=2)
    futures = [await batch.add_item({"n": n}) for n in range(2)]
    async with asyncio.timeout(10):
        await batch.close()
    assert all(future.result().ok for future in futures)
    assert sorted(item["n"] for item in peer.items) == [0, 1]


async def test_a_full_queue_makes_add_item_wait(batch_peer: tuple[BatchPeer, str]) -> None:
    peer, url = batch_peer
    batch = BatchIntegration("batcher", base_url=url, config=FAST, queue_size=5)
    for n in range(5):
        await batch.add_item({"n": n})
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await batch.add_item({"n": 5})
    runner = asyncio.create_task(batch.run())
    last = await batch.add_item({"n": 6})  # room again once the loop takes items
    await batch.close()
    await runner
    assert last.result().ok
    assert len(peer.items) == 6


async def test_no_more_than_concurrency_batches_are_in_flight() -> None:
    peer = BatchPeer(delay=0.1)
    with running_server(peer.app) as url:
        async with BatchIntegration("batcher", base_url=url, config=FAST, batch_size=5, concurrency=2) as batch:
            futures = [await batch.add_item({"n": n}) for n in range(50)]
            await asyncio.gather(*futures)
    assert peer.max_in_flight <= 2
    assert len(peer.items) == 50


async def test_a_failed_request_fails_each_of_its_items_with_the_reason() -> None:
    down = f"http://127.0.0.1:{refused_port()}"
    async with BatchIntegration("batcher", base_url=down, config=FAST) as batch:
        futures = [await batch.add_item({"n": n}) for n in range(3)]
        results = await asyncio.gather(*futures)
    assert [(result.ok, result.error and result.error["code"]) for result in results] == [(False, "unavailable")] * 3


async def test_own_client_processes_one_input_and_a_batch(base_url: str) -> None:
    own = client_package.{{ cookiecutter.component_name.replace('_', ' ').title().replace(' ', '') }}Client(base_url=base_url)
    result = await own.process({"text": "hello"})
    assert result["echo"] == {"text": "hello"}
    report = await own.batch([{"a": 1}, {}])
    assert [item["index"] for item in report["processed"]] == [0]
    assert report["failed"][0]["index"] == 1
    assert report["failed"][0]["error"]["code"] == "empty_input"


async def test_own_client_raises_the_peers_error_with_its_body(base_url: str) -> None:
    own = client_package.{{ cookiecutter.component_name.replace('_', ' ').title().replace(' ', '') }}Client(base_url=base_url)
    with pytest.raises(PeerHTTPError) as error:
        await own.process("")
    assert error.value.status == 422
    assert "input is empty" in error.value.body["message"]
