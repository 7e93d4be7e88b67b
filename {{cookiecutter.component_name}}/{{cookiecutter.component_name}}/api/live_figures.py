"""`POST /api/v1/metrics/stream`: this process's live figures as Server-Sent Events.

Figures are read from the process's own Prometheus registry. Rates and means
cover the time since the previous reading, so a stream of readings shows the
component as it is now, not since it started.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import anyio
from fastapi import APIRouter, HTTPException
from prometheus_client import REGISTRY, CollectorRegistry
from pydantic import BaseModel, Field
from sse_starlette import EventSourceResponse, ServerSentEvent

from ..events.envelope import now
from .deps import SettingsDep

router = APIRouter(prefix="/api/v1", tags=["events"])

FIGURES = ("throughput", "latency", "connections", "events")

_SAMPLES = (
    "http_requests_total",
    "http_request_duration_seconds_sum",
    "http_request_duration_seconds_count",
    "events_published_total",
    "events_delivered_total",
    "events_dropped_total",
)


class LiveFigures:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.registry = registry
        self._previous = self._totals()
        self._at = time.monotonic()

    def _totals(self) -> dict[str, float]:
        totals = dict.fromkeys(_SAMPLES, 0.0)
        connections: dict[str, float] = {}
        for family in self.registry.collect():
            for sample in family.samples:
                if sample.name in totals:
                    totals[sample.name] += sample.value
                elif sample.name == "event_connections":
                    connections[sample.labels.get("channel", "")] = sample.value
        totals.update({f"connections:{channel}": value for channel, value in connections.items()})
        return totals

    def read(self, figures: list[str]) -> dict[str, Any]:
        totals, at = self._totals(), time.monotonic()
        delta = {name: totals[name] - self._previous.get(name, 0.0) for name in _SAMPLES}
        elapsed = max(at - self._at, 1e-9)
        self._previous, self._at = totals, at
        requests = delta["http_request_duration_seconds_count"]
        values: dict[str, Any] = {
            "throughput": {"requests_per_second": round(delta["http_requests_total"] / elapsed, 3)},
            "latency": {
                "mean_ms": round(delta["http_request_duration_seconds_sum"] / requests * 1000, 3) if requests else None
            },
            "connections": {
                name.partition(":")[2]: int(value) for name, value in totals.items() if name.startswith("connections:")
            },
            "events": {
                "published": int(totals["events_published_total"]),
                "delivered": int(totals["events_delivered_total"]),
                "dropped": int(totals["events_dropped_total"]),
                "published_per_second": round(delta["events_published_total"] / elapsed, 3),
            },
        }
        return {name: values[name] for name in figures}


class MetricsStreamRequest(BaseModel):
    components: list[str] = Field(
        [],  # copied per instance; a `default_factory=list` costs start-up time (see api/actions.py)
        description="Components asked about; this one streams only its own figures and says which it does not serve",
    )
    metrics: list[str] = Field(default_factory=lambda: list(FIGURES), description=f"Any of {', '.join(FIGURES)}")


async def figure_stream(
    component: str, figures: list[str], interval: float, shutdown: anyio.Event, not_served: Sequence[str] = ()
) -> AsyncIterator[ServerSentEvent]:
    live = LiveFigures()
    if not_served:
        # The guide asks one component for several; say once, in the stream, who is not answered here.
        notice = {
            "component": component,
            "not_served": list(not_served),
            "message": f"{component} streams only its own figures; ask {', '.join(not_served)} directly",
        }
        yield ServerSentEvent(data=json.dumps(notice, separators=(",", ":")), event="notice")
    while not shutdown.is_set():
        with anyio.move_on_after(interval):
            await shutdown.wait()
        reading = {"component": component, "time": now(), **live.read(figures)}
        yield ServerSentEvent(data=json.dumps(reading, separators=(",", ":")))


@router.post(
    "/metrics/stream",
    summary="Stream this component's live figures as `data:` lines until the client leaves",
    response_class=EventSourceResponse,
)
async def metrics_stream(body: MetricsStreamRequest, settings: SettingsDep) -> EventSourceResponse:
    others = list(dict.fromkeys(name for name in body.components if name.lower() != settings.component_name))
    unknown = [name for name in body.metrics if name not in FIGURES]
    if unknown or not body.metrics:
        raise HTTPException(422, f"metrics: {unknown or 'empty'} is not valid; choose from {list(FIGURES)}")
    shutdown = anyio.Event()
    return EventSourceResponse(
        figure_stream(
            settings.component_name,
            list(dict.fromkeys(body.metrics)),
            settings.metrics_stream_interval,
            shutdown,
            others,
        ),
        ping=settings.event_ping_interval,
        send_timeout=settings.event_send_timeout,
        shutdown_event=shutdown,
        shutdown_grace_period=settings.event_shutdown_grace,
    )
