"""Retries, timeouts and the breaker against peers that fail on purpose (real HTTP on loopback)."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from typing import Any

import pytest

from {{ cookiecutter.component_name }}.client import (
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
    ComponentClient,
    IntegrationConfig,
    PeerHTTPError,
    PeerTimeoutError,
    PeerUnavailableError,
)

from .support.peers import FlakyPeer, Step, flaky_peer, resetting_peer
from .support.servers import free_port, refused_port, running_server


def fast(**overrides: Any) -> IntegrationConfig:
    """Sub-second waits so the suite stays quick; outcomes are asserted, never speeds."""
    values: dict[str, Any] = {"timeout": 2.0, "retry_count": 3, "retry_delay": 0.01, "retry_max_delay": 0.05}
    return IntegrationConfig(**{**values, **overrides})


def state(breaker: CircuitBreaker) -> CircuitState:
    return breaker.state  # through a call, so mypy does not narrow it between asserts


def client(url: str, **config: Any) -> ComponentClient:
    # A fresh peer name per test: each gets its own breaker.
    return ComponentClient(f"peer-{uuid.uuid4().hex[:8]}", base_url=url, config=fast(**config))


async def test_get_is_retried_after_500_until_it_succeeds() -> None:
    with flaky_peer(Step(500), Step(502), Step(200, {"value": 42})) as (peer, url):
        assert await client(url).call_api("thing") == {"value": 42}
        assert len(peer.received) == 3


async def test_post_is_not_retried_after_500() -> None:
    with flaky_peer(Step(500, {"message": "boom"})) as (peer, url):
        with pytest.raises(PeerHTTPError) as error:
            await client(url).call_api("thing", "POST", {"a": 1})
        assert error.value.status == 500
        assert error.value.body == {"message": "boom"}
        assert len(peer.received) == 1


@pytest.mark.parametrize("status", [429, 503])
async def test_post_is_retried_after_429_and_503(status: int) -> None:
    with flaky_peer(Step(status), Step(200, {"done": True})) as (peer, url):
        assert await client(url).call_api("thing", "POST", {"a": 1}) == {"done": True}
        assert [r.method for r in peer.received] == ["POST", "POST"]


async def test_retry_after_is_honoured() -> None:
    with flaky_peer(Step(429, headers={"Retry-After": "1"}), Step(200)) as (peer, url):
        await client(url).call_api("thing", "POST", {})
        first, second = peer.received
        assert second.at - first.at >= 0.9  # waited what the peer asked, not the 10 ms backoff


async def test_retry_after_beyond_the_deadline_fails_at_once() -> None:
    with flaky_peer(Step(503, headers={"Retry-After": "120"}), Step(200)) as (peer, url):
        with pytest.raises(PeerHTTPError) as error:
            await client(url, deadline=5.0).call_api("thing")
        assert error.value.status == 503
        assert len(peer.received) == 1


async def test_client_errors_are_not_retried() -> None:
    with flaky_peer(Step(404, {"message": "no such thing"}), Step(200)) as (peer, url):
        with pytest.raises(PeerHTTPError) as error:
            await client(url).call_api("thing")
        assert (error.value.status, error.value.body["message"]) == (404, "no such thing")
        assert len(peer.received) == 1


async def test_connect_errors_are_retried_even_for_post() -> None:
    port = free_port()
    peer = FlakyPeer()
    done = threading.Event()

    def start_late() -> None:
        time.sleep(0.3)
        with running_server(peer.app, port=port):
            done.wait(30)

    server = threading.Thread(target=start_late, daemon=True)
    server.start()
    config = {"retry_count": 50, "retry_delay": 0.05, "retry_max_delay": 0.1, "deadline": 30.0}
    try:
        answer = await client(f"http://127.0.0.1:{port}", **config).call_api("thing", "POST", {"x": 1})
    finally:
        done.set()
        await asyncio.to_thread(server.join, 15)
    assert answer == {"ok": True}
    assert len(peer.received) == 1  # the POST reached the peer exactly once


async def test_unreachable_peer_raises_unavailable_after_retries() -> None:
    port = refused_port()
    with pytest.raises(PeerUnavailableError, match="unreachable"):
        await client(f"http://127.0.0.1:{port}", retry_count=2).call_api("thing", "POST", {})


async def test_a_hanging_peer_raises_a_timeout_error() -> None:
    with flaky_peer(Step(delay=1.0)) as (_peer, url), pytest.raises(PeerTimeoutError, match="did not answer"):
        await client(url, timeout=0.2, retry_count=0).call_api("thing")


async def test_the_total_deadline_bounds_the_retries() -> None:
    with flaky_peer() as (peer, url):
        peer.default = Step(delay=1.0)
        with pytest.raises(PeerTimeoutError):
            await client(url, timeout=0.3, retry_count=20, deadline=0.7).call_api("thing")
        assert 1 <= len(peer.received) <= 3  # the deadline, not the 20 retries, decided


async def test_a_reset_connection_is_retried_for_get_but_not_for_post() -> None:
    with resetting_peer() as (accepted, url):
        with pytest.raises(PeerUnavailableError):
            await client(url, retry_count=2).call_api("thing")
        assert len(accepted) == 3
        accepted.clear()
        with pytest.raises(PeerUnavailableError):
            await client(url, retry_count=2).call_api("thing", "POST", {})
        assert len(accepted) == 1  # the peer may have acted on it: not sent twice


async def test_failures_open_the_breaker_and_it_stops_calling_the_peer() -> None:
    with flaky_peer() as (peer, url):
        peer.default = Step(500)
        peer_client = client(url, retry_count=0, circuit_breaker_threshold=3)
        for _ in range(3):
            with pytest.raises(PeerHTTPError):
                await peer_client.call_api("thing", "POST", {})
        with pytest.raises(CircuitOpenError, match="Circuit breaker is OPEN"):
            await peer_client.call_api("thing", "POST", {})
        assert len(peer.received) == 3


async def test_client_errors_do_not_open_the_breaker() -> None:
    with flaky_peer() as (peer, url):
        peer.default = Step(422, {"message": "bad input"})
        peer_client = client(url, circuit_breaker_threshold=2)
        for _ in range(5):
            with pytest.raises(PeerHTTPError):
                await peer_client.call_api("thing", "POST", {})
        assert peer_client.breaker is not None and peer_client.breaker.state is CircuitState.CLOSED


async def test_retries_happen_inside_the_breaker_as_one_outcome() -> None:
    with flaky_peer() as (peer, url):
        peer.default = Step(500)
        peer_client = client(url, retry_count=2, circuit_breaker_threshold=2)
        with pytest.raises(PeerHTTPError):
            await peer_client.call_api("thing")
        assert len(peer.received) == 3
        assert peer_client.breaker is not None and peer_client.breaker.failure_count == 1


async def test_half_open_admits_exactly_n_of_50_concurrent_callers_against_a_peer() -> None:
    with flaky_peer() as (peer, url):
        peer.default = Step(500)
        peer_client = client(
            url,
            retry_count=0,
            circuit_breaker_threshold=2,
            circuit_breaker_recovery=0.3,
            circuit_breaker_half_open_calls=3,
        )
        for _ in range(2):
            with pytest.raises(PeerHTTPError):
                await peer_client.call_api("thing")
        assert peer_client.breaker is not None
        assert state(peer_client.breaker) is CircuitState.OPEN
        peer.default = Step(200, {"recovered": True}, delay=0.3)
        await asyncio.sleep(0.35)
        before = len(peer.received)
        results = await asyncio.gather(*(peer_client.call_api("thing") for _ in range(50)), return_exceptions=True)
        assert len(peer.received) - before == 3
        assert results.count({"recovered": True}) == 3
        assert sum(isinstance(result, CircuitOpenError) for result in results) == 47
        assert state(peer_client.breaker) is CircuitState.CLOSED
