"""`GET /api/v1/discovery`: what this component is and serves.

The endpoint list is derived from the app's own OpenAPI document, so it can
never drift from what is served; Hermes gets the same list at registration.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel

from ..about import DESCRIPTION, VERSION
from .deps import SettingsDep

router = APIRouter(prefix="/api/v1", tags=["discovery"])

HTTP_METHODS = ("get", "post", "put", "patch", "delete")


class Endpoint(BaseModel):
    path: str
    methods: list[str]
    description: str


class Discovery(BaseModel):
    component: str
    version: str
    description: str
    api_version: str
    capabilities: list[str]
    dependencies: list[str]
    endpoints: list[Endpoint]


def list_endpoints(openapi: dict[str, Any]) -> list[Endpoint]:
    endpoints = []
    for path, operations in openapi.get("paths", {}).items():
        methods = [method.upper() for method in HTTP_METHODS if method in operations]
        first = operations[methods[0].lower()] if methods else {}
        endpoints.append(Endpoint(path=path, methods=methods, description=first.get("summary", "")))
    return endpoints


@router.get("/discovery", response_model=Discovery, summary="What this component is and serves")
async def discovery(request: Request, settings: SettingsDep) -> Discovery:
    return Discovery(
        component=settings.component_name,
        version=VERSION,
        description=DESCRIPTION,
        api_version=settings.api_version,
        capabilities=settings.capabilities,
        dependencies=settings.dependencies,
        endpoints=list_endpoints(request.app.openapi()),
    )
