"""Actions over HTTP, as Harmonia calls them (DESIGN §6, §11).

`GET /api/capabilities` -> `{"actions": [...]}`; `GET /api/actions/{name}/schema`;
`POST /api/actions/{name}` with JSON `{action, params, context}` -> `{"output": ...}`
(so a workflow's `${tasks.<id>.output.x}` reads the result's `x`). Harmonia's
adapter really sends `application/x-www-form-urlencoded` with the parameter
*names* only; such a call is answered 422 naming the parameters whose values
are missing, unless the action needs none. A repeated call with the same
`Idempotency-Key` header (or `context.idempotency_key`, else the context's
`execution_id` and `task_id`) returns the first call's result.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Header, HTTPException, Request
from pydantic import BaseModel

from ..actions import REGISTRY, Action, ActionInputError, Idempotency, IdempotencyConflict
from ..service import ProcessingError
from .deps import ServiceDep

router = APIRouter(tags=["actions"])


def _results(request: Request) -> Idempotency:
    """This app's remembered action results (one per app, made at its first action call)."""
    state = request.app.state
    if getattr(state, "action_results", None) is None:
        state.action_results = Idempotency()
    results: Idempotency = state.action_results
    return results


class ActionCall(BaseModel):
    # Plain `{}` defaults: pydantic copies them for each instance. A `default_factory=dict` would make
    # pydantic parse `dict`'s signature, which compiles the tokenizer's regular expressions at start-up.
    action: str | None = None
    params: dict[str, Any] = {}
    context: dict[str, Any] = {}


class Capabilities(BaseModel):
    actions: list[str]


class ActionResult(BaseModel):
    output: Any


def _action(name: str) -> Action:
    found = REGISTRY.get(name)
    if found is None:
        raise HTTPException(404, f"no action {name!r}; this component offers {sorted(REGISTRY)}")
    return found


@router.get("/api/capabilities", response_model=Capabilities, summary="The actions this component offers")
async def capabilities() -> Capabilities:
    return Capabilities(actions=sorted(REGISTRY))


@router.get("/api/actions/{name}/schema", summary="An action's description and JSON Schemas of its input and output")
async def schema(name: str) -> dict[str, Any]:
    return _action(name).schema()


async def _read_call(request: Request, found: Action) -> ActionCall:
    content_type = request.headers.get("content-type", "")
    raw = await request.body()
    if content_type.startswith("application/x-www-form-urlencoded"):
        fields = parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)
        named = [value for key, value in fields if key == "params"]
        missing = found.required  # named or not, a form field carries no parameter's value
        if missing:
            raise HTTPException(
                422,
                f"action {found.name!r} needs values for {missing}: this form-encoded call carries parameter "
                f"names only ({named or 'none'}), not their values; send JSON {{action, params, context}}",
            )
        return ActionCall(action=found.name)
    try:
        return ActionCall.model_validate_json(raw or b"{}")
    except ValueError as exc:
        raise HTTPException(422, f"body must be JSON {{action, params, context}}: {exc}") from None


def _idempotency_key(call: ActionCall, header: str | None, name: str) -> str | None:
    key = header or call.context.get("idempotency_key")
    if key:
        return f"{name}:key:{key}"
    execution, task = call.context.get("execution_id"), call.context.get("task_id")
    if execution and task:
        return f"{name}:run:{execution}:{task}"
    return None


# The body is read by hand (JSON or Harmonia's form), so describe it for the OpenAPI document here.
_BODY = {
    "requestBody": {
        "required": False,
        "content": {
            "application/json": {"schema": ActionCall.model_json_schema()},
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "action": {"type": "string"},
                        "params": {"type": "array", "items": {"type": "string"}},
                        "context": {"type": "array", "items": {"type": "string"}},
                    },
                }
            },
        },
    }
}


@router.post(
    "/api/actions/{name}",
    response_model=ActionResult,
    summary="Run an action: {action, params, context}",
    openapi_extra=_BODY,
)
async def run_action(
    name: str,
    request: Request,
    service: ServiceDep,
    idempotency_key: str | None = Header(None, description="Repeats with this key get the first result"),
) -> ActionResult:
    found = _action(name)
    call = await _read_call(request, found)
    if call.action not in (None, name):
        raise HTTPException(422, f"body names action {call.action!r} but the path is /api/actions/{name}")
    key = _idempotency_key(call, idempotency_key, name)
    try:
        output = await _results(request).run(key, call.params, lambda: found.run(service, call.params))
    except ActionInputError as exc:
        raise HTTPException(422, str(exc)) from None
    except IdempotencyConflict as exc:
        raise HTTPException(409, str(exc)) from None
    except ProcessingError as exc:
        raise HTTPException(422, exc.message) from exc
    return ActionResult(output=output)
