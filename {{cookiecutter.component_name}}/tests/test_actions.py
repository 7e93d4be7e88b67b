"""A component is a workflow step: its `@action`s over HTTP, as Harmonia and the local engine call them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from {{ cookiecutter.component_name }}.actions import Idempotency, IdempotencyConflict
from {{ cookiecutter.component_name }}.app import create_app
from {{ cookiecutter.component_name }}.client import IntegrationConfig, LocalWorkflowEngine, WorkflowIntegration
from {{ cookiecutter.component_name }}.hermes.registration import registration_body
from {{ cookiecutter.component_name }}.settings import Settings

from .conftest import SettingsFactory
from .support.auth import Key, keys_value
from .support.harmonia import local_harmonia
from .support.hermes import LocalHermes
from .support.servers import running_server
from .support.tekton import register_peer

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


async def test_capabilities_and_schema_describe_the_sample_action(client: httpx.AsyncClient) -> None:
    assert "process" in (await client.get("/api/capabilities")).json()["actions"]
    schema = (await client.get("/api/actions/process/schema")).json()
    assert schema["input_schema"]["required"] == ["data"]
    assert schema["output_schema"] == {"additionalProperties": True, "type": "object"}
    assert "describes the JSON" in schema["description"]
    missing = await client.get("/api/actions/nope/schema")
    assert missing.status_code == 404 and "'process'" in missing.json()["message"]


async def test_an_action_answers_its_output_under_output(client: httpx.AsyncClient) -> None:
    body = {"action": "process", "params": {"data": {"a": 1}}, "context": {}}
    response = await client.post("/api/actions/process", json=body)
    assert response.status_code == 200
    assert response.json()["output"]["echo"] == {"a": 1}


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({}, "data: Field required"),
        ({"data": 1, "extra": 2}, "extra: Extra inputs are not permitted"),
        ({"data": ""}, "input is empty"),
    ],
)
async def test_bad_params_get_422_naming_them(client: httpx.AsyncClient, params: dict[str, Any], named: str) -> None:
    response = await client.post("/api/actions/process", json={"params": params})
    assert response.status_code == 422
    assert named in response.json()["message"]


async def test_harmonias_form_encoded_call_gets_422_naming_the_values_it_lost(client: httpx.AsyncClient) -> None:
    body = "action=process&params=data&context=workflow_id&context=execution_id&context=task_id"
    response = await client.post("/api/actions/process", content=body, headers=FORM)
    assert response.status_code == 422
    message = response.json()["message"]
    assert "needs values for ['data']" in message and "parameter names only" in message


async def test_a_repeat_with_the_same_key_gets_the_first_result_and_other_params_conflict(
    client: httpx.AsyncClient,
) -> None:
    body = {"params": {"data": [1, 2]}, "context": {"execution_id": "e1", "task_id": "t1"}}
    first = await client.post("/api/actions/process", json=body)
    again = await client.post("/api/actions/process", json=body)
    assert first.json() == again.json()
    other = await client.post(
        "/api/actions/process", json={"params": {"data": [3]}}, headers={"Idempotency-Key": "k-1"}
    )
    assert other.status_code == 200
    reused = await client.post(
        "/api/actions/process", json={"params": {"data": [4]}}, headers={"Idempotency-Key": "k-1"}
    )
    assert reused.status_code == 409


async def test_a_duplicate_that_arrives_while_the_first_runs_waits_for_its_result() -> None:
    runs = 0
    release = asyncio.Event()

    async def slow() -> dict[str, int]:
        nonlocal runs
        runs += 1
        await release.wait()
        return {"run": runs}

    idempotency = Idempotency()
    first = asyncio.create_task(idempotency.run("k", {"x": 1}, slow))
    second = asyncio.create_task(idempotency.run("k", {"x": 1}, slow))
    await asyncio.sleep(0.05)
    release.set()
    assert await first == await second == {"run": 1}
    assert runs == 1
    with pytest.raises(IdempotencyConflict):
        await idempotency.run("k", {"x": 2}, slow)


async def test_a_failed_run_is_not_remembered_so_a_retry_runs_again() -> None:
    attempts = 0

    async def flaky() -> str:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise RuntimeError("first attempt fails")
        return "ok"

    idempotency = Idempotency()
    with pytest.raises(RuntimeError):
        await idempotency.run("k", {}, flaky)
    assert await idempotency.run("k", {}, flaky) == "ok"


def test_hermes_registration_lists_the_actions_and_the_url_harmonia_reads(settings: Settings) -> None:
    metadata = registration_body(settings)["metadata"]
    assert "process" in metadata["actions"]
    assert metadata["url"] == settings.base_url


async def test_the_action_routes_are_protected_when_auth_is_on(make_settings: SettingsFactory) -> None:
    settings = make_settings(auth_keys=keys_value(Key("current")))
    with running_server(create_app(settings)) as url:
        async with httpx.AsyncClient(base_url=url) as http:
            for method, path in (
                ("GET", "/api/capabilities"),
                ("GET", "/api/actions/process/schema"),
                ("POST", "/api/actions/process"),
            ):
                assert (await http.request(method, path)).status_code == 401, path


@pytest.fixture
def component(
    local_hermes: LocalHermes, make_settings: SettingsFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """The baked component, registered in the local Hermes as `metis`."""
    monkeypatch.setenv("HERMES_URL", local_hermes.url)
    with running_server(create_app(make_settings())) as url:
        register_peer(local_hermes.url, "metis", url)
        yield url


async def test_the_component_is_a_step_of_a_local_workflow(component: str) -> None:
    definition = {
        "name": "two_steps",
        "tasks": [
            {"id": "first", "component": "metis", "action": "process", "input": {"data": "${input.text}"}},
            {
                "id": "second",
                "component": "metis",
                "action": "process",
                "input": {"data": {"size_before": "${tasks.first.output.size}"}},
                "depends_on": ["first"],
            },
        ],
    }
    engine = LocalWorkflowEngine(config=IntegrationConfig(retry_count=0))
    result = await WorkflowIntegration(engine).run(definition, {"text": "hello"}, max_wait=30)
    assert result["state"] == "completed"
    assert result["output"]["first"]["output"]["echo"] == "hello"
    assert result["output"]["second"]["output"]["echo"] == {"size_before": 7}  # '"hello"' is 7 bytes of JSON


async def test_under_harmonia_today_the_step_fails_with_the_422_that_names_the_lost_values(
    component: str, local_hermes: LocalHermes
) -> None:
    with local_harmonia({"metis": component}) as harmonia:
        register_peer(local_hermes.url, "harmonia", harmonia.url)
        definition = {
            "name": "one",
            "tasks": [{"id": "a", "component": "metis", "action": "process", "input": {"data": 1}}],
        }
        result = await WorkflowIntegration(engine="harmonia", poll_interval=0.05).run(definition, max_wait=30)
    assert result["state"] == "failed"
    error = result["execution"]["task_executions"]["a"]["error"]
    assert error.startswith("Client error 422") and "needs values for ['data']" in error
    assert harmonia.capability_reads == [component]  # capabilities and schemas read first, as Harmonia does
