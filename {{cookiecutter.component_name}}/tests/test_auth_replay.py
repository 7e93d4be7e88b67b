"""Replay protection stays bounded (DESIGN §10): a full cache answers 503 and forgets nothing early;
key rotation needs no downtime."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from {{ cookiecutter.component_name }}.app import create_app
from {{ cookiecutter.component_name }}.client import ComponentClient, IntegrationConfig, PeerHTTPError, close_pools
from {{ cookiecutter.component_name }}.security.replay import MemoryReplayStore

from .conftest import SettingsFactory
from .support.auth import Key, json_body, keys_value, response_signature_ok, signed_headers
from .support.servers import running_server

NAME = "{{ cookiecutter.component_name }}"
KEY = Key("replay")


async def post(http: httpx.AsyncClient, key: Key, data: object) -> tuple[httpx.Response, dict[str, str]]:
    body = json_body(data)
    headers = signed_headers(key, "POST", "/api/v1/process", body, NAME)
    return await http.post("/api/v1/process", content=body, headers=headers), headers


async def test_a_flood_of_fresh_nonces_fills_the_cache_then_gets_503_and_nothing_is_forgotten(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings(auth_keys=keys_value(KEY), auth_replay_cache_size=20)
    with running_server(create_app(settings)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=15.0) as http:
            accepted = []
            for n in range(20):
                response, headers = await post(http, KEY, {"input": n})
                assert response.status_code == 200, response.text
                accepted.append(headers)
            full, _ = await post(http, KEY, {"input": "one too many"})
            assert full.status_code == 503
            assert full.json()["error"] == "service_unavailable" and full.headers["retry-after"]
            # The earliest request is still remembered: replaying it is refused, not let in.
            first = accepted[0]
            replay = await http.post("/api/v1/process", content=json_body({"input": 0}), headers=first)
            assert replay.status_code == 401 and replay.json()["reason"] == "replayed"


async def test_the_memory_cache_forgets_an_entry_only_after_its_expiry() -> None:
    store = MemoryReplayStore(capacity=2)
    assert await store.remember("a", time.time() + 0.05)
    assert await store.remember("b", time.time() + 300)
    assert not await store.remember("a", time.time() + 0.05)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(store) == 2:  # wait out a's expiry, timing nothing
        await store.remember("b", time.time() + 300)  # a replay: changes nothing, but runs the purge
        await asyncio.sleep(0.01)
    assert await store.remember("c", time.time() + 300)  # room again, since a expired
    assert len(store) == 2
    assert not await store.remember("b", time.time() + 300)  # b has not expired: still a replay


def test_remembering_nonces_gives_the_garbage_collector_nothing_to_track() -> None:
    # A heap of (expiry, nonce) tuples made the collector run every few hundred signed requests,
    # and each full pass walk the whole cache.
    store = MemoryReplayStore(capacity=10_000)
    expiry = time.time() + 300
    store.remember_now("first", expiry)
    gc.disable()  # a collection would untrack such tuples and hide them
    try:
        before = len(gc.get_objects())
        for n in range(5_000):
            assert store.remember_now(f"nonce-{n:06d}", expiry)
        assert len(gc.get_objects()) - before < 50
    finally:
        gc.enable()


@pytest.fixture(autouse=True)
async def fresh_pools() -> AsyncIterator[None]:
    yield
    await close_pools()


async def test_keys_rotate_without_downtime(make_settings: SettingsFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Add the new key last everywhere, move it first everywhere, then remove the old one."""
    old, new = Key("k-old"), Key("k-new")
    stages = [
        ([old], {old: 200, new: 401}),
        ([old, new], {old: 200, new: 200}),  # 1: new added last: still signing with old
        ([new, old], {old: 200, new: 200}),  # 2: new moved first: signing with new, old still verifies
        ([new], {old: 401, new: 200}),  # 3: old removed
    ]
    for keys, expected in stages:
        with running_server(create_app(make_settings(auth_keys=keys_value(*keys)))) as url:
            async with httpx.AsyncClient(base_url=url, timeout=15.0) as http:
                for key, status in expected.items():
                    response, headers = await post(http, key, {"input": key.kid})
                    assert response.status_code == status, (keys, key.kid, response.text)
                    if status == 401:
                        assert response.json()["reason"] == "unknown_key"
                    else:  # answered with the key the request used
                        nonce = headers["X-Tekton-Nonce"]
                        assert response_signature_ok(key, 200, nonce, response.headers, response.content)
            # The package's client signs with the first key of its own list.
            monkeypatch.setenv("TEKTON_AUTH_KEYS", keys_value(*keys))
            client = ComponentClient(NAME, base_url=url, config=IntegrationConfig(retry_count=0))
            assert (await client.call_api("process", "POST", {"input": "client"}))["result"]["echo"] == "client"
            await close_pools()
    monkeypatch.setenv("TEKTON_AUTH_KEYS", keys_value(old))
    # A caller still on the old key alone, once it was removed, is refused.
    with running_server(create_app(make_settings(auth_keys=keys_value(new)))) as url, pytest.raises(PeerHTTPError):
        stale_caller = ComponentClient(NAME, base_url=url, config=IntegrationConfig(retry_count=0))
        await stale_caller.call_api("process", "POST", {"input": 1})
{%- if cookiecutter.event_bus == "redis" %}


async def test_replicas_on_redis_share_one_bounded_replay_cache(make_settings: SettingsFactory) -> None:
    """Two processes of the component (same Redis, same stream): a request one accepted, the other refuses."""
    settings = make_settings(auth_keys=keys_value(KEY), auth_replay_cache_size=6)
    with running_server(create_app(settings)) as first, running_server(create_app(settings)) as second:
        async with httpx.AsyncClient(base_url=first) as one, httpx.AsyncClient(base_url=second) as two:
            body = json_body({"input": "once"})
            headers = signed_headers(KEY, "POST", "/api/v1/process", body, NAME)
            assert (await one.post("/api/v1/process", content=body, headers=headers)).status_code == 200
            replay = await two.post("/api/v1/process", content=body, headers=headers)
            assert replay.status_code == 401 and replay.json()["reason"] == "replayed"
            for n in range(5):  # the bound is shared too: 1 + 5 fills it
                response, _ = await post(one if n % 2 else two, KEY, {"input": n})
                assert response.status_code == 200
            assert (await post(one, KEY, {"input": "full"}))[0].status_code == 503
            assert (await post(two, KEY, {"input": "full"}))[0].status_code == 503
{%- endif %}
