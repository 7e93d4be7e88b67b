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

# The labelled series of each (source, target, endpoint), looked up once: `labels()` takes a lock and
# checks its arguments on every call, a measurable share of a pooled call's cost. (The cached series
# are the registry's own, as long as nobody calls `.remove()` or `.clear()` on these metrics.)
_series: dict[tuple[str, str, str], tuple[Counter, Histogram]] = {}
_SERIES_KEPT = 4096  # a bound, for endpoint labels that embed ids


def series(source: str, target: str, endpoint: str) -> tuple[Counter, Histogram]:
    """The request counter and duration histogram of one (source, target, endpoint)."""
    key = (source, target, endpoint)
    found = _series.get(key)
    if found is None:
        if len(_series) >= _SERIES_KEPT:
            _series.clear()
        found = _series[key] = (REQUESTS.labels(*key), DURATION.labels(*key))
    return found


_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_HEX32 = re.compile(r"^[0-9a-f]{32}$")


def traceparent() -> str:
    """A W3C `traceparent` for an outgoing call: the incoming request's trace continued
    with a new span, else a trace named after the current request id (ours are 32 hex digits)."""
    fresh = secrets.token_hex(24)  # one read of the OS's randomness: a span id, and a trace id if needed
    incoming = traceparent_var.get()
    match = _TRACEPARENT.match(incoming) if incoming else None
    if match:
        return f"00-{match.group(1)}-{fresh[:16]}-{match.group(3)}"
    request_id = request_id_var.get()
    trace = request_id if request_id and _HEX32.match(request_id) else fresh[16:]
    return f"00-{trace}-{fresh[:16]}-01"


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
