{%- if cookiecutter.event_bus == "redis" -%}
"""Which of this component's worker processes keeps its Hermes registration: a Redis lease.

Every worker builds the same registration (one component id), so only one
may register, heartbeat and unregister; otherwise one worker exiting
unregisters the component for all. The holder takes the key with `SET NX
PX`, renews it well inside its lifetime and deletes it at shutdown; a worker
that dies without deleting it loses it when it expires, and the next worker
to ask takes it: within `ttl` of its death, because the key lives three
quarters of `ttl` and every worker asks every quarter.
"""

from __future__ import annotations

import contextlib
import uuid

import redis.asyncio as redis
from redis.exceptions import RedisError

# Renew only our own lease: another holder's key is left alone.
_RENEW = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0"
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


class LeaseUnavailable(Exception):
    """Redis did not answer: who holds the lease is unknown."""


class RedisLease:
    """`hold()` takes or renews the lease; `release()` gives it up. Ask every `check_every` seconds."""

    def __init__(self, url: str, key: str, ttl: float) -> None:
        self.key = key
        self.ttl = ttl
        self.check_every = ttl / 4  # the holder renews this often, the others ask this often
        self.holder = uuid.uuid4().hex  # opaque: this process, for as long as it lives
        self._held = False
        # Short timeouts: the registrar's loop waits for these answers.
        self._redis = redis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=2, socket_timeout=2)

    @property
    def _ttl_ms(self) -> int:
        # Three renewals may fail before it lapses; a dead holder's key is gone after 3/4 of `ttl`.
        return max(1, int(self.ttl * 750))

    async def hold(self) -> bool:
        """True while this process holds the lease. Raises `LeaseUnavailable` when Redis does not answer."""
        try:
            if self._held and await self._redis.eval(_RENEW, 1, self.key, self.holder, self._ttl_ms):
                return True
            # Not ours (or it expired, or Redis restarted empty): take it if nobody holds it.
            self._held = bool(await self._redis.set(self.key, self.holder, nx=True, px=self._ttl_ms))
        except (RedisError, OSError) as exc:
            raise LeaseUnavailable(f"the registration lease could not be read from Redis ({exc})") from None
        return self._held

    async def release(self) -> None:
        """Give the lease up (only if still ours), so another worker takes over at once."""
        if not self._held:
            return
        self._held = False
        with contextlib.suppress(RedisError, OSError):  # else it expires by itself
            await self._redis.eval(_RELEASE, 1, self.key, self.holder)

    async def aclose(self) -> None:
        await self._redis.aclose()
{%- endif %}
