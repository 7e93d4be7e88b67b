"""Find peers through Hermes: a TTL cache, the last known-good answer while
Hermes is down, and a static fallback from the environment.

The guide calls discovery synchronously, even from constructors and inside
coroutines, so the sync methods never start an event loop: they answer from
the cache, else ask Hermes with a plain blocking `httpx.Client` bounded by
`timeout`. Async twins (`resolve`, `adiscover_component`, ...) do the same
without blocking. Constructing a client does no network I/O.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import httpx

from ..about import TEKTON_PORTS
from ..settings import Settings, load_settings
from . import protocol
from .protocol import COMPONENTS, REGISTER, DiscoveryError, HermesError, component_records, decode, split_endpoint

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServiceInstance:
    """One reachable instance of a component."""

    name: str
    component_id: str
    host: str
    port: int
    base_url: str
    metadata: Mapping[str, Any] = field(default_factory=dict, compare=False)
    capabilities: tuple[str, ...] = ()

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> ServiceInstance:
        """From a Hermes record (either key casing); the address comes from `endpoint`."""
        metadata = protocol.field(record, "metadata") or {}
        name = str(protocol.field(record, "name") or "")
        endpoint = protocol.field(record, "endpoint")
        if not endpoint:
            port = protocol.field(record, "port") or metadata.get("port")
            if not port:
                raise ValueError(f"component {name!r} has no endpoint")
            endpoint = f"http://{metadata.get('host', 'localhost')}:{port}"
        host, port, base_url = split_endpoint(str(endpoint))
        return cls(
            name=name,
            component_id=str(protocol.field(record, "component_id") or protocol.field(record, "id") or name),
            host=host,
            port=port,
            base_url=base_url,
            metadata=dict(metadata),
            capabilities=tuple(protocol.field(record, "capabilities") or ()),
        )

    def describe(self) -> dict[str, Any]:
        """The guide's shape: `info["host"]`, `info["port"]`, plus the rest Hermes knows."""
        return {
            "name": self.name,
            "component_id": self.component_id,
            "host": self.host,
            "port": self.port,
            "base_url": self.base_url,
            "endpoint": self.base_url,
            "health_check": self.metadata.get("health_check", "/health"),
            "capabilities": list(self.capabilities),
            "metadata": dict(self.metadata),
        }


@dataclass
class _Known:
    instances: tuple[ServiceInstance, ...]
    fetched: float


def _key(name: str) -> str:
    return name.strip().casefold()


def _env_key(name: str) -> str:
    """`tekton-core` -> `TEKTON_CORE`, the prefix of its `_HOST`/`_PORT` variables."""
    return re.sub(r"[^0-9A-Za-z]+", "_", name.strip()).upper()


def registration_from_guide(registration: Mapping[str, Any]) -> dict[str, Any]:
    """The guide's registration dict (`component`, `host`, `port`, ...) as a Hermes `POST /api/register` body."""
    data = dict(registration)
    name = data.pop("name", None) or data.pop("component", None)
    if not name:
        raise ValueError("registration needs a 'name' (or the guide's 'component')")
    data.pop("component", None)
    endpoint = data.pop("endpoint", None)
    host, port = data.get("host", "localhost"), data.get("port")
    if not endpoint:
        if port is None:
            raise ValueError(f"registration of {name!r} needs an 'endpoint' or a 'port'")
        endpoint = f"http://{host}:{port}"
    body: dict[str, Any] = {
        "component_id": data.pop("component_id", None) or name,
        "name": name,
        "version": str(data.pop("version", "0.0.0")),
        "type": data.pop("type", None) or data.pop("component_type", None) or "component",
        "endpoint": endpoint,
        "capabilities": list(data.pop("capabilities", [])),
    }
    extra = dict(data.pop("metadata", None) or {})
    body["metadata"] = {**data, **extra}  # host, port, description, health_check, dependencies, endpoints, ...
    return body


class HermesClient:
    """Discovery and registration through Hermes.

    `HermesClient()` reads Hermes' address from the environment (`HERMES_URL`,
    or `HERMES_HOST`/`HERMES_PORT`); `base_url=` (or the guide's `host=`/`port=`)
    overrides it.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        base_url: str | None = None,
        cache_ttl: float = 30.0,
        timeout: float = 5.0,
        host: str | None = None,
        port: int | None = None,
    ) -> None:
        self.settings = settings or load_settings()
        if base_url is None and (host or port):
            base_url = f"http://{host or 'localhost'}:{port or self.settings.hermes_port}"
        self.base_url = (base_url or self.settings.hermes_base_url).rstrip("/").removesuffix("/api")
        self.cache_ttl = cache_ttl
        self.timeout = timeout
        self._known: dict[str, _Known] = {}
        self._listings: dict[str | None, tuple[list[dict[str, Any]], float]] = {}
        self._turns: dict[str, int] = {}
        self._lock = threading.Lock()
        self._sync: httpx.Client | None = None
        self._async: httpx.AsyncClient | None = None
        self._async_loop: asyncio.AbstractEventLoop | None = None
        self._hermes_down = False

    # -- resolve -------------------------------------------------------------

    async def resolve(self, name: str) -> ServiceInstance:
        """An instance of `name`; several healthy ones are taken in turn."""
        cached = self._cached(name)
        if cached is not None:
            return cached
        try:
            records = await self._afind(name)
        except HermesError as exc:
            return self._fallback(name, exc)
        return self._found(name, records)

    def resolve_sync(self, name: str) -> ServiceInstance:
        """`resolve` for sync code; blocks at most about `timeout` seconds per Hermes call."""
        cached = self._cached(name)
        if cached is not None:
            return cached
        try:
            records = self._find(name)
        except HermesError as exc:
            return self._fallback(name, exc)
        return self._found(name, records)

    def discover_component(self, name: str) -> dict[str, Any]:
        """The guide's `hermes.discover_component(name)`: host, port, base_url, endpoint, health_check, ..."""
        return self.resolve_sync(name).describe()

    async def adiscover_component(self, name: str) -> dict[str, Any]:
        return (await self.resolve(name)).describe()

    # -- list ----------------------------------------------------------------

    def list_components(self, capability: str | None = None) -> list[dict[str, Any]]:
        """Every component Hermes lists (with `capability`, if given); cached for `cache_ttl`."""
        cached = self._cached_listing(capability)
        if cached is not None:
            return cached
        try:
            records = self._get_components(capability=capability)
        except HermesError as exc:
            return self._last_listing(capability, exc)
        return self._listed(capability, records)

    async def alist_components(self, capability: str | None = None) -> list[dict[str, Any]]:
        cached = self._cached_listing(capability)
        if cached is not None:
            return cached
        try:
            records = await self._aget_components(capability=capability)
        except HermesError as exc:
            return self._last_listing(capability, exc)
        return self._listed(capability, records)

    # -- register ------------------------------------------------------------

    async def register_component(self, registration: Mapping[str, Any]) -> dict[str, Any]:
        """Register with the guide's dict (`host`/`port` become `endpoint`, the rest `metadata`).

        Returns Hermes' answer with `component_id` and `token` (send the token as
        `X-Authentication-Token` on heartbeats). Raises `HermesError` on failure.
        """
        body = registration_from_guide(registration)
        client = self._async_client()
        try:
            response = await client.post(REGISTER, json=body)
        except httpx.HTTPError as exc:
            raise protocol.transport_error("register", self.base_url, exc) from None
        answer = decode(response, "register")
        if not isinstance(answer, dict):
            raise HermesError(f"register: Hermes answered an unexpected shape: {str(answer)[:80]!r}", "bad_answer")
        with self._lock:
            self._known.pop(_key(body["name"]), None)
        return {
            **answer,
            "success": bool(protocol.field(answer, "success", True)),
            "component_id": protocol.field(answer, "component_id") or body["component_id"],
            "token": protocol.field(answer, "token"),
        }

    # -- closing -------------------------------------------------------------

    async def aclose(self) -> None:
        if self._async is not None:
            client, self._async = self._async, None
            if self._async_loop is asyncio.get_running_loop():
                await client.aclose()
        self.close()

    def close(self) -> None:
        """Close the sync connection pool (use `aclose` to close both)."""
        if self._sync is not None:
            self._sync.close()
            self._sync = None

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

    # -- Hermes calls ----------------------------------------------------------

    def _sync_client(self) -> httpx.Client:
        if self._sync is None:
            self._sync = httpx.Client(base_url=self.base_url, timeout=self.timeout)
        return self._sync

    def _async_client(self) -> httpx.AsyncClient:
        # An AsyncClient belongs to the loop that first used it; a client used
        # from several `asyncio.run` calls needs one per loop.
        loop = asyncio.get_running_loop()
        if self._async is None or self._async_loop is not loop:
            self._async = httpx.AsyncClient(base_url=self.base_url, timeout=self.timeout)
            self._async_loop = loop
        return self._async

    @staticmethod
    def _params(capability: str | None, healthy_only: bool) -> dict[str, str]:
        params = {"capability": capability} if capability else {}
        if healthy_only:
            params["healthy_only"] = "true"
        return params

    def _get_components(self, capability: str | None = None, healthy_only: bool = False) -> list[dict[str, Any]]:
        try:
            response = self._sync_client().get(COMPONENTS, params=self._params(capability, healthy_only))
        except httpx.HTTPError as exc:
            raise protocol.transport_error("list components", self.base_url, exc) from None
        return component_records(decode(response, "list components"), "list components")

    async def _aget_components(self, capability: str | None = None, healthy_only: bool = False) -> list[dict[str, Any]]:
        try:
            response = await self._async_client().get(COMPONENTS, params=self._params(capability, healthy_only))
        except httpx.HTTPError as exc:
            raise protocol.transport_error("list components", self.base_url, exc) from None
        return component_records(decode(response, "list components"), "list components")

    def _find(self, name: str) -> list[dict[str, Any]]:
        # Healthy instances first; a peer that never heartbeats is still better than none.
        return self._named(name, self._get_components(healthy_only=True)) or self._named(name, self._get_components())

    async def _afind(self, name: str) -> list[dict[str, Any]]:
        return self._named(name, await self._aget_components(healthy_only=True)) or self._named(
            name, await self._aget_components()
        )

    @staticmethod
    def _named(name: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        wanted = _key(name)

        def matches(record: dict[str, Any]) -> bool:
            keys = (protocol.field(record, "name"), protocol.field(record, "component_id"))
            return wanted in (_key(str(value or "")) for value in keys)

        return [record for record in records if matches(record)]

    # -- answers -------------------------------------------------------------

    def _cached(self, name: str) -> ServiceInstance | None:
        with self._lock:
            known = self._known.get(_key(name))
            if known is None or time.monotonic() - known.fetched >= self.cache_ttl:
                return None
            return self._next(name, known.instances)

    def _next(self, name: str, instances: tuple[ServiceInstance, ...]) -> ServiceInstance:
        turn = self._turns.get(_key(name), 0)
        self._turns[_key(name)] = turn + 1
        return instances[turn % len(instances)]

    def _instances(self, records: list[dict[str, Any]]) -> tuple[ServiceInstance, ...]:
        instances = []
        for record in records:
            try:
                instances.append(ServiceInstance.from_record(record))
            except ValueError as exc:
                log.debug("skipping unusable hermes record: %s", exc)
        return tuple(sorted(instances, key=lambda instance: instance.component_id))

    def _found(self, name: str, records: list[dict[str, Any]]) -> ServiceInstance:
        self._answered()
        instances = self._instances(records)
        with self._lock:
            if instances:
                self._known[_key(name)] = _Known(instances, time.monotonic())
                return self._next(name, instances)
            self._known.pop(_key(name), None)  # Hermes answered: it is gone.
        return self._static(name, f"Hermes at {self.base_url} does not list {name!r}")

    def _fallback(self, name: str, exc: HermesError) -> ServiceInstance:
        self._unanswered(exc)
        with self._lock:
            known = self._known.get(_key(name))
            if known is not None:
                return self._next(name, known.instances)
        return self._static(name, str(exc))

    def _static(self, name: str, why: str) -> ServiceInstance:
        """`<PEER>_HOST`/`<PEER>_PORT`, else `TEKTON_HOST` and the known Tekton port."""
        prefix = _env_key(name)
        raw_port = os.environ.get(f"{prefix}_PORT")
        port: int | None = TEKTON_PORTS.get(prefix.lower())
        if raw_port is not None:
            try:
                port = int(raw_port)
            except ValueError:
                raise DiscoveryError(f"{prefix}_PORT={raw_port!r} is not a port number; set it to e.g. 8003") from None
        if port is None:
            raise DiscoveryError(
                f"cannot find component {name!r}: {why}, nothing was cached, and no static address is set; "
                f"register it with Hermes or set {prefix}_PORT (and {prefix}_HOST)"
            )
        host = os.environ.get(f"{prefix}_HOST") or self.settings.tekton_host or "localhost"
        return ServiceInstance(name, name, host, port, f"http://{host}:{port}", {"source": "static"})

    def _listed(self, capability: str | None, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        self._answered()
        listing = [instance.describe() for instance in self._instances(records)]
        with self._lock:
            self._listings[capability] = (listing, time.monotonic())
        return list(listing)

    def _cached_listing(self, capability: str | None) -> list[dict[str, Any]] | None:
        with self._lock:
            listing, fetched = self._listings.get(capability, ([], -float("inf")))
        return list(listing) if time.monotonic() - fetched < self.cache_ttl else None

    def _last_listing(self, capability: str | None, exc: HermesError) -> list[dict[str, Any]]:
        self._unanswered(exc)
        with self._lock:
            if capability in self._listings:
                return list(self._listings[capability][0])
        raise DiscoveryError(f"cannot list components: {exc}, and no earlier listing is cached")

    def _answered(self) -> None:
        if self._hermes_down:
            self._hermes_down = False
            log.info("hermes answers again at %s", self.base_url)

    def _unanswered(self, exc: HermesError) -> None:
        if not self._hermes_down:
            self._hermes_down = True
            log.warning("hermes unavailable, using cached or static addresses: %s", exc)
