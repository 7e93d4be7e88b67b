"""Pattern 7: workflows on the local engine and on a Harmonia stand-in with today's faults."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from {{ cookiecutter.component_name }}.client import (
    HarmoniaClient,
    IntegrationConfig,
    LocalWorkflowEngine,
    PeerHTTPError,
    WorkflowError,
    WorkflowIntegration,
)
from {{ cookiecutter.component_name }}.client._workflow import ENGINE_ENV

from .support.harmonia import TODAYS_500, LocalHarmonia, local_harmonia
from .support.hermes import LocalHermes
from .support.peers import FlakyPeer, Step, flaky_peer
from .support.tekton import register_peer

FAST = IntegrationConfig(timeout=10.0, retry_count=0)


def analysis(code: str) -> dict[str, Any]:
    """The guide's code analysis pipeline, as written (a list of tasks without names)."""
    return {
        "name": "code_analysis_pipeline",
        "description": "Comprehensive code analysis",
        "tasks": [
            {
                "id": "parse",
                "component": "codex",
                "action": "parse_code",
                "input": {"code": code, "language": "python"},
            },
            {
                "id": "analyze_complexity",
                "component": "sophia",
                "action": "measure_complexity",
                "input": {"ast": "${tasks.parse.output.ast}"},
                "depends_on": ["parse"],
            },
            {
                "id": "security_scan",
                "component": "metis",
                "action": "security_analysis",
                "input": {"code": code, "ast": "${tasks.parse.output.ast}"},
                "depends_on": ["parse"],
            },
            {
                "id": "generate_report",
                "component": "rhetor",
                "action": "create_report",
                "input": {
                    "complexity": "${tasks.analyze_complexity.output}",
                    "security": "${tasks.security_scan.output}",
                    "template": "code_analysis",
                },
                "depends_on": ["analyze_complexity", "security_scan"],
            },
        ],
    }


PEERS = ("codex", "sophia", "metis", "rhetor")


@pytest.fixture
def peers(local_hermes: LocalHermes, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, tuple[FlakyPeer, str]]]:
    """The guide's four components as scripted peers, registered in the local Hermes."""
    monkeypatch.setenv("HERMES_URL", local_hermes.url)
    with (
        flaky_peer() as codex,
        flaky_peer() as sophia,
        flaky_peer() as metis,
        flaky_peer() as rhetor,
    ):
        found = dict(zip(PEERS, (codex, sophia, metis, rhetor), strict=True))
        codex[0].default = Step(200, {"output": {"ast": {"body": ["def"]}, "lines": 4}})
        sophia[0].default = Step(200, {"output": {"complexity": 3}})
        metis[0].default = Step(200, {"output": {"issues": []}})
        rhetor[0].default = Step(200, {"output": {"report": "fine"}})
        for name, (_peer, url) in found.items():
            register_peer(local_hermes.url, name, url)
        yield found


async def test_the_guides_workflow_runs_on_the_local_engine(peers: dict[str, tuple[FlakyPeer, str]]) -> None:
    result = await WorkflowIntegration(engine=LocalWorkflowEngine(config=FAST)).run(analysis("def f(): pass"))
    assert result["state"] == "completed"
    assert result["output"]["generate_report"] == {"output": {"report": "fine"}}
    # Whole-string expressions keep their type: the AST arrives as a dict, the outputs as dicts.
    (scan,) = peers["metis"][0].received
    assert scan.path == "/api/actions/security_analysis"
    assert scan.body["params"] == {"code": "def f(): pass", "ast": {"body": ["def"]}}
    assert scan.body["context"]["task_id"] == "security_scan"
    (report,) = peers["rhetor"][0].received
    # A task's output is the action's whole answer, so `${tasks.x.output}` reads its `output` key.
    assert report.body["params"]["complexity"] == {"complexity": 3}


async def test_ready_tasks_run_concurrently_and_embedded_expressions_become_text() -> None:
    with flaky_peer() as (peer, url):
        peer.default = Step(200, {"output": {"n": 7}}, delay=0.3)
        definition = {
            "name": "fan_out",
            "tasks": [
                {"id": "a", "component": "p", "action": "go", "input": {"x": "${input.x}"}},
                {"id": "b", "component": "p", "action": "go", "input": {"x": "${input.x}"}},
                {
                    "id": "c",
                    "component": "p",
                    "action": "go",
                    "input": {"label": "n=${tasks.a.output.n} of ${input.x}", "n": "${tasks.b.output.n}"},
                    "depends_on": ["a", "b"],
                },
            ],
        }
        engine = LocalWorkflowEngine(config=FAST, addresses={"p": url})
        result = await WorkflowIntegration(engine).run(definition, {"x": 5})
    assert result["state"] == "completed"
    assert peer.max_in_flight == 2  # a and b at once
    assert [r.body["params"] for r in peer.received[:2]] == [{"x": 5}, {"x": 5}]
    assert peer.received[2].body["params"] == {"label": "n=7 of 5", "n": 7}


async def test_a_tasks_retry_policy_is_honoured() -> None:
    with flaky_peer(Step(500, {"message": "busy"}), Step(500, {"message": "busy"})) as (peer, url):
        definition = {
            "name": "retrying",
            "tasks": [
                {
                    "id": "a",
                    "component": "p",
                    "action": "go",
                    "retry_policy": {"max_retries": 2, "initial_delay": 0.01, "max_delay": 0.05},
                }
            ],
        }
        engine = LocalWorkflowEngine(config=FAST, addresses={"p": url})
        result = await WorkflowIntegration(engine).run(definition)
    assert result["state"] == "completed"
    assert result["execution"]["task_executions"]["a"]["retries"] == 2
    assert len(peer.received) == 3


async def test_a_timeout_fails_the_task_and_its_dependants_at_once() -> None:
    with flaky_peer(Step(200, {"output": {}}, delay=4)) as (_peer, url):
        definition = {
            "name": "slow",
            "tasks": [
                {"id": "slow", "component": "p", "action": "go", "timeout": 1},
                {"id": "after", "component": "p", "action": "go", "depends_on": ["slow"]},
                {"id": "last", "component": "p", "action": "go", "depends_on": ["after"]},
            ],
        }
        engine = LocalWorkflowEngine(config=FAST, addresses={"p": url})
        result = await WorkflowIntegration(engine).run(definition, max_wait=20)
    tasks = result["execution"]["task_executions"]
    assert result["state"] == "failed"
    assert "timeout of 1s" in tasks["slow"]["error"]
    assert (tasks["after"]["status"], tasks["last"]["status"]) == ("failed", "failed")
    assert "task 'slow' failed" in tasks["after"]["error"]


def test_bad_definitions_are_refused_before_anything_runs() -> None:
    engine = LocalWorkflowEngine()
    base = {"component": "p", "action": "go"}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"tasks": [{**base, "id": "a", "depends_on": ["ghost"]}]}, "unknown task"),
        ({"tasks": [{**base, "id": "a", "depends_on": ["b"]}, {**base, "id": "b", "depends_on": ["a"]}]}, "cycle"),
        ({"tasks": [{"id": "a", "component": "p"}]}, "missing action"),
        ({"tasks": "parse then report"}, "needs 'tasks'"),
    ]
    for definition, message in cases:
        with pytest.raises(WorkflowError, match=message):
            asyncio.run(engine.create_workflow(definition))


def test_the_engine_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENGINE_ENV, "harmonia")
    assert isinstance(WorkflowIntegration().engine, HarmoniaClient)
    monkeypatch.setenv(ENGINE_ENV, "local")
    assert isinstance(WorkflowIntegration().engine, LocalWorkflowEngine)
    monkeypatch.setenv(ENGINE_ENV, "airflow")
    with pytest.raises(ValueError, match=f"{ENGINE_ENV}='airflow'"):
        WorkflowIntegration()


@pytest.fixture
def harmonia(peers: dict[str, tuple[FlakyPeer, str]], local_hermes: LocalHermes) -> Iterator[LocalHarmonia]:
    """Harmonia, found through Hermes; it reaches the peers by its own list, as the real one does."""
    with local_harmonia({name: url for name, (_peer, url) in peers.items()}) as harmonia:
        register_peer(local_hermes.url, "harmonia", harmonia.url)
        yield harmonia


def test_harmonia_rejects_the_guides_list_as_it_really_does(harmonia: LocalHarmonia) -> None:
    response = httpx.post(f"{harmonia.url}/api/v1/workflows", json=analysis("x"))
    assert response.status_code == 422
    assert "Input should be a valid dictionary" in response.text


async def test_the_guides_workflow_on_harmonia_reports_completed_despite_harmonias_failed(
    harmonia: LocalHarmonia, peers: dict[str, tuple[FlakyPeer, str]]
) -> None:
    workflow = WorkflowIntegration(engine="harmonia", poll_interval=0.05)
    result = await workflow.run(analysis("def f(): pass"), max_wait=30)
    assert harmonia.executions[result["id"]]["status"] == "failed"  # what Harmonia itself says
    assert result["state"] == "completed"
    assert result["output"]["generate_report"] == {"output": {"report": "fine"}}
    # Harmonia's adapter posts form fields with the parameter keys only: the values are lost.
    assert peers["metis"][0].received[-1].body == "action=security_analysis&params=code&params=ast" + (
        "&context=workflow_id&context=execution_id&context=task_id"
    )


async def test_on_harmonia_a_run_left_with_only_blocked_tasks_is_canceled(
    harmonia: LocalHarmonia, peers: dict[str, tuple[FlakyPeer, str]]
) -> None:
    peers["sophia"][0].default = Step(500, {"message": "sophia is down"})
    workflow = WorkflowIntegration(engine="harmonia", poll_interval=0.05)
    result = await workflow.run(analysis("x"), max_wait=30)
    assert result["state"] == "failed"
    assert result["canceled_waiting_tasks"] == ["generate_report"]
    assert harmonia.canceled == [result["id"]]
    tasks = result["execution"]["task_executions"]
    assert tasks["analyze_complexity"]["error"] == "Server error 500: Internal Server Error"


async def test_todays_harmonia_500_is_a_typed_error_naming_harmonia_route_status_and_message(
    harmonia: LocalHarmonia,
) -> None:
    harmonia.broken = True
    with pytest.raises(PeerHTTPError) as caught:
        await WorkflowIntegration(engine="harmonia").create_workflow(analysis("x"))
    error = caught.value
    assert (error.component, error.status) == ("harmonia", 500)
    assert "POST /api/v1/workflows" in str(error)
    assert TODAYS_500 in str(error)


class GuideWorkflowIntegration:
    """The guide's Pattern 7 class as written (only the import of `HarmoniaClient` changed)."""

    def __init__(self) -> None:
        self.harmonia = HarmoniaClient()

    async def create_analysis_workflow(self, code: str) -> dict[str, Any]:
        workflow = await self.harmonia.create_workflow(analysis(code))
        execution = await self.harmonia.execute_workflow(workflow["id"])
        return await self._monitor_execution(execution["id"])

    async def _monitor_execution(self, execution_id: str) -> dict[str, Any]:
        while True:
            status = await self.harmonia.get_execution_status(execution_id)
            if status["state"] in ["completed", "failed"]:
                return status
            await asyncio.sleep(1)


async def test_the_guides_own_workflow_class_runs_against_harmonias_contract(harmonia: LocalHarmonia) -> None:
    result = await GuideWorkflowIntegration().create_analysis_workflow("def f(): pass")
    # Harmonia ends the run `failed` (its enum bug) but every task ran: the guide's line prints the report.
    assert result["output"]["generate_report"] == {"output": {"report": "fine"}}
