"""HTTP metrics: request count and latency per route template, served at `/metrics`.

`prometheus-fastapi-instrumentator` serves `/metrics`, and the metrics keep
its names and labels: `http_requests_total` by handler, method and status
class (`2xx`), `http_request_duration_seconds` by handler and method. Its
middleware is not installed: it matches the path against every route again on
each request and builds a labelled child per observation. Instead
`RequestMiddleware` hands over the route Starlette already resolved
(`scope["route"]`) and `record` updates children looked up once per label set.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from fastapi import FastAPI
from prometheus_client import Counter, Histogram
from prometheus_fastapi_instrumentator import Instrumentator

# The client package loads each module on first use (`client/__init__.py`), its metrics (calls to
# peers, circuit breakers) too: imported here, so `/metrics` lists them from start-up, as every other.
from ..client import integration_requests  # noqa: F401
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


# (route, method, status) as the request had them -> the two children's update methods
_children: dict[tuple[str | None, str, int], tuple[Callable[[], None], Callable[[float], None]]] = {}


def _record(method: str, route: str | None, status: int, seconds: float) -> None:
    if route == METRICS_PATH:
        return
    children = _children.get((route, method, status))
    if children is None:
        labels = (route or UNMATCHED, method if method in _METHODS else "OTHER", f"{status // 100}xx")
        requests, latency = _metrics()
        count = requests.labels(*labels)
        duration = latency.labels(labels[0], labels[1])
        # Bounded: routes are the app's own (or `None`), and any method outside `_METHODS` is counted
        # as OTHER but would grow this cache: those are looked up each time instead.
        children = (count.inc, duration.observe)
        if method in _METHODS and 100 <= status < 600:
            _children[(route, method, status)] = children
    increment, observe = children
    increment()
    observe(seconds)


def instrument(app: FastAPI) -> MetricsRecorder:
    """Serve `/metrics`; returns the recorder the request middleware calls once per request."""
    _metrics()
    Instrumentator().expose(app, endpoint=METRICS_PATH, include_in_schema=False, should_gzip=False)
    return _record
