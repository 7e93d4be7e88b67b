"""`/api/v1`: your component's REST API. Add your routes here.

Each route asks for what it needs in its signature (`service: ServiceDep`,
`settings: SettingsDep`; all are in `deps.py`) and leaves the work to
`service.py`. The framework's routes (health, discovery, events) live in
modules of their own, so this file can be rewritten freely: the app needs
only its `router`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from ..service import ProcessingError
from ..settings import env_name
from .deps import ServiceDep, SettingsDep

router = APIRouter(prefix="/api/v1", tags=["v1"])


class ProcessRequest(BaseModel):
    # What `service.process` refuses (422 `empty_input`) is in the schema too, so clients
    # (and schemathesis) know: any JSON value but null, "", [] and {}.
    input: Any = Field(
        description="Any non-empty JSON value to process", json_schema_extra={"not": {"enum": [None, "", [], {}]}}
    )


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


@router.post("/process", response_model=ProcessResponse, summary="Process one input")
async def process(body: ProcessRequest, service: ServiceDep) -> ProcessResponse:
    try:
        return ProcessResponse(result=await service.process(body.input))
    except ProcessingError as exc:
        raise HTTPException(422, exc.message) from exc


@router.post("/batch", response_model=BatchResponse, summary="Process many inputs; failures reported per item")
async def batch(body: BatchRequest, service: ServiceDep, settings: SettingsDep) -> BatchResponse:
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
            processed.append(ProcessedItem(index=index, result=await service.process(item)))
        except ProcessingError as exc:
            failed.append(FailedItem(index=index, error=ItemError(code=exc.code, message=exc.message)))
    return BatchResponse(processed=processed, failed=failed)
