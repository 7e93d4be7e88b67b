"""Keeps this component registered with Hermes for as long as it runs.

Registration happens in the background, so startup never waits for Hermes
(unless `<NAME>_HERMES_REQUIRED` asks it to). The registrar re-registers when
Hermes rejects the token (401/404), before the token expires, after repeated
heartbeat failures, and when Hermes no longer lists it: a restarted Hermes
forgets everyone yet keeps accepting old tokens, so only a presence check
notices. On shutdown it unregisters within a short, bounded time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Literal

from prometheus_client import Counter, Gauge

from ..backoff import Backoff
from ..lifecycle import DependencyReport
from ..settings import Settings, env_name
from .calls import AsyncHermesCalls
from .protocol import HermesError, field
from .registration import registration_body

RegistrarState = Literal["disabled", "starting", "registered", "retrying", "stopped"]
OnRegistered = Callable[[dict[str, Any]], Awaitable[None]]

# Process-wide, defined once (several apps in one test process share them).
REGISTRATIONS = Counter("hermes_registrations", "Registration attempts with Hermes, by result", ["result"])
HEARTBEATS = Counter("hermes_heartbeats", "Heartbeats sent to Hermes, by result", ["result"])
REGISTERED = Gauge("hermes_registered", "1 while this component is registered with Hermes, else 0")

FIRST_RETRY = 0.5  # seconds


class HermesRequiredError(RuntimeError):
    """`<NAME>_HERMES_REQUIRED` is set and registration did not succeed in time."""


def registration_backoff(retry_max: float) -> Backoff:
    """Waits between registration attempts: from half a second up to `retry_max`, half of each random."""
    return Backoff(initial=min(FIRST_RETRY, retry_max), maximum=retry_max, jitter=0.5)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="milliseconds") if moment else None


class Registrar:
    """Register, heartbeat, re-register, unregister. Use as an async context manager."""

    def __init__(
        self,
        settings: Settings,
        endpoints: list[dict[str, Any]] | None = None,
        on_registered: OnRegistered | None = None,
        calls: AsyncHermesCalls | None = None,
    ) -> None:
        self.settings = settings
        self.endpoints = endpoints or []
        self.on_registered = on_registered
        self.component_id = settings.component_id
        self.hermes_url = settings.hermes_base_url
        self.state: RegistrarState = "starting" if settings.hermes_enabled else "disabled"
        self.registered = False
        self.last_success: datetime | None = None
        self.last_error: str | None = None
        self.next_attempt: datetime | None = None
        self.log = logging.getLogger(f"{settings.component_name}.hermes")
        self.backoff = registration_backoff(settings.register_retry_max)
        self._calls = calls
        self._owns_calls = calls is None
        self._token: str | None = None
        self._token_issued = 0.0
        self._heartbeat_failures = 0
        self._next_presence_check = 0.0
        self._problem: str | None = None
        self._registered_event = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle -----------------------------------------------------------

    async def __aenter__(self) -> Registrar:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Begin registering in the background; returns at once."""
        if not self.settings.hermes_enabled or self._task is not None:
            return
        if self._calls is None:
            self._calls = AsyncHermesCalls(self.hermes_url, timeout=self.settings.hermes_timeout)
        self._task = asyncio.create_task(self._run(), name="hermes-registrar")

    async def stop(self) -> None:
        """Stop heartbeating and unregister, bounded by `unregister_timeout`."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.registered and self._token:
            await self._unregister()
        if self.settings.hermes_enabled:
            self._set_registered(False)
            self.state = "stopped"
            self.next_attempt = None
        if self._owns_calls and self._calls is not None:
            await self._calls.aclose()
            self._calls = None

    async def wait_registered(self, within: float) -> bool:
        """True once registered; False if `within` seconds pass first."""
        try:
            async with asyncio.timeout(within):
                await self._registered_event.wait()
        except TimeoutError:
            return False
        return True

    async def require(self, within: float) -> None:
        """Raise `HermesRequiredError`, with the fix, unless registered within `within` seconds."""
        if not await self.wait_registered(within):
            raise HermesRequiredError(
                f"{self.settings.component_name} could not register with Hermes at {self.hermes_url} "
                f"within {within:g}s (last error: {self.last_error or 'none yet'}). Start Hermes or point "
                f"{env_name('hermes_url')} at it, raise {env_name('hermes_required_timeout')}, "
                f"or set {env_name('hermes_required')}=false to start without it."
            )

    # -- /health -------------------------------------------------------------

    def report(self) -> DependencyReport:
        """The `hermes` probe: healthy when registered, else degraded (unhealthy if required)."""
        detail: dict[str, object] = {
            "registered": self.registered,
            "state": self.state,
            "component_id": self.component_id,
            "url": self.hermes_url,
            "last_success": _iso(self.last_success),
            "last_error": self.last_error,
            "next_attempt": _iso(self.next_attempt),
        }
        if not self.settings.hermes_enabled:
            return DependencyReport("hermes", "disabled", False, detail)
        required = self.settings.hermes_required
        if self.registered:
            return DependencyReport("hermes", "healthy", required, detail)
        return DependencyReport("hermes", "unhealthy" if required else "degraded", required, detail)

    # -- the loop ------------------------------------------------------------

    async def _run(self) -> None:
        attempt = 0
        while True:
            try:
                if self.registered:
                    await self._sleep(self.settings.heartbeat_interval)
                    await self._keep_alive()
                    continue
                try:
                    await self._register()
                    attempt = 0
                except HermesError as exc:
                    self._trouble(exc, "registration")
                    self.state = "retrying"
                    await self._sleep(self.backoff.delay(attempt))
                    attempt += 1
            except asyncio.CancelledError:
                raise
            except Exception:
                # A bug must not end registration for the rest of the process' life.
                self.log.exception("hermes registrar error; retrying")
                await self._sleep(self.backoff.delay(attempt))
                attempt += 1

    async def _sleep(self, seconds: float) -> None:
        self.next_attempt = datetime.now(UTC) + timedelta(seconds=seconds)
        await asyncio.sleep(seconds)

    async def _keep_alive(self) -> None:
        if time.monotonic() - self._token_issued >= self._renew_after:
            try:
                await self._register("token renewal")
                return
            except HermesError as exc:
                # The old token may still be valid: keep heartbeating, so that an expired
                # token or a dead Hermes is noticed (401 or failures) and not hidden.
                self._trouble(exc, "token renewal")
        try:
            await self._heartbeat()
        except HermesError as exc:
            HEARTBEATS.labels(exc.kind).inc()
            self._trouble(exc, "heartbeat")
            if exc.kind == "rejected":
                self._lose(f"Hermes rejected the heartbeat ({exc.status})")
                return
            self._heartbeat_failures += 1
            if self._heartbeat_failures >= self.settings.heartbeat_failures_before_reregister:
                self._lose(f"{self._heartbeat_failures} heartbeats failed in a row")
            return
        HEARTBEATS.labels("success").inc()
        self._heartbeat_failures = 0
        self._recovered("heartbeat")
        if time.monotonic() >= self._next_presence_check:
            self._next_presence_check = time.monotonic() + self.settings.presence_check_interval
            try:
                present = await self._listed()
            except HermesError as exc:
                self._trouble(exc, "presence check")
                return
            self._recovered("presence check")
            if not present:
                self._lose("Hermes no longer lists this component (restarted, or unregistered it)")

    @property
    def _renew_after(self) -> float:
        """Token age at which to register again: well before the lifetime runs out."""
        lifetime = self.settings.hermes_token_lifetime
        return max(lifetime * 0.5, lifetime * 0.9 - self.settings.heartbeat_interval)

    # -- calls ---------------------------------------------------------------

    @property
    def _hermes(self) -> AsyncHermesCalls:
        assert self._calls is not None, "the registrar calls Hermes only between start() and stop()"
        return self._calls

    async def _register(self, reason: str = "startup") -> None:
        if self.last_success is not None and reason == "startup":
            reason = "re-registration"
        try:
            self.component_id, token, _ = await self._hermes.register(registration_body(self.settings, self.endpoints))
        except HermesError as exc:
            REGISTRATIONS.labels(exc.kind).inc()
            raise
        REGISTRATIONS.labels("success").inc()
        self._token = token
        self._token_issued = time.monotonic()
        self._heartbeat_failures = 0
        self._next_presence_check = time.monotonic() + self.settings.presence_check_interval
        self.last_success = datetime.now(UTC)
        self.state = "registered"
        self._set_registered(True)
        self._registered_event.set()
        if self._problem and self._problem.startswith(("registration:", "token renewal:")):
            self._problem = None  # a heartbeat problem stays until a heartbeat succeeds
        self.log.info(
            "registered with hermes",
            extra={"component_id": self.component_id, "hermes": self.hermes_url, "reason": reason},
        )
        if self.on_registered is not None:
            try:
                await self.on_registered(
                    {
                        "component_id": self.component_id,
                        "name": self.settings.component_name,
                        "endpoint": self.settings.base_url,
                        "hermes": self.hermes_url,
                        "reason": reason,
                    }
                )
            except Exception:
                self.log.exception("on_registered callback failed")

    async def _heartbeat(self) -> None:
        await self._hermes.heartbeat(self.component_id, self._token or "", {"status": "healthy"})
        self.last_success = datetime.now(UTC)

    async def _listed(self) -> bool:
        """Whether the full listing holds our id (the by-name route shows only the oldest of a name)."""
        records = await self._hermes.components()
        return any(field(record, "component_id") == self.component_id for record in records)

    async def _unregister(self) -> None:
        timeout = self.settings.unregister_timeout
        try:
            async with asyncio.timeout(timeout):
                await self._hermes.unregister(self.component_id, self._token or "")
        except TimeoutError:
            self.log.warning("unregister from hermes timed out", extra={"timeout": timeout, "hermes": self.hermes_url})
        except HermesError as exc:
            self.log.warning("unregister from hermes failed", extra={"error": str(exc)})
        else:
            self.log.info("unregistered from hermes", extra={"component_id": self.component_id})

    # -- state ---------------------------------------------------------------

    def _set_registered(self, registered: bool) -> None:
        self.registered = registered
        REGISTERED.set(1 if registered else 0)
        if not registered:
            self._registered_event.clear()

    def _lose(self, reason: str) -> None:
        self._set_registered(False)
        self.state = "retrying"
        self._heartbeat_failures = 0
        self.log.warning("lost hermes registration; registering again", extra={"reason": reason})

    def _trouble(self, exc: HermesError, during: str) -> None:
        """Record a failure; log it only when the kind of trouble changes."""
        self.last_error = str(exc)
        key = f"{during}:{exc.key}"
        if key != self._problem:
            self._problem = key
            self.log.warning(f"hermes {during} failed; will retry", extra={"error": str(exc)})

    def _recovered(self, activity: str) -> None:
        """`activity` worked: clear a problem of that activity (another call failing still counts)."""
        if self._problem is not None and self._problem.startswith(f"{activity}:"):
            self._problem = None
            self.log.info("hermes answers again", extra={"hermes": self.hermes_url})
