{%- if cookiecutter.event_bus == "redis" -%}
"""Several workers, one registration: a Redis lease decides which worker keeps it.

Real parts: uvicorn's `--workers 2` supervisor, a real `redis-server`, the
local Hermes over HTTP; a worker is killed with SIGKILL, as the kernel's OOM
killer would, and uvicorn's supervisor starts another.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid
from pathlib import Path

import pytest

from {{ cookiecutter.component_name }}.hermes.lease import LeaseUnavailable, RedisLease
from {{ cookiecutter.component_name }}.hermes.registrar import Registrar

from .support.hermes import LocalHermes
from .support.servers import ComponentProcess, refused_port
from .support.waiting import eventually
from .test_hermes_registrar import NAME, SettingsFactory, component_env, fast_settings, health

OWNER_LINE = "this worker keeps the hermes registration"


def owners(log: str) -> list[int]:
    """The pid of each worker that took the registration, in order."""
    return [json.loads(line)["pid"] for line in log.splitlines() if line.startswith("{") and OWNER_LINE in line]


def workers_started(log: str) -> int:
    return sum(1 for line in log.splitlines() if line.startswith("{") and json.loads(line)["message"] == "started")


@pytest.mark.long
def test_one_of_two_workers_registers_and_another_takes_over_when_it_is_killed(
    local_hermes: LocalHermes, tmp_path: Path
) -> None:
    # Renewed every second, lost after 3 s without a renewal: a loaded machine's stalls (the template's CI
    # runs two suites at once on 2 cores) keep it; with 1.5 s it was lost there once in a while.
    env = component_env(local_hermes.url, hermes_lease_ttl="4", hermes_timeout="5")
    process = ComponentProcess(NAME, env=env, log_dir=tmp_path, extra_args=("--workers", "2"))
    with process:
        eventually(lambda: workers_started(process.log) == 2, what="both workers started")
        eventually(lambda: NAME in local_hermes.component_ids())
        # Long enough for the other worker to ask for the lease several times.
        beats = local_hermes.registry.count("/api/heartbeat", 200)
        eventually(lambda: local_hermes.registry.count("/api/heartbeat", 200) >= beats + 20)
        assert local_hermes.registry.count("/api/register") == 1  # one worker registered, once
        assert len(owners(process.log)) == 1

        owner = owners(process.log)[0]
        os.kill(owner, signal.SIGKILL)
        killed = time.monotonic()
        eventually(lambda: len(owners(process.log)) == 2, what="another worker took the registration over")
        eventually(lambda: local_hermes.registry.count("/api/register", 200) == 2)
        with local_hermes.registry.lock:
            taken_over = next(c.at for c in local_hermes.registry.calls if c.path == "/api/register" and c.at > killed)
        assert owners(process.log)[1] != owner
        eventually(lambda: workers_started(process.log) == 3, what="uvicorn started a worker in the killed one's place")
        beats = local_hermes.registry.count("/api/heartbeat", 200)
        eventually(lambda: local_hermes.registry.count("/api/heartbeat", 200) >= beats + 10)
        assert len(owners(process.log)) == 2  # the new worker stands by
        assert health(process.base_url)["registered_with_hermes"] is True
        assert local_hermes.registry.count("/api/unregister") == 0
    # Only the worker holding the lease unregisters; the one standing by leaves Hermes alone.
    # Every registration but the killed worker's was undone, by the worker that made it. (Both workers
    # stop at once: the standby may take the released lease and register before its own stop, and
    # then it unregisters too.)
    registry = local_hermes.registry
    assert registry.count("/api/unregister") == registry.count("/api/register") - 1
    assert NAME not in local_hermes.component_ids()
    print(f"registered again {taken_over - killed:.2f}s after the owning worker was killed (lease ttl 4 s)")


async def test_registration_does_not_wait_for_an_unreachable_redis(
    make_settings: SettingsFactory, local_hermes: LocalHermes
) -> None:
    dead_redis = f"redis://127.0.0.1:{refused_port()}/0"
    settings = fast_settings(make_settings, local_hermes.url, redis_url=dead_redis, event_bus="redis")
    async with Registrar(settings) as registrar:
        assert await registrar.wait_registered(15)
        assert registrar.report().detail["owner"] is True
        assert "could not be read from Redis" in str(registrar.last_error)
    assert NAME not in local_hermes.component_ids()  # and it unregistered as the holder


# -- the lease itself, against a real Redis -------------------------------------------------


async def _held_within(lease: RedisLease, seconds: float) -> bool:
    for _ in range(int(seconds / 0.05)):
        if await lease.hold():
            return True
        await asyncio.sleep(0.05)
    return False


async def test_the_lease_has_one_holder_and_passes_on_when_released_or_expired(redis_url: str) -> None:
    key = f"test:lease:{uuid.uuid4().hex}"
    one, two = RedisLease(redis_url, key, ttl=0.5), RedisLease(redis_url, key, ttl=0.5)
    try:
        assert await one.hold()
        assert not await two.hold()
        assert await one.hold()  # renewed
        await one.release()
        assert await two.hold()  # released: taken at once
        # `two` stops renewing, as a killed worker does: the lease expires and passes on.
        assert await _held_within(one, 5)
        assert not await two.hold()  # and `two` knows it lost it
    finally:
        await one.aclose()
        await two.aclose()


async def test_an_unreachable_redis_is_reported_not_taken_for_a_lost_lease() -> None:
    lease = RedisLease(f"redis://127.0.0.1:{refused_port()}/0", "test:lease", ttl=1)
    try:
        with pytest.raises(LeaseUnavailable, match="could not be read from Redis"):
            await lease.hold()
    finally:
        await lease.aclose()
{%- endif %}
