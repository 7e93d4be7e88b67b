"""Where a peer lives: given explicitly (`host`/`port`/`base_url`), else asked of
Hermes at the first call (its client caches, keeps the last known-good answer,
and falls back to `<PEER>_HOST`/`<PEER>_PORT`). Never any I/O at construction."""

from __future__ import annotations

import os
import threading
from typing import TypedDict

from ..addresses import AddressError, env_key
from ..hermes import HermesClient, HermesError
from ._errors import PeerUnavailableError

# The variables that decide where Hermes is: one shared client per distinct setting.
_HERMES_ENV = ("HERMES_URL", "HERMES_HOST", "HERMES_PORT", "TEKTON_HOST")
_shared: dict[tuple[str | None, ...], HermesClient] = {}
_shared_lock = threading.Lock()


def shared_hermes() -> HermesClient:
    """The process's discovery client, so every integration shares one cache."""
    key = tuple(os.environ.get(name) for name in _HERMES_ENV)
    with _shared_lock:
        client = _shared.get(key)
        if client is None:
            client = _shared[key] = HermesClient()
        return client


async def close_shared_hermes() -> None:
    with _shared_lock:
        clients = list(_shared.values())
        _shared.clear()
    for client in clients:
        await client.aclose()


class PeerLocation(TypedDict, total=False):
    """Where a peer is, as every pattern's constructor takes it (`**where: Unpack[PeerLocation]`):
    `host`/`port` or `base_url` to skip discovery, or the Hermes client to ask (default: the shared one).
    `PeerAddress` is the one place that reads them."""

    host: str | None
    port: int | None
    base_url: str | None
    discovery: HermesClient | None


class PeerAddress:
    """The base URL of one peer, fixed or discovered."""

    def __init__(
        self,
        component: str,
        *,
        host: str | None = None,
        port: int | None = None,
        base_url: str | None = None,
        discovery: HermesClient | None = None,
    ) -> None:
        if not component or not component.strip():
            raise ValueError("component name is empty: pass the peer's name, e.g. ComponentClient('rhetor')")
        self.component = component
        self._discovery = discovery
        self.fixed: str | None = None
        if base_url:
            self.fixed = base_url.rstrip("/")
        elif host or port:
            if port is None:
                raise ValueError(f"host={host!r} given without a port for {component!r}: pass port= too")
            self.fixed = f"http://{host or 'localhost'}:{port}"

    @property
    def discovery(self) -> HermesClient:
        if self._discovery is None:
            try:
                self._discovery = shared_hermes()
            except AddressError as exc:  # a bad HERMES_URL/HERMES_PORT: say so, as a typed error
                raise PeerUnavailableError(
                    f"cannot look up {self.component!r}: {exc}", component=self.component
                ) from exc
        return self._discovery

    def _hermes_itself(self) -> str | None:
        # Hermes does not list itself: where we talk to Hermes (HERMES_URL, ...) is where it lives,
        # not the fixed port 8001 its static fallback would give.
        return self.discovery.base_url if env_key(self.component) == "HERMES" else None

    async def base_url(self) -> str:
        if self.fixed:
            return self.fixed
        if hermes := self._hermes_itself():
            return hermes
        try:
            return (await self.discovery.resolve(self.component)).base_url.rstrip("/")
        except HermesError as exc:  # DiscoveryError included: nothing cached, no static address
            raise PeerUnavailableError(str(exc), component=self.component) from exc

    def base_url_sync(self) -> str:
        if self.fixed:
            return self.fixed
        if hermes := self._hermes_itself():
            return hermes
        try:
            return self.discovery.resolve_sync(self.component).base_url.rstrip("/")
        except HermesError as exc:  # DiscoveryError included: nothing cached, no static address
            raise PeerUnavailableError(str(exc), component=self.component) from exc
