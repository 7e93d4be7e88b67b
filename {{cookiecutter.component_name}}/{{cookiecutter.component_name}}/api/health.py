"""`/health` (is it working?) and `/ready` (should it get traffic?), both also on `HEAD` for probes.

Probes poll these often, so a call costs little: what never changes (name,
version, ports) is encoded once per app; each dependency is reported from its
own last real check (its probe returns what it last saw, it does not call out),
and the body is written with `json` directly. The pydantic models below only
document the shape in OpenAPI.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel
from starlette.routing import Match, Route
from starlette.types import Scope

from ..about import VERSION
from ..addresses import redact_url
from ..lifecycle import DependencyReport, Lifecycle
from ..settings import Settings

router = APIRouter(tags=["health"])

HealthStatus = Literal["healthy", "degraded", "unhealthy"]
_JSON = "application/json"


class DependencyHealth(BaseModel):
    name: str
    status: str
    required: bool = False


class Health(BaseModel):
    status: HealthStatus
    component: str
    version: str
    port: int
    ai_port: int
    uptime: float
    timestamp: str
    registered_with_hermes: bool
    dependencies: list[DependencyHealth]
    hermes: dict[str, Any] | None = None
    auth: Literal["enabled", "disabled"]  # disabled: no TEKTON_AUTH_KEYS (local development only)


class Readiness(BaseModel):
    ready: bool


def overall_status(reports: list[DependencyReport]) -> HealthStatus:
    """Unhealthy only when a required dependency is down; degraded when any other is."""
    if any(r.required and r.status == "unhealthy" for r in reports):
        return "unhealthy"
    if any(r.status in ("degraded", "unhealthy") for r in reports):
        return "degraded"
    return "healthy"


# The same few URLs come back on every call: redact each once.
_redacted = functools.lru_cache(maxsize=16)(redact_url)


def _shown(detail: Mapping[str, object]) -> dict[str, object]:
    """A probe's detail as shown to anyone: no URL with its password."""
    return {
        key: _redacted(value) if "url" in key and isinstance(value, str) else value for key, value in detail.items()
    }


class HealthReporter:
    """Builds `/health` for one app; what never changes is computed once."""

    def __init__(self, settings: Settings, lifecycle: Lifecycle) -> None:
        self.settings = settings
        self.lifecycle = lifecycle
        self.identity: dict[str, object] = {
            "component": settings.component_name.lower(),
            "version": VERSION,
            "port": settings.port,
            "ai_port": settings.ai_port,
            "auth": "enabled" if settings.auth_keys else "disabled",
        }

    def body(self) -> tuple[int, bytes]:
        """The status code and JSON body, from each dependency's last check."""
        reports = self.lifecycle.reports(self.settings.dependencies)
        hermes = next((r for r in reports if r.name == "hermes"), None)
        status = overall_status(reports)
        body = {
            "status": status,
            **self.identity,
            "uptime": round(self.lifecycle.uptime, 3),
            "timestamp": datetime.now(UTC).isoformat(),
            "registered_with_hermes": bool(hermes and hermes.detail.get("registered")),
            "dependencies": [{"name": r.name, "status": r.status, "required": r.required} for r in reports],
            "hermes": _shown(hermes.detail) if hermes and hermes.detail else None,
        }
        return (503 if status == "unhealthy" else 200), json.dumps(body, default=str).encode()


class PlainRoute(Route):
    """A Starlette route that names itself in the scope, as FastAPI's do (the metrics read the template)."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match != Match.NONE:
            child_scope["route"] = self
        return match, child_scope


# The routes below document `/health` and `/ready` in OpenAPI; requests are served by the plain
# Starlette routes added in front of them at the end of this module.
@router.get("/health", response_model=Health, responses={503: {"model": Health}}, summary="Liveness and status")
async def health(request: Request) -> Response:
    reporter: HealthReporter = request.app.state.health
    status, body = reporter.body()
    return Response(body, status_code=status, media_type=_JSON)


_READY = (200, b'{"ready":true}')
_NOT_READY = (503, b'{"ready":false}')


@router.get("/ready", response_model=Readiness, responses={503: {"model": Readiness}}, summary="Readiness for traffic")
async def ready(request: Request) -> Response:
    lifecycle: Lifecycle = request.app.state.lifecycle
    status, body = _NOT_READY if lifecycle.shutting_down else _READY
    return Response(body, status_code=status, media_type=_JSON)


# Probes call these most, and they need nothing of FastAPI's request handling (dependencies,
# validation, serialization), which costs about 40 us a call, more than the answer: plain Starlette
# routes, ahead of the documented ones, serve them. Starlette adds HEAD to a GET route (probes use it);
# the server sends the headers without the body.
router.routes[:0] = [PlainRoute("/health", health, methods=["GET"]), PlainRoute("/ready", ready, methods=["GET"])]
