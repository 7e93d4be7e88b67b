"""Plain ASGI middleware (no `BaseHTTPMiddleware`: it costs most of the throughput).

`RequestContextMiddleware` gives every HTTP request an id, echoes it in
`X-Request-ID`, records the request's metrics, logs one access line, and
turns an unhandled exception into a JSON 500 without a stack trace.
`BodyGuardMiddleware` reads a request's body before the app sees it: over
the limit is 413 (announced by `Content-Length` or streamed); a JSON body
that is not UTF-8 or holds a lone surrogate is 400, so no route ever starts
work (or publishes an event) it cannot finish.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import secrets
import time
from collections.abc import Callable

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..lifecycle import Lifecycle
from ..observability import AccessLog, request_id_var, traceparent_var
from .json_guard import json_body_problem

REQUEST_ID_HEADER = b"x-request-id"
# A caller's id is kept only if it is short and harmless in a log line (matched in full: no trailing newline).
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# Our own ids: a random per-process prefix and a counter, 32 hex digits like a uuid4's, without a
# system call per request. Unique across processes and restarts; not a secret.
_ID_PREFIX = secrets.token_hex(8)
_ID_COUNTER = itertools.count(int.from_bytes(secrets.token_bytes(4), "big"))

# (method, route template or None, status, seconds): see `api/metrics.py`.
MetricsRecorder = Callable[[str, str | None, int, float], None]
_JSON_CONTENT = b"application/json"


def new_request_id() -> str:
    return f"{_ID_PREFIX}{next(_ID_COUNTER) & 0xFFFFFFFFFFFFFFFF:016x}"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def error_body(status: int, code: str, message: str, request_id: str | None) -> bytes:
    return json.dumps({"error": code, "message": message, "request_id": request_id}).encode()


async def send_error(send: Send, status: int, code: str, message: str, close: bool = False) -> None:
    """An error in the usual JSON shape, sent before the app has run."""
    body = error_body(status, code, message, request_id_var.get())
    headers = [(b"content-type", _JSON_CONTENT), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class RequestContextMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        logger: logging.Logger,
        access_log: bool = True,
        record_metrics: MetricsRecorder | None = None,
    ) -> None:
        self.app = app
        self.logger = logger
        self.access_log = AccessLog(logger) if access_log else None
        self.record_metrics = record_metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        incoming = traceparent = None
        for key, value in scope["headers"]:  # one pass for both headers
            if key == REQUEST_ID_HEADER:
                incoming = value.decode("latin-1")
            elif key == b"traceparent":
                traceparent = value.decode("latin-1")
        request_id = incoming if incoming and _VALID_REQUEST_ID.fullmatch(incoming) else new_request_id()
        token = request_id_var.set(request_id)
        trace_token = traceparent_var.set(traceparent)
        started = time.perf_counter()
        status = 0
        id_header = (REQUEST_ID_HEADER, request_id.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [header for header in message.get("headers", ()) if header[0] != REQUEST_ID_HEADER]
                headers.append(id_header)
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            self.logger.exception("unhandled error", extra={"path": scope.get("path")})
            if scope["type"] == "http" and status == 0:
                status = 500
                await send_error(send_with_id, 500, "internal_error", "Internal server error")
        finally:
            if scope["type"] == "http":
                duration = time.perf_counter() - started
                if self.record_metrics is not None:
                    route = scope.get("route")
                    self.record_metrics(scope["method"], getattr(route, "path", None), status, duration)
                if self.access_log is not None:
                    self.access_log.request(
                        scope["method"], scope["path"], status, round(duration * 1000, 2), request_id
                    )
            request_id_var.reset(token)
            traceparent_var.reset(trace_token)


class BodyGuardMiddleware:
    """Reads the whole body first (it is at most `max_body_bytes`), checks it, then replays it to the app."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, setting: str) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.setting = setting

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._too_large(send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before sending its body: nothing to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await self._too_large(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        content_type = _header(scope, b"content-type")
        # FastAPI reads a body without a content type as JSON too.
        if content_type is None or "json" in content_type.partition(";")[0]:
            problem = json_body_problem(body)
            if problem is not None:
                await send_error(send, 400, "bad_request", problem)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # after the body: wait for the disconnect, as usual
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _too_large(self, send: Send) -> None:
        message = f"request body exceeds {self.max_body_bytes} bytes (set by {self.setting})"
        await send_error(send, 413, "payload_too_large", message, close=True)


def quiet_refusals(app: FastAPI, lifecycle: Lifecycle) -> None:
    """A refused startup (see `app.STARTUP_REFUSALS`) reaches the server without its traceback.

    Starlette reports a failing lifespan with the whole traceback as the
    failure message, which the server prints. For a refusal the reason is
    already known and printed last (`lifecycle.refuse_at_exit`), so the server
    gets an empty message; any other failure keeps its traceback. Wraps the
    router's lifespan handler rather than adding a middleware every request
    would pass through.
    """
    run_lifespan = app.router.lifespan

    async def lifespan(scope: Scope, receive: Receive, send: Send) -> None:
        async def send_quietly(message: Message) -> None:
            if message["type"] == "lifespan.startup.failed" and lifecycle.refusal is not None:
                message = {"type": "lifespan.startup.failed", "message": ""}
            await send(message)

        await run_lifespan(scope, receive, send_quietly)

    app.router.lifespan = lifespan  # type: ignore[method-assign]
