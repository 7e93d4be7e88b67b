"""`/health` (is it working?) and `/ready` (should it get traffic?)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from ..about import VERSION
from ..lifecycle import DependencyReport
from .deps import LifecycleDep, SettingsDep

router = APIRouter(tags=["health"])

HealthStatus = Literal["healthy", "degraded", "unhealthy"]


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


class Readiness(BaseModel):
    ready: bool


def overall_status(reports: list[DependencyReport]) -> HealthStatus:
    """Unhealthy only when a required dependency is down; degraded when any other is."""
    if any(r.required and r.status == "unhealthy" for r in reports):
        return "unhealthy"
    if any(r.status in ("degraded", "unhealthy") for r in reports):
        return "degraded"
    return "healthy"


@router.get("/health", response_model=Health, responses={503: {"model": Health}}, summary="Liveness and status")
async def health(settings: SettingsDep, lifecycle: LifecycleDep) -> JSONResponse:
    reports = lifecycle.reports(settings.dependencies)
    hermes = next((r for r in reports if r.name == "hermes"), None)
    body = Health(
        status=overall_status(reports),
        component=settings.component_name.lower(),
        version=VERSION,
        port=settings.port,
        ai_port=settings.ai_port,
        uptime=round(lifecycle.uptime, 3),
        timestamp=datetime.now(UTC).isoformat(),
        registered_with_hermes=bool(hermes and hermes.detail.get("registered")),
        dependencies=[DependencyHealth(name=r.name, status=r.status, required=r.required) for r in reports],
        hermes=dict(hermes.detail) if hermes and hermes.detail else None,
    )
    return JSONResponse(body.model_dump(), status_code=503 if body.status == "unhealthy" else 200)


@router.get("/ready", response_model=Readiness, responses={503: {"model": Readiness}}, summary="Readiness for traffic")
async def ready(lifecycle: LifecycleDep) -> JSONResponse:
    is_ready = not lifecycle.shutting_down
    return JSONResponse({"ready": is_ready}, status_code=200 if is_ready else 503)
