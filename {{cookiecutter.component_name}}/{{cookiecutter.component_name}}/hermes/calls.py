"""The one way this package talks to Hermes: `HermesCalls` (blocking) and its
twin `AsyncHermesCalls`, each wrapping one httpx client.

As with httpx's own `Client` and `AsyncClient`, the twins share everything
that is not I/O: `protocol` builds each request and reads each answer; the
twins only send. Nothing here caches or retries: the registrar decides when
to call again, the discovery directory what to remember. The doctor uses the
blocking twin, the registrar and async discovery the other.

httpx (with httpcore) is imported when a twin first needs it, not with this
module: it costs about a tenth of a second, and the component's first answer
must not wait for it (see `AsyncHermesCalls._client`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ..addresses import redact_url
from .protocol import (
    Request,
    component_records,
    components_request,
    decode,
    heartbeat_request,
    register_request,
    registration_answer,
    split_endpoint,
    transport_error,
    unregister_request,
)

if TYPE_CHECKING:
    import httpx

DEFAULT_TIMEOUT = 5.0
HEALTHY: Mapping[str, Any] = {"status": "healthy"}

Registered = tuple[str, str, dict[str, Any]]
"""(component_id, token, Hermes' whole answer)."""


def tls_for(base_url: str) -> ssl.SSLContext | bool:
    """Verification as usual for an https Hermes; for plain http, a context that trusts no certificate.

    A plain-http client has no certificate to check, and loading the system's
    CA bundle (httpx's default) costs about 0.1 s of a component's start-up. The
    empty context still verifies, so nothing could ever pass unchecked.
    """
    if base_url.lower().startswith("https:"):
        return True
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


class HermesCalls:
    """Blocking calls to the Hermes at `base_url`; close it, or use it as a context manager."""

    def __init__(self, base_url: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.base_url = base_url.rstrip("/")
        self.shown_url = redact_url(self.base_url)  # for messages: never the password
        import httpx

        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, verify=tls_for(self.base_url))

    def components(self, capability: str | None = None, healthy_only: bool = False) -> list[dict[str, Any]]:
        request = components_request(capability, healthy_only)
        return component_records(self._send(request), request.what)

    def register(self, body: Mapping[str, Any]) -> Registered:
        return registration_answer(self._send(register_request(body)), body)

    def heartbeat(self, component_id: str, token: str, status: Mapping[str, Any] = HEALTHY) -> None:
        self._send(heartbeat_request(component_id, token, status))

    def unregister(self, component_id: str, token: str) -> None:
        self._send(unregister_request(component_id, token))

    def _send(self, request: Request) -> Any:
        import httpx  # loaded by `__init__`

        try:
            response = self._http.request(
                request.method, request.path, params=request.params, json=request.json, headers=request.headers
            )
        except httpx.HTTPError as exc:
            raise transport_error(request.what, self.shown_url, exc) from None
        return decode(response, request.what)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> HermesCalls:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AsyncHermesCalls:
    """`HermesCalls` for coroutines. Its connections belong to the event loop that first uses it."""

    def __init__(self, base_url: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.base_url = base_url.rstrip("/")
        self.shown_url = redact_url(self.base_url)  # for messages: never the password
        self.timeout = timeout
        self._http: httpx.AsyncClient | None = None
        self._opening = asyncio.Lock()

    async def components(self, capability: str | None = None, healthy_only: bool = False) -> list[dict[str, Any]]:
        request = components_request(capability, healthy_only)
        return component_records(await self._send(request), request.what)

    async def register(self, body: Mapping[str, Any]) -> Registered:
        return registration_answer(await self._send(register_request(body)), body)

    async def heartbeat(self, component_id: str, token: str, status: Mapping[str, Any] = HEALTHY) -> None:
        await self._send(heartbeat_request(component_id, token, status))

    async def unregister(self, component_id: str, token: str) -> None:
        await self._send(unregister_request(component_id, token))

    async def _client(self) -> httpx.AsyncClient:
        """The httpx client, made on first use, in a thread.

        The registrar's first call comes as the server starts: importing httpx
        in a thread lets the event loop answer requests meanwhile.
        """
        async with self._opening:
            if self._http is None:
                self._http = await asyncio.to_thread(_async_client, self.base_url, self.timeout)
        return self._http

    async def _send(self, request: Request) -> Any:
        http = await self._client()
        import httpx  # loaded by `_client`

        try:
            response = await http.request(
                request.method, request.path, params=request.params, json=request.json, headers=request.headers
            )
        except httpx.HTTPError as exc:
            raise transport_error(request.what, self.shown_url, exc) from None
        return decode(response, request.what)

    async def accepts_connections(self) -> bool:
        """Whether Hermes' port accepts a TCP connection: the cheapest sign of life, sending nothing.

        While Hermes is down the registrar asks this often and registers only sparsely."""
        host, port, _ = split_endpoint(self.base_url)
        try:
            async with asyncio.timeout(self.timeout):
                _, writer = await asyncio.open_connection(host, port)
        except (OSError, TimeoutError):
            return False
        writer.close()
        with contextlib.suppress(OSError):  # closed either way
            await writer.wait_closed()
        return True

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncHermesCalls:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


def _async_client(base_url: str, timeout: float) -> httpx.AsyncClient:
    import httpx

    return httpx.AsyncClient(base_url=base_url, timeout=timeout, verify=tls_for(base_url))
