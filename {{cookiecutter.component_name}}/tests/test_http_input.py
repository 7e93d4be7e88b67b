"""Bad input over real HTTP: refused with a clear 4xx before any work is done, never a 500."""

from __future__ import annotations

import json
import logging
import socket
from pathlib import Path

import httpx
import pytest
from starlette.types import Message, Receive, Scope, Send

from {{ cookiecutter.component_name }}.api.auth import AuthGate
from {{ cookiecutter.component_name }}.api.middleware import RequestMiddleware
from {{ cookiecutter.component_name }}.app import create_app

from .conftest import SettingsFactory
from .support.servers import ComponentProcess, running_server

PACKAGE = "{{ cookiecutter.component_name }}"
JSON = {"content-type": "application/json"}
# A lone UTF-16 surrogate: Python's json accepts it, no encoder can write it back out.
LONE_SURROGATE = {
    "/api/v1/process": b'{"input": "\\ud800"}',
    "/api/v1/batch": b'{"items": [{"text": "\\udfff"}]}',
    "/api/v1/events": b'{"type": "test.surrogate", "data": {"text": "\\ud800"}}',
}


@pytest.mark.parametrize("path", list(LONE_SURROGATE), ids=["process", "batch", "events"])
async def test_a_lone_surrogate_is_refused_with_400(client: httpx.AsyncClient, path: str) -> None:
    response = await client.post(path, content=LONE_SURROGATE[path], headers=JSON)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "bad_request"
    assert "surrogate" in body["message"]
    assert body["request_id"] == response.headers["x-request-id"]


async def test_a_lone_surrogate_in_a_key_is_refused_too(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/process", content=b'{"input": {"\\udc00": 1}}', headers=JSON)
    assert response.status_code == 400


async def test_a_surrogate_pair_escape_is_an_ordinary_character(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/process", content=b'{"input": "\\ud83d\\ude00"}', headers=JSON)
    assert response.status_code == 200
    assert response.json()["result"]["echo"] == "\U0001f600"


async def test_an_escaped_backslash_before_u_d800_is_plain_text(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/process", content=b'{"input": "\\\\ud800"}', headers=JSON)
    assert response.status_code == 200
    assert response.json()["result"]["echo"] == "\\ud800"


async def test_a_body_that_is_not_utf8_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/process", content=b'{"input": "\xff\xfe"}', headers=JSON)
    assert response.status_code == 400
    assert "UTF-8" in response.json()["message"]


async def test_a_body_without_content_type_is_checked_as_json(client: httpx.AsyncClient) -> None:
    # FastAPI parses a body without a content type as JSON: the guard must look at it too.
    response = await client.post("/api/v1/process", content=b'{"input": "\\ud800"}')
    assert response.status_code == 400


async def test_malformed_json_keeps_fastapis_422(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/process", content=b'{"input": ', headers=JSON)
    assert response.status_code == 422
    assert response.json()["error"] == "validation_error"


async def test_head_on_health_and_ready_answers_200_without_a_body(client: httpx.AsyncClient) -> None:
    for path in ("/health", "/ready"):
        response = await client.head(path)
        assert response.status_code == 200, path
        assert response.content == b""
        assert response.headers["content-type"] == "application/json"
    metrics = (await client.get("/metrics")).text
    assert 'http_requests_total{handler="/health",method="HEAD",status="2xx"}' in metrics


def test_health_with_a_trailing_slash_redirects_nowhere(make_settings: SettingsFactory) -> None:
    with running_server(create_app(make_settings())) as url:
        response = httpx.get(f"{url}/health/", headers={"host": "attacker.example"})
    assert response.status_code == 404
    assert "location" not in response.headers
    assert "attacker.example" not in response.text


async def test_a_request_id_with_a_trailing_newline_is_replaced(make_settings: SettingsFactory) -> None:
    # HTTP/1.1 parsers end a header at the newline, so this reaches the check only from an
    # ASGI server or proxy that passes it on: the check must match the whole value.
    seen: list[bytes] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            seen.extend(value for name, value in message["headers"] if name == b"x-request-id")

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    logger = logging.getLogger("test")
    gate = AuthGate(make_settings(), logger)
    middleware = RequestMiddleware(
        app, logger=logger, gate=gate, max_body_bytes=1024, body_setting="TEST_MAX_BODY_BYTES", access_log=False
    )
    scope: Scope = {"type": "http", "method": "GET", "path": "/", "headers": [(b"x-request-id", b"abc-123\n")]}
    await middleware(scope, receive, send)
    assert seen and seen[0] != b"abc-123\n"
    assert len(seen[0]) == 32


def _request_lines(log: str, request_id: str) -> list[str]:
    return [line for line in log.splitlines() if request_id in line]


def test_each_request_is_logged_once_as_json(tmp_path: Path) -> None:
    env = {f"{PACKAGE.upper()}_HERMES_ENABLED": "false"}
    for launcher in ("module", "uvicorn"):
        with ComponentProcess(PACKAGE, env=env, log_dir=tmp_path, launcher=launcher) as component:
            httpx.get(f"{component.base_url}/ready", headers={"X-Request-ID": f"once-{launcher}"})
            with socket.create_connection(("127.0.0.1", component.port)):
                pass  # a connection without a request is not a request
        lines = _request_lines(component.log, f"once-{launcher}")
        assert len(lines) == 1, (launcher, component.log)
        assert json.loads(lines[0])["path"] == "/ready"
        assert '"GET /ready HTTP/1.1"' not in component.log  # uvicorn's own access line


def test_hermes_credentials_never_show_in_health_or_logs(tmp_path: Path) -> None:
    env = {
        f"{PACKAGE.upper()}_HERMES_ENABLED": "true",
        "HERMES_URL": "http://hermes-user:s3cr3t-pw@127.0.0.1:9/api",  # nothing listens on port 9
    }
    with ComponentProcess(PACKAGE, env=env, log_dir=tmp_path, launcher="module") as component:
        health = httpx.get(f"{component.base_url}/health").text
        discovery = httpx.get(f"{component.base_url}/api/v1/discovery").text
    assert "hermes-user:***@127.0.0.1:9" in health
    for shown in (health, discovery, component.log):
        assert "s3cr3t-pw" not in shown
