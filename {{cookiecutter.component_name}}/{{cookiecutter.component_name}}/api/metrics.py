"""HTTP metrics: request count and latency per route template, served at `/metrics`.

`prometheus-fastapi-instrumentator` serves `/metrics`, and the metrics keep
its names and labels: `http_requests_total` by handler, method and status
class (`2xx`), `http_request_duration_seconds` by handler and method. Its
middleware is not installed: it matches the path against every route again on
each request and builds a labelled child per observation. Instead
`RequestContextMiddleware` hands over the route Starlette already resolved
(`scope["route"]`) and `record` updates children looked up once per label set.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from fastapi import FastAPI
from prometheus_client import Counter, Histogram
from prometheus_fastapi_instrumentator import Instrumentator

from ..observability import LATENCY_BUCKETS
from .middleware import MetricsRecorder

METRICS_PATH = "/metrics"
# A request no route matched: one label for all of them, or scanners would grow the metrics without bound.
UNMATCHED = "none"
# Any other method token a client invents is counted as one, for the same reason.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


@functools.cache
def _metrics() -> tuple[Counter, Histogram]:
    # Process-wide, like the registry: built once and shared by every app (tests build several).
    requests = Counter(
        "http_requests_total",
        "Total number of requests by method, status and handler.",
        labelnames=("handler", "method", "status"),
    )
    latency = Histogram(
        "http_request_duration_seconds",
        "Duration of HTTP requests in seconds",
        labelnames=("handler", "method"),
        buckets=(*LATENCY_BUCKETS, float("inf")),
    )
    return requests, latency


# (handler, method, status class) -> the two children's update methods
_children: dict[tuple[str, str, str], tuple[Callable[[], None], Callable[[float], None]]] = {}


def _record(method: str, route: str | None, status: int, seconds: float) -> None:
    if route == METRICS_PATH:
        return
    key = (route or UNMATCHED, method if method in _METHODS else "OTHER", f"{status // 100}xx")
    children = _children.get(key)
    if children is None:
        requests, latency = _metrics()
        count = requests.labels(*key)
        duration = latency.labels(key[0], key[1])
        children = _children[key] = (count.inc, duration.observe)
    increment, observe = children
    increment()
    observe(seconds)


def instrument(app: FastAPI) -> MetricsRecorder:
    """Serve `/metrics`; returns the recorder the request middleware calls once per request."""
    _metrics()
    Instrumentator().expose(app, endpoint=METRICS_PATH, include_in_schema=False, should_gzip=False)
    return _record
