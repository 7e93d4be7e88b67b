"""`StreamIntegration` (the guide's Pattern 3): server-sent data from a peer.

`stream(endpoint, params)` keeps the guide's shape (POST, then `data:` lines
as JSON). `events(types)` follows a peer's `/events` feed for as long as the
caller iterates: it reconnects with backoff when the connection drops and
resumes with `Last-Event-ID`, so nothing still in the peer's replay buffer
is missed (a `reset` from the peer means the gap was too old: logged).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator, Iterable
from typing import Any, Unpack

import httpx

from ..backoff import Backoff
from ._component import ComponentClient
from ._config import IntegrationConfig
from ._discovery import PeerLocation
from ._errors import PeerHTTPError, PeerUnavailableError
from ._pool import async_client
from ._telemetry import logger, outgoing_headers
from ._transport import api_path


class StreamIntegration:
    def __init__(
        self,
        component: str,
        *,
        config: IntegrationConfig | None = None,
        read_timeout: float = 60.0,
        reconnect_delay: float = 0.5,
        max_reconnect_delay: float = 30.0,
        **where: Unpack[PeerLocation],
    ) -> None:
        self.component = component
        self.client = ComponentClient(component, config=config, **where)
        self.read_timeout = read_timeout  # longest silence before reconnecting (peers ping every ~15 s)
        self.backoff = Backoff(reconnect_delay, max(reconnect_delay, max_reconnect_delay))
        self.last_event_id: str | None = None
        self.connections = 0  # `/events` connections opened by `events()` (1 + reconnects)
        self.disconnects = 0
        self.resets = 0

    @property
    def base_url(self) -> str:
        return self.client.base_url

    def _timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.client.config.timeout, read=self.read_timeout)

    async def stream(self, endpoint: str, params: dict[str, Any]) -> AsyncGenerator[Any, None]:
        """POST `params` to `/api/v1/<endpoint>` and yield each `data:` payload, decoded from JSON."""
        path, version = api_path(endpoint, self.client.api_version)
        url = await self.client.resolve() + path
        headers = outgoing_headers({"X-API-Version": version})
        try:
            async with async_client().stream(
                "POST", url, json=params, headers=headers, timeout=self._timeout()
            ) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise PeerHTTPError(response, component=self.component, endpoint=endpoint)
                async for line in response.aiter_lines():
                    if line.startswith("data:"):
                        payload = line[5:].strip()
                        if payload:
                            yield _decode(payload)
        except httpx.TransportError as exc:
            raise PeerUnavailableError(
                f"stream {endpoint} from {self.component} broke: {type(exc).__name__}: {exc}",
                component=self.component,
                endpoint=endpoint,
            ) from exc

    async def events(
        self, types: Iterable[str] | None = None, *, last_event_id: str | None = None
    ) -> AsyncGenerator[dict[str, Any], None]:
        """Yield event envelopes (`id`, `type`, `source`, `time`, `data`) from the peer's `/events`, forever."""
        from httpx_sse import SSEError  # at first use: importing the client package stays cheap

        if last_event_id is not None:
            self.last_event_id = last_event_id
        params = {"types": ",".join(types)} if types else None
        failures = 0
        while True:
            try:
                # aclosing: when our caller stops early, the connection closes now, on this loop,
                # not later in the garbage collector (which warned "no running event loop").
                async with contextlib.aclosing(self._events_once(params)) as envelopes:
                    async for envelope in envelopes:
                        failures = 0
                        yield envelope
            except (httpx.TransportError, SSEError, PeerUnavailableError) as exc:
                failures += 1
                logger.warning(
                    "event stream from %s lost, reconnecting",
                    self.component,
                    extra={"target": self.component, "error": f"{type(exc).__name__}: {exc}", "failures": failures},
                )
            self.disconnects += 1
            await asyncio.sleep(self.backoff.delay(failures - 1))

    async def _events_once(self, params: dict[str, str] | None) -> AsyncGenerator[dict[str, Any], None]:
        headers = outgoing_headers({"Accept": "text/event-stream", "Cache-Control": "no-cache"})
        if self.last_event_id:
            headers["Last-Event-ID"] = self.last_event_id
        url = await self.client.resolve() + "/events"
        from httpx_sse import aconnect_sse

        async with aconnect_sse(
            async_client(), "GET", url, params=params, headers=headers, timeout=self._timeout()
        ) as source:
            response = source.response
            if response.status_code >= 400:
                await response.aread()
                error = PeerHTTPError(response, component=self.component, endpoint="/events")
                if response.status_code < 500 and response.status_code != 429:
                    raise error  # our request is wrong: retrying will not fix it
                raise PeerUnavailableError(str(error), component=self.component, endpoint="/events") from error
            self.connections += 1
            async for sse in source.aiter_sse():
                if sse.event == "reset":
                    self.resets += 1
                    logger.warning(
                        "event stream reset: events after %s are no longer available",
                        self.last_event_id,
                        extra={"target": self.component},
                    )
                    if sse.id:
                        self.last_event_id = sse.id
                    continue
                if sse.event and "." not in sse.event:
                    # Any other control event (`dropped`, ...): events carry a dotted type, controls never do.
                    logger.warning(
                        "event stream control message %s",
                        sse.event,
                        extra={"target": self.component, "data": sse.data},
                    )
                    continue
                if sse.id:
                    self.last_event_id = sse.id
                if not sse.data:
                    continue
                envelope = _decode(sse.data)
                if isinstance(envelope, dict):
                    yield envelope


def _decode(payload: str) -> Any:
    try:
        return json.loads(payload)
    except ValueError:
        return payload
