"""The Redis Streams bus: fan-out and replay across workers and replicas.

Every process appends to one stream (`XADD`, trimmed to the replay size)
and one reader task per process follows it (`XREAD BLOCK`), handing each
entry to this process's subscribers. Event ids are the stream's ids, so
`Last-Event-ID` resumes from the stream itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Sequence
from types import TracebackType
from typing import Any, cast

import redis.asyncio as redis
from redis.exceptions import RedisError

from ..backoff import Backoff
from ..lifecycle import DependencyReport
from ..observability import request_id_var
from .backend import BusUnavailable
from .envelope import Event, Pattern, check_event_type, now
from .metrics import PUBLISHED
from .subscription import Subscription

logger = logging.getLogger(__name__)

_STREAM_ID = re.compile(r"^(\d+)-(\d+)$")
_FIELD = "event"
READ_BLOCK_MS = 1000
DELIVERY_WAIT = 1.0
READ_COUNT = 500
# Reconnecting to Redis: quick at first, never more than a few seconds apart.
RECONNECT = Backoff(initial=0.1, maximum=5.0)


# What redis-py returns with decode_responses=True (its own annotations are looser).
StreamEntries = list[tuple[str, dict[str, str]]]


def stream_order(event_id: str) -> tuple[int, int]:
    match = _STREAM_ID.match(event_id)
    return (int(match[1]), int(match[2])) if match else (-1, -1)


class RedisBus:
    def __init__(self, url: str, stream: str, source: str, instance: str, replay_size: int) -> None:
        self.url = url
        self.stream = stream
        self.source = source
        self.instance = instance
        self.replay_size = replay_size
        self._redis: redis.Redis | None = None
        self._subscriptions: set[Subscription] = set()
        self._reader: asyncio.Task[None] | None = None
        self._last_id = "$"
        self._error: str | None = None
        self._stopping = False
        self._delivered = asyncio.Condition()

    @property
    def client(self) -> redis.Redis:
        if self._redis is None:
            raise BusUnavailable("the event bus is not started")
        return self._redis

    async def __aenter__(self) -> RedisBus:
        # Short socket timeouts, longer than the blocking read, so a dead Redis
        # shows up in /health quickly instead of hanging publishers.
        self._redis = redis.Redis.from_url(
            self.url, decode_responses=True, socket_connect_timeout=2, socket_timeout=READ_BLOCK_MS / 1000 + 2
        )
        with contextlib.suppress(RedisError, OSError):
            # Fixed before startup ends, so events published from now on reach this process.
            self._last_id = await self._newest_id()
        self._reader = asyncio.create_task(self._follow(), name="redis-event-reader")
        return self

    async def _newest_id(self) -> str:
        newest = await self.client.xrevrange(self.stream, count=1)
        return str(newest[0][0]) if newest else "0-0"

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stopping = True
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        for subscription in list(self._subscriptions):
            subscription.close()
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    async def publish(self, event_type: str, data: Any = None) -> Event:
        check_event_type(event_type)
        request_id = request_id_var.get()
        body = {"type": event_type, "source": self.source, "time": now(), "data": data, "request_id": request_id}
        try:
            event_id = await self.client.xadd(
                self.stream,
                {_FIELD: json.dumps(body, separators=(",", ":"))},
                # Exact trimming to the replay buffer plus one anchor entry: a client whose last
                # event is the one just before the buffer still resumes without a gap (no reset).
                maxlen=self.replay_size + 1,
                approximate=False,
            )
        except RedisError as exc:
            raise BusUnavailable(f"Redis at {self.url} did not take the event: {exc}") from exc
        PUBLISHED.inc()
        # Local subscribers get it from the reader, like everyone else: one order for all.
        # Returning once they have it keeps the in-memory bus's promise: a subscriber
        # that subscribes after `publish` returned never sees that event.
        await self._until_delivered(str(event_id))
        return Event(str(event_id), event_type, self.source, body["time"], data, request_id)

    async def _until_delivered(self, event_id: str) -> None:
        target = stream_order(event_id)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(DELIVERY_WAIT), self._delivered:
                await self._delivered.wait_for(lambda: stream_order(self._last_id) >= target)

    async def subscribe(
        self, patterns: Sequence[Pattern], *, channel: str, queue_size: int, after: str | None = None
    ) -> Subscription:
        subscription = Subscription(patterns, queue_size, channel, self._subscriptions.discard)
        if after is None:
            self._subscriptions.add(subscription)
            return subscription
        subscription.hold()
        self._subscriptions.add(subscription)
        try:
            replayed = await self._replay_after(after)
            if replayed is None:
                subscription.reset = True
                replayed = (await self._entries("-"))[-self.replay_size :]  # the buffer, not the anchor
        except RedisError as exc:
            subscription.close()
            raise BusUnavailable(f"Redis at {self.url} cannot replay events: {exc}") from exc
        last = stream_order(replayed[-1].id) if replayed else stream_order(after)
        subscription.release(replayed, is_newer=lambda event: stream_order(event.id) > last)
        return subscription

    async def _replay_after(self, last_id: str) -> list[Event] | None:
        """Entries after `last_id`, or None when that entry is no longer in the stream."""
        if not _STREAM_ID.match(last_id) or not await self.client.xrange(self.stream, last_id, last_id, count=1):
            return None
        return await self._entries(f"({last_id}")

    async def _entries(self, start: str) -> list[Event]:
        entries = cast(StreamEntries, await self.client.xrange(self.stream, start, "+", count=self.replay_size + 1))
        return [self._decode(entry_id, fields) for entry_id, fields in entries]

    @staticmethod
    def _decode(entry_id: str, fields: dict[str, str]) -> Event:
        body = json.loads(fields[_FIELD])
        return Event(entry_id, body["type"], body["source"], body["time"], body.get("data"), body.get("request_id"))

    async def _follow(self) -> None:
        """Read the stream forever, reconnecting with backoff; deliver to local subscribers."""
        failures = 0
        # A flag, not only cancellation: redis-py may turn a cancelled read into a connection error.
        while not self._stopping:
            try:
                if self._last_id == "$":
                    # Redis was down at startup: start after its newest entry, then follow exact ids.
                    self._last_id = await self._newest_id()
                response = cast(
                    list[tuple[str, StreamEntries]],
                    await self.client.xread({self.stream: self._last_id}, count=READ_COUNT, block=READ_BLOCK_MS),
                )
            except (RedisError, OSError) as exc:
                if self._stopping:
                    return
                if self._error is None:
                    logger.warning("event bus lost Redis", extra={"url": self.url, "error": str(exc)})
                self._error = str(exc)
                await asyncio.sleep(RECONNECT.delay(failures))
                failures += 1
                continue
            if self._error is not None:
                logger.info("event bus reconnected to Redis", extra={"url": self.url})
            self._error, failures = None, 0
            for _stream, entries in response or ():
                for entry_id, fields in entries:
                    self._last_id = entry_id
                    try:
                        event = self._decode(entry_id, fields)
                    except (KeyError, ValueError, TypeError):
                        logger.warning("skipped a malformed stream entry", extra={"id": entry_id})
                        continue
                    for subscription in list(self._subscriptions):
                        subscription.offer(event)
            async with self._delivered:
                self._delivered.notify_all()

    def probe(self) -> DependencyReport:
        detail: dict[str, object] = {"backend": "redis", "instance": self.instance, "stream": self.stream}
        if self._error is not None:
            detail["error"] = self._error
        return DependencyReport("event_bus", "degraded" if self._error else "healthy", detail=detail)
