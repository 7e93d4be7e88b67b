"""Which nonces (and single-use `access_token`s) were already seen, until they could no longer be fresh.

Bounded: an entry is kept until its own expiry and never evicted early, so a
full cache refuses (`ReplayCacheFull`, answered 503) instead of forgetting.
The memory store serves one process; the Redis store (Redis bus) is shared
by every worker and replica.
"""

from __future__ import annotations

import heapq
import math
import time
from typing import Protocol
{%- if cookiecutter.event_bus == "redis" %}

import redis.asyncio as redis
from redis.exceptions import RedisError
{%- endif %}


class ReplayCacheFull(Exception):
    """The cache holds its maximum of live entries; nothing may be forgotten early."""


class ReplayCacheUnavailable(Exception):
    """The shared cache cannot be reached: refuse rather than accept a possible replay."""


class ReplayStore(Protocol):
    async def remember(self, key: str, expires_at: float) -> bool:
        """True the first time `key` is seen (now kept until `expires_at`); False for a replay."""
        ...

    async def aclose(self) -> None: ...


class MemoryReplayStore:
    """Keys in a set, filed by the whole second they expire in (rounded up, so never forgotten early).

    Remembering a key allocates nothing the garbage collector tracks (a
    string into a set and a list): a cache of 100,000s of nonces adds no
    collector passes, where a heap of `(expiry, key)` tuples made them
    several microseconds a request. Buckets are purged whole, oldest first.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._seen: set[str] = set()
        self._buckets: dict[int, list[str]] = {}
        self._seconds: list[int] = []  # a heap of the buckets' seconds, soonest first

    def __len__(self) -> int:
        return len(self._seen)

    async def remember(self, key: str, expires_at: float) -> bool:
        return self.remember_now(key, expires_at)

    def remember_now(self, key: str, expires_at: float) -> bool:
        """`remember` without a coroutine, for the request path."""
        seconds = self._seconds
        if seconds and seconds[0] <= time.time():
            self._purge(time.time())
        seen = self._seen
        if key in seen:
            return False
        if len(seen) >= self.capacity:
            raise ReplayCacheFull(f"{self.capacity} entries")
        seen.add(key)
        second = math.ceil(expires_at)
        bucket = self._buckets.get(second)
        if bucket is None:
            bucket = self._buckets[second] = []
            heapq.heappush(seconds, second)
        bucket.append(key)
        return True

    def _purge(self, now: float) -> None:
        seconds, seen = self._seconds, self._seen
        while seconds and seconds[0] <= now:
            for key in self._buckets.pop(heapq.heappop(seconds)):
                seen.discard(key)

    async def aclose(self) -> None:
        self._seen.clear()
        self._buckets.clear()
        self._seconds.clear()
{%- if cookiecutter.event_bus == "redis" %}


# One sorted set per component (member: the key, score: its expiry), so the bound is exact
# and shared. Atomic: drop what expired, refuse a replay, refuse when full, else add.
_REMEMBER = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return -1 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""
_KEY_TTL = 3600  # an abandoned set vanishes; live entries expire far sooner


class RedisReplayStore:
    def __init__(self, url: str, key: str, capacity: int) -> None:
        self.key = key
        self.capacity = capacity
        self._redis = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        self._script = self._redis.register_script(_REMEMBER)

    async def remember(self, key: str, expires_at: float) -> bool:
        args: list[str | float] = [key, expires_at, time.time(), self.capacity, _KEY_TTL]
        try:
            answer = await self._script(keys=[self.key], args=args)
        except (RedisError, OSError) as exc:
            raise ReplayCacheUnavailable(f"Redis: {type(exc).__name__}") from exc
        if answer == -1:
            raise ReplayCacheFull(f"{self.capacity} entries")
        return bool(answer == 1)

    async def aclose(self) -> None:
        await self._redis.aclose()
{%- endif %}


def open_store(backend: str, capacity: int, redis_url: str, key: str) -> ReplayStore:
    """The Redis store with the Redis bus (shared by workers and replicas), else this process's memory."""
{%- if cookiecutter.event_bus == "redis" %}
    if backend == "redis":
        return RedisReplayStore(redis_url, key, capacity)
{%- endif %}
    return MemoryReplayStore(capacity)
