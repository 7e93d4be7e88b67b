"""A local Harmonia keeping the real contract (DESIGN §6) and today's behaviour (§11), faults included.

Routes: `POST /api/v1/workflows` (201; `tasks` must be a dict keyed by task
id, each with `id, name, component, action`: a list gets FastAPI's 422
"Input should be a valid dictionary"), `POST /api/v1/executions` (201),
`GET /api/v1/executions/{id}` (`data.execution`, `data.workflow_definition`),
`POST /api/v1/executions/{id}/cancel`; answers are `{status, message, data}`.
It runs a workflow the way Harmonia's engine does today: it reads each
component's `/api/capabilities` and action schemas once, posts
`application/x-www-form-urlencoded` bodies carrying parameter **keys only**,
takes the whole JSON answer as the task output, drops a 5xx body ("Server
error 500: Internal Server Error"), ignores `timeout`, leaves the dependants
of a failed task pending forever, and ends every finished run `failed` (its
enum bug). Components are found in `components` (name -> base URL): Harmonia
never reads Hermes back. `broken = True` answers 500 as the stock Harmonia does.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field

from .servers import running_server

TODAYS_500 = "'StateManager' object has no attribute 'save_workflow_definition'"


class TaskDefinition(BaseModel):
    id: str
    name: str
    component: str
    action: str
    input: dict[str, Any] = Field(default_factory=dict)
    depends_on: list[str] = Field(default_factory=list)
    retry_policy: dict[str, Any] | None = None
    timeout: int | None = None


class WorkflowCreate(BaseModel):
    name: str
    description: str = ""
    tasks: dict[str, TaskDefinition]


class ExecutionCreate(BaseModel):
    workflow_id: uuid.UUID
    input: dict[str, Any] = Field(default_factory=dict)


@dataclass
class LocalHarmonia:
    components: dict[str, str] = field(default_factory=dict)
    broken: bool = False
    url: str = ""
    workflows: dict[str, dict[str, Any]] = field(default_factory=dict)
    executions: dict[str, dict[str, Any]] = field(default_factory=dict)
    canceled: list[str] = field(default_factory=list)
    capability_reads: list[str] = field(default_factory=list)
    _runs: dict[str, asyncio.Task[None]] = field(default_factory=dict)

    def app(self) -> FastAPI:
        app = FastAPI()

        def answer(message: str, data: Any) -> dict[str, Any]:
            return {"status": "success", "message": message, "data": data}

        def refuse_if_broken() -> None:
            if self.broken:
                raise HTTPException(500, TODAYS_500)

        @app.post("/api/v1/workflows", status_code=201)
        async def create_workflow(body: WorkflowCreate) -> dict[str, Any]:
            refuse_if_broken()
            workflow = {"id": str(uuid.uuid4()), **body.model_dump()}
            self.workflows[workflow["id"]] = workflow
            return answer(f"Workflow definition '{body.name}' created", workflow)

        @app.post("/api/v1/executions", status_code=201)
        async def create_execution(body: ExecutionCreate) -> dict[str, Any]:
            refuse_if_broken()
            workflow = self.workflows.get(str(body.workflow_id))
            if workflow is None:
                raise HTTPException(404, f"Workflow definition {body.workflow_id} not found")
            execution = {
                "id": str(uuid.uuid4()),
                "workflow_id": workflow["id"],
                "status": "pending",
                "input": body.input,
                "output": {},
                "error": None,
                "task_executions": {
                    tid: {"task_id": tid, "status": "pending", "input": {}, "output": {}, "error": None, "retries": 0}
                    for tid in workflow["tasks"]
                },
            }
            self.executions[execution["id"]] = execution
            self._runs[execution["id"]] = asyncio.create_task(self._run(execution, workflow))
            return answer(f"Started workflow execution for '{workflow['name']}'", execution)

        @app.get("/api/v1/executions/{execution_id}")
        async def get_execution(execution_id: str) -> dict[str, Any]:
            refuse_if_broken()
            execution = self.executions.get(execution_id)
            if execution is None:
                raise HTTPException(404, f"Workflow execution {execution_id} not found")
            definition = self.workflows[execution["workflow_id"]]
            return answer(
                f"Retrieved workflow execution {execution_id}",
                {"execution": execution, "workflow_definition": definition, "summary": None},
            )

        @app.post("/api/v1/executions/{execution_id}/cancel")
        async def cancel(execution_id: str) -> dict[str, Any]:
            run = self._runs.get(execution_id)
            if run is None or run.done():
                raise HTTPException(404, f"Workflow execution {execution_id} not found or not running")
            run.cancel()
            self.canceled.append(execution_id)
            self.executions[execution_id]["status"] = "canceled"
            return answer(f"Cancelled workflow execution {execution_id}", None)

        @app.get("/health")
        async def health() -> dict[str, Any]:
            return {"status": "healthy"}

        return app

    async def _run(self, execution: dict[str, Any], workflow: dict[str, Any]) -> None:
        states = execution["task_executions"]
        execution["status"] = "running"
        async with httpx.AsyncClient(timeout=30.0) as http:
            while True:
                ready = [
                    task
                    for tid, task in workflow["tasks"].items()
                    if states[tid]["status"] == "pending"
                    and all(states[dep]["status"] == "completed" for dep in task["depends_on"])
                ]
                if not ready:
                    break
                await asyncio.gather(*(self._run_task(http, execution, task) for task in ready))
        if any(state["status"] == "pending" for state in states.values()):
            await asyncio.Event().wait()  # dependants of a failed task: pending forever, run never ends
        execution["status"] = "failed"  # the enum bug: even a run whose tasks all completed

    async def _run_task(self, http: httpx.AsyncClient, execution: dict[str, Any], task: dict[str, Any]) -> None:
        state = execution["task_executions"][task["id"]]
        state["status"] = "running"
        outputs = {tid: s["output"] for tid, s in execution["task_executions"].items() if s["status"] == "completed"}
        params = _substitute(task["input"], {"tasks": outputs, "input": execution["input"]})
        state["input"] = params
        base = self.components.get(task["component"], "")
        retries = int((task.get("retry_policy") or {}).get("max_retries", 0))
        for attempt in range(retries + 1):
            state["retries"] = attempt
            try:
                state["output"] = await self._call(http, base, task["action"], params, execution, task["id"])
            except (RuntimeError, httpx.HTTPError, ValueError) as exc:
                state["error"] = str(exc)
                continue
            state.update(status="completed", error=None)
            return
        state["status"] = "failed"

    async def _call(
        self,
        http: httpx.AsyncClient,
        base: str,
        action: str,
        params: dict[str, Any],
        execution: dict[str, Any],
        tid: str,
    ) -> Any:
        if base not in self.capability_reads:  # once per component, then cached
            self.capability_reads.append(base)
            capabilities = (await http.get(f"{base}/api/capabilities")).json()
            for name in capabilities.get("actions", []):
                await http.get(f"{base}/api/actions/{name}/schema")
        context = {"workflow_id": execution["workflow_id"], "execution_id": execution["id"], "task_id": tid}
        # aiohttp's form encoding of nested dicts: each dict contributes its keys only, values are lost.
        form = [("action", action), *(("params", key) for key in params), *(("context", key) for key in context)]
        for _ in range(3):  # three tries per attempt
            response = await http.post(
                f"{base}/api/actions/{action}",
                content=urlencode(form),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            if response.status_code < 500:
                break
        if response.status_code >= 500:
            raise RuntimeError(f"Server error {response.status_code}: Internal Server Error")
        if response.status_code >= 400:
            raise RuntimeError(f"Client error {response.status_code}: {response.text}")
        return response.json()


def _substitute(data: Any, context: dict[str, Any]) -> Any:
    if isinstance(data, dict):
        return {key: _substitute(value, context) for key, value in data.items()}
    if isinstance(data, str) and data.startswith("${") and data.endswith("}"):
        current: Any = context
        for part in data[2:-1].split("."):
            current = current.get(part) if isinstance(current, dict) else None
        return current
    return data


@contextmanager
def local_harmonia(components: dict[str, str] | None = None) -> Iterator[LocalHarmonia]:
    harmonia = LocalHarmonia(components=dict(components or {}))
    with running_server(harmonia.app()) as url:
        harmonia.url = url
        yield harmonia
