"""`HarmoniaClient`: Harmonia's workflow REST API, as the guide imports it.

The real contract (DESIGN §6): answers are `{status, message, data}`;
`POST /api/v1/workflows` takes `tasks` as a dict keyed by task id (the guide's
list is converted here), `POST /api/v1/executions` `{workflow_id, input}`,
`GET /api/v1/executions/{id}` -> `data.execution`, `POST
/api/v1/executions/{id}/cancel`. Built on `ComponentClient`: Harmonia is
found through Hermes, and a failure is a `PeerHTTPError` naming Harmonia, the
route, the status and Harmonia's own message (at Tekton 0ed6aa59 these routes
answer 500).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..hermes import HermesClient
from ._component import ComponentClient
from ._config import IntegrationConfig
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


class HarmoniaClient:
    """`await HarmoniaClient().create_workflow({...})`, `execute_workflow(id)`, `get_execution_status(id)`."""

    def __init__(
        self,
        *,
        host: str | None = None,
        port: int | None = None,
        base_url: str | None = None,
        config: IntegrationConfig | None = None,
        discovery: HermesClient | None = None,
    ) -> None:
        self.client = ComponentClient(
            "harmonia", host=host, port=port, base_url=base_url, config=config, discovery=discovery
        )

    async def create_workflow(self, definition: Mapping[str, Any]) -> dict[str, Any]:
        """Create a workflow definition (tasks as the guide's list or Harmonia's dict); Harmonia's `data`."""
        data = unwrap(await self.client.call_api("workflows", "POST", normalize(definition)))
        return dict(data) if isinstance(data, Mapping) else {"data": data}

    async def execute_workflow(self, workflow_id: str, input: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Start an execution; Harmonia's `data` (`id`, `status`, `task_executions`)."""
        body = {"workflow_id": workflow_id, "input": dict(input or {})}
        data = unwrap(await self.client.call_api("executions", "POST", body))
        return dict(data) if isinstance(data, Mapping) else {"data": data}

    async def get_execution_status(self, execution_id: str) -> dict[str, Any]:
        """`execution` and `workflow_definition` as Harmonia sends them, plus the guide's `state` and `output`."""
        data = unwrap(await self.client.call_api(f"executions/{execution_id}"))
        data = data if isinstance(data, Mapping) else {}
        execution = data.get("execution")
        if not isinstance(execution, Mapping):
            execution = data
        return guide_status(execution_id, execution, workflow_definition=data.get("workflow_definition"))

    async def cancel_execution(self, execution_id: str) -> None:
        await self.client.call_api(f"executions/{execution_id}/cancel", "POST")
