"""`LocalWorkflowEngine`: runs Harmonia's workflow definitions in this process.

Same calls and result shape as `HarmoniaClient`, so switching engines changes
nothing for the caller. Each task is a call to a component's action
(`POST /api/actions/<action>` `{action, params, context}`) through
`ComponentClient`, so peers are found through Hermes and calls get the
breaker, retries, signing and metrics. Unlike Harmonia today: tasks whose
dependencies are done run concurrently, a task's `timeout` and
`retry_policy` are honoured, and a failed task fails its dependants at once
instead of leaving them pending forever.
"""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ..backoff import Backoff
from ..hermes import HermesClient
from ._component import ComponentClient, decode
from ._config import IntegrationConfig
from ._errors import IntegrationError, WorkflowError
from ._harmonia import guide_status
from ._workflow_definition import dependants, normalize, substitute

UNFINISHED = ("pending", "running")


def _now() -> str:
    return datetime.now(UTC).isoformat()


class LocalWorkflowEngine:
    """`addresses` pins components to base URLs (tests); others are found through Hermes."""

    def __init__(
        self,
        *,
        config: IntegrationConfig | None = None,
        discovery: HermesClient | None = None,
        addresses: Mapping[str, str] | None = None,
    ) -> None:
        self.config = config
        self.discovery = discovery
        self.addresses = dict(addresses or {})
        self._workflows: dict[str, dict[str, Any]] = {}
        self._executions: dict[str, dict[str, Any]] = {}
        self._runs: dict[str, asyncio.Task[None]] = {}
        self._clients: dict[str, ComponentClient] = {}

    async def create_workflow(self, definition: Mapping[str, Any]) -> dict[str, Any]:
        workflow = normalize(definition)
        workflow["id"] = str(uuid.uuid4())
        self._workflows[workflow["id"]] = workflow
        return copy.deepcopy(workflow)

    async def execute_workflow(self, workflow_id: str, input: Mapping[str, Any] | None = None) -> dict[str, Any]:
        workflow = self._workflows.get(str(workflow_id))
        if workflow is None:
            raise WorkflowError(f"workflow definition {workflow_id} not found", component="local")
        execution: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "workflow_id": workflow["id"],
            "status": "pending",
            "start_time": _now(),
            "end_time": None,
            "input": dict(input or {}),
            "output": {},
            "error": None,
            "task_executions": {
                tid: {"task_id": tid, "status": "pending", "input": {}, "output": {}, "error": None, "retries": 0}
                for tid in workflow["tasks"]
            },
        }
        self._executions[execution["id"]] = execution
        self._runs[execution["id"]] = asyncio.create_task(self._run(execution, workflow))
        return copy.deepcopy(execution)

    async def get_execution_status(self, execution_id: str) -> dict[str, Any]:
        execution = self._executions.get(str(execution_id))
        if execution is None:
            raise WorkflowError(f"workflow execution {execution_id} not found", component="local")
        workflow = self._workflows[execution["workflow_id"]]
        return guide_status(execution["id"], copy.deepcopy(execution), workflow_definition=copy.deepcopy(workflow))

    async def cancel_execution(self, execution_id: str) -> None:
        run = self._runs.get(str(execution_id))
        if run is not None and not run.done():
            run.cancel()
            await asyncio.gather(run, return_exceptions=True)

    async def _run(self, execution: dict[str, Any], workflow: Mapping[str, Any]) -> None:
        tasks: Mapping[str, Mapping[str, Any]] = workflow["tasks"]
        states: dict[str, dict[str, Any]] = execution["task_executions"]
        running: dict[asyncio.Task[None], str] = {}
        execution["status"] = "running"
        try:
            while True:
                for tid, task in tasks.items():
                    ready = all(states[dep]["status"] == "completed" for dep in task["depends_on"])
                    if states[tid]["status"] == "pending" and ready:
                        states[tid]["status"] = "running"
                        running[asyncio.create_task(self._run_task(execution, task))] = tid
                if not running:
                    break
                done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for finished in done:
                    tid = running.pop(finished)
                    if states[tid]["status"] == "failed":
                        for blocked in dependants(tasks, tid):
                            if states[blocked]["status"] == "pending":
                                states[blocked].update(status="failed", error=f"not run: task {tid!r} failed")
        except asyncio.CancelledError:
            for pending in running:
                pending.cancel()
            for state in states.values():
                if state["status"] in UNFINISHED:
                    state["status"] = "canceled"
            execution.update(status="canceled", end_time=_now())
            raise
        failures = [f"{tid}: {state['error']}" for tid, state in states.items() if state["status"] == "failed"]
        execution["output"] = {tid: state["output"] for tid, state in states.items() if state["status"] == "completed"}
        execution.update(
            status="failed" if failures else "completed", error="; ".join(failures) or None, end_time=_now()
        )

    async def _run_task(self, execution: dict[str, Any], task: Mapping[str, Any]) -> None:
        tid = task["id"]
        state = execution["task_executions"][tid]
        outputs = {
            other: done["output"]
            for other, done in execution["task_executions"].items()
            if done["status"] == "completed"
        }
        state.update(input=substitute(task.get("input") or {}, {"tasks": outputs, "input": execution["input"]}))
        state["start_time"] = _now()
        policy = task.get("retry_policy") or {}
        retries = int(policy.get("max_retries", 0))
        backoff = Backoff(
            float(policy.get("initial_delay", 1.0)),
            max(float(policy.get("max_delay", 60.0)), float(policy.get("initial_delay", 1.0))),
            multiplier=max(float(policy.get("backoff_multiplier", 2.0)), 1.0),
            jitter=0.0,
        )
        timeout = task.get("timeout")
        for attempt in range(retries + 1):
            state["retries"] = attempt
            try:
                async with asyncio.timeout(float(timeout) if timeout else None):
                    state["output"] = await self._call(execution, task, state["input"], attempt)
            except TimeoutError:
                state["error"] = f"{task['component']}.{task['action']} did not finish within its timeout of {timeout}s"
            except IntegrationError as exc:
                state["error"] = str(exc)
            else:
                state.update(status="completed", error=None, end_time=_now())
                return
            if attempt < retries:
                await asyncio.sleep(backoff.delay(attempt))
        state.update(status="failed", end_time=_now())

    async def _call(self, execution: Mapping[str, Any], task: Mapping[str, Any], params: Any, attempt: int) -> Any:
        component, action = task["component"], task["action"]
        client = self._clients.get(component)
        if client is None:
            client = self._clients[component] = ComponentClient(
                component, base_url=self.addresses.get(component), config=self.config, discovery=self.discovery
            )
        body = {
            "action": action,
            "params": params,
            "context": {
                "workflow_id": execution["workflow_id"],
                "execution_id": execution["id"],
                "task_id": task["id"],
                "attempt": attempt,
            },
        }
        response = await client.request("POST", f"/api/actions/{action}", json=body, label=f"actions/{action}")
        return decode(response)
