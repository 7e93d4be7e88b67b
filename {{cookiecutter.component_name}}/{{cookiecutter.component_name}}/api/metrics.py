"""HTTP metrics: request count and latency per route template, served at `/metrics`."""

from __future__ import annotations

import functools
from collections.abc import Callable

from fastapi import FastAPI
from prometheus_fastapi_instrumentator import Instrumentator, metrics
from prometheus_fastapi_instrumentator.metrics import Info

from ..observability import LATENCY_BUCKETS


@functools.cache
def _http_metrics() -> tuple[Callable[[Info], None], ...]:
    # Prometheus metrics are process-wide: build them once and share them with
    # every app (tests build several; a second registration would be dropped).
    built = (metrics.requests(), metrics.latency(buckets=LATENCY_BUCKETS))
    return tuple(metric for metric in built if metric is not None)


def instrument(app: FastAPI) -> None:
    """Request count and latency per route template, served at `/metrics`."""
    instrumentator = Instrumentator(
        should_group_status_codes=True,
        should_group_untemplated=True,
        excluded_handlers=["/metrics"],
    )
    instrumentator.add(*_http_metrics())
    instrumentator.instrument(app).expose(app, include_in_schema=False, should_gzip=False)
