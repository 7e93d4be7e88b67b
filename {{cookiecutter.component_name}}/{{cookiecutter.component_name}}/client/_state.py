"""`SharedStateIntegration` (the guide's Pattern 6): JSON state shared by key, with atomic updates.

Every entry carries a version. `sync_state` reads the entry, applies the
caller's function and writes back only if the version is still the one it
read (compare-and-set); on a conflict it tries again after a jittered wait,
until its deadline, so no concurrent update is silently lost. Backends:
`memory` (one process), `redis` (shared and atomic), `engram` (shared, but
Engram has no compare-and-set: `sync_state` refuses unless the caller opts
into last-writer-wins). Chosen by `backend=` or `<NAME>_STATE_BACKEND`.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ..addresses import environment
from ..backoff import Backoff
from ._engram import EngramClient
from ._errors import AtomicUpdateUnsupportedError, StateConflictError
from ._state_engram import EngramState
from ._state_entry import ENV_PREFIX, State, StateBackend, encode
from ._state_memory import MemoryState
from ._state_redis import RedisState

Update = Callable[[State], State | Awaitable[State]]

BACKEND_ENV = f"{ENV_PREFIX}STATE_BACKEND"
BACKENDS = ("memory", "redis", "engram")
{%- if cookiecutter.event_bus == "redis" %}
DEFAULT_BACKEND = "redis"  # this bake runs a Redis for its event bus: state shared by every process
{%- else %}
DEFAULT_BACKEND = "memory"  # this bake has no Redis: one process (set STATE_BACKEND=redis to share)
{%- endif %}

# Waits between conflicting attempts: short, fully jittered so contenders fall out of step.
CONFLICT_BACKOFF = Backoff(0.002, 0.1, jitter=1.0)


def backend_named(name: str, **options: Any) -> StateBackend:
    """A backend by name; `options` go to its constructor (`redis_url=`, `engram=`)."""
    choice = name.strip().lower()
    if choice == "memory":
        return MemoryState()
    if choice == "redis":
        return RedisState(options.get("redis_url"))
    if choice == "engram":
        return EngramState(options.get("engram"))
    raise ValueError(f"{BACKEND_ENV}={name!r} is not a state backend: choose one of {', '.join(BACKENDS)}")


class SharedStateIntegration:
    """`SharedStateIntegration("workflow_engine")`: `save_state`, `load_state`, `sync_state`.

    `backend`: a name (`memory`, `redis`, `engram`) or a `StateBackend`;
    default `<NAME>_STATE_BACKEND`, else `redis` in a Redis bake, `memory`
    otherwise. `deadline`: how long `sync_state` keeps retrying conflicts.
    `last_writer_wins=True` lets `sync_state` run on Engram, where a
    concurrent update can be lost.
    """

    def __init__(
        self,
        namespace: str,
        backend: str | StateBackend | None = None,
        *,
        deadline: float = 30.0,
        last_writer_wins: bool = False,
        redis_url: str | None = None,
        engram: EngramClient | None = None,
    ) -> None:
        if not namespace or not namespace.strip():
            raise ValueError("namespace is empty: name the state's owner, e.g. SharedStateIntegration('workflows')")
        self.namespace = namespace
        if backend is None:
            backend = environment().get(BACKEND_ENV) or DEFAULT_BACKEND
        self.backend = (
            backend_named(backend, redis_url=redis_url, engram=engram) if isinstance(backend, str) else backend
        )
        self.deadline = deadline
        self.last_writer_wins = last_writer_wins

    async def save_state(self, key: str, state: State) -> None:
        """Store `state` under `key` (a new version; overwrites whatever is there)."""
        encode(key, state)
        await self.backend.save(self.namespace, key, dict(state))

    async def load_state(self, key: str) -> State | None:
        """The latest state under `key`, or None."""
        found = await self.backend.read(self.namespace, key)
        return found[1] if found else None

    async def sync_state(self, key: str, update_func: Update) -> State:
        """Apply `update_func` (sync or async; gets `{}` when nothing is stored) and store its result atomically.

        Raises `StateConflictError` if other writers kept winning until the
        deadline (nothing of theirs is overwritten), and
        `AtomicUpdateUnsupportedError` on a backend without compare-and-set
        unless `last_writer_wins` is set.
        """
        if not self.backend.atomic:
            if not self.last_writer_wins:
                raise AtomicUpdateUnsupportedError(
                    f"the {self.backend.name} state backend has no compare-and-set, so sync_state({key!r}) "
                    "cannot be atomic: use the redis backend, or pass last_writer_wins=True to accept that "
                    "a concurrent update may be lost",
                    component=self.backend.name,
                )
            updated = await _apply(update_func, (await self.load_state(key)) or {}, key)
            await self.backend.save(self.namespace, key, updated)
            return updated
        deadline = time.monotonic() + self.deadline
        attempt = 0
        while True:
            found = await self.backend.read(self.namespace, key)
            version, current = found or (0, {})
            updated = await _apply(update_func, copy.deepcopy(current), key)
            if await self.backend.replace(self.namespace, key, updated, version):
                return updated
            wait = CONFLICT_BACKOFF.delay(attempt)
            attempt += 1
            if time.monotonic() + wait > deadline:
                raise StateConflictError(
                    f"sync_state({key!r}) in {self.namespace!r} lost to other writers {attempt} times "
                    f"within {self.deadline}s; nothing was written",
                    component=self.backend.name,
                )
            await asyncio.sleep(wait)

    async def aclose(self) -> None:
        await self.backend.aclose()


async def _apply(update_func: Update, current: State, key: str) -> State:
    updated = update_func(current)
    if inspect.isawaitable(updated):
        updated = await updated
    encode(key, updated)  # refuse before anything is written
    return dict(updated)
