"""The guide's Pattern 10 (integration testing), with real parts instead of mocks.

The guide patches `HermesClient` and `httpx.AsyncClient`; here the same two
tests run against a local Hermes (`local_hermes`, the real contract) and a
scripted peer (`FlakyPeer`: it answers with the status, body and delay the
test gives it, and records every request). Copy this module to test your
own integrations; `tests/support/` also has Engram and Harmonia stand-ins
(`engram.py`, `harmonia.py`) and the local workflow engine in the client.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from {{ cookiecutter.component_name }}.client import (
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
    ComponentClient,
    IntegrationConfig,
    PeerHTTPError,
    SyncIntegration,
)

from .support.hermes import LocalHermes
from .support.peers import FlakyPeer, Step, flaky_peer
from .support.tekton import register_peer


class TestIntegration:
    @pytest.fixture
    def hermes(self, local_hermes: LocalHermes, monkeypatch: pytest.MonkeyPatch) -> LocalHermes:
        """A real (local) Hermes instead of the guide's `mock_hermes`."""
        monkeypatch.setenv("HERMES_URL", local_hermes.url)
        return local_hermes

    @pytest.fixture
    def test_component(self, hermes: LocalHermes) -> Iterator[FlakyPeer]:
        """A scripted peer instead of the guide's `mock_component_response`, registered as `test_component`."""
        with flaky_peer() as (peer, url):
            peer.default = Step(200, {"status": "success", "data": {"result": "test"}})
            register_peer(hermes.url, "test_component", url)
            yield peer

    async def test_component_integration(self, hermes: LocalHermes, test_component: FlakyPeer) -> None:
        """Test basic component integration."""
        integration = SyncIntegration("test_component")

        result = await integration.request("process", {"input": "test"})

        assert result["status"] == "success"
        assert result["data"]["result"] == "test"

        # Verify correct calls: discovery asked Hermes, the peer got one POST with our data.
        assert hermes.registry.count("/api/components") >= 1
        (received,) = test_component.received
        assert (received.method, received.path, received.body) == ("POST", "/api/v1/process", {"input": "test"})

    async def test_circuit_breaker(self, test_component: FlakyPeer) -> None:
        """Test circuit breaker behavior: against a peer that really fails."""
        test_component.default = Step(500, {"message": "database down"})
        breaker = CircuitBreaker(failure_threshold=3)
        client = ComponentClient("test_component", config=IntegrationConfig(retry_count=0), circuit_breaker=breaker)

        # Real failures
        for _ in range(3):
            with pytest.raises(PeerHTTPError, match="database down"):
                await client.call_api("process", "POST", {"input": "test"})

        # Circuit should be open
        assert breaker.state == CircuitState.OPEN

        # Should fail fast, without reaching the peer
        with pytest.raises(CircuitOpenError, match="Circuit breaker is OPEN"):
            await client.call_api("process", "POST", {"input": "test"})
        assert len(test_component.received) == 3

    async def test_a_slow_peer_is_a_timeout(self, test_component: FlakyPeer) -> None:
        """The scripted peer can also hang: the call ends at its timeout with a typed error."""
        test_component.default = Step(200, {"late": True}, delay=3)
        integration = SyncIntegration("test_component", config=IntegrationConfig(timeout=0.5, retry_count=0))
        result = await integration.request("process", {"input": "test"})
        assert result["error"] == "timeout"
