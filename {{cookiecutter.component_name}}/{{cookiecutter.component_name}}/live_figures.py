"""This process's live figures, read from its own Prometheus registry.

Rates and means cover the time since the previous reading, so a stream of
readings shows the component as it is now, not since it started.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry

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
