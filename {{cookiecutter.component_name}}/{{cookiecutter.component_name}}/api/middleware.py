"""The one ASGI layer around the app (plain ASGI: `BaseHTTPMiddleware` costs most of the throughput).

Every layer a request passes costs a few microseconds (an await, a wrapped
`send`, another look through the headers), so `RequestMiddleware` does in
one pass what a request needs before and after the app:

- its id (echoed in `X-Request-ID`) and trace context, for every log line;
- authentication (`api/auth.py`, DESIGN §10), before the body is read;
- the body guard: over `<NAME>_MAX_BODY_BYTES` is 413 (announced by
  `Content-Length` or streamed); a JSON body that is not UTF-8 or holds a lone
  surrogate is 400, so no route starts work (or publishes an event) it
  cannot finish;
- the answer's signature, for a signed request;
- its metrics and one access line; an unhandled exception becomes a JSON 500
  without a stack trace.
"""

from __future__ import annotations

import itertools
import logging
import re
import secrets
import time
from collections.abc import Callable

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..lifecycle import Lifecycle
from ..observability import AccessLog, request_id_var, traceparent_var
from ..security.paths import HANDSHAKES
from ..security.reasons import AuthFailure
from ..security.replay import ReplayCacheFull, ReplayCacheUnavailable
from ..security.tokens import VerifiedToken
from .auth import AUTH_HEADERS, AuthGate, is_event_stream, sign_answer
from .errors import send_error
from .json_guard import json_body_problem

REQUEST_ID_HEADER = b"x-request-id"
_TRACEPARENT = b"traceparent"
_CONTENT_LENGTH = b"content-length"
_CONTENT_TYPE = b"content-type"
# The headers the steps read, collected in one pass (the first of a repeated header, as Starlette reads it).
_WANTED = frozenset({REQUEST_ID_HEADER, _TRACEPARENT, _CONTENT_LENGTH, _CONTENT_TYPE})
_WANTED_SIGNED = _WANTED | AUTH_HEADERS  # on a protected route
_BODYLESS = frozenset({"GET", "HEAD", "OPTIONS"})
# A caller's id is kept only if it is short and harmless in a log line (matched in full: no trailing newline).
_VALID_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
# Our own ids: a random per-process prefix and a counter, 32 hex digits like a uuid4's, without a
# system call per request. Unique across processes and restarts; not a secret.
_ID_PREFIX = secrets.token_hex(8)
_ID_COUNTER = itertools.count(int.from_bytes(secrets.token_bytes(4), "big"))

# (method, route template or None, status, seconds): see `api/metrics.py`.
MetricsRecorder = Callable[[str, str | None, int, float], None]


def new_request_id() -> str:
    return f"{_ID_PREFIX}{next(_ID_COUNTER) & 0xFFFFFFFFFFFFFFFF:016x}"


class _ClientGone(Exception):
    """The client went away before sending its whole body: there is no one to answer."""


class _TooLarge(Exception):
    pass


class RequestMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        logger: logging.Logger,
        gate: AuthGate,
        max_body_bytes: int,
        body_setting: str,
        access_log: bool = True,
        record_metrics: MetricsRecorder | None = None,
    ) -> None:
        self.app = app
        self.logger = logger
        self.gate = gate
        self.max_body_bytes = max_body_bytes
        self.body_setting = body_setting
        self.access_log = AccessLog(logger) if access_log else None
        self.record_metrics = record_metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # HTTP inline below: each coroutine a request passes through costs
            await (self._websocket if scope["type"] == "websocket" else self.app)(scope, receive, send)
            return
        policy = self.gate.policy
        protected = policy.keys is not None and scope["path"] not in policy.open_paths
        wanted = _WANTED_SIGNED if protected else _WANTED
        headers: dict[bytes, bytes] = {}
        for name, value in scope["headers"]:
            if name in wanted and name not in headers:
                headers[name] = value
        request_id = _request_id(headers.get(REQUEST_ID_HEADER))
        token = request_id_var.set(request_id)
        traceparent = headers.get(_TRACEPARENT)
        trace_token = traceparent_var.set(None if traceparent is None else traceparent.decode("latin-1"))
        started = time.perf_counter()
        id_header = (REQUEST_ID_HEADER, request_id.encode())
        status = 0
        # A signed request's answer is signed: its start is held until the whole body is known.
        signer: tuple[VerifiedToken, bytes] | None = None
        held: Message | None = None
        pieces: list[bytes] = []

        async def reply(message: Message) -> None:
            nonlocal status, held
            if message["type"] == "http.response.start":
                status = message["status"]
                answer = [header for header in message.get("headers", ()) if header[0] != REQUEST_ID_HEADER]
                answer.append(id_header)
                message["headers"] = answer
                if signer is not None and not is_event_stream(message):
                    held = message
                    return
            elif held is not None and signer is not None:
                if message.get("more_body", False):
                    pieces.append(message.get("body", b""))
                    return
                body = message.get("body", b"")
                if pieces:
                    body = b"".join([*pieces, body])
                    message = {"type": "http.response.body", "body": body}
                sign_answer(held, body, *signer)
                await send(held)
                held = None
            await send(message)

        try:
            if protected or scope["method"] not in _BODYLESS:  # else the usual GET: nothing to check
                admitted = await self._admit(scope, receive, headers, reply, protected)
                if admitted is None:
                    return  # answered
                scope, receive, signer = admitted
            await self.app(scope, receive, reply)
        except Exception:
            self.logger.exception("unhandled error", extra={"path": scope.get("path")})
            if status == 0:
                status = 500
                await send_error(reply, 500, "internal_error", "Internal server error")
        finally:
            duration = time.perf_counter() - started
            if self.record_metrics is not None:
                route = scope.get("route")
                self.record_metrics(scope["method"], getattr(route, "path", None), status, duration)
            if self.access_log is not None:
                self.access_log.request(scope["method"], scope["path"], status, round(duration * 1000, 2), request_id)
            request_id_var.reset(token)
            traceparent_var.reset(trace_token)

    async def _admit(
        self, scope: Scope, receive: Receive, headers: dict[bytes, bytes], reply: Send, protected: bool
    ) -> tuple[Scope, Receive, tuple[VerifiedToken, bytes] | None] | None:
        """What the app gets (scope, receive, the signer of its answer), or None once the request is answered."""
        gate = self.gate
        try:
            verified = None
            if protected:
                handshake = scope["path"] in HANDSHAKES
                verified, query = gate.token(scope, headers, handshake)
                if query is not None:
                    await gate.use_once(verified)
                if handshake:  # a stream: no body, no signature
                    return ({**scope, "query_string": query} if query is not None else scope), receive, None
            declared = headers.get(_CONTENT_LENGTH)
            if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
                raise _TooLarge
            message = await receive()
            if message["type"] == "http.request" and not message.get("more_body", False):  # the usual: one piece
                body = message.get("body", b"")
                if len(body) > self.max_body_bytes:
                    raise _TooLarge
            else:
                body = await self._rest_of_body(message, receive)
            nonce = None if verified is None else await gate.signature(scope, headers, verified, body)
        except AuthFailure as failure:
            await gate.refuse(scope, reply, failure)
            return None
        except (ReplayCacheFull, ReplayCacheUnavailable) as exc:
            await gate.unavailable(reply, exc)
            return None
        except _TooLarge:
            limit = f"request body exceeds {self.max_body_bytes} bytes (set by {self.body_setting})"
            await send_error(reply, 413, "payload_too_large", limit, headers=[(b"connection", b"close")])
            return None
        except _ClientGone:
            return None
        content_type = headers.get(_CONTENT_TYPE)
        # FastAPI reads a body without a content type as JSON too.
        if scope["method"] not in _BODYLESS and (content_type is None or b"json" in content_type.partition(b";")[0]):
            problem = json_body_problem(body)
            if problem is not None:
                await send_error(reply, 400, "bad_request", problem)
                return None
        signer = None if verified is None or nonce is None else (verified, nonce)
        return scope, _replay(body, receive), signer

    async def _rest_of_body(self, message: Message, receive: Receive) -> bytes:
        """A body sent in pieces, from its first message (`_TooLarge` once past the limit)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            if message["type"] != "http.request":
                raise _ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)
            message = await receive()

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        incoming = traceparent = None
        for name, value in scope["headers"]:
            if name == REQUEST_ID_HEADER:
                incoming = value
            elif name == _TRACEPARENT:
                traceparent = value.decode("latin-1")
        token = request_id_var.set(_request_id(incoming))
        trace_token = traceparent_var.set(traceparent)
        try:
            admitted = await self.gate.websocket(scope, receive, send)
            if admitted is not None:
                await self.app(admitted, receive, send)
        except Exception:
            self.logger.exception("unhandled error", extra={"path": scope.get("path")})
        finally:
            request_id_var.reset(token)
            traceparent_var.reset(trace_token)


def _request_id(incoming: bytes | None) -> str:
    if incoming is not None and _VALID_REQUEST_ID.fullmatch(incoming):
        return incoming.decode("latin-1")
    return new_request_id()


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body, already read, handed to the app as one message; then the connection's own `receive`."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()  # after the body: wait for the disconnect, as usual
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


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
