"""The Redis Streams bus: fan-out and replay across workers and replicas.

Every process appends to one stream (`XADD`, trimmed to the replay size)
and one reader task per process follows it (`XREAD BLOCK`), handing each
entry to this process's subscribers, so every subscriber everywhere sees the
stream's one order. Event ids are the stream's ids, so `Last-Event-ID`
resumes from the stream itself.

Redis restarts: a publish reconnects first (redis-py replaces a pooled
connection the server closed before anything is sent) and retries only
while the command was never sent or Redis refused it unrun (`LOADING`):
`XADD` is not idempotent, so a command that may have reached Redis is never
sent twice. redis-py's own retries are off for the same reason. `probe()`
reports the last real round trip (the reader makes one at least every
`READ_BLOCK_MS`), without I/O of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, cast

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import BusyLoadingError, RedisError, ResponseError

from ..addresses import redact_url
from ..backoff import Backoff
from ..lifecycle import DependencyReport
from ..observability import request_id_var
from .backend import BusUnavailable
from .envelope import Event, Pattern, check_event_type, dumps_strict, loads_strict, now
from .metrics import PUBLISHED
from .subscription import Subscription

logger = logging.getLogger(__name__)

_STREAM_ID = re.compile(r"(\d+)-(\d+)")
_FIELD = "event"
READ_BLOCK_MS = 1000
SOCKET_TIMEOUT = READ_BLOCK_MS / 1000 + 2
READ_COUNT = 500
# The reader leaves the stream to this process's publishers until they have been quiet this long.
READ_QUIET = 0.005
# A publish keeps trying to reach a restarting Redis this long before answering "unavailable".
PUBLISH_PATIENCE = 2.0
# Reconnecting: quick at first, at most a second apart (a publish also wakes the reader).
RECONNECT = Backoff(initial=0.05, maximum=1.0)
# No successful round trip for this long means the bus is not healthy, whatever else happened.
STALE_AFTER = SOCKET_TIMEOUT + READ_BLOCK_MS / 1000 + 1

# What redis-py returns with decode_responses=True (its own annotations are looser).
StreamEntries = list[tuple[str, dict[str, str]]]


def stream_order(event_id: str) -> tuple[int, int]:
    match = _STREAM_ID.fullmatch(event_id)
    return (int(match[1]), int(match[2])) if match else (-1, -1)


async def replace_if_closed(connection: Any) -> None:
    """Reconnect a pooled connection the server closed (e.g. a Redis restart) before it is used.

    redis-py's pool checks this itself only in some configurations (not with
    maintenance notifications on); checking here keeps a restart from costing
    a publish. `can_read` is true when the socket is at EOF or holds stray data.
    """
    try:
        stale = await connection.can_read()
    except (RedisError, OSError):
        stale = True
    if stale:
        await connection.disconnect()
        await connection.connect()


def raw_entries(response: Any) -> StreamEntries:
    """One stream's entries from a raw `XREAD` reply (RESP2 or RESP3), fields as a dict."""
    if isinstance(response, dict):
        streams = list(response.values())  # RESP3: {stream: entries}
    else:
        streams = [entries for _stream, entries in response or ()]
    entries = streams[0] if streams else []
    return [
        (str(entry_id), fields if isinstance(fields, dict) else dict(zip(fields[::2], fields[1::2], strict=True)))
        for entry_id, fields in entries
    ]


def newer_than(floor: tuple[int, int]) -> Callable[[Event], bool]:
    return lambda event: stream_order(event.id) > floor


class RedisBus:
    def __init__(self, url: str, stream: str, source: str, instance: str, replay_size: int) -> None:
        self.url = url
        self.shown_url = redact_url(url)
        self.stream = stream
        self.source = source
        self.instance = instance
        self.replay_size = replay_size
        self._redis: redis.Redis | None = None
        self._subscriptions: set[Subscription] = set()
        self._reader: asyncio.Task[None] | None = None
        self._last_id = "$"
        # The newest id this process appended, and subscriptions waiting for the reader to pass it.
        self._published = (0, 0)
        self._waiting: dict[Subscription, tuple[int, int]] = {}
        self._wake = asyncio.Event()
        self._last_publish = 0.0
        self._stopping = False
        # The last round trip: when it last succeeded, and the error if the last one failed.
        self._last_ok: float | None = None
        self._error: str | None = None

    @property
    def client(self) -> redis.Redis:
        if self._redis is None:
            raise BusUnavailable("the event bus is not started")
        return self._redis

    async def __aenter__(self) -> RedisBus:
        # Short socket timeouts, longer than the blocking read, so a dead Redis
        # shows up in /health quickly instead of hanging publishers. No hidden
        # retries: redis-py would re-send an XADD that may already have run.
        self._redis = redis.Redis.from_url(
            self.url,
            decode_responses=True,
            socket_connect_timeout=2,
            socket_timeout=SOCKET_TIMEOUT,
            retry=Retry(NoBackoff(), 0),
        )
        try:
            # Fixed before startup ends, so events published from now on reach this process.
            self._last_id = await self._newest_id()
            self._round_trip(None)
        except (RedisError, OSError) as exc:
            self._round_trip(exc)
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

    def _round_trip(self, error: BaseException | None) -> None:
        if error is None:
            self._last_ok, self._error = time.monotonic(), None
        else:
            self._error = f"{type(error).__name__}: {error}"

    async def publish(self, event_type: str, data: Any = None) -> Event:
        check_event_type(event_type)
        request_id = request_id_var.get()
        body = {"type": event_type, "source": self.source, "time": now(), "data": data, "request_id": request_id}
        text = dumps_strict(body)  # refuses data with no standard JSON form before anything is sent
        event_id, entries = await self._xadd(text)
        self._round_trip(None)
        self._last_publish = time.monotonic()
        self._published = max(self._published, stream_order(event_id))
        self._wake.set()  # a reader waiting to reconnect can go now: Redis answers
        PUBLISHED.inc()
        event = Event(event_id, event_type, self.source, body["time"], data, request_id)
        if entries is not None:
            self._deliver(entries, own=event)
        return event

    async def _xadd(self, text: str) -> tuple[str, StreamEntries | None]:
        """One `XADD`'s stream id and what followed the last delivered entry (see `_send_xadd`).

        Retried only while Redis has certainly not run it; else `BusUnavailable`.
        """
        pool = self.client.connection_pool
        deadline = time.monotonic() + PUBLISH_PATIENCE
        attempt = 0
        while True:
            connection = None
            sent = False
            try:
                connection = await pool.get_connection()  # type: ignore[no-untyped-call]  # untyped in redis-py
                await replace_if_closed(connection)  # nothing is sent yet
                sent = True
                event_id, entries = await self._send_xadd(connection, text)
            except (RedisError, OSError) as exc:
                if connection is not None and sent:
                    await connection.disconnect()  # a reply may still be on its way: never reuse it
                # BusyLoadingError: Redis refused the command unrun while it loads its data.
                unrun = not sent or isinstance(exc, BusyLoadingError)
                if unrun and time.monotonic() + RECONNECT.ceiling(attempt) <= deadline:
                    await asyncio.sleep(RECONNECT.delay(attempt))
                    attempt += 1
                    continue
                self._round_trip(None if isinstance(exc, ResponseError) else exc)
                if unrun or isinstance(exc, ResponseError):
                    raise BusUnavailable(f"Redis at {self.shown_url} did not take the event: {exc}") from None
                raise BusUnavailable(
                    f"Redis at {self.shown_url} did not confirm the event, which may have been published: "
                    f"look for it before publishing it again ({exc})"
                ) from None
            except BaseException:
                if connection is not None and sent:
                    await connection.disconnect()  # cancelled mid-command: unknown state
                raise
            finally:
                if connection is not None:
                    await pool.release(connection)
            return event_id, entries

    async def _send_xadd(self, connection: Any, text: str) -> tuple[str, StreamEntries | None]:
        """The new entry's id and, read in the same round trip, the entries after the last delivered one."""
        # Exact trimming to the replay buffer plus one anchor entry: a client whose last
        # event is the one just before the buffer still resumes without a gap (no reset).
        xadd = ("XADD", self.stream, "MAXLEN", self.replay_size + 1, "*", _FIELD, text)
        cursor = self._last_id
        if cursor == "$":  # Redis was down at startup: the reader finds its place first
            await connection.send_command(*xadd)
            return str(await connection.read_response()), None
        # Pipelined: this event reaches local subscribers in one round trip, after
        # whatever came before it in the stream (from any process), in that order.
        xread = ("XREAD", "COUNT", READ_COUNT, "STREAMS", self.stream, cursor)
        await connection.send_packed_command(connection.pack_commands([xadd, xread]))
        event_id = str(await connection.read_response())
        try:
            response = await connection.read_response()
        except (RedisError, OSError):
            await connection.disconnect()
            return event_id, None  # the event is in the stream: the reader delivers it
        return event_id, raw_entries(response)

    async def subscribe(
        self, patterns: Sequence[Pattern], *, channel: str, queue_size: int, after: str | None = None
    ) -> Subscription:
        subscription = Subscription(patterns, queue_size, channel, self._forget)
        if after is None:
            self._subscriptions.add(subscription)
            if stream_order(self._last_id) < self._published:
                # The reader has not yet delivered what this process published: like the
                # in-memory bus, a subscription never sees an event published before it.
                subscription.hold()
                self._waiting[subscription] = self._published
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
            raise BusUnavailable(f"Redis at {self.shown_url} cannot replay events: {exc}") from None
        last = stream_order(replayed[-1].id) if replayed else stream_order(after)
        subscription.release(replayed, is_newer=lambda event: stream_order(event.id) > last)
        return subscription

    def _forget(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)
        self._waiting.pop(subscription, None)

    async def _replay_after(self, last_id: str) -> list[Event] | None:
        """Entries after `last_id`, or None when that entry is no longer in the stream."""
        if not _STREAM_ID.fullmatch(last_id) or not await self.client.xrange(self.stream, last_id, last_id, count=1):
            return None
        return await self._entries(f"({last_id}")

    async def _entries(self, start: str) -> list[Event]:
        entries = cast(StreamEntries, await self.client.xrange(self.stream, start, "+", count=self.replay_size + 1))
        return [self._decode(entry_id, fields) for entry_id, fields in entries]

    @staticmethod
    def _decode(entry_id: str, fields: dict[str, str]) -> Event:
        body = loads_strict(fields[_FIELD])
        return Event(entry_id, body["type"], body["source"], body["time"], body.get("data"), body.get("request_id"))

    async def _follow(self) -> None:
        """Read the stream forever, reconnecting with backoff; deliver to local subscribers."""
        failures = 0
        # A flag, not only cancellation: redis-py may turn a cancelled read into a connection error.
        while not self._stopping:
            # While this process publishes, each publish reads the stream too (see `_send_xadd`):
            # a blocking read of our own would only cost every event a second round trip.
            quiet_for = READ_QUIET - (time.monotonic() - self._last_publish)
            if quiet_for > 0 and self._error is None:
                await asyncio.sleep(quiet_for)
                continue
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
                if failures == 0:
                    logger.warning("event bus lost Redis", extra={"url": self.shown_url, "error": str(exc)})
                self._round_trip(exc)
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(RECONNECT.delay(failures)):
                        await self._wake.wait()
                failures += 1
                continue
            if failures:
                logger.info("event bus reconnected to Redis", extra={"url": self.shown_url})
            self._round_trip(None)
            failures = 0
            for _stream, entries in response or ():
                self._deliver(entries)

    def _deliver(self, entries: StreamEntries, own: Event | None = None) -> None:
        """Hand entries newer than the last delivered one to every local subscriber, in order.

        `own` is the event this process just published: no need to decode it again.
        """
        subscriptions = list(self._subscriptions)
        delivered = stream_order(self._last_id)
        for entry_id, fields in entries:
            order = stream_order(entry_id)
            if order <= delivered:
                continue  # a publisher's read or the reader's got it here first
            delivered = order
            self._last_id = entry_id
            try:
                event = own if own is not None and entry_id == own.id else self._decode(entry_id, fields)
            except (KeyError, ValueError, TypeError):
                logger.warning("skipped a malformed stream entry", extra={"id": entry_id})
                continue
            for subscription in subscriptions:
                subscription.offer(event)
        if self._waiting:
            reached = stream_order(self._last_id)
            for subscription, floor in list(self._waiting.items()):
                if reached >= floor:
                    del self._waiting[subscription]
                    subscription.release((), is_newer=newer_than(floor))

    def probe(self) -> DependencyReport:
        detail: dict[str, object] = {"backend": "redis", "instance": self.instance, "stream": self.stream}
        age = None if self._last_ok is None else time.monotonic() - self._last_ok
        if age is not None:
            detail["last_round_trip_seconds_ago"] = round(age, 3)
        healthy = self._error is None and age is not None and age <= STALE_AFTER
        if not healthy:
            detail["error"] = self._error or f"no round trip with Redis at {self.shown_url} for {STALE_AFTER:.0f} s"
        return DependencyReport("event_bus", "healthy" if healthy else "degraded", detail=detail)
