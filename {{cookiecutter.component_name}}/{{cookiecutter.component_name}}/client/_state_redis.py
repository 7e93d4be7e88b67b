"""The `redis` state backend: shared by every process, atomic by a Lua compare-and-set.

An entry is a hash `{version, state}` at `tekton:state:<namespace>:<key>`. The
Redis is the one of the Redis event bus (`<NAME>_REDIS_URL`); a memory-bus
bake can still point at one after `pip install '<package>[redis]'`. The
`redis` library is imported at first use, so importing the client package
does not pay for it.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from ..addresses import environment, redact_url
from ._errors import PeerUnavailableError
from ._lifetime import close_with_loop
from ._state_entry import ENV_PREFIX, State, encode

if TYPE_CHECKING:
    from redis.asyncio import Redis

REDIS_URL_ENV = f"{ENV_PREFIX}REDIS_URL"
DEFAULT_REDIS_URL = "redis://localhost:6379/0"
KEY_PREFIX = "tekton:state"

# Write only if the version is still the one the caller read ("0": absent); 1 written, 0 conflict.
_REPLACE = """
local version = redis.call('HGET', KEYS[1], 'version') or '0'
if version ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'version', tonumber(version) + 1, 'state', ARGV[2])
return 1
"""
# An unconditional save still bumps the version, so a concurrent sync_state notices it.
_SAVE = """
local version = redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('HSET', KEYS[1], 'state', ARGV[1])
return version
"""


class RedisState:
    name = "redis"
    atomic = True

    def __init__(self, url: str | None = None) -> None:
        self.url = url or environment().get(REDIS_URL_ENV) or DEFAULT_REDIS_URL
        # A redis.asyncio client belongs to the loop that first used it (as an httpx one does).
        self._clients: dict[asyncio.AbstractEventLoop, Redis] = {}

    def _redis(self) -> Redis:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            try:
                from redis.asyncio import Redis
            except ImportError as exc:
                raise PeerUnavailableError(
                    "the redis state backend needs the redis library: pip install 'redis>=5,<9' "
                    "(or this package's [redis] extra)",
                    component="redis",
                ) from exc
            for dead in [other for other in self._clients if other.is_closed()]:
                del self._clients[dead]
            client = self._clients[loop] = Redis.from_url(self.url, decode_responses=True)
            close_with_loop(client.aclose)
        return client

    async def _run(self, script: str, key: str, *args: Any) -> Any:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        try:
            return await self._redis().eval(script, 1, key, *args)
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise self._unavailable(exc) from exc

    def _unavailable(self, exc: BaseException) -> PeerUnavailableError:
        return PeerUnavailableError(
            f"redis state backend unreachable at {redact_url(self.url)} ({REDIS_URL_ENV}): {exc}",
            component="redis",
        )

    async def read(self, namespace: str, key: str) -> tuple[int, State] | None:
        from redis.exceptions import ConnectionError as RedisConnectionError

        try:
            version, text = await self._redis().hmget(_key(namespace, key), ["version", "state"])
        except (RedisConnectionError, OSError) as exc:
            raise self._unavailable(exc) from exc
        if version is None or text is None:
            return None
        return int(version), json.loads(text)

    async def save(self, namespace: str, key: str, state: State) -> int:
        return int(await self._run(_SAVE, _key(namespace, key), encode(key, state)))

    async def replace(self, namespace: str, key: str, state: State, expected: int) -> bool:
        return bool(await self._run(_REPLACE, _key(namespace, key), str(expected), encode(key, state)))

    async def aclose(self) -> None:
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()


def _key(namespace: str, key: str) -> str:
    return f"{KEY_PREFIX}:{namespace}:{key}"
