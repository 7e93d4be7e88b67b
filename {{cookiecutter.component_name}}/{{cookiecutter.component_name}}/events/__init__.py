"""Events: one envelope, one bus, bounded subscribers.

Publish with `await app.state.bus.publish("workflow.completed", {...})`;
`/ws` and `/events` deliver to subscribers.
"""

from .bus import BusUnavailable, EventBus, announce, open_bus, refuse_memory_bus_with_workers, worker_count
from .envelope import Event, InvalidEventType, Pattern, check_event_type, parse_patterns
from .subscription import Subscription

__all__ = [
    "BusUnavailable",
    "Event",
    "EventBus",
    "InvalidEventType",
    "Pattern",
    "Subscription",
    "announce",
    "check_event_type",
    "open_bus",
    "parse_patterns",
    "refuse_memory_bus_with_workers",
    "worker_count",
]
