"""One subscriber's bounded queue: a slow subscriber loses its own oldest events.

Publishing never waits on a subscriber: `offer` is synchronous, and when the
queue is full the oldest event goes, counted, so the subscriber can be told.
A channel that can send at once takes events straight from `offer` (`direct`)
while nothing is queued; `offer` runs once per subscriber for every event, so
it stays a handful of attribute reads.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable

from .envelope import Event, Pattern
from .metrics import DROPPED

_WANTED_CACHE_SIZE = 1024  # distinct event types remembered per subscriber


class Subscription:
    def __init__(
        self,
        patterns: Iterable[Pattern],
        queue_size: int,
        channel: str,
        on_close: Callable[[Subscription], None],
    ) -> None:
        self.patterns: dict[str, Pattern] = {pattern.text: pattern for pattern in patterns}
        # Whether each event type seen so far matches: one dict lookup per event after the first.
        self._wanted: dict[str, bool] = {}
        # Set by a channel that can send at once: called with an event while nothing is queued,
        # it returns True when it took the event (sent, or sending), False to have it queued.
        self.direct: Callable[[Event], bool] | None = None
        # Set by a channel that writes its backlog from a task it starts on demand: called when
        # an event is queued while nothing was.
        self.queued: Callable[[], None] | None = None
        self.channel = channel
        self.reset = False  # set when a resume could not be honoured: the client must resync
        self._queue: deque[Event] = deque()
        self._queue_size = queue_size
        # The one consumer's wait in `get` while the queue is empty: a bare future, cheaper to
        # wake once per event than an `asyncio.Event` (no waiter list, no clear()).
        self._waiter: asyncio.Future[None] | None = None
        self._on_close = on_close
        self._held: list[Event] | None = None
        self._dropped = 0
        self._dropped_counter = DROPPED.labels(channel)
        self.closed = False

    def __len__(self) -> int:
        return len(self._queue)

    def add_patterns(self, patterns: Iterable[Pattern]) -> None:
        self.patterns.update((pattern.text, pattern) for pattern in patterns)
        self._wanted.clear()

    def remove_patterns(self, texts: Iterable[str]) -> None:
        for text in texts:
            self.patterns.pop(text, None)
        self._wanted.clear()

    def wants(self, event: Event) -> bool:
        wanted = self._wanted.get(event.type)
        return self._match(event) if wanted is None else wanted

    def _match(self, event: Event) -> bool:
        parts = event.segments
        wanted = any(pattern.matches_segments(parts) for pattern in self.patterns.values())
        if len(self._wanted) >= _WANTED_CACHE_SIZE:
            self._wanted.clear()
        self._wanted[event.type] = wanted
        return wanted

    def offer(self, event: Event) -> None:
        """Send `event` at once or queue it, if it matches; never blocks."""
        if self.closed:
            return
        wanted = self._wanted.get(event.type)  # `wants`, inlined: this runs once per subscriber
        if not (self._match(event) if wanted is None else wanted):
            return
        if self._held is not None:
            self._held.append(event)
            return
        # Straight out while there is no backlog; behind a backlog, events queue in order.
        if not self._queue and not self._dropped:
            direct = self.direct
            if direct is not None and direct(event):
                return
        self._push(event)

    def _push(self, event: Event) -> None:
        if len(self._queue) >= self._queue_size:
            self._queue.popleft()
            self._dropped += 1
            self._dropped_counter.inc()
        was_empty = not self._queue
        self._queue.append(event)
        self._wake()
        if was_empty and self.queued is not None:
            self.queued()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def hold(self) -> None:
        """Keep live events aside while a replay is fetched, so the order stays right."""
        self._held = []

    def release(self, replayed: Iterable[Event], is_newer: Callable[[Event], bool]) -> None:
        """Queue `replayed`, then the live events held meanwhile that `is_newer` keeps."""
        held, self._held = self._held or [], None
        for event in replayed:
            if self.wants(event):
                self._push(event)
        for event in held:
            if is_newer(event):
                self._push(event)

    def take_dropped(self) -> int:
        """Events lost since the last call."""
        dropped, self._dropped = self._dropped, 0
        return dropped

    async def get(self) -> Event | None:
        """The next event, or None once the subscription is closed and drained. One consumer at a time."""
        while not self._queue:
            if self.closed:
                return None
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._queue.popleft()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._wake()
            self._on_close(self)
