"""`/api/v1`: your component's REST API. Add your routes here.

Each route takes the `request` and reads what it needs with `service_of(request)`
and `settings_of(request)` (`deps.py`), then leaves the work to `service.py`.
`service: ServiceDep` in the signature works as well, at about 35 us a request
for FastAPI's dependency solving: these are the hot routes. The framework's
routes (health, discovery, events) live in modules of their own, so this file
can be rewritten freely: the app needs only its `router`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field

from ..service import ProcessingError
from ..settings import env_name
from .deps import service_of, settings_of

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
async def process(body: ProcessRequest, request: Request) -> ProcessResponse:
    try:
        return ProcessResponse(result=await service_of(request).process(body.input))
    except ProcessingError as exc:
        raise HTTPException(422, exc.message) from exc


@router.post("/batch", response_model=BatchResponse, summary="Process many inputs; failures reported per item")
async def batch(body: BatchRequest, request: Request) -> BatchResponse:
    service, settings = service_of(request), settings_of(request)
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
