"""Plain ASGI middleware (no `BaseHTTPMiddleware`: it costs most of the throughput).

`RequestContextMiddleware` gives every HTTP request an id, echoes it in
`X-Request-ID`, logs one access line, and turns an unhandled exception into a
JSON 500 without a stack trace. `BodySizeLimitMiddleware` answers 413 to
bodies over the limit, whether announced by `Content-Length` or streamed.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..observability import request_id_var, traceparent_var

REQUEST_ID_HEADER = b"x-request-id"
# A caller's id is kept only if it is short and harmless in a log line.
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def error_body(status: int, code: str, message: str, request_id: str | None) -> bytes:
    return json.dumps({"error": code, "message": message, "request_id": request_id}).encode()


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, logger: logging.Logger, access_log: bool = True) -> None:
        self.app = app
        self.logger = logger
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, REQUEST_ID_HEADER)
        request_id = incoming if incoming and _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        trace_token = traceparent_var.set(_header(scope, b"traceparent"))
        started = time.perf_counter()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", ()) if k != REQUEST_ID_HEADER]
                headers.append((REQUEST_ID_HEADER, request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            self.logger.exception("unhandled error", extra={"path": scope.get("path")})
            if scope["type"] == "http" and status == 0:
                status = 500
                await send_with_id(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": [(b"content-type", b"application/json")],
                    }
                )
                body = error_body(500, "internal_error", "Internal server error", request_id)
                await send_with_id({"type": "http.response.body", "body": body})
        finally:
            if self.access_log and scope["type"] == "http":
                self.logger.info(
                    "request",
                    extra={
                        "method": scope.get("method"),
                        "path": scope.get("path"),
                        "status": status,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    },
                )
            request_id_var.reset(token)
            traceparent_var.reset(trace_token)


class BodySizeLimitMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int, setting: str) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.setting = setting

    def _too_large(self) -> HTTPException:
        return HTTPException(
            413,
            f"request body exceeds {self.max_body_bytes} bytes (set by {self.setting})",
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._reject(scope, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    # FastAPI re-raises HTTPException from body parsing, so the
                    # app's handler answers 413 in the usual error shape.
                    raise self._too_large()
            return message

        await self.app(scope, counting_receive, send)

    async def _reject(self, scope: Scope, send: Send) -> None:
        error = self._too_large()
        body = error_body(413, "payload_too_large", str(error.detail), request_id_var.get())
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
