"""`/api/v1`: the component's REST API. Add your routes here."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field

from ..about import DESCRIPTION, VERSION
from ..service import ProcessingError
from ..settings import env_name
from .dependencies import ProcessorDep, SettingsDep

router = APIRouter(prefix="/api/v1", tags=["v1"])


class ProcessRequest(BaseModel):
    input: Any = Field(description="Any JSON value to process")


class ProcessResponse(BaseModel):
    result: Any


class BatchRequest(BaseModel):
    items: list[dict[str, Any]] = Field(description="Free-form objects, processed one by one")


class ItemError(BaseModel):
    code: str
    message: str


class ProcessedItem(BaseModel):
    index: int
    result: Any


class FailedItem(BaseModel):
    index: int
    error: ItemError


class BatchResponse(BaseModel):
    processed: list[ProcessedItem]
    failed: list[FailedItem]


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


HTTP_METHODS = ("get", "post", "put", "patch", "delete")


def list_endpoints(openapi: dict[str, Any]) -> list[Endpoint]:
    """Derived from the app's own OpenAPI schema, so it can never drift from what is served."""
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


@router.post("/process", response_model=ProcessResponse, summary="Process one input")
async def process(body: ProcessRequest, processor: ProcessorDep) -> ProcessResponse:
    try:
        return ProcessResponse(result=await processor.process(body.input))
    except ProcessingError as exc:
        raise HTTPException(422, exc.message) from exc


@router.post("/batch", response_model=BatchResponse, summary="Process many inputs; failures reported per item")
async def batch(body: BatchRequest, processor: ProcessorDep, settings: SettingsDep) -> BatchResponse:
    if len(body.items) > settings.max_batch_items:
        raise HTTPException(
            413,
            f"batch has {len(body.items)} items; the limit is {settings.max_batch_items} "
            f"(set by {env_name('max_batch_items')})",
        )
    processed: list[ProcessedItem] = []
    failed: list[FailedItem] = []
    for index, item in enumerate(body.items):
        try:
            processed.append(ProcessedItem(index=index, result=await processor.process(item)))
        except ProcessingError as exc:
            failed.append(FailedItem(index=index, error=ItemError(code=exc.code, message=exc.message)))
    return BatchResponse(processed=processed, failed=failed)
