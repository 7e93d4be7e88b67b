"""Every error leaves as JSON: `{"error", "message", "request_id"}`."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import Send

from ..observability import request_id_var

# Where Python's reason phrase is dated or long, a shorter, stable code.
_CODES = {413: "payload_too_large", 422: "validation_error", 500: "internal_error"}


def error_code(status: int) -> str:
    """`404` -> `not_found`: a stable, machine-readable code for each status."""
    if status in _CODES:
        return _CODES[status]
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        return "error"
    return phrase.lower().replace(" ", "_").replace("-", "_").replace("'", "")


def error_response(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    body = {"error": code, "message": message, "request_id": request_id_var.get()}
    return JSONResponse(body, status_code=status, headers=headers)


async def send_error(
    send: Send,
    status: int,
    code: str,
    message: str,
    *,
    headers: Sequence[tuple[bytes, bytes]] = (),
    **fields: str,
) -> None:
    """The same JSON shape, sent as raw ASGI messages: for answers given before the app runs
    (`RequestMiddleware`'s 400/413/500, authentication's 401/503); `fields` are added to the body."""
    body = json.dumps({"error": code, "message": message, **fields, "request_id": request_id_var.get()}).encode()
    start = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers]
    await send({"type": "http.response.start", "status": status, "headers": start})
    await send({"type": "http.response.body", "body": body})


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    return error_response(exc.status_code, error_code(exc.status_code), message, exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's usual 422 (`detail`), plus our error code, summary and request id."""
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {}
    where = ".".join(str(part) for part in first.get("loc", ()))
    body = {
        "detail": jsonable_encoder(errors),
        "error": "validation_error",
        "message": f"{where}: {first.get('msg', 'invalid request')}",
        "request_id": request_id_var.get(),
    }
    return JSONResponse(body, status_code=422)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
