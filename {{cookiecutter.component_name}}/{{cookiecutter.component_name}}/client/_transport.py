"""One call to a peer, async or sync: breaker -> retries -> pooled HTTP, observed.

The breaker wraps the retries (it sees one outcome per call, and an open
breaker stops the retrying at once); each attempt gets the remaining
deadline as its timeout; errors come out typed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from ._breaker import CircuitBreaker
from ._config import IntegrationConfig
from ._errors import IntegrationError, PeerHTTPError, PeerTimeoutError, PeerUnavailableError
from ._retry import RetryBudget
from ._telemetry import DURATION, FAILURES, REQUESTS, logger, outgoing_headers

_VERSION_PREFIX = re.compile(r"^(v\d+)/")


def api_path(endpoint: str, default_version: str) -> tuple[str, str]:
    """`process` -> (`/api/v1/process`, `v1`); a leading `v2/` replaces the default version
    instead of doubling it (the guide's `VersionedIntegration` would build `/api/v1/v1/...`)."""
    endpoint = endpoint.lstrip("/")
    match = _VERSION_PREFIX.match(endpoint)
    if match:
        return f"/api/{endpoint}", match.group(1)
    return f"/api/{default_version}/{endpoint}", default_version


@dataclass(frozen=True)
class Call:
    """Everything about one logical call except where the peer lives."""

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


def _attempt_timeout(budget: RetryBudget, config: IntegrationConfig) -> httpx.Timeout:
    return httpx.Timeout(max(0.001, min(config.timeout, budget.remaining())))


@contextlib.contextmanager
def observed(call: Call) -> Iterator[dict[str, Any]]:
    """Metrics and one log line for the whole call (retries included)."""
    labels = (call.source, call.component, call.endpoint)
    REQUESTS.labels(*labels).inc()
    started = time.perf_counter()
    record: dict[str, Any] = {"attempts": 0, "status": None}
    try:
        yield record
    except Exception as exc:  # (a cancelled call is not a failure of the peer)
        code = exc.code if isinstance(exc, IntegrationError) else type(exc).__name__
        FAILURES.labels(*labels, code).inc()
        _log(call, record, started, error=str(exc), code=code)
        raise
    else:
        _log(call, record, started)
    finally:
        DURATION.labels(*labels).observe(time.perf_counter() - started)


def _log(call: Call, record: dict[str, Any], started: float, **extra: Any) -> None:
    level = logging.WARNING if "error" in extra else logging.INFO
    if not logger.isEnabledFor(level):
        return
    fields = {
        "target": call.component,
        "endpoint": call.endpoint,
        "method": call.method,
        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
        **record,
        **extra,
    }
    if "error" in extra:
        # The message alone must say who, where, what came back and why (log readers skip the extras).
        status = record.get("status") or "no answer"
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
    with observed(call) as record:
        base_url = await resolve()
        if breaker is None:
            return await _retrying_async(client, base_url, call, config, record)
        return await breaker.acall(_retrying_async, client, base_url, call, config, record)


async def _retrying_async(
    client: httpx.AsyncClient, base_url: str, call: Call, config: IntegrationConfig, record: dict[str, Any]
) -> httpx.Response:
    budget = _budget(call, config)
    headers = outgoing_headers(call.headers)
    while True:
        if budget.remaining() <= 0:
            raise _deadline_error(call)
        record["attempts"] += 1
        try:
            # httpx applies its timeout per phase (connect, read, ...); this bounds the whole attempt.
            async with asyncio.timeout(budget.remaining()):
                response = await client.request(
                    call.method,
                    base_url + call.path,
                    json=call.json,
                    params=call.params,
                    headers=headers,
                    timeout=_attempt_timeout(budget, config),
                )
        except httpx.TransportError as exc:
            wait = budget.delay_after_error(exc)
            if wait is None:
                raise typed_error(exc, call, base_url) from exc
        except TimeoutError:
            raise _deadline_error(call) from None
        else:
            record["status"] = response.status_code
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
    with observed(call) as record:
        base_url = resolve()
        if breaker is None:
            return _retrying_sync(client, base_url, call, config, record)
        return breaker.call(_retrying_sync, client, base_url, call, config, record)


def _retrying_sync(
    client: httpx.Client, base_url: str, call: Call, config: IntegrationConfig, record: dict[str, Any]
) -> httpx.Response:
    budget = _budget(call, config)
    headers = outgoing_headers(call.headers)
    while True:
        if budget.remaining() <= 0:
            raise _deadline_error(call)
        record["attempts"] += 1
        try:
            response = client.request(
                call.method,
                base_url + call.path,
                json=call.json,
                params=call.params,
                headers=headers,
                timeout=_attempt_timeout(budget, config),
            )
        except httpx.TransportError as exc:
            wait = budget.delay_after_error(exc)
            if wait is None:
                raise typed_error(exc, call, base_url) from exc
        else:
            record["status"] = response.status_code
            if response.status_code < 400:
                return response
            wait = budget.delay_after_status(response)
            if wait is None:
                raise PeerHTTPError(response, component=call.component, endpoint=call.endpoint)
        time.sleep(wait)
