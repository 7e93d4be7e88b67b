"""The Redis Streams bus: fan-out and replay across workers and replicas.

Every process appends to one stream (`XADD`, trimmed to the replay size)
and one reader task per process follows it (`XREAD BLOCK`), decoding each
entry once and handing it to this process's subscribers in memory, so every
subscriber everywhere sees the stream's one order. Event ids are the stream's
ids, so `Last-Event-ID` resumes from the stream itself.

A publish is one round trip: a small Lua script appends the event and returns
its id with only the entries other processes appended since the last one
delivered here, so local subscribers get those first, then this event, when
`publish` returns (and the reader stays idle while this process publishes).
Publishes that arrive while one is on its way go together in the next round
trip, in the order they came (one script call appends them all).

Redis restarts: a publish reconnects first (a connection the server closed
is replaced before anything is sent, see `replace_if_closed`) and retries only
while the command was never sent or Redis refused it unrun (`LOADING`):
`XADD` is not idempotent, so a command that may have reached Redis is never
sent twice. redis-py's own retries are off for the same reason. `probe()`
reports the last real round trip (the reader makes one at least every
`READ_BLOCK_MS`), without I/O of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, cast

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import BusyLoadingError, NoScriptError, RedisError, ResponseError

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
# At most this many queued publishes go in one round trip (one script call: Redis runs it whole).
APPEND_BATCH = 256
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

# KEYS[1] the stream; ARGV: trim length, field, the last id delivered in this process ('' when
# unknown), how many entries to return at most, then one event JSON per event. Returns the new
# ids, the entries strictly between that last id and the first new one (other processes'
# events), and 1 when those are all of them (else the reader delivers the rest, then these).
# Exact trimming to the replay buffer plus one anchor entry: a client whose last event is
# the one just before the buffer still resumes without a gap (no reset).
_APPEND = """
local ids = {}
for i = 5, #ARGV do ids[#ids + 1] = redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[1], '*', ARGV[2], ARGV[i]) end
if ARGV[3] == '' then return {ids, {}, 0} end
local entries = redis.pcall('XRANGE', KEYS[1], ARGV[3], ids[1], 'COUNT', ARGV[4] + 2)
if entries.err then return {ids, {}, 0} end  -- the events are in: the reader delivers them
local others, complete = {}, 0
for _, entry in ipairs(entries) do
  if entry[1] == ids[1] then complete = 1 elseif entry[1] ~= ARGV[3] then others[#others + 1] = entry end
end
return {ids, others, complete}
"""
_APPEND_SHA = hashlib.sha1(_APPEND.encode()).hexdigest()


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


def raw_entries(entries: Any) -> StreamEntries:
    """Stream entries as a script returns them (fields as a flat list), fields as a dict."""
    return [
        (str(entry_id), fields if isinstance(fields, dict) else dict(zip(fields[::2], fields[1::2], strict=True)))
        for entry_id, fields in entries
    ]


def newer_than(floor: tuple[int, int]) -> Callable[[Event], bool]:
    return lambda event: stream_order(event.id) > floor


@dataclass(slots=True)
class Draft:
    """An event before Redis gives it its id, and, when queued, the publish waiting for it."""

    type: str
    data: Any
    time: str
    request_id: str | None
    text: str
    done: asyncio.Future[Event] | None = None


class RedisBus:
    def __init__(self, url: str, stream: str, source: str, instance: str, replay_size: int) -> None:
        self.url = url
        self.shown_url = redact_url(url)
        self.stream = stream
        self.source = source
        self.instance = instance
        self.replay_size = replay_size
        self._redis: redis.Redis | None = None
        # Publishes go through a client of their own, without redis-py's per-read socket
        # timeouts (each costs a task or a timer): one deadline covers a whole round trip.
        self._appender: redis.Redis | None = None
        # One round trip is on its way at a time, on this one connection (from the appender's
        # pool, kept: no pool bookkeeping per publish); publishes queue for the next (see `_flush`).
        self._connection: Any = None
        self._appending = False
        self._queue: list[Draft] = []
        self._queued = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
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
        self._appender = redis.Redis.from_url(
            self.url, decode_responses=True, socket_connect_timeout=2, socket_timeout=None, retry=Retry(NoBackoff(), 0)
        )
        try:
            # Fixed before startup ends, so events published from now on reach this process.
            self._last_id = await self._newest_id()
            self._round_trip(None)
        except (RedisError, OSError) as exc:
            self._round_trip(exc)
        self._reader = asyncio.create_task(self._follow(), name="redis-event-reader")
        self._flusher = asyncio.create_task(self._flush(), name="redis-event-appender")
        return self

    async def _newest_id(self) -> str:
        newest = await self.client.xrevrange(self.stream, count=1)
        return str(newest[0][0]) if newest else "0-0"

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stopping = True
        if self._redis is not None:
            # Closing the reader's connection ends its `XREAD BLOCK` at once; cancelling the
            # blocked read instead waits out the block (about a second per stop).
            await self._redis.connection_pool.disconnect()
        for task in (self._reader, self._flusher):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._fail(self._queue, BusUnavailable("the event bus stopped before the event was sent"))
        self._queue = []
        for subscription in list(self._subscriptions):
            subscription.close()
        if self._appender is not None and self._connection is not None:
            await self._appender.connection_pool.release(self._connection)
        for client in (self._redis, self._appender):
            if client is not None:
                await client.aclose()
        self._redis = self._appender = self._connection = None

    def _round_trip(self, error: BaseException | None) -> None:
        if error is None:
            self._last_ok, self._error = time.monotonic(), None
        else:
            self._error = f"{type(error).__name__}: {error}"

    async def publish(self, event_type: str, data: Any = None) -> Event:
        check_event_type(event_type)
        request_id = request_id_var.get()
        body = {"type": event_type, "source": self.source, "time": now(), "data": data, "request_id": request_id}
        # dumps_strict refuses data with no standard JSON form before anything is sent.
        draft = Draft(event_type, data, body["time"], request_id, dumps_strict(body))
        if self._stopping:
            raise BusUnavailable("the event bus is stopping")
        if self._appending:  # a round trip is on its way: go with the next one, in arrival order
            draft.done = asyncio.get_running_loop().create_future()
            self._queue.append(draft)
            return await draft.done
        self._appending = True
        try:
            (event,) = await self._append([draft])
        finally:
            if self._queue:
                self._queued.set()  # `_flush` sends what queued meanwhile, and then lets go
            else:
                self._appending = False
        return event

    async def _flush(self) -> None:
        """Send the publishes that queued behind a round trip, many per round trip, until none is left."""
        while True:
            await self._queued.wait()
            self._queued.clear()
            while self._queue:
                batch = [draft for draft in self._queue[:APPEND_BATCH] if draft.done and not draft.done.done()]
                del self._queue[:APPEND_BATCH]
                if not batch:
                    continue
                try:
                    events = await self._append(batch)
                except Exception as exc:  # BusUnavailable, or a bug: each publish raises it
                    self._fail(batch, exc)
                    continue
                except BaseException:
                    self._fail(batch, BusUnavailable("the event bus stopped: the event may have been published"))
                    raise
                for draft, event in zip(batch, events, strict=True):
                    if draft.done and not draft.done.done():
                        draft.done.set_result(event)
            self._appending = False

    @staticmethod
    def _fail(drafts: list[Draft], error: Exception) -> None:
        for draft in drafts:
            if draft.done and not draft.done.done():
                # One exception each: a shared one would collect every raiser's traceback.
                draft.done.set_exception(BusUnavailable(str(error)) if isinstance(error, BusUnavailable) else error)

    async def _append(self, drafts: list[Draft]) -> list[Event]:
        """Append `drafts` in one round trip, then deliver them here after what came before them."""
        event_ids, others, complete = await self._send_with_retry([draft.text for draft in drafts])
        self._round_trip(None)
        self._last_publish = time.monotonic()
        self._published = max(self._published, stream_order(event_ids[-1]))
        self._wake.set()  # a reader waiting to reconnect can go now: Redis answers
        PUBLISHED.inc(len(drafts))
        events = [
            Event(event_id, draft.type, self.source, draft.time, draft.data, draft.request_id)
            for event_id, draft in zip(event_ids, drafts, strict=True)
        ]
        # Other processes' events first, then these: the stream's order.
        self._deliver(others, own=events if complete else ())
        return events

    async def _send_with_retry(self, texts: list[str]) -> tuple[list[str], StreamEntries, bool]:
        """The new entries' ids, the entries before them not yet delivered here, and whether those are all.

        Retried only while Redis has certainly not run it; else `BusUnavailable`.
        """
        if self._appender is None:
            raise BusUnavailable("the event bus is not started")
        pool = self._appender.connection_pool
        deadline = time.monotonic() + PUBLISH_PATIENCE
        attempt = 0
        while True:
            connection = None
            sent = False
            try:
                # One deadline for the attempt, connecting included (the pool's handshake has none).
                async with asyncio.timeout(SOCKET_TIMEOUT):
                    if self._connection is None:
                        self._connection = await pool.get_connection()  # type: ignore[no-untyped-call]  # untyped
                    connection = self._connection
                    await replace_if_closed(connection)  # nothing is sent yet
                    sent = True
                    appended = await self._send_append(connection, texts)
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
                    f"look for it before publishing it again ({exc or type(exc).__name__})"
                ) from None
            except BaseException:
                if connection is not None and sent:
                    await connection.disconnect()  # cancelled mid-command: unknown state
                raise
            return appended

    async def _send_append(self, connection: Any, texts: list[str]) -> tuple[list[str], StreamEntries, bool]:
        # Redis was down at startup ("$"): the reader finds its place first, then delivers.
        cursor = "" if self._last_id == "$" else self._last_id
        args = (1, self.stream, self.replay_size + 1, _FIELD, cursor, READ_COUNT, *texts)
        await connection.send_packed_command(connection.pack_command("EVALSHA", _APPEND_SHA, *args))
        try:
            reply = await connection.read_response()
        except NoScriptError:  # a restarted Redis forgot the script, so it did not run: send its text
            await connection.send_packed_command(connection.pack_command("EVAL", _APPEND, *args))
            reply = await connection.read_response()
        event_ids, others, complete = reply
        return [str(event_id) for event_id in event_ids], raw_entries(others), complete == 1

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
            # While this process publishes, each publish reads the stream too (see `_APPEND`):
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

    def _deliver(self, entries: StreamEntries, own: Sequence[Event] = ()) -> None:
        """Hand entries newer than the last delivered one to every local subscriber, in order.

        `own`, the events this process just published, come right after `entries`
        in the stream: they go last, without being decoded again.
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
                event = self._decode(entry_id, fields)
            except (KeyError, ValueError, TypeError):
                logger.warning("skipped a malformed stream entry", extra={"id": entry_id})
                continue
            for subscription in subscriptions:
                subscription.offer(event)
        for event in own:
            order = stream_order(event.id)
            if order > delivered:
                delivered = order
                self._last_id = event.id
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
