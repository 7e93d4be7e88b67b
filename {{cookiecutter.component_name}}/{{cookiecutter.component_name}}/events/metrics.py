"""Prometheus metrics of the event plane, defined once per process."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

OPEN_CONNECTIONS = Gauge("event_connections", "Open event connections", ["channel"])
PUBLISHED = Counter("events_published", "Events published by this process")
DELIVERED = Counter("events_delivered", "Events sent to subscribers", ["channel"])
DROPPED = Counter("events_dropped", "Events a slow subscriber lost from its full queue", ["channel"])

CHANNELS = ("ws", "sse")
for _channel in CHANNELS:
    # Export zeros from the start, so dashboards and tests see every series.
    OPEN_CONNECTIONS.labels(_channel)
    DELIVERED.labels(_channel)
    DROPPED.labels(_channel)
