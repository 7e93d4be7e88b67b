"""Which bus this process uses, and the checks and announcements around it.

`open_bus(settings)` picks the backend named by `<NAME>_EVENT_BUS`. The Redis
backend is imported by module name only when asked for, so a component
generated with `event_bus=memory` (which has no `redis_bus.py`) never
imports Redis; it imports `backend.py`, not this module, so there is no cycle.
"""

from __future__ import annotations

import importlib
import logging
import os
import secrets
import sys
from collections.abc import Sequence
from typing import Any

from ..settings import Settings, SettingsError, env_name
from .backend import BusUnavailable, EventBus
from .catalog import EventType
from .memory_bus import MemoryBus

# Drawn once per process (keyed by pid, so a forked worker draws its own): tells
# workers and replicas apart on the wire without naming the host or the pid.
_INSTANCE_IDS: dict[int, str] = {}


def instance_id() -> str:
    """This process's opaque instance id, the same for every bus it opens."""
    return _INSTANCE_IDS.setdefault(os.getpid(), secrets.token_hex(8))


def open_bus(settings: Settings) -> EventBus:
    """The configured backend, not yet started: enter it with `async with`."""
    if settings.event_bus == "memory":
        return MemoryBus(
            source=settings.component_name,
            instance=instance_id(),
            replay_size=settings.event_replay_size,
        )
    try:
        module = importlib.import_module(f"{__package__}.redis_bus")
    except ModuleNotFoundError as exc:
        if exc.name == f"{__package__}.redis_bus":
            raise SettingsError(
                f"{env_name('event_bus')}=redis, but this component was generated with event_bus=memory, "
                f"which leaves no Redis code: regenerate it with `event_bus=redis`, or unset {env_name('event_bus')}"
            ) from None
        raise SettingsError(f"{env_name('event_bus')}=redis needs the `redis` package: pip install 'redis>=5'") from exc
    bus: EventBus = module.RedisBus(
        url=settings.redis_url,
        stream=settings.event_stream_key or f"{settings.component_name}:events",
        source=settings.component_name,
        instance=instance_id(),
        replay_size=settings.event_replay_size,
    )
    return bus


def worker_count(argv: Sequence[str] | None = None, environ: dict[str, str] | None = None) -> int:
    """Best effort: uvicorn's `--workers N` (its workers inherit the argv) or `WEB_CONCURRENCY`."""
    argv = sys.argv if argv is None else argv
    environ = dict(os.environ) if environ is None else environ
    counts = [environ.get("WEB_CONCURRENCY", "1")]
    for index, arg in enumerate(argv):
        if arg == "--workers" and index + 1 < len(argv):
            counts.append(argv[index + 1])
        elif arg.startswith("--workers="):
            counts.append(arg.partition("=")[2])
    return max((int(count) for count in counts if count.strip().isdigit()), default=1)


def refuse_memory_bus_with_workers(settings: Settings, workers: int) -> None:
    """The in-memory bus cannot reach subscribers in other workers: refuse instead of losing events."""
    if settings.event_bus == "memory" and workers > 1:
        raise SettingsError(
            f"{env_name('event_bus')}=memory with {workers} uvicorn workers would lose events between workers: "
            f"run one worker per process (`--workers 1`, unset WEB_CONCURRENCY), or set "
            f"{env_name('event_bus')}=redis (in a component generated with event_bus=redis)"
        )


async def announce(bus: EventBus, event_type: EventType, data: Any, logger: logging.Logger) -> None:
    """Publish a lifecycle event; a bus that is down must not stop startup or shutdown."""
    try:
        await bus.publish(event_type, data)
    except BusUnavailable as exc:
        logger.warning("event not published", extra={"type": event_type, "error": str(exc)})
