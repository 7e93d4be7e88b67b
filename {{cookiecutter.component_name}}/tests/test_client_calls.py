"""Request/response calls: pooling per loop, forwarded headers, versions, error shapes, config, metrics."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY

from {{ cookiecutter.component_name }}.app import create_app
from {{ cookiecutter.component_name }}.client import (
    ComponentClient,
    IntegrationConfig,
    IntegrationConfigError,
    ObservableIntegration,
    Peers,
    PeerTimeoutError,
    PeerUnavailableError,
    ResilientIntegration,
    RobustIntegration,
    SyncIntegration,
    VersionedIntegration,
    close_pools,
)
from {{ cookiecutter.component_name }}.client._config import ENV_NAMES
from {{ cookiecutter.component_name }}.client._pool import LIMITS, _async_clients, async_client, sync_client
from {{ cookiecutter.component_name }}.observability import request_id_var, traceparent_var

from .conftest import SettingsFactory
from .support.auth import Key, keys_value
from .support.peers import Step, flaky_peer
from .support.servers import refused_port, running_server

FAST = IntegrationConfig(timeout=2.0, retry_count=0, retry_delay=0.01)


def name() -> str:
    return f"peer-{uuid.uuid4().hex[:8]}"


def test_one_pool_per_event_loop_and_a_second_asyncio_run_works() -> None:
    with flaky_peer() as (peer, url):
        peer_client = ComponentClient(name(), base_url=url, config=FAST)

        async def two_calls() -> httpx.AsyncClient:
            await peer_client.call_api("a")
            pool = async_client()
            await peer_client.call_api("b")
            assert async_client() is pool
            return pool

        first = asyncio.run(two_calls())
        second = asyncio.run(two_calls())  # a process-wide AsyncClient would fail here
        assert first is not second
        assert len(peer.received) == 4


async def test_close_pools_closes_the_loops_client_and_the_next_call_opens_a_new_one() -> None:
    with flaky_peer() as (_peer, url):
        peer_client = ComponentClient(name(), base_url=url, config=FAST)
        await peer_client.call_api("a")
        pool = async_client()
        await close_pools()
        assert pool.is_closed
        await peer_client.call_api("b")
        assert async_client() is not pool


def test_sync_integration_shares_one_sync_pool() -> None:
    with flaky_peer(Step(200, {"n": 1}), Step(200, {"n": 2})) as (peer, url):
        first = SyncIntegration(name(), base_url=url, config=FAST)
        second = SyncIntegration(name(), base_url=url, config=FAST)
        assert first.request("go", {"x": 1}) == {"n": 1}
        assert second.request("go", {"x": 2}) == {"n": 2}
        assert first.client is second.client is sync_client()
        assert [r.body for r in peer.received] == [{"x": 1}, {"x": 2}]


async def test_calls_forward_the_request_id_and_a_w3c_traceparent() -> None:
    with flaky_peer() as (peer, url):
        request_id = uuid.uuid4().hex
        token = request_id_var.set(request_id)
        try:
            await ComponentClient(name(), base_url=url, config=FAST).call_api("a")
        finally:
            request_id_var.reset(token)
        headers = peer.received[0].headers
        assert headers["x-request-id"] == request_id
        version, trace_id, span_id, flags = headers["traceparent"].split("-")
        assert (version, trace_id, len(span_id), flags) == ("00", request_id, 16, "01")


async def test_an_incoming_trace_is_continued_with_a_new_span() -> None:
    incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    with flaky_peer() as (peer, url):
        token = traceparent_var.set(incoming)
        try:
            await ComponentClient(name(), base_url=url, config=FAST).call_api("a")
        finally:
            traceparent_var.reset(token)
        _, trace_id, span_id, flags = peer.received[0].headers["traceparent"].split("-")
    assert (trace_id, flags) == ("4bf92f3577b34da6a3ce929d0e0e4736", "01")
    assert span_id != "00f067aa0ba902b7"


async def test_a_leading_version_replaces_the_default_instead_of_doubling_it() -> None:
    with flaky_peer() as (peer, url):
        await VersionedIntegration(name(), "v2", base_url=url, config=FAST).request("process", {"x": 1})
        await ComponentClient(name(), base_url=url, config=FAST).call_api("process", "POST", {"x": 1})
        assert peer.paths() == ["/api/v2/process", "/api/v1/process"]
        assert [r.headers["x-api-version"] for r in peer.received] == ["v2", "v1"]


async def test_an_endpoint_naming_its_own_version_keeps_it_in_a_versioned_integration() -> None:
    with flaky_peer() as (peer, url):
        await VersionedIntegration(name(), "v2", base_url=url, config=FAST).request("v3/gen", {"x": 1})
        assert peer.paths() == ["/api/v3/gen"]
        assert peer.received[0].headers["x-api-version"] == "v3"


SETS_A_COOKIE = Step(headers={"Set-Cookie": "session=of-peer-a; Path=/"})


async def test_a_cookie_one_peer_sets_never_reaches_another_through_the_shared_pool() -> None:
    """One pool calls every peer, and cookies ignore ports: peer A's cookie would go to peer B."""
    with flaky_peer(SETS_A_COOKIE) as (first, url_a), flaky_peer() as (other, url_b):
        await ComponentClient(name(), base_url=url_a, config=FAST).call_api("a")
        await ComponentClient(name(), base_url=url_b, config=FAST).call_api("b")
        await ComponentClient(name(), base_url=url_a, config=FAST).call_api("a")
    assert "cookie" not in other.received[0].headers
    assert "cookie" not in first.received[1].headers


def test_the_sync_pool_keeps_no_cookie_either() -> None:
    with flaky_peer(SETS_A_COOKIE) as (_first, url_a), flaky_peer() as (other, url_b):
        ComponentClient(name(), base_url=url_a, config=FAST).request_sync("GET", "/api/v1/a")
        ComponentClient(name(), base_url=url_b, config=FAST).request_sync("GET", "/api/v1/b")
    assert "cookie" not in other.received[0].headers


def test_pools_of_finished_event_loops_are_released() -> None:
    with flaky_peer() as (_peer, url):
        peer_client = ComponentClient(name(), base_url=url, config=FAST)

        async def call() -> None:
            await peer_client.call_api("a")

        for _ in range(3):
            asyncio.run(call())
        # Each asyncio.run closed its loop; only pools of live loops may remain.
        asyncio.run(call())
        assert len(_async_clients) == 1


async def test_safe_request_returns_the_guides_error_dicts() -> None:
    with flaky_peer() as (peer, url):
        peer.default = Step(418, {"message": "short and stout"})
        down = f"http://127.0.0.1:{refused_port()}"
        robust = RobustIntegration(FAST, addresses={"teapot": url, "gone": down})
        http_error = await robust.safe_request("teapot", "brew", {})
        assert http_error["error"] == "http_error"
        assert (http_error["status"], http_error["body"]["message"]) == (418, "short and stout")
        unavailable = await robust.safe_request("gone", "brew", {})
        assert (unavailable["error"], unavailable["component"]) == ("unavailable", "gone")
        peer.default = Step(delay=1.0)
        slow = RobustIntegration(IntegrationConfig(timeout=0.2, retry_count=0), addresses={"slow": url})
        timed_out = await slow.safe_request("slow", "brew", {})
        assert (timed_out["error"], timed_out["component"]) == ("timeout", "slow")


def test_sync_request_returns_an_error_dict_instead_of_raising() -> None:
    result = SyncIntegration(name(), base_url=f"http://127.0.0.1:{refused_port()}", config=FAST).request("x", {})
    assert result["error"] == "unavailable"
    assert "unreachable" in result["message"]


async def test_typed_errors_are_caught_by_the_guides_httpx_handlers() -> None:
    with flaky_peer() as (peer, url):
        peer.default = Step(delay=1.0)
        slow = ComponentClient(name(), base_url=url, config=IntegrationConfig(timeout=0.2, retry_count=0))
        with pytest.raises(httpx.TimeoutException) as timeout:
            await slow.call_api("x")
        assert isinstance(timeout.value, PeerTimeoutError)
        peer.default = Step(500)
        with pytest.raises(httpx.HTTPStatusError) as status:
            await ComponentClient(name(), base_url=url, config=FAST).call_api("x", "POST", {})
        assert status.value.response.status_code == 500


async def test_resilient_integration_counts_each_call_once_on_the_peers_breaker() -> None:
    with flaky_peer() as (peer, url):
        peer.default = Step(500)
        config = IntegrationConfig(timeout=2.0, retry_count=0, circuit_breaker_threshold=2)
        resilient = ResilientIntegration(name(), base_url=url, config=config)
        for _ in range(2):
            with pytest.raises(httpx.HTTPStatusError):
                await resilient.request("x", {})
        with pytest.raises(Exception, match="Circuit breaker is OPEN"):
            await resilient.request("x", {})
        assert len(peer.received) == 2


async def test_calls_are_counted_and_timed_by_source_target_and_endpoint() -> None:
    target = name()
    labels = {"source": "observer", "target": target, "endpoint": "measure"}

    def sample(metric: str) -> float:
        return REGISTRY.get_sample_value(metric, labels) or 0.0

    with flaky_peer() as (_peer, url):
        observable = ObservableIntegration("observer", target, base_url=url, config=FAST)
        await observable.request("measure", {"x": 1})
        await observable.request("measure", {"x": 2})
    assert sample("integration_requests_total") == 2
    assert sample("integration_duration_seconds_count") == 2


def test_config_reads_the_guides_variables() -> None:
    env = {
        "INTEGRATION_TIMEOUT": "12.5",
        "INTEGRATION_RETRY_COUNT": "5",
        "INTEGRATION_RETRY_DELAY": "0.5",
        "CIRCUIT_BREAKER_THRESHOLD": "7",
        "INTEGRATION_BATCH_SIZE": "50",
        "INTEGRATION_BATCH_LINGER": "0.2",
    }
    config = IntegrationConfig.from_env(env)
    assert (config.timeout, config.retry_count, config.retry_delay) == (12.5, 5, 0.5)
    assert (config.circuit_breaker_threshold, config.batch_size, config.batch_linger) == (7, 50, 0.2)
    assert IntegrationConfig.from_env({}) == IntegrationConfig()


def test_config_reads_dot_env_like_the_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("INTEGRATION_TIMEOUT", raising=False)
    (tmp_path / ".env").write_text("INTEGRATION_TIMEOUT=7\n")
    assert IntegrationConfig.from_env().timeout == 7


def test_peers_read_the_variables_at_their_first_use_not_at_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """The app makes its `Peers` while starting; the client's configuration is read when a peer is first called."""
    peers = Peers()
    monkeypatch.setenv("INTEGRATION_TIMEOUT", "12.5")
    assert peers.config.timeout == 12.5
    assert peers.component("rhetor").config is peers.config


def test_every_integration_variable_is_documented_in_env_example() -> None:
    documented = (Path(__file__).resolve().parent.parent / ".env.example").read_text()
    assert [variable for variable in ENV_NAMES.values() if variable not in documented] == []


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"INTEGRATION_TIMEOUT": "soon"}, "INTEGRATION_TIMEOUT='soon' is invalid: must be a number"),
        ({"INTEGRATION_RETRY_COUNT": "-1"}, "INTEGRATION_RETRY_COUNT=-1 is invalid: must be >= 0"),
        ({"CIRCUIT_BREAKER_THRESHOLD": "0"}, "CIRCUIT_BREAKER_THRESHOLD=0 is invalid: must be >= 1"),
    ],
)
def test_a_bad_config_value_names_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(IntegrationConfigError, match=message):
        IntegrationConfig.from_env(env)


def test_a_half_given_address_is_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match="without a port"):
        ComponentClient("rhetor", host="example.org")


async def test_a_bad_hermes_address_is_a_typed_error_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(Path(__file__).parent)  # no `.env` here to override the environment
    monkeypatch.setenv("HERMES_PORT", "eighty")
    with pytest.raises(PeerUnavailableError, match="HERMES_PORT='eighty'"):
        await ComponentClient(name(), config=FAST).call_api("process", "POST", {"input": 1})


async def test_a_streamed_body_is_read_before_the_pooled_client_signs_it(
    make_settings: SettingsFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With keys set the pooled client signs every call, and the signature covers the body:
    a body given as a stream is read first (signing it unread raised `httpx.RequestNotRead`)."""
    monkeypatch.setenv("TEKTON_AUTH_KEYS", keys_value(Key("shared")))

    async def body() -> AsyncIterator[bytes]:
        yield b'{"input": '
        yield b'"streamed"}'

    try:
        with running_server(create_app(make_settings())) as url:
            response = await async_client().post(
                f"{url}/api/v1/process", content=body(), headers={"Content-Type": "application/json"}
            )
    finally:
        await close_pools()
    assert response.status_code == 200, response.text
    assert response.json()["result"]["echo"] == "streamed"


def test_the_pools_let_an_idle_connection_go_before_a_peer_times_it_out(make_settings: SettingsFactory) -> None:
    """A connection the peer is closing for idleness, reused at that moment, fails the call (a POST is
    not retried): the pools drop idle connections before a component's default keep-alive timeout."""
    assert LIMITS.keepalive_expiry is not None
    assert LIMITS.keepalive_expiry < make_settings().timeout_keep_alive
