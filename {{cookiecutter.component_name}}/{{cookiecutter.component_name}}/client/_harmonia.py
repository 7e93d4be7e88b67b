"""`HarmoniaClient`: Harmonia's workflow REST API, as the guide imports it.

The real contract (DESIGN §6): answers are `{status, message, data}`;
`POST /api/v1/workflows` takes `tasks` as a dict keyed by task id (the guide's
list is converted here), `POST /api/v1/executions` `{workflow_id, input}`,
`GET /api/v1/executions/{id}` -> `data.execution`, `POST
/api/v1/executions/{id}/cancel`. Found, called and failing as every Tekton
peer's API does (`_tekton_api.py`): a failure is a `PeerHTTPError` naming
Harmonia, the route, the status and Harmonia's own message (at Tekton
0ed6aa59 these routes answer 500).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._tekton_api import TektonAPI, as_object
from ._workflow_definition import normalize


def unwrap(answer: Any) -> Any:
    """Harmonia's `data` from `{status, message, data}`."""
    return answer.get("data") if isinstance(answer, dict) and "data" in answer else answer


def guide_status(execution_id: str, execution: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    """A status with Harmonia's `execution` and the guide's `state` and `output` (`{task_id: output}`)."""
    tasks = execution.get("task_executions") or {}
    return {
        "id": execution_id,
        "state": execution.get("status"),
        "output": {tid: task.get("output") for tid, task in tasks.items() if isinstance(task, Mapping)},
        "execution": dict(execution),
        **extra,
    }


class HarmoniaClient(TektonAPI):
    """`await HarmoniaClient().create_workflow({...})`, `execute_workflow(id)`, `get_execution_status(id)`."""

    peer = "harmonia"

    async def create_workflow(self, definition: Mapping[str, Any]) -> dict[str, Any]:
        """Create a workflow definition (tasks as the guide's list or Harmonia's dict); Harmonia's `data`."""
        return as_object(unwrap(await self.call("workflows", "POST", normalize(definition))), "data")

    async def execute_workflow(self, workflow_id: str, input: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Start an execution; Harmonia's `data` (`id`, `status`, `task_executions`)."""
        body = {"workflow_id": workflow_id, "input": dict(input or {})}
        return as_object(unwrap(await self.call("executions", "POST", body)), "data")

    async def get_execution_status(self, execution_id: str) -> dict[str, Any]:
        """`execution` and `workflow_definition` as Harmonia sends them, plus the guide's `state` and `output`."""
        data = unwrap(await self.call(f"executions/{execution_id}"))
        data = data if isinstance(data, Mapping) else {}
        execution = data.get("execution")
        if not isinstance(execution, Mapping):
            execution = data
        return guide_status(execution_id, execution, workflow_definition=data.get("workflow_definition"))

    async def cancel_execution(self, execution_id: str) -> None:
        await self.call(f"executions/{execution_id}/cancel", "POST")
