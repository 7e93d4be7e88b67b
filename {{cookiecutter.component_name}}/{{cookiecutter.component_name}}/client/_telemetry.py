"""What every outgoing call carries and records: the caller's request id and
trace context, the guide's metrics, and one structured log line per call."""

from __future__ import annotations

import logging
import re
import secrets

from prometheus_client import Counter, Gauge, Histogram

from ..about import COMPONENT_NAME
from ..observability import LATENCY_BUCKETS, request_id_var, traceparent_var

logger = logging.getLogger(f"{COMPONENT_NAME}.client")

# The guide's metric names and labels; defined once, in the default registry.
REQUESTS = Counter("integration_requests_total", "Total integration requests", ["source", "target", "endpoint"])
DURATION = Histogram(
    "integration_duration_seconds",
    "Integration request duration",
    ["source", "target", "endpoint"],
    buckets=LATENCY_BUCKETS,
)
FAILURES = Counter(
    "integration_failures_total",
    "Integration requests that failed, by error code",
    ["source", "target", "endpoint", "error"],
)
BREAKER_STATE = Gauge(
    "integration_circuit_breaker_state", "Circuit breaker state per peer: 0 closed, 1 half-open, 2 open", ["target"]
)

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_HEX32 = re.compile(r"^[0-9a-f]{32}$")


def traceparent() -> str:
    """A W3C `traceparent` for an outgoing call: the incoming request's trace continued
    with a new span, else a trace named after the current request id (ours are 32 hex digits)."""
    span = secrets.token_hex(8)
    match = _TRACEPARENT.match(traceparent_var.get() or "")
    if match:
        return f"00-{match.group(1)}-{span}-{match.group(3)}"
    request_id = request_id_var.get() or ""
    trace = request_id if _HEX32.match(request_id) else secrets.token_hex(16)
    return f"00-{trace}-{span}-01"


def outgoing_headers(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Headers every call sends: the request id and trace context, then the caller's own."""
    headers: dict[str, str] = {}
    request_id = request_id_var.get()
    if request_id:
        headers["X-Request-ID"] = request_id
    headers["traceparent"] = traceparent()
    if extra:
        headers.update(extra)
    return headers
