"""One call to a peer, async or sync: breaker -> retries -> pooled HTTP, observed.

The breaker wraps the retries (it sees one outcome per call, and an open
breaker stops the retrying at once); each attempt gets the remaining
deadline as its timeout; errors come out typed.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from ._breaker import CircuitBreaker
from ._config import IntegrationConfig
from ._errors import IntegrationError, PeerHTTPError, PeerTimeoutError, PeerUnavailableError
from ._retry import RetryBudget
from ._telemetry import FAILURES, logger, outgoing_headers, series

_VERSION_PREFIX = re.compile(r"^(v\d+)/")


@functools.lru_cache(maxsize=1024)
def api_path(endpoint: str, default_version: str) -> tuple[str, str]:
    """`process` -> (`/api/v1/process`, `v1`); a leading `v2/` replaces the default version
    instead of doubling it (the guide's `VersionedIntegration` would build `/api/v1/v1/...`)."""
    endpoint = endpoint.lstrip("/")
    match = _VERSION_PREFIX.match(endpoint)
    if match:
        return f"/api/{endpoint}", match.group(1)
    return f"/api/{default_version}/{endpoint}", default_version


@dataclass(slots=True)
class Call:
    """Everything about one logical call except where the peer lives (one per call: kept light)."""

    component: str
    source: str
    method: str
    path: str
    endpoint: str  # the metrics/log label: what the caller asked for
    json: Any = None
    params: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


def typed_error(exc: httpx.TransportError, call: Call, base_url: str) -> IntegrationError:
    where = f"{call.method} {base_url}{call.path}"
    error: IntegrationError
    if isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
        error = PeerTimeoutError(
            f"{call.component} did not answer {where} in time ({type(exc).__name__})",
            component=call.component,
            endpoint=call.endpoint,
        )
    else:
        error = PeerUnavailableError(
            f"{call.component} is unreachable at {where}: {type(exc).__name__}: {exc or 'no detail'}",
            component=call.component,
            endpoint=call.endpoint,
        )
    error.__cause__ = exc
    return error


def _deadline_error(call: Call) -> PeerTimeoutError:
    return PeerTimeoutError(
        f"{call.component}: {call.method} {call.path} ran out of its total deadline",
        component=call.component,
        endpoint=call.endpoint,
    )


def _budget(call: Call, config: IntegrationConfig) -> RetryBudget:
    return RetryBudget.start(call.method, config.retry_count, config.retry_backoff, config.deadline)


@functools.lru_cache(maxsize=64)
def _timeout(seconds: float) -> httpx.Timeout:
    return httpx.Timeout(seconds)


def _attempt_timeout(remaining: float, config: IntegrationConfig) -> httpx.Timeout:
    if remaining >= config.timeout:
        return _timeout(config.timeout)  # the usual case: the same object every call
    return httpx.Timeout(max(0.001, remaining))


def _attempt(
    client: httpx.AsyncClient | httpx.Client,
    base_url: str,
    call: Call,
    headers: dict[str, str],
    remaining: float,
    config: IntegrationConfig,
) -> httpx.Request:
    """One attempt's request. The call's headers are set on the built request: httpx's merge of a
    `headers=` argument costs twice as much per header (~1% of a pooled call, measured)."""
    timeout = _attempt_timeout(remaining, config)
    request = client.build_request(
        call.method, base_url + call.path, json=call.json, params=call.params, timeout=timeout
    )
    for name, value in headers.items():
        request.headers[name] = value
    return request


class Observation:
    """Metrics and one log line for the whole call (retries included).

    A plain object rather than a context manager: the transport is on every call's path."""

    __slots__ = ("attempts", "call", "duration", "started", "status")

    def __init__(self, call: Call) -> None:
        requests, self.duration = series(call.source, call.component, call.endpoint)
        requests.inc()
        self.call = call
        self.attempts = 0
        self.status: int | None = None
        self.started = time.perf_counter()

    def succeeded(self) -> None:
        self.duration.observe(time.perf_counter() - self.started)
        _log(self)

    def failed(self, exc: BaseException) -> None:
        call = self.call
        if isinstance(exc, Exception):  # (a cancelled call is not a failure of the peer)
            code = exc.code if isinstance(exc, IntegrationError) else type(exc).__name__
            FAILURES.labels(call.source, call.component, call.endpoint, code).inc()
            _log(self, error=str(exc), code=code)
        self.duration.observe(time.perf_counter() - self.started)


def _log(seen: Observation, **extra: Any) -> None:
    level = logging.WARNING if "error" in extra else logging.INFO
    if not logger.isEnabledFor(level):
        return
    call = seen.call
    fields = {
        "target": call.component,
        "endpoint": call.endpoint,
        "method": call.method,
        "duration_ms": round((time.perf_counter() - seen.started) * 1000, 2),
        "attempts": seen.attempts,
        "status": seen.status,
        **extra,
    }
    if "error" in extra:
        # The message alone must say who, where, what came back and why (log readers skip the extras).
        status = seen.status or "no answer"
        message = f"integration request to {call.component} {call.method} {call.path} failed (status {status}): "
        logger.log(level, message + str(extra["error"]), extra=fields)
    else:
        logger.log(level, "integration request", extra=fields)


async def send_async(
    client: httpx.AsyncClient,
    resolve: Callable[[], Awaitable[str]],
    call: Call,
    config: IntegrationConfig,
    breaker: CircuitBreaker | None,
) -> httpx.Response:
    """The call's final response (2xx-3xx), or a typed error. `resolve` gives the peer's base URL
    (a discovery failure is observed, but not held against the peer's breaker)."""
    seen = Observation(call)
    try:
        base_url = await resolve()
        if breaker is None:
            response = await _retrying_async(client, base_url, call, config, seen)
        else:
            response = await breaker.acall(_retrying_async, client, base_url, call, config, seen)
    except BaseException as exc:
        seen.failed(exc)
        raise
    seen.succeeded()
    return response


async def _retrying_async(
    client: httpx.AsyncClient, base_url: str, call: Call, config: IntegrationConfig, seen: Observation
) -> httpx.Response:
    budget = _budget(call, config)
    headers = outgoing_headers(call.headers)
    while True:
        remaining = budget.remaining()
        if remaining <= 0:
            raise _deadline_error(call)
        seen.attempts += 1
        try:
            # httpx applies its timeout per phase (connect, read, ...); this bounds the whole attempt.
            async with asyncio.timeout(remaining):
                response = await client.send(_attempt(client, base_url, call, headers, remaining, config))
        except httpx.TransportError as exc:
            wait = budget.delay_after_error(exc)
            if wait is None:
                raise typed_error(exc, call, base_url) from exc
        except TimeoutError:
            raise _deadline_error(call) from None
        else:
            seen.status = response.status_code
            if response.status_code < 400:
                return response
            wait = budget.delay_after_status(response)
            if wait is None:
                raise PeerHTTPError(response, component=call.component, endpoint=call.endpoint)
        await asyncio.sleep(wait)


def send_sync(
    client: httpx.Client,
    resolve: Callable[[], str],
    call: Call,
    config: IntegrationConfig,
    breaker: CircuitBreaker | None,
) -> httpx.Response:
    """`send_async` for synchronous callers (the guide's `SyncIntegration`)."""
    seen = Observation(call)
    try:
        base_url = resolve()
        if breaker is None:
            response = _retrying_sync(client, base_url, call, config, seen)
        else:
            response = breaker.call(_retrying_sync, client, base_url, call, config, seen)
    except BaseException as exc:
        seen.failed(exc)
        raise
    seen.succeeded()
    return response


def _retrying_sync(
    client: httpx.Client, base_url: str, call: Call, config: IntegrationConfig, seen: Observation
) -> httpx.Response:
    budget = _budget(call, config)
    headers = outgoing_headers(call.headers)
    while True:
        remaining = budget.remaining()
        if remaining <= 0:
            raise _deadline_error(call)
        seen.attempts += 1
        try:
            response = client.send(_attempt(client, base_url, call, headers, remaining, config))
        except httpx.TransportError as exc:
            wait = budget.delay_after_error(exc)
            if wait is None:
                raise typed_error(exc, call, base_url) from exc
        else:
            seen.status = response.status_code
            if response.status_code < 400:
                return response
            wait = budget.delay_after_status(response)
            if wait is None:
                raise PeerHTTPError(response, component=call.component, endpoint=call.endpoint)
        time.sleep(wait)
