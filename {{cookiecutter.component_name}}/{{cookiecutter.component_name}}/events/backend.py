"""What every event bus backend is: the `EventBus` protocol and its one error.

The backends (`memory_bus.py`, `redis_bus.py`) and the code that picks one
(`bus.py`) import this module, never each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Any, Protocol

from ..lifecycle import DependencyReport
from .envelope import Event, Pattern
from .subscription import Subscription


class BusUnavailable(RuntimeError):
    """The backend cannot take the event right now (e.g. Redis is down)."""


class EventBus(Protocol):
    instance: str

    async def publish(self, event_type: str, data: Any = None) -> Event:
        """Stamp `id`, `source` and `time`, and deliver to every matching subscriber."""
        ...

    async def subscribe(
        self, patterns: Sequence[Pattern], *, channel: str, queue_size: int, after: str | None = None
    ) -> Subscription:
        """A bounded subscription; with `after`, first the buffered events that followed that id.

        When `after` cannot be honoured (too old, or from before a restart) the
        subscription's `reset` is True and it starts with the whole buffer.
        """
        ...

    def probe(self) -> DependencyReport: ...

    async def __aenter__(self) -> EventBus: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...
