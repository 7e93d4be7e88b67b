"""`WorkflowIntegration` (the guide's Pattern 7): define, run and watch multi-component workflows.

Two engines behind the same calls, chosen by `engine=` or
`<NAME>_WORKFLOW_ENGINE`: `local` (the default: runs in this process, works
today) and `harmonia` (Tekton's Harmonia over its REST API; at Tekton
0ed6aa59 its workflow routes answer 500). The monitor polls with backoff
(Harmonia's event streams do not work) and smooths over Harmonia's known
faults: it reports `completed` when every task completed although Harmonia
says `failed`, and cancels a run in which only dependants of a failed task
remain (Harmonia would leave them pending forever).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any, Protocol

from ..about import COMPONENT_NAME
from ..addresses import environment
from ..backoff import Backoff
from ..hermes import HermesClient
from ._config import IntegrationConfig
from ._errors import PeerTimeoutError, WorkflowError
from ._harmonia import HarmoniaClient
from ._local_engine import LocalWorkflowEngine
from ._workflow_definition import dependants

ENGINE_ENV = f"{COMPONENT_NAME.upper()}_WORKFLOW_ENGINE"
ENGINES = ("local", "harmonia")
DEFAULT_ENGINE = "local"
FINAL = ("completed", "failed", "canceled")


class WorkflowEngine(Protocol):
    async def create_workflow(self, definition: Mapping[str, Any]) -> dict[str, Any]: ...
    async def execute_workflow(self, workflow_id: str, input: Mapping[str, Any] | None = None) -> dict[str, Any]: ...
    async def get_execution_status(self, execution_id: str) -> dict[str, Any]: ...
    async def cancel_execution(self, execution_id: str) -> None: ...


def engine_named(name: str, config: IntegrationConfig | None, discovery: HermesClient | None) -> WorkflowEngine:
    choice = name.strip().lower()
    if choice == "local":
        return LocalWorkflowEngine(config=config, discovery=discovery)
    if choice == "harmonia":
        return HarmoniaClient(config=config, discovery=discovery)
    raise ValueError(f"{ENGINE_ENV}={name!r} is not a workflow engine: choose one of {', '.join(ENGINES)}")


class WorkflowIntegration:
    """`create_workflow(definition)`, `execute_workflow(id, input)`, `get_execution_status(id)`,
    `wait_for_completion(id)` (the monitor) and `run(definition, input)` (all three)."""

    def __init__(
        self,
        engine: str | WorkflowEngine | None = None,
        *,
        config: IntegrationConfig | None = None,
        discovery: HermesClient | None = None,
        poll_interval: float = 0.2,
        max_poll_interval: float = 2.0,
    ) -> None:
        if engine is None:
            engine = environment().get(ENGINE_ENV) or DEFAULT_ENGINE
        self.engine = engine_named(engine, config, discovery) if isinstance(engine, str) else engine
        self.polling = Backoff(poll_interval, max(poll_interval, max_poll_interval), jitter=0.2)
        self._definitions: dict[str, Mapping[str, Any]] = {}

    @property
    def harmonia(self) -> WorkflowEngine:
        """The guide's `self.harmonia`: the engine, whichever it is."""
        return self.engine

    async def create_workflow(self, definition: Mapping[str, Any]) -> dict[str, Any]:
        created = await self.engine.create_workflow(definition)
        self._definitions[str(created.get("id"))] = created
        return created

    async def execute_workflow(self, workflow_id: str, input: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return await self.engine.execute_workflow(str(workflow_id), input)

    async def get_execution_status(self, execution_id: str) -> dict[str, Any]:
        return await self.engine.get_execution_status(str(execution_id))

    async def wait_for_completion(self, execution_id: str, max_wait: float | None = None) -> dict[str, Any]:
        """Poll until the run ends; the final status (`state` completed, failed or canceled)."""
        deadline = None if max_wait is None else time.monotonic() + max_wait
        attempt = 0
        while True:
            status = await self.get_execution_status(execution_id)
            if await self._settled(status):
                return status
            wait = self.polling.delay(attempt)
            attempt += 1
            if deadline is not None and time.monotonic() + wait > deadline:
                raise PeerTimeoutError(
                    f"workflow execution {execution_id} still {status['state']} after {max_wait}s",
                    component="workflow",
                )
            await asyncio.sleep(wait)

    async def run(
        self, definition: Mapping[str, Any], input: Mapping[str, Any] | None = None, max_wait: float | None = None
    ) -> dict[str, Any]:
        workflow = await self.create_workflow(definition)
        execution = await self.execute_workflow(workflow["id"], input)
        return await self.wait_for_completion(execution["id"], max_wait)

    async def _settled(self, status: dict[str, Any]) -> bool:
        tasks = status["execution"].get("task_executions") or {}
        states = {tid: task.get("status") for tid, task in tasks.items() if isinstance(task, Mapping)}
        if states and all(state == "completed" for state in states.values()):
            status["state"] = "completed"  # Harmonia ends every run `failed` (an enum bug)
            return True
        if status["state"] in FINAL:
            return True
        failed = [tid for tid, state in states.items() if state == "failed"]
        if not failed:
            return False
        definition = status.get("workflow_definition") or self._definitions.get(
            str(status["execution"].get("workflow_id"))
        )
        if not isinstance(definition, Mapping) or not isinstance(definition.get("tasks"), Mapping):
            raise WorkflowError(f"cannot tell what is left of execution {status['id']}: no workflow definition")
        blocked: set[str] = set().union(*(dependants(definition["tasks"], tid) for tid in failed))
        unfinished = {tid for tid, state in states.items() if state not in FINAL}
        if unfinished and unfinished <= blocked:
            # Only tasks that can never run are left: Harmonia would wait for them forever.
            await self.engine.cancel_execution(status["id"])
            status["state"] = "failed"
            status["canceled_waiting_tasks"] = sorted(unfinished)
            return True
        return False
