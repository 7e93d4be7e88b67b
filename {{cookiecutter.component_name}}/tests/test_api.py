"""The REST surface, over real HTTP to a real uvicorn."""

from __future__ import annotations

from datetime import datetime

import httpx
import pytest

from {{ cookiecutter.component_name }}.app import create_app

from .conftest import SettingsFactory
from .support.servers import running_server


async def test_health_reports_identity_and_status(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["component"] == "{{ cookiecutter.component_name }}"
    assert body["status"] in ("healthy", "degraded")
    assert 8000 <= body["port"] <= 9999
    assert body["ai_port"] == 45000 + body["port"] - 8000
    assert body["uptime"] >= 0
    assert datetime.fromisoformat(body["timestamp"]).utcoffset() is not None
    assert body["registered_with_hermes"] is False
    assert {"name": "hermes", "status": "disabled", "required": False} in body["dependencies"]


async def test_ready_answers_true_while_serving(client: httpx.AsyncClient) -> None:
    response = await client.get("/ready")
    assert (response.status_code, response.json()) == (200, {"ready": True})


async def test_discovery_lists_the_routes_the_app_serves(client: httpx.AsyncClient) -> None:
    body = (await client.get("/api/v1/discovery")).json()
    assert body["component"] == "{{ cookiecutter.component_name }}"
    paths = {endpoint["path"]: endpoint["methods"] for endpoint in body["endpoints"]}
    assert paths["/api/v1/process"] == ["POST"]
    assert paths["/api/v1/batch"] == ["POST"]
    assert paths["/health"] == ["GET"]
    openapi = (await client.get("/api/v1/openapi.json")).json()
    assert set(paths) == set(openapi["paths"])


async def test_process_returns_a_result(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/process", json={"input": {"text": "hello"}})
    assert response.status_code == 200
    assert response.json()["result"]["echo"] == {"text": "hello"}


async def test_process_rejects_a_body_without_input(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/process", json={"inpt": 1})
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "validation_error"
    assert "body.input" in body["message"]
    assert body["request_id"] == response.headers["x-request-id"]


async def test_batch_accounts_for_every_item(client: httpx.AsyncClient) -> None:
    items = [{"task": f"Task {i}", "priority": "medium"} for i in range(5)] + [{}]
    response = await client.post("/api/v1/batch", json={"items": items})
    assert response.status_code == 200
    body = response.json()
    assert [item["index"] for item in body["processed"]] == [0, 1, 2, 3, 4]
    assert body["failed"] == [
        {"index": 5, "error": {"code": "empty_input", "message": "input is empty: send a non-empty JSON value"}}
    ]


def test_batch_over_the_limit_is_refused_naming_the_setting(make_settings: SettingsFactory) -> None:
    with running_server(create_app(make_settings(max_batch_items=3))) as url:
        response = httpx.post(f"{url}/api/v1/batch", json={"items": [{"n": i} for i in range(4)]})
    assert response.status_code == 413
    assert "{{ cookiecutter.component_name | upper }}_MAX_BATCH_ITEMS" in response.json()["message"]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_oversized_body_gets_413(make_settings: SettingsFactory, chunked: bool) -> None:
    payload = b'{"input": "' + b"x" * 2048 + b'"}'
    content = iter([payload[:1000], payload[1000:]]) if chunked else payload
    with running_server(create_app(make_settings(max_body_bytes=1024))) as url:
        response = httpx.post(f"{url}/api/v1/process", content=content, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"


async def test_unknown_path_is_json_404_with_request_id(client: httpx.AsyncClient) -> None:
    response = await client.get("/no/such/path")
    assert response.status_code == 404
    assert response.json() == {
        "error": "not_found",
        "message": "Not Found",
        "request_id": response.headers["x-request-id"],
    }


async def test_caller_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    response = await client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"


async def test_unsafe_request_id_is_replaced(client: httpx.AsyncClient) -> None:
    response = await client.get("/health", headers={"X-Request-ID": "bad id\twith spaces"})
    assert response.headers["x-request-id"] != "bad id\twith spaces"
    assert len(response.headers["x-request-id"]) == 32


async def test_docs_and_metrics_are_served(client: httpx.AsyncClient) -> None:
    await client.post("/api/v1/process", json={"input": 1})
    docs = await client.get("/api/v1/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    metrics = (await client.get("/metrics")).text
    assert 'handler="/api/v1/process"' in metrics
    assert "http_request_duration_seconds_bucket" in metrics


async def test_metrics_group_unknown_paths_under_one_label(client: httpx.AsyncClient) -> None:
    # One label per scanned URL would grow the metrics without bound.
    await client.get("/no/such/path/8f2c1e")
    metrics = (await client.get("/metrics")).text
    assert "8f2c1e" not in metrics
    assert 'handler="none"' in metrics
