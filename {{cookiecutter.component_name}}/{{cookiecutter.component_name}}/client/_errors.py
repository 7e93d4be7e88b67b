"""Typed errors for calls to peers, and the guide's error dicts built from them.

They subclass httpx's own exceptions where one fits, so code written against
the guide (`except httpx.TimeoutException`, `except httpx.HTTPStatusError`)
keeps catching them.
"""

from __future__ import annotations

from typing import Any

import httpx


class IntegrationError(Exception):
    """A call to `component` failed; `endpoint` is what was called."""

    code = "integration_error"

    def __init__(self, message: str, *, component: str = "", endpoint: str = "") -> None:
        # Not super(): the httpx base classes' constructors want request/response.
        Exception.__init__(self, message)
        self.message = message
        self.component = component
        self.endpoint = endpoint


class PeerUnavailableError(IntegrationError):
    """The peer could not be found or reached (discovery failed, connection refused or reset)."""

    code = "unavailable"


class PeerTimeoutError(IntegrationError, httpx.TimeoutException):
    """The peer did not answer within the timeout (or the call's total deadline passed)."""

    code = "timeout"

    def __init__(self, message: str, *, component: str = "", endpoint: str = "") -> None:
        IntegrationError.__init__(self, message, component=component, endpoint=endpoint)


class PeerHTTPError(IntegrationError, httpx.HTTPStatusError):
    """The peer answered with an error status; `body` is what it said (JSON when it sent JSON)."""

    code = "http_error"

    def __init__(self, response: httpx.Response, *, component: str = "", endpoint: str = "") -> None:
        self.status = response.status_code
        self.body = _body(response)
        detail = peer_message(self.body)
        message = (
            f"{component or 'peer'} answered {self.status} to {response.request.method} {response.request.url.path}"
        )
        if detail:
            message += f": {detail}"
        IntegrationError.__init__(self, message, component=component, endpoint=endpoint)
        # httpx.HTTPStatusError's attributes, so the guide's `e.response.status_code` works.
        self.request = response.request
        self.response = response


class CircuitOpenError(IntegrationError):
    """The breaker is rejecting calls to this peer; nothing was sent."""

    code = "circuit_open"

    def __init__(self, name: str = "", retry_after: float | None = None) -> None:
        target = f" for {name}" if name else ""
        wait = f"; next attempt allowed in {retry_after:.1f}s" if retry_after is not None else ""
        super().__init__(f"Circuit breaker is OPEN{target}{wait}", component=name)
        self.retry_after = retry_after


class BatchClosedError(IntegrationError):
    """An item was added to a batch integration that is shutting down."""

    code = "closed"


class StateConflictError(IntegrationError):
    """`sync_state` kept losing to other writers until its deadline; nothing was overwritten."""

    code = "state_conflict"


class AtomicUpdateUnsupportedError(IntegrationError):
    """The state backend has no compare-and-set, so `sync_state` cannot be atomic there."""

    code = "atomic_update_unsupported"


class WorkflowError(IntegrationError):
    """A workflow definition or run is invalid (bad task list, unknown dependency, cycle, ...)."""

    code = "workflow_error"


def peer_message(body: Any) -> str | None:
    """The peer's own words from an error body: Harmonia's `message`, Engram's `error`, FastAPI's `detail`."""
    if isinstance(body, str):
        return body.strip()[:300] or None
    if not isinstance(body, dict):
        return None
    for key in ("message", "error", "detail"):
        value = body.get(key)
        if isinstance(value, str) and value:
            return value
        if value:  # e.g. FastAPI's list of validation errors
            return str(value)[:300]
    return None


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


def error_dict(exc: BaseException, component: str) -> dict[str, Any]:
    """The guide's error dict (`{"error": code, ...}`) for a failed call."""
    if isinstance(exc, PeerHTTPError):
        return {"error": exc.code, "component": component, "status": exc.status, "body": exc.body, "message": str(exc)}
    if isinstance(exc, httpx.HTTPStatusError):
        return {"error": "http_error", "component": component, "status": exc.response.status_code, "message": str(exc)}
    if isinstance(exc, httpx.TimeoutException):
        return {"error": "timeout", "component": component, "message": str(exc)}
    if isinstance(exc, IntegrationError):
        return {"error": exc.code, "component": component, "message": str(exc)}
    return {"error": "internal_error", "component": component, "message": str(exc)}
