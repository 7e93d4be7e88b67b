"""`HermesCalls` and `AsyncHermesCalls` speak the contract, against the local Hermes over real HTTP."""

from __future__ import annotations

import ssl
from typing import Any

import pytest

from {{ cookiecutter.component_name }}.hermes import AsyncHermesCalls, HermesCalls, HermesError
from {{ cookiecutter.component_name }}.hermes.calls import tls_for

from .support.hermes import LocalHermes
from .support.servers import refused_port

BODY = {"component_id": "peer-1", "name": "peer", "version": "1", "type": "x", "endpoint": "http://h:9001"}


def body(**changes: Any) -> dict[str, Any]:
    return {**BODY, **changes}


def test_register_returns_the_id_and_a_token_that_heartbeats_accept(local_hermes: LocalHermes) -> None:
    with HermesCalls(local_hermes.url) as hermes:
        component_id, token, answer = hermes.register(body())
        hermes.heartbeat(component_id, token)
    assert (component_id, answer["success"]) == ("peer-1", True)
    assert local_hermes.components()[0]["status"] == "healthy"  # the heartbeat's status reached Hermes


def test_unregister_sends_the_id_and_the_token(local_hermes: LocalHermes) -> None:
    with HermesCalls(local_hermes.url) as hermes:
        component_id, token, _ = hermes.register(body())
        hermes.unregister(component_id, token)
    assert local_hermes.component_ids() == set()


def test_components_filters_by_capability(local_hermes: LocalHermes) -> None:
    with HermesCalls(local_hermes.url) as hermes:
        hermes.register(body(component_id="a", capabilities=["memory"]))
        hermes.register(body(component_id="b"))
        assert [r["component_id"] for r in hermes.components(capability="memory")] == ["a"]
        assert {r["component_id"] for r in hermes.components()} == {"a", "b"}


def test_healthy_only_leaves_out_components_without_a_recent_heartbeat(local_hermes: LocalHermes) -> None:
    with HermesCalls(local_hermes.url) as hermes:
        component_id, token, _ = hermes.register(body())
        assert hermes.components(healthy_only=True) == []  # no heartbeat since it registered
        hermes.heartbeat(component_id, token)
        assert [r["component_id"] for r in hermes.components(healthy_only=True)] == ["peer-1"]
        local_hermes.registry.components["peer-1"]["last_heartbeat"] -= 120
        assert hermes.components(healthy_only=True) == []


def test_a_refused_token_is_rejected_with_its_status(local_hermes: LocalHermes) -> None:
    with HermesCalls(local_hermes.url) as hermes, pytest.raises(HermesError) as caught:
        hermes.heartbeat("peer-1", "forged")
    assert (caught.value.kind, caught.value.status) == ("rejected", 401)


def test_an_answer_that_is_not_json_is_a_bad_answer(local_hermes: LocalHermes) -> None:
    local_hermes.fail("html")
    with HermesCalls(local_hermes.url) as hermes, pytest.raises(HermesError, match="not JSON") as caught:
        hermes.components()
    assert caught.value.kind == "bad_answer"


def test_a_hermes_that_does_not_answer_is_unavailable() -> None:
    url = f"http://127.0.0.1:{refused_port()}"
    with HermesCalls(url, timeout=1) as hermes, pytest.raises(HermesError, match="did not answer") as caught:
        hermes.components()
    assert (caught.value.kind, caught.value.refused) == ("unavailable", True)


def test_a_hermes_that_accepts_but_hangs_is_unavailable_not_refused(local_hermes: LocalHermes) -> None:
    # The registrar acts at once on "refused, then accepting"; a slow Hermes is left to the backoff.
    local_hermes.fail("hang")
    with HermesCalls(local_hermes.url, timeout=0.3) as hermes, pytest.raises(HermesError) as caught:
        hermes.components()
    assert (caught.value.kind, caught.value.refused) == ("unavailable", False)


async def test_the_async_twin_registers_heartbeats_and_unregisters(local_hermes: LocalHermes) -> None:
    async with AsyncHermesCalls(local_hermes.url) as hermes:
        component_id, token, _ = await hermes.register(body())
        await hermes.heartbeat(component_id, token)
        assert [r["component_id"] for r in await hermes.components()] == ["peer-1"]
        await hermes.unregister(component_id, token)
    assert local_hermes.component_ids() == set()


async def test_the_async_twin_reads_a_truncated_answer_as_a_bad_answer(local_hermes: LocalHermes) -> None:
    local_hermes.fail("truncated", path="/api/register")
    async with AsyncHermesCalls(local_hermes.url) as hermes:
        with pytest.raises(HermesError) as caught:
            await hermes.register(body())
    assert caught.value.kind == "bad_answer"


def test_a_plain_http_hermes_loads_no_ca_bundle_yet_nothing_passes_unverified() -> None:
    # Loading the CA bundle costs ~0.1 s of every start-up; an http client never needs it.
    context = tls_for("http://127.0.0.1:8001")
    assert isinstance(context, ssl.SSLContext)
    assert context.cert_store_stats()["x509_ca"] == 0
    assert (context.verify_mode, context.check_hostname) == (ssl.CERT_REQUIRED, True)
    assert tls_for("HTTPS://hermes.example:8001") is True  # https: httpx's usual verification
