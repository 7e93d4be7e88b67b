"""Events: one envelope, one catalog of types, one bus, bounded subscribers.

Business code publishes through the bus it is given (`await
self.bus.publish(ORDER_SHIPPED, {...})`, see `catalog.py`); `/ws` and
`/events` deliver to subscribers. This module stays light (no settings, no
server stack) so the client package can use the envelope and the catalog;
the bus itself is in `bus.py` and its backends.
"""

from .catalog import (
    CATALOG,
    COMPONENT_HEALTH_CHANGED,
    COMPONENT_REGISTERED,
    COMPONENT_STARTED,
    COMPONENT_STOPPING,
    EventType,
)
from .envelope import (
    EVENT_TYPE_PATTERN,
    MAX_TYPE_LENGTH,
    Event,
    InvalidEventData,
    InvalidEventType,
    Pattern,
    check_event_type,
    parse_patterns,
)

__all__ = [
    "CATALOG",
    "COMPONENT_HEALTH_CHANGED",
    "COMPONENT_REGISTERED",
    "COMPONENT_STARTED",
    "COMPONENT_STOPPING",
    "EVENT_TYPE_PATTERN",
    "MAX_TYPE_LENGTH",
    "Event",
    "EventType",
    "InvalidEventData",
    "InvalidEventType",
    "Pattern",
    "check_event_type",
    "parse_patterns",
]
