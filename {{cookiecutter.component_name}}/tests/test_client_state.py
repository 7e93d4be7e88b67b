"""Pattern 6: shared state. Memory in one process, Redis across processes, Engram through Hermes."""

from __future__ import annotations

import asyncio
{%- if cookiecutter.event_bus == "redis" %}
import os
import subprocess
import sys
import textwrap
{%- endif %}
import uuid
from collections.abc import Iterator
{%- if cookiecutter.event_bus == "redis" %}
from pathlib import Path
{%- endif %}
from typing import Any

import pytest

from {{ cookiecutter.component_name }}.client import (
    AtomicUpdateUnsupportedError,
    EngramClient,
    PeerHTTPError,
    SharedStateIntegration,
    close_pools,
)
from {{ cookiecutter.component_name }}.client._state import BACKEND_ENV

from .support.engram import LocalEngram, local_engram
from .support.hermes import LocalHermes
from .support.tekton import register_peer


def namespace() -> str:
    return f"ns-{uuid.uuid4().hex[:8]}"


async def increment(state: dict[str, Any]) -> dict[str, Any]:
    value = state.get("count", 0)
    await asyncio.sleep(0)  # let the other writers read the same value: a lost update would show
    return {**state, "count": value + 1}


async def fifty_increments(shared: SharedStateIntegration, key: str, writers: int = 50) -> None:
    await asyncio.gather(*(shared.sync_state(key, increment) for _ in range(writers)))


def test_the_guides_usage_on_memory() -> None:
    async def main() -> dict[str, Any] | None:
        state = SharedStateIntegration("workflow_engine", backend="memory")
        await state.save_state("current_workflow", {"id": "wf-123", "status": "running", "progress": 0.5})
        await state.sync_state("current_workflow", lambda s: {**s, "progress": 0.75})
        return await state.load_state("current_workflow")

    assert asyncio.run(main()) == {"id": "wf-123", "status": "running", "progress": 0.75}


async def test_fifty_concurrent_increments_all_count_on_memory() -> None:
    shared = SharedStateIntegration(namespace(), backend="memory")
    await fifty_increments(shared, "counter")
    assert await shared.load_state("counter") == {"count": 50}


async def test_the_backend_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BACKEND_ENV, "memory")
    assert SharedStateIntegration("x").backend.name == "memory"
    monkeypatch.setenv(BACKEND_ENV, "etcd")
    with pytest.raises(ValueError, match=f"{BACKEND_ENV}='etcd' is not a state backend"):
        SharedStateIntegration("x")


async def test_state_that_is_not_json_is_refused_and_nothing_is_stored() -> None:
    shared = SharedStateIntegration(namespace(), backend="memory")
    with pytest.raises(TypeError, match="not JSON-serializable"):
        await shared.save_state("k", {"when": object()})
    with pytest.raises(TypeError, match="must be a dict"):
        await shared.sync_state("k", lambda s: [1, 2])  # type: ignore[arg-type,return-value]
    assert await shared.load_state("k") is None
{%- if cookiecutter.event_bus == "redis" %}


CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from {{ cookiecutter.component_name }}.client import SharedStateIntegration

    async def increment(state):
        value = state.get("count", 0)
        await asyncio.sleep(0)
        return {**state, "count": value + 1}

    async def main():
        shared = SharedStateIntegration(sys.argv[1], backend="redis")
        print("ready", flush=True)
        sys.stdin.readline()  # start together with the test process
        await asyncio.gather(*(shared.sync_state("counter", increment) for _ in range(25)))

    asyncio.run(main())
    """
)


def test_fifty_increments_from_two_processes_end_at_fifty_on_redis(redis_url: str) -> None:
    ns = namespace()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    shared = SharedStateIntegration(ns, backend="redis", redis_url=redis_url)
    command = [sys.executable, "-c", CHILD, ns]
    with subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env) as child:
        stdin, stdout = child.stdin, child.stdout
        assert stdin is not None and stdout is not None
        try:
            assert stdout.readline().strip() == "ready"

            async def ours() -> None:
                stdin.write("go\n")
                stdin.flush()
                await fifty_increments(shared, "counter", writers=25)

            asyncio.run(ours())
            assert child.wait(60) == 0
        finally:
            child.kill()
    assert asyncio.run(shared.load_state("counter")) == {"count": 50}


async def test_a_save_bumps_the_version_so_a_racing_sync_retries(redis_url: str) -> None:
    shared = SharedStateIntegration(namespace(), backend="redis", redis_url=redis_url)
    await shared.save_state("k", {"count": 1})
    saved = False

    async def update(state: dict[str, Any]) -> dict[str, Any]:
        nonlocal saved
        if not saved:  # another writer saves between our read and our write
            saved = True
            await shared.save_state("k", {"count": 10})
        return {"count": state["count"] + 1}

    assert await shared.sync_state("k", update) == {"count": 11}
    assert await shared.load_state("k") == {"count": 11}
{%- endif %}


@pytest.fixture
def engram(local_hermes: LocalHermes, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalEngram]:
    """A local Engram, found through the local Hermes like any peer."""
    monkeypatch.setenv("HERMES_URL", local_hermes.url)
    with local_engram() as engram:
        register_peer(local_hermes.url, "engram", engram.url)
        yield engram


def test_engram_stores_versions_and_loads_the_highest_of_the_exact_key(engram: LocalEngram) -> None:
    async def main() -> tuple[Any, Any]:
        state = SharedStateIntegration("workflow_engine", backend="engram")
        await state.save_state("current", {"progress": 0.5})
        await state.save_state("current_workflow", {"progress": 0.1})  # found by the fuzzy search too
        await state.save_state("current", {"progress": 0.75})
        loaded = (await state.load_state("current"), await state.load_state("current_workflow"))
        await close_pools()
        return loaded

    current, other = asyncio.run(main())
    assert current == {"progress": 0.75}
    assert other == {"progress": 0.1}
    contents = sorted(m["content"] for m in engram.memories.values())
    assert '{"key":"current","version":2,"state":{"progress":0.75}}' in contents  # Engram keeps strings


def test_engram_sync_state_refuses_unless_last_writer_wins_is_accepted(engram: LocalEngram) -> None:
    async def main() -> dict[str, Any]:
        strict = SharedStateIntegration("ns", backend="engram")
        with pytest.raises(AtomicUpdateUnsupportedError, match="last_writer_wins=True"):
            await strict.sync_state("k", lambda s: {"n": 1})
        relaxed = SharedStateIntegration("ns", backend="engram", last_writer_wins=True)
        await relaxed.sync_state("k", lambda s: {"n": s.get("n", 0) + 1})
        result = await relaxed.sync_state("k", lambda s: {"n": s.get("n", 0) + 1})
        await close_pools()
        return result

    assert asyncio.run(main()) == {"n": 2}


def test_todays_engram_500_is_a_typed_error_naming_engram_route_status_and_message(engram: LocalEngram) -> None:
    engram.broken = True

    async def main() -> None:
        try:
            await SharedStateIntegration("ns", backend="engram").save_state("k", {"n": 1})
        finally:
            await close_pools()

    with pytest.raises(PeerHTTPError) as caught:
        asyncio.run(main())
    error = caught.value
    assert (error.component, error.status) == ("engram", 500)
    assert "/api/v1/search" in str(error)  # a save reads the latest version first
    assert "'StorageService' object has no attribute" in str(error)


def test_engram_client_speaks_the_real_contract(engram: LocalEngram) -> None:
    async def main() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        client = EngramClient()
        stored = await client.store({"namespace": "notes", "key": "k", "type": "state", "content": {"a": 1}})
        found = await client.search({"namespace": "notes", "key": "a"})
        await close_pools()
        return stored, found

    stored, found = asyncio.run(main())
    assert stored["status"] == "success"
    assert found[0]["content"] == '{"a":1}'
    assert found[0]["metadata"] == {"key": "k", "type": "state"}
