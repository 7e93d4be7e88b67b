"""Authentication on a real server (DESIGN §10): each of the nine refusals, and what gets through.

Credentials are built by `support/auth.py` from the spec, not by the package.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from {{ cookiecutter.component_name }}.app import create_app

from .conftest import SettingsFactory
from .support.auth import Key, json_body, keys_value, response_signature_ok, signed_headers, token
from .support.event_clients import recv_frame, subscribe, ws_url
from .support.servers import running_server

NAME = "{{ cookiecutter.component_name }}"
KEY = Key("current")
OTHER = Key("elsewhere")  # a key this component does not hold


@dataclass
class Served:
    url: str
    app: FastAPI
    processed: list[Any]


@pytest.fixture
def served(make_settings: SettingsFactory) -> Iterator[Served]:
    app = create_app(make_settings(auth_keys=keys_value(KEY), auth_replay_cache_size=1000))
    with running_server(app) as url:
        processed: list[Any] = []
        service = app.state.service
        original = service.process

        async def counting(data: Any) -> Any:
            processed.append(data)
            return await original(data)

        service.process = counting  # every call that reaches the service is seen here
        yield Served(url, app, processed)


@pytest.fixture
async def http(served: Served) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=served.url, timeout=15.0) as client:
        yield client


@pytest.fixture
async def watcher(served: Served) -> AsyncIterator[ClientConnection]:
    """A properly authenticated subscriber to every event."""
    headers = {"Authorization": f"Bearer {token(KEY, NAME)}"}
    async with connect(ws_url(served.url), additional_headers=headers) as ws:
        await subscribe(ws, "*")
        yield ws


async def signed_post(http: httpx.AsyncClient, path: str, data: Any, **options: Any) -> httpx.Response:
    body = json_body(data)
    return await http.post(path, content=body, headers=signed_headers(KEY, "POST", path, body, NAME, **options))


def refused(response: httpx.Response, reason: str) -> None:
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["error"] == "unauthorized"
    assert body["reason"] == reason
    assert body["message"] and body["request_id"]


def bad_headers(reason: str, path: str, body: bytes) -> dict[str, str]:
    """Headers for one request that must be refused with `reason`."""
    now = int(time.time())
    if reason == "missing_token":
        return {"Content-Type": "application/json"}
    if reason == "bad_token":
        return signed_headers(KEY, "POST", path, body, NAME, bearer="not.a-jwt")
    if reason == "unknown_key":
        return signed_headers(OTHER, "POST", path, body, NAME)
    if reason == "expired":
        return signed_headers(KEY, "POST", path, body, NAME, bearer=token(KEY, NAME, issued=now - 400))
    if reason == "wrong_audience":
        return signed_headers(KEY, "POST", path, body, NAME, bearer=token(KEY, "someone_else"))
    if reason == "missing_signature":
        return {"Authorization": f"Bearer {token(KEY, NAME)}", "Content-Type": "application/json"}
    if reason == "stale_timestamp":
        return signed_headers(KEY, "POST", path, body, NAME, timestamp=now - 400)
    if reason == "bad_signature":
        return signed_headers(KEY, "POST", path, body + b" ", NAME)  # signed some other body
    raise AssertionError(reason)


EIGHT = [
    "missing_token",
    "bad_token",
    "unknown_key",
    "expired",
    "wrong_audience",
    "missing_signature",
    "stale_timestamp",
    "bad_signature",
]


@pytest.mark.parametrize("reason", EIGHT)
async def test_a_refused_request_reaches_neither_the_service_nor_the_bus(
    reason: str, served: Served, http: httpx.AsyncClient, watcher: ClientConnection
) -> None:
    before = _count((await http.get("/metrics")).text, reason)  # the counter is per process
    event = json_body({"type": "refused.event", "data": {"reason": reason}})
    headers = bad_headers(reason, "/api/v1/events", event)
    refused(await http.post("/api/v1/events", content=event, headers=headers), reason)
    work = json_body({"input": {"reason": reason}})
    headers = bad_headers(reason, "/api/v1/process", work)
    refused(await http.post("/api/v1/process", content=work, headers=headers), reason)

    assert served.processed == []
    # The next event the subscriber sees is this valid one: the refused one never reached the bus.
    assert (await signed_post(http, "/api/v1/events", {"type": "accepted.event"})).status_code == 202
    frame = await recv_frame(watcher)
    assert frame["type"] == "accepted.event"
    metrics = (await http.get("/metrics")).text
    assert _count(metrics, reason) == before + 2


async def test_a_replayed_request_is_refused_and_reaches_the_service_once(
    served: Served, http: httpx.AsyncClient, watcher: ClientConnection
) -> None:
    body = json_body({"input": {"n": 1}})
    headers = signed_headers(KEY, "POST", "/api/v1/process", body, NAME)
    first = await http.post("/api/v1/process", content=body, headers=headers)
    assert first.status_code == 200, first.text
    refused(await http.post("/api/v1/process", content=body, headers=headers), "replayed")
    assert served.processed == [{"n": 1}]

    event = json_body({"type": "once.only"})
    headers = signed_headers(KEY, "POST", "/api/v1/events", event, NAME)
    assert (await http.post("/api/v1/events", content=event, headers=headers)).status_code == 202
    refused(await http.post("/api/v1/events", content=event, headers=headers), "replayed")
    assert (await signed_post(http, "/api/v1/events", {"type": "after.replay"})).status_code == 202
    assert [(await recv_frame(watcher))["type"] for _ in range(2)] == ["once.only", "after.replay"]


async def test_bodies_in_pieces_are_verified_and_signed_whole(make_settings: SettingsFactory) -> None:
    """A request body sent chunked, and an answer streamed in pieces: each signature covers the whole."""
    app = create_app(make_settings(auth_keys=keys_value(KEY)))

    @app.post("/api/v1/pieces")
    async def pieces(request: Request) -> StreamingResponse:
        received = await request.body()

        async def parts() -> AsyncIterator[bytes]:
            for part in (b"got ", str(len(received)).encode(), b" bytes"):
                yield part

        return StreamingResponse(parts(), media_type="text/plain")

    body = json_body({"input": "x" * 3000})
    headers = signed_headers(KEY, "POST", "/api/v1/pieces", body, NAME)

    async def chunked() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 1000):
            yield body[start : start + 1000]

    with running_server(app) as url:
        async with httpx.AsyncClient(base_url=url, timeout=15.0) as http:
            response = await http.post("/api/v1/pieces", content=chunked(), headers=headers)
    assert response.status_code == 200, response.text
    assert response.content == f"got {len(body)} bytes".encode()
    assert response_signature_ok(KEY, 200, headers["X-Tekton-Nonce"], response.headers, response.content)


async def test_a_signed_request_gets_a_signed_answer_the_caller_can_verify(http: httpx.AsyncClient) -> None:
    body = json_body({"input": "hello"})
    headers = signed_headers(KEY, "POST", "/api/v1/process", body, NAME)
    response = await http.post("/api/v1/process", content=body, headers=headers)
    assert response.status_code == 200
    assert response_signature_ok(KEY, 200, headers["X-Tekton-Nonce"], response.headers, response.content)
    assert not response_signature_ok(KEY, 200, headers["X-Tekton-Nonce"], response.headers, response.content + b"x")
    # An error answer to a signed request is signed too.
    empty = json_body({"input": ""})
    headers = signed_headers(KEY, "POST", "/api/v1/process", empty, NAME)
    response = await http.post("/api/v1/process", content=empty, headers=headers)
    assert response.status_code >= 400
    nonce = headers["X-Tekton-Nonce"]
    assert response_signature_ok(KEY, response.status_code, nonce, response.headers, response.content)


async def test_the_query_string_is_part_of_what_is_signed(http: httpx.AsyncClient) -> None:
    target = "/api/v1/discovery?detail=1"
    good = signed_headers(KEY, "GET", target, b"", NAME)
    assert (await http.get(target, headers=good)).status_code != 401
    moved = signed_headers(KEY, "GET", "/api/v1/discovery", b"", NAME)
    refused(await http.get(target, headers=moved), "bad_signature")


@pytest.mark.parametrize("path", ["/health", "/ready", "/metrics", "/api/v1/docs", "/api/v1/openapi.json"])
async def test_the_open_list_needs_no_token(http: httpx.AsyncClient, path: str) -> None:
    assert (await http.get(path)).status_code == 200


async def test_deny_by_default_an_unknown_path_without_credentials_is_401_not_404(http: httpx.AsyncClient) -> None:
    refused(await http.get("/no/such/route"), "missing_token")
    refused(await http.get("/health/"), "missing_token")  # open paths match exactly


async def test_token_is_checked_before_the_body_limit_and_the_limit_before_the_signature(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings(auth_keys=keys_value(KEY), max_body_bytes=1000)
    with running_server(create_app(settings)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=15.0) as http:
            big = b"x" * 1500
            refused(await http.post("/api/v1/process", content=big), "missing_token")
            bearer_only = {"Authorization": f"Bearer {token(KEY, NAME)}"}
            response = await http.post("/api/v1/process", content=big, headers=bearer_only)
            assert response.status_code == 413
            assert response.json()["error"] == "payload_too_large"


async def test_the_signature_key_id_must_be_the_tokens(http: httpx.AsyncClient) -> None:
    body = json_body({"input": 1})
    unknown = signed_headers(KEY, "POST", "/api/v1/process", body, NAME, kid="nobody")
    refused(await http.post("/api/v1/process", content=body, headers=unknown), "unknown_key")
    malformed = signed_headers(KEY, "POST", "/api/v1/process", body, NAME)
    malformed["X-Tekton-Timestamp"] = "soon"
    refused(await http.post("/api/v1/process", content=body, headers=malformed), "bad_signature")


async def test_the_signature_must_name_the_tokens_key_even_when_both_are_held(make_settings: SettingsFactory) -> None:
    second = Key("second")
    app = create_app(make_settings(auth_keys=keys_value(KEY, second), auth_replay_cache_size=1000))
    body = json_body({"input": 1})
    # Signed with KEY, token from KEY, but the key id header names the other key this component holds.
    headers = signed_headers(KEY, "POST", "/api/v1/process", body, NAME, kid=second.kid)
    with running_server(app) as url:
        async with httpx.AsyncClient(base_url=url, timeout=15.0) as http:
            response = await http.post("/api/v1/process", content=body, headers=headers)
            refused(response, "bad_signature")
            assert "must name the key that signed the token" in response.json()["message"]
            good = signed_headers(second, "POST", "/api/v1/process", body, NAME)
            assert (await http.post("/api/v1/process", content=body, headers=good)).status_code == 200


async def test_an_alg_none_or_other_algorithm_token_is_a_bad_token(http: httpx.AsyncClient) -> None:
    unsigned = jwt.encode(
        {"iss": "x", "aud": NAME, "iat": int(time.time()), "exp": int(time.time()) + 60, "jti": "j" * 16},
        None,
        algorithm="none",
        headers={"kid": KEY.kid},
    )
    for forged in (token(KEY, NAME, algorithm="HS512"), unsigned):
        refused(await signed_post(http, "/api/v1/process", {"input": 1}, bearer=forged), "bad_token")


async def test_no_refusal_repeats_the_token(http: httpx.AsyncClient) -> None:
    bearer = token(KEY, "someone_else")
    body = json_body({"input": 1})
    headers = signed_headers(KEY, "POST", "/api/v1/process", body, NAME, bearer=bearer)
    response = await http.post("/api/v1/process", content=body, headers=headers)
    refused(response, "wrong_audience")
    assert bearer not in response.text and KEY.secret not in response.text


# -- /ws and /events --------------------------------------------------------------------------------


async def closed_with(url: str, reason: str, **options: Any) -> None:
    async with connect(url, **options) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 15)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1008, reason)


async def test_a_websocket_without_a_valid_token_is_accepted_then_closed_1008_with_the_reason(served: Served) -> None:
    url = ws_url(served.url)
    await closed_with(url, "missing_token")
    await closed_with(url, "expired", additional_headers={"Authorization": f"Bearer {token(KEY, NAME, issued=0)}"})
    await closed_with(url, "unknown_key", additional_headers={"Authorization": f"Bearer {token(OTHER, NAME)}"})
    assert served.app.state.bus  # the bus is up, and nobody subscribed through those


async def handshake_refusal(url: str, bearer: str) -> str | None:
    """The close reason of a refused handshake, or None when the connection stays open."""
    async with connect(url, additional_headers={"Authorization": f"Bearer {bearer}"}) as ws:
        try:
            await asyncio.wait_for(ws.recv(), 1.0)
        except TimeoutError:
            return None  # open: the server sends nothing before a subscription
        except ConnectionClosed as closed:
            return closed.rcvd.reason if closed.rcvd else "closed"
    return "unexpected frame"


async def test_a_token_that_expires_during_a_connection_does_not_cut_it(
    served: Served, http: httpx.AsyncClient
) -> None:
    url = ws_url(served.url)
    short = token(KEY, NAME, issued=time.time() - 328)  # valid for about 2 s more (exp + 30 s leeway)
    async with connect(url, additional_headers={"Authorization": f"Bearer {short}"}) as ws:
        await subscribe(ws, "long.*")
        deadline = time.monotonic() + 15
        while await handshake_refusal(url, short) != "expired":  # until the same token no longer opens one
            assert time.monotonic() < deadline
        assert (await signed_post(http, "/api/v1/events", {"type": "long.lived"})).status_code == 202
        assert (await recv_frame(ws))["type"] == "long.lived"


async def test_a_query_string_token_opens_one_websocket_only(served: Served, http: httpx.AsyncClient) -> None:
    url = f"{ws_url(served.url)}?access_token={token(KEY, NAME)}"
    async with connect(url) as ws:
        await subscribe(ws, "query.*")
        assert (await signed_post(http, "/api/v1/events", {"type": "query.works"})).status_code == 202
        assert (await recv_frame(ws))["type"] == "query.works"
    await closed_with(url, "replayed")


async def test_a_websocket_from_a_foreign_origin_is_refused_403(served: Served) -> None:
    headers = {"Authorization": f"Bearer {token(KEY, NAME)}", "Origin": "http://evil.example"}
    with pytest.raises(InvalidStatus) as refused_handshake:
        async with connect(ws_url(served.url), additional_headers=headers):
            pass
    assert refused_handshake.value.response.status_code == 403


async def test_a_websocket_from_the_components_own_origin_is_allowed(served: Served) -> None:
    own = served.app.state.settings.base_url
    headers = {"Authorization": f"Bearer {token(KEY, NAME)}", "Origin": own}
    async with connect(ws_url(served.url), additional_headers=headers) as ws:
        await subscribe(ws, "*")


async def test_events_need_a_token_and_a_query_token_is_single_use(served: Served, http: httpx.AsyncClient) -> None:
    refused(await http.get("/events"), "missing_token")
    bearer = token(KEY, NAME)
    async with http.stream("GET", f"/events?access_token={bearer}") as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert "x-signature" not in stream.headers  # event streams are unsigned
    refused(await http.get(f"/events?access_token={bearer}"), "replayed")
    async with http.stream("GET", "/events", headers={"Authorization": f"Bearer {token(KEY, NAME)}"}) as stream:
        assert stream.status_code == 200


async def test_auth_failures_are_counted_by_reason_from_zero(http: httpx.AsyncClient) -> None:
    metrics = (await http.get("/metrics")).text
    for reason in ("missing_token", "replayed", "bad_signature"):
        assert _series(reason) in metrics
    before = _count(metrics, "missing_token")
    await http.get("/api/v1/discovery")
    assert _count((await http.get("/metrics")).text, "missing_token") == before + 1


def _series(reason: str) -> str:
    return 'auth_failures_total{reason="' + reason + '"}'


def _count(metrics: str, reason: str) -> float:
    prefix = _series(reason) + " "
    line = next(line for line in metrics.splitlines() if line.startswith(prefix))
    return float(line.removeprefix(prefix))


async def test_health_says_auth_is_enabled(http: httpx.AsyncClient) -> None:
    assert json.loads((await http.get("/health")).text)["auth"] == "enabled"
