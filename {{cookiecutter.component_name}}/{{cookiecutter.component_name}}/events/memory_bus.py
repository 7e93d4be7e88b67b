"""The in-memory bus: one process, every subscriber in it, a bounded replay buffer.

Ids are `<boot id>-<sequence>`: a client resuming with an id from before a
restart gets an explicit reset instead of a silent gap.
"""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from ..lifecycle import DependencyReport
from ..observability import request_id_var
from .envelope import Event, Pattern, check_event_type, now
from .metrics import PUBLISHED
from .subscription import Subscription


class MemoryBus:
    def __init__(self, source: str, instance: str, replay_size: int) -> None:
        self.source = source
        self.instance = instance
        self.boot_id = secrets.token_hex(4)
        self._sequence = 0
        self._replay: deque[tuple[int, Event]] = deque(maxlen=replay_size)
        self._subscriptions: set[Subscription] = set()

    async def __aenter__(self) -> MemoryBus:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for subscription in list(self._subscriptions):
            subscription.close()

    async def publish(self, event_type: str, data: Any = None) -> Event:
        check_event_type(event_type)
        event_id = f"{self.boot_id}-{self._sequence + 1}"
        event = Event(event_id, event_type, self.source, now(), data, request_id_var.get())
        _ = event.json  # refuses data with no standard JSON form before anyone sees the event
        self._sequence += 1
        self._replay.append((self._sequence, event))
        for subscription in list(self._subscriptions):
            subscription.offer(event)
        PUBLISHED.inc()
        return event

    async def subscribe(
        self, patterns: Sequence[Pattern], *, channel: str, queue_size: int, after: str | None = None
    ) -> Subscription:
        # No await from here on: registering and replaying are one atomic step.
        subscription = Subscription(patterns, queue_size, channel, self._subscriptions.discard)
        self._subscriptions.add(subscription)
        if after is not None:
            replayed = self._replay_after(after)
            if replayed is None:
                subscription.reset = True
                replayed = [event for _, event in self._replay]
            subscription.release(replayed, is_newer=lambda event: False)
        return subscription

    def _replay_after(self, last_id: str) -> list[Event] | None:
        """Events after `last_id`, or None when the buffer cannot tell what came after it."""
        boot_id, _, sequence_text = last_id.partition("-")
        if boot_id != self.boot_id or not sequence_text.isdigit():
            return None
        sequence = int(sequence_text)
        oldest = self._replay[0][0] if self._replay else self._sequence + 1
        if sequence > self._sequence or sequence < oldest - 1:
            return None
        return [event for number, event in self._replay if number > sequence]

    @property
    def subscriber_count(self) -> int:
        return len(self._subscriptions)

    def probe(self) -> DependencyReport:
        return DependencyReport(
            "event_bus",
            "healthy",
            detail={"backend": "memory", "instance": self.instance, "subscribers": len(self._subscriptions)},
        )
