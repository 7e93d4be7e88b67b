"""Finding peers through Hermes: the guide's call shapes, the cache, the fallbacks."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from {{ cookiecutter.component_name }}.hermes import DiscoveryError, HermesClient, ServiceInstance

from .support.hermes import FaultMode, LocalHermes
from .support.servers import refused_port

PREFIX = "{{ cookiecutter.component_name | upper }}_"

RHETOR = {
    "component": "rhetor",
    "version": "1.0.0",
    "description": "LLM management",
    "host": "127.0.0.1",
    "port": 8003,
    "health_check": "/health",
    "capabilities": ["generate", "chat"],
    "dependencies": ["hermes"],
    "endpoints": [{"path": "/api/v1/generate", "methods": ["POST"], "description": "Generate text"}],
}


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    """No `.env` and no stray address variables: each test sets what it needs."""
    monkeypatch.chdir(str(tmp_path))
    for name in ("HERMES_URL", "HERMES_HOST", "HERMES_PORT", "TEKTON_HOST", "RHETOR_HOST", "RHETOR_PORT"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def hermes_client(local_hermes: LocalHermes) -> AsyncIterator[HermesClient]:
    # Closed in the test's event loop: its async connections must not outlive the loop.
    async with HermesClient(local_hermes.url) as client:
        yield client


def register(hermes: LocalHermes, name: str, endpoint: str, component_id: str | None = None, **extra: object) -> None:
    """Register the way a Tekton component does, straight over HTTP, and heartbeat at once:
    Hermes lists a registration without a heartbeat as unhealthy."""
    body = {"component_id": component_id or name, "name": name, "version": "1", "type": "x", "endpoint": endpoint}
    answer = httpx.post(f"{hermes.url}/api/register", json={**body, **extra}, timeout=5).raise_for_status().json()
    beat = {"component_id": answer["componentId"], "status": {"status": "healthy"}}
    headers = {"X-Authentication-Token": answer["token"]}
    httpx.post(f"{hermes.url}/api/heartbeat", json=beat, headers=headers, timeout=5).raise_for_status()


def down_url() -> str:
    return f"http://127.0.0.1:{refused_port()}"


# -- the guide's call shapes ---------------------------------------------------------


async def test_register_component_accepts_the_guides_registration_dict(
    hermes_client: HermesClient, local_hermes: LocalHermes
) -> None:
    answer = await hermes_client.register_component(RHETOR)
    assert (answer["success"], answer["component_id"]) == (True, "rhetor")
    assert answer["token"]
    record = local_hermes.components()[0]
    assert (record["name"], record["endpoint"]) == ("rhetor", "http://127.0.0.1:8003")
    assert record["capabilities"] == ["generate", "chat"]
    assert record["metadata"]["description"] == "LLM management"
    assert record["metadata"]["endpoints"] == RHETOR["endpoints"]


def test_discover_component_returns_host_and_port(hermes_client: HermesClient, local_hermes: LocalHermes) -> None:
    register(local_hermes, "rhetor", "http://10.0.0.7:8003/", capabilities=["generate"])
    info = hermes_client.discover_component("rhetor")
    assert (info["host"], info["port"], info["base_url"]) == ("10.0.0.7", 8003, "http://10.0.0.7:8003")
    assert (info["health_check"], info["capabilities"]) == ("/health", ["generate"])


async def test_discover_component_works_inside_a_running_event_loop(
    hermes_client: HermesClient, local_hermes: LocalHermes
) -> None:
    # The guide calls it from constructors that run inside coroutines.
    register(local_hermes, "apollo", "http://127.0.0.1:8012")
    assert hermes_client.discover_component("apollo")["port"] == 8012
    assert (await hermes_client.adiscover_component("apollo"))["port"] == 8012


def test_list_components_filters_by_capability(hermes_client: HermesClient, local_hermes: LocalHermes) -> None:
    register(local_hermes, "rhetor", "http://127.0.0.1:8003", capabilities=["generate"])
    register(local_hermes, "engram", "http://127.0.0.1:8000", capabilities=["memory"])
    assert {c["name"] for c in hermes_client.list_components()} == {"rhetor", "engram"}
    assert [c["name"] for c in hermes_client.list_components("memory")] == ["engram"]


async def test_listings_are_answered_from_the_cache_within_its_ttl(
    hermes_client: HermesClient, local_hermes: LocalHermes
) -> None:
    register(local_hermes, "engram", "http://127.0.0.1:8000", capabilities=["memory"])
    first = hermes_client.list_components("memory")
    asked = local_hermes.registry.count("/api/components", 200)
    assert hermes_client.list_components("memory") == first
    assert await hermes_client.alist_components("memory") == first
    assert local_hermes.registry.count("/api/components", 200) == asked  # no network round trip


async def test_alist_components_is_the_async_twin(hermes_client: HermesClient, local_hermes: LocalHermes) -> None:
    register(local_hermes, "engram", "http://127.0.0.1:8000", capabilities=["memory"])
    assert [c["port"] for c in await hermes_client.alist_components("memory")] == [8000]


def test_client_reads_hermes_address_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.chdir(str(tmp_path))
    monkeypatch.setenv("HERMES_URL", "http://hermes.example:8101/api/")
    assert HermesClient().base_url == "http://hermes.example:8101"  # with or without `/api`
    assert HermesClient(host="h", port=9001).base_url == "http://h:9001"  # the guide's constructor


def test_constructor_does_no_network_io() -> None:
    client = HermesClient(down_url())  # nothing listens there: still fine
    assert client.cache_ttl == 30.0


# -- resolve: cache, fallbacks, round robin ---------------------------------------------------


async def test_answers_come_from_the_cache_within_the_ttl(
    hermes_client: HermesClient, local_hermes: LocalHermes
) -> None:
    register(local_hermes, "rhetor", "http://127.0.0.1:8003")
    await hermes_client.resolve("rhetor")
    calls = local_hermes.registry.count("/api/components")
    for _ in range(5):
        assert (await hermes_client.resolve("rhetor")).port == 8003
        assert hermes_client.resolve_sync("rhetor").port == 8003
    assert local_hermes.registry.count("/api/components") == calls


def test_an_expired_cache_entry_asks_hermes_again(local_hermes: LocalHermes) -> None:
    register(local_hermes, "rhetor", "http://127.0.0.1:8003")
    with HermesClient(local_hermes.url, cache_ttl=0) as client:
        client.resolve_sync("rhetor")
        register(local_hermes, "rhetor", "http://127.0.0.1:9003")  # moved
        assert client.resolve_sync("rhetor").port == 9003


def test_last_known_good_answer_is_used_while_hermes_is_down(local_hermes: LocalHermes) -> None:
    register(local_hermes, "sophia", "http://10.1.1.1:9014")
    with HermesClient(local_hermes.url, cache_ttl=0, timeout=1) as client:
        assert client.resolve_sync("sophia").host == "10.1.1.1"
        local_hermes.stop()
        assert client.resolve_sync("sophia").host == "10.1.1.1"


@pytest.mark.parametrize("mode", ["500", "html", "truncated", "reset"])
async def test_last_known_good_answer_survives_bad_hermes_answers(local_hermes: LocalHermes, mode: FaultMode) -> None:
    register(local_hermes, "sophia", "http://10.1.1.1:9014")
    async with HermesClient(local_hermes.url, cache_ttl=0, timeout=1) as client:
        assert (await client.resolve("sophia")).host == "10.1.1.1"
        local_hermes.fail(mode)
        assert (await client.resolve("sophia")).host == "10.1.1.1"


def test_a_component_hermes_no_longer_lists_is_not_served_from_the_cache(local_hermes: LocalHermes) -> None:
    register(local_hermes, "peerx", "http://127.0.0.1:9123")
    with HermesClient(local_hermes.url, cache_ttl=0) as client:
        client.resolve_sync("peerx")
        local_hermes.restart()
        with pytest.raises(DiscoveryError, match="does not list 'peerx'"):
            client.resolve_sync("peerx")


def test_static_fallback_from_peer_host_and_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PEER_X_HOST", "peer.example")
    monkeypatch.setenv("PEER_X_PORT", "9123")
    with HermesClient(down_url(), timeout=1) as client:
        instance = client.resolve_sync("peer-x")
    assert (instance.host, instance.port, instance.base_url) == ("peer.example", 9123, "http://peer.example:9123")


def test_static_fallback_uses_the_known_tekton_port_and_tekton_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEKTON_HOST", "tekton.example")
    with HermesClient(down_url(), timeout=1) as client:
        info = client.discover_component("rhetor")
    assert (info["host"], info["port"]) == ("tekton.example", 8003)


def test_unknown_component_raises_discovery_error_naming_the_fix() -> None:
    with HermesClient(down_url(), timeout=1) as client, pytest.raises(DiscoveryError) as caught:
        client.resolve_sync("nosuch")
    assert "NOSUCH_PORT" in str(caught.value)
    assert "did not answer" in str(caught.value)


def test_healthy_instances_are_spread_round_robin(hermes_client: HermesClient, local_hermes: LocalHermes) -> None:
    register(local_hermes, "worker", "http://127.0.0.1:9001", component_id="worker-a")
    register(local_hermes, "worker", "http://127.0.0.1:9002", component_id="worker-b")
    ports = [hermes_client.resolve_sync("worker").port for _ in range(4)]
    assert sorted(ports) == [9001, 9001, 9002, 9002]
    assert ports[0] != ports[1] and ports[1] != ports[2]


def test_stale_instances_are_skipped_when_a_healthy_one_exists(
    hermes_client: HermesClient, local_hermes: LocalHermes
) -> None:
    register(local_hermes, "worker", "http://127.0.0.1:9001", component_id="worker-old")
    register(local_hermes, "worker", "http://127.0.0.1:9002", component_id="worker-new")
    local_hermes.registry.components["worker-old"]["last_heartbeat"] -= 120  # outside the 60 s window
    assert {hermes_client.resolve_sync("worker").port for _ in range(4)} == {9002}


def test_a_stale_instance_is_used_when_it_is_the_only_one(
    hermes_client: HermesClient, local_hermes: LocalHermes
) -> None:
    register(local_hermes, "telos", "http://127.0.0.1:8008")
    local_hermes.registry.components["telos"]["last_heartbeat"] -= 120
    assert hermes_client.resolve_sync("telos").port == 8008


@pytest.mark.parametrize(
    "record",
    [
        {"component_id": "a-1", "name": "a", "endpoint": "http://h:9001", "capabilities": ["x"]},
        {"componentId": "a-1", "name": "a", "endpoint": "http://h:9001", "capabilities": ["x"]},
    ],
    ids=["snake_case", "camelCase"],
)
def test_both_key_casings_are_accepted(record: dict[str, object]) -> None:
    instance = ServiceInstance.from_record(record)
    assert (instance.component_id, instance.host, instance.port, instance.capabilities) == ("a-1", "h", 9001, ("x",))


# -- independent of this component's settings --------------------------------------------


def test_a_bad_variable_of_this_component_does_not_break_discovery(
    monkeypatch: pytest.MonkeyPatch, local_hermes: LocalHermes
) -> None:
    monkeypatch.setenv(f"{PREFIX}PORT", "abc")  # would fail the settings; discovery does not read them
    monkeypatch.setenv("HERMES_URL", local_hermes.url)
    register(local_hermes, "rhetor", "http://127.0.0.1:8003")
    with HermesClient() as client:
        assert client.discover_component("rhetor")["port"] == 8003


def test_a_bad_variable_of_this_component_does_not_break_the_static_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"{PREFIX}PORT", "abc")
    monkeypatch.setenv("HERMES_URL", down_url())
    with HermesClient(timeout=1) as client:
        assert client.resolve_sync("rhetor").port == 8003


def test_a_bad_peer_port_is_named_in_the_discovery_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PEER_X_PORT", "abc")
    with HermesClient(down_url(), timeout=1) as client, pytest.raises(DiscoveryError, match="PEER_X_PORT='abc'"):
        client.resolve_sync("peer-x")


def test_importing_hermes_loads_neither_the_settings_nor_the_server_stack() -> None:
    package = "{{ cookiecutter.component_name }}"
    heavy = [f"{package}.settings", f"{package}.hermes.registrar", "pydantic_settings", "fastapi", "starlette"]
    script = f"import sys, {package}.hermes; print([m for m in {heavy!r} if m in sys.modules])"
    project = Path(__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=project, capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"
