"""`HermesClient`: find peers through Hermes, and register with the guide's dict.

It composes the `Directory` (cache, turns, last known-good answers, static
fallback: every decision, no I/O) with the Hermes calls (I/O only). The
guide calls discovery synchronously, even from constructors and inside
coroutines, so the sync methods never start an event loop: they answer from
the cache, else ask Hermes with a blocking `HermesCalls` bounded by
`timeout`. The async twins (`resolve`, `adiscover_component`, ...) do the
same without blocking. Constructing a client does no network I/O, and it
never reads this component's settings: a peer's discovery must not fail
because one of our own variables is wrong.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from ..about import TEKTON_PORTS
from ..addresses import environment, hermes_base_url_from_env, redact_url
from .calls import AsyncHermesCalls, HermesCalls
from .directory import Directory, matching
from .instance import ServiceInstance
from .protocol import HermesError, field
from .registration import registration_from_guide


class HermesClient:
    """Discovery and registration through Hermes.

    `HermesClient()` reads Hermes' address from the environment and `.env`
    (`HERMES_URL`, or `HERMES_HOST`/`HERMES_PORT`, else `TEKTON_HOST`);
    `base_url` (or the guide's `host=`/`port=`) overrides it.
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        cache_ttl: float = 30.0,
        timeout: float = 5.0,
        host: str | None = None,
        port: int | None = None,
    ) -> None:
        if base_url is None and (host or port):
            base_url = f"http://{host or 'localhost'}:{port or TEKTON_PORTS['hermes']}"
        self.base_url = (base_url or hermes_base_url_from_env(environment())).rstrip("/").removesuffix("/api")
        self.timeout = timeout
        self.directory = Directory(cache_ttl=cache_ttl, hermes_url=redact_url(self.base_url), environ=environment)
        self._lock = threading.Lock()
        self._sync: HermesCalls | None = None
        self._async: AsyncHermesCalls | None = None
        self._async_loop: asyncio.AbstractEventLoop | None = None

    @property
    def cache_ttl(self) -> float:
        return self.directory.cache_ttl

    # -- resolve -------------------------------------------------------------

    async def resolve(self, name: str) -> ServiceInstance:
        """An instance of `name`; several healthy ones are taken in turn."""
        cached = self.directory.cached(name)
        if cached is not None:
            return cached
        calls = self._async_calls()
        try:
            # Healthy instances first; a peer that never heartbeats is still better than none.
            records = matching(name, await calls.components(healthy_only=True)) or matching(
                name, await calls.components()
            )
        except HermesError as exc:
            return self.directory.unanswered(name, exc)
        return self.directory.found(name, records)

    def resolve_sync(self, name: str) -> ServiceInstance:
        """`resolve` for sync code; blocks at most about `timeout` seconds per Hermes call."""
        cached = self.directory.cached(name)
        if cached is not None:
            return cached
        calls = self._sync_calls()
        try:
            records = matching(name, calls.components(healthy_only=True)) or matching(name, calls.components())
        except HermesError as exc:
            return self.directory.unanswered(name, exc)
        return self.directory.found(name, records)

    def discover_component(self, name: str) -> dict[str, Any]:
        """The guide's `hermes.discover_component(name)`: host, port, base_url, endpoint, health_check, ..."""
        return self.resolve_sync(name).describe()

    async def adiscover_component(self, name: str) -> dict[str, Any]:
        return (await self.resolve(name)).describe()

    # -- list ----------------------------------------------------------------

    def list_components(self, capability: str | None = None) -> list[dict[str, Any]]:
        """Every component Hermes lists (with `capability`, if given); cached for `cache_ttl`."""
        cached = self.directory.cached_listing(capability)
        if cached is not None:
            return cached
        try:
            records = self._sync_calls().components(capability=capability)
        except HermesError as exc:
            return self.directory.last_listing(capability, exc)
        return self.directory.listed(capability, records)

    async def alist_components(self, capability: str | None = None) -> list[dict[str, Any]]:
        cached = self.directory.cached_listing(capability)
        if cached is not None:
            return cached
        try:
            records = await self._async_calls().components(capability=capability)
        except HermesError as exc:
            return self.directory.last_listing(capability, exc)
        return self.directory.listed(capability, records)

    # -- register ------------------------------------------------------------

    async def register_component(self, registration: Mapping[str, Any]) -> dict[str, Any]:
        """Register with the guide's dict (`host`/`port` become `endpoint`, the rest `metadata`).

        Returns Hermes' answer with `component_id` and `token` (send the token as
        `X-Authentication-Token` on heartbeats). Raises `HermesError` on failure.
        """
        body = registration_from_guide(registration)
        component_id, token, answer = await self._async_calls().register(body)
        self.directory.forget(body["name"])
        return {
            **answer,
            "success": bool(field(answer, "success", True)),
            "component_id": component_id,
            "token": token,
        }

    # -- closing -------------------------------------------------------------

    async def aclose(self) -> None:
        """Close both connection pools (an async pool of another, finished event loop is dropped)."""
        calls, self._async = self._async, None
        if calls is not None and self._async_loop is asyncio.get_running_loop():
            await calls.aclose()
        self.close()

    def close(self) -> None:
        """Close the sync connection pool (use `aclose` to close both)."""
        with self._lock:
            calls, self._sync = self._sync, None
        if calls is not None:
            calls.close()

    async def __aenter__(self) -> HermesClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def __enter__(self) -> HermesClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- the calls, made on first use ------------------------------------------------

    def _sync_calls(self) -> HermesCalls:
        with self._lock:
            if self._sync is None:
                self._sync = HermesCalls(self.base_url, timeout=self.timeout)
            return self._sync

    def _async_calls(self) -> AsyncHermesCalls:
        # An AsyncClient belongs to the loop that first used it; a client used
        # from several `asyncio.run` calls needs one per loop.
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._async is None or self._async_loop is not loop:
                self._async = AsyncHermesCalls(self.base_url, timeout=self.timeout)
                self._async_loop = loop
            return self._async
