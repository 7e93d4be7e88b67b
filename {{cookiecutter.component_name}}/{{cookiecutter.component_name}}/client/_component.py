"""`ComponentClient`: the guide's request/response client for one peer.

Discovery at the first call, the loop's pooled connection, the peer's
circuit breaker around retries, timeouts, metrics, logs, request id and
trace context: every integration pattern is built on this.
"""

from __future__ import annotations

from typing import Any, Unpack

import httpx

from ..about import API_VERSION, COMPONENT_NAME
from ._breaker import CircuitBreaker, breaker_for
from ._config import IntegrationConfig
from ._discovery import PeerAddress, PeerLocation
from ._pool import async_client, sync_client
from ._transport import Call, api_path, send_async, send_sync


def peer_breaker(component: str, config: IntegrationConfig) -> CircuitBreaker:
    """The process-wide breaker of `component`, built from `config` the first time."""
    return breaker_for(
        component,
        lambda: CircuitBreaker(
            failure_threshold=config.circuit_breaker_threshold,
            recovery_timeout=config.circuit_breaker_recovery,
            name=component,
            failure_rate_threshold=config.circuit_breaker_failure_rate,
            minimum_calls=config.circuit_breaker_minimum_calls,
            window_size=config.circuit_breaker_window,
            half_open_max_calls=config.circuit_breaker_half_open_calls,
            half_open_deadline=config.circuit_breaker_half_open_deadline,
        ),
    )


def decode(response: httpx.Response) -> Any:
    """JSON when the peer sent JSON, text otherwise, None for an empty body."""
    if not response.content:
        return None
    if "json" in response.headers.get("content-type", ""):
        return response.json()
    return response.text


def _name_from_address(host: str | None, port: int | None, base_url: str | None) -> str:
    """The guide's `ComponentClient(host="localhost", port=8005)` names no peer: its address is the name
    (used for the breaker, metrics and errors); without an address there is nothing to call."""
    if base_url:
        return httpx.URL(base_url).netloc.decode() or base_url
    if port is not None:
        return f"{host or 'localhost'}:{port}"
    raise ValueError("ComponentClient needs the peer's name (found through Hermes) or its host/port or base_url")


class ComponentClient:
    """Calls to one peer, by name: `await ComponentClient("rhetor").call_api("generate", "POST", {...})`.

    The guide's `ComponentClient(host="localhost", port=8005)` also works: the
    address then stands for the name.

    `host`/`port` (or `base_url`) skip discovery, which otherwise happens at
    the first call (never in the constructor). `config` defaults to
    `IntegrationConfig.from_env()`. `circuit_breaker`: True for the peer's one
    shared breaker (built from the config of the first client of that peer),
    False for none, or a breaker of your own.
    """

    def __init__(
        self,
        component: str | None = None,
        *,
        config: IntegrationConfig | None = None,
        circuit_breaker: CircuitBreaker | bool = True,
        source: str = COMPONENT_NAME,
        api_version: str = API_VERSION,
        **where: Unpack[PeerLocation],
    ) -> None:
        component = component or _name_from_address(where.get("host"), where.get("port"), where.get("base_url"))
        self.component = component
        self.config = config or IntegrationConfig.from_env()
        self.source = source
        self.api_version = api_version
        self.address = PeerAddress(component, **where)
        if circuit_breaker is True:
            self.breaker: CircuitBreaker | None = peer_breaker(component, self.config)
        else:
            self.breaker = circuit_breaker or None

    @property
    def base_url(self) -> str:
        """The peer's base URL (discovered now if not yet known; blocks at most the discovery timeout)."""
        return self.address.base_url_sync()

    async def resolve(self) -> str:
        """The peer's base URL, discovered without blocking the loop."""
        return await self.address.base_url()

    async def call_api(
        self,
        endpoint: str,
        method: str = "GET",
        data: Any = None,
        *,
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        """`/api/v1/<endpoint>` (or `/api/vN/...` for an endpoint starting `vN/`); returns the decoded body.

        Raises `PeerHTTPError` (status and body), `PeerTimeoutError`,
        `PeerUnavailableError` or `CircuitOpenError`.
        """
        path, version = api_path(endpoint, self.api_version)
        call_headers = {"X-API-Version": version, **headers} if headers else {"X-API-Version": version}
        call = self._call(method, path, data, call_headers, params, endpoint)
        return decode(await send_async(async_client(), self.address.base_url, call, self.config, self.breaker))

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
        label: str | None = None,
    ) -> httpx.Response:
        """Any path on the peer (`/health`, `/api/v1/...`), through the same breaker, retries and metrics."""
        call = self._call(method, path, json, dict(headers) if headers else {}, params, label)
        return await send_async(async_client(), self.address.base_url, call, self.config, self.breaker)

    def request_sync(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
        label: str | None = None,
    ) -> httpx.Response:
        """`request` for synchronous code, on the shared sync pool."""
        call = self._call(method, path, json, dict(headers) if headers else {}, params, label)
        return send_sync(sync_client(), self.address.base_url_sync, call, self.config, self.breaker)

    def _call(
        self,
        method: str,
        path: str,
        json: Any,
        headers: dict[str, str],
        params: dict[str, Any] | None,
        label: str | None,
    ) -> Call:
        """`headers` becomes the call's own (callers pass a copy of anything they were given)."""
        if not path.startswith("/"):
            path = "/" + path
        return Call(
            component=self.component,
            source=self.source,
            method=method.upper(),
            path=path,
            endpoint=label if label is not None else path,
            json=json,
            params=params,
            headers=headers,
        )

    def __repr__(self) -> str:
        where = self.address.fixed or "via Hermes"
        return f"ComponentClient({self.component!r}, {where})"
