"""`HealthMonitor` (the guide's Pattern 8): watch peers' `/health`.

Checks run concurrently, each bounded by a timeout, on the pooled client
without retries or breaker (a health check must see the peer as it is). A
component is called down only after `failures_before_down` bad checks in a
row, and up again after `successes_before_up` good ones, so one slow answer
does not flap it. Each change is published as a `component.health_changed`
event through `publish` (e.g. the app's `bus.publish`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Literal

import httpx

from ..events.catalog import COMPONENT_HEALTH_CHANGED
from ..hermes import HermesClient
from ._config import IntegrationConfig
from ._discovery import PeerAddress
from ._errors import PeerUnavailableError
from ._pool import async_client
from ._telemetry import logger, outgoing_headers

Publish = Callable[[str, dict[str, Any]], Awaitable[Any]]
Verdict = Literal["up", "down", "unknown"]


class HealthMonitor:
    def __init__(
        self,
        components: Iterable[str],
        *,
        interval: float = 30.0,
        config: IntegrationConfig | None = None,
        publish: Publish | None = None,
        addresses: Mapping[str, str] | None = None,
        discovery: HermesClient | None = None,
    ) -> None:
        config = config or IntegrationConfig.from_env()
        self.components = list(components)
        self.interval = interval
        self.timeout = config.health_check_timeout
        self.failures_before_down = config.health_failures_before_down
        self.successes_before_up = config.health_successes_before_up
        self.publish = publish
        addresses = addresses or {}
        self._addresses = {
            name: PeerAddress(name, base_url=addresses.get(name), discovery=discovery) for name in self.components
        }
        self.health_status: dict[str, dict[str, Any]] = {}  # the guide's: last check per component
        self.verdicts: dict[str, Verdict] = dict.fromkeys(self.components, "unknown")
        self._streaks: dict[str, int] = dict.fromkeys(self.components, 0)  # >0 good in a row, <0 bad in a row

    async def check_component_health(self, component: str) -> dict[str, Any]:
        """One check: `{"status": "healthy"|"unhealthy"|"unreachable", "component", "details"|"error"}`."""
        try:
            async with asyncio.timeout(self.timeout):
                base_url = await self._addresses[component].base_url()
                response = await async_client().get(
                    f"{base_url}/health", headers=outgoing_headers(), timeout=self.timeout
                )
        except (TimeoutError, httpx.TransportError, PeerUnavailableError) as exc:
            reason = "timed out" if isinstance(exc, TimeoutError | httpx.TimeoutException) else str(exc)
            return {"status": "unreachable", "component": component, "error": reason or type(exc).__name__}
        if response.status_code == 200:
            return {"status": "healthy", "component": component, "details": _json(response)}
        return {"status": "unhealthy", "component": component, "error": f"HTTP {response.status_code}"}

    async def check_all(self) -> list[dict[str, Any]]:
        """Check every component at once; update statuses and publish changes."""
        results = await asyncio.gather(*(self.check_component_health(name) for name in self.components))
        for result in results:
            self.health_status[result["component"]] = result
            await self._judge(result)
        unhealthy = [result for result in results if result["status"] != "healthy"]
        if unhealthy:
            await self._handle_unhealthy(unhealthy)
        return list(results)

    async def monitor_all(self) -> None:
        """Check every `interval` seconds until cancelled."""
        while True:
            await self.check_all()
            await asyncio.sleep(self.interval)

    async def _handle_unhealthy(self, unhealthy: list[dict[str, Any]]) -> None:
        """Override to act on bad checks (the verdict still waits for the hysteresis)."""
        for result in unhealthy:
            logger.debug("health check failed", extra={"target": result["component"], "status": result["status"]})

    async def _judge(self, result: dict[str, Any]) -> None:
        name = result["component"]
        good = result["status"] == "healthy"
        streak = self._streaks[name]
        streak = max(streak, 0) + 1 if good else min(streak, 0) - 1
        self._streaks[name] = streak
        previous = self.verdicts[name]
        verdict = previous
        if good and streak >= self.successes_before_up:
            verdict = "up"
        elif not good and -streak >= self.failures_before_down:
            verdict = "down"
        if verdict == previous:
            return
        self.verdicts[name] = verdict
        log = logger.warning if verdict == "down" else logger.info
        log("component is %s", verdict, extra={"target": name, "previous": previous, "check": result["status"]})
        if self.publish is not None:
            event = {"component": name, "status": verdict, "previous": previous, "check": result}
            try:
                await self.publish(COMPONENT_HEALTH_CHANGED, event)
            except Exception:
                logger.exception("could not publish a health change", extra={"target": name})


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text
