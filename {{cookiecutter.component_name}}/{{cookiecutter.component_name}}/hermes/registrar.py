"""Keeps this component registered with Hermes for as long as it runs.

Registration happens in the background, so startup never waits for Hermes
(unless `<NAME>_HERMES_REQUIRED` asks it to). One loop runs every activity on
its own timer: heartbeats, token renewal, and the presence check. A restarted
Hermes forgets everyone yet keeps accepting old tokens, so only the presence
check (is our id in the listing?) notices; `registered` in `/health` is what
the last presence check (or registration) found, never a guess from
heartbeats. The registrar re-registers when Hermes rejects the token, before
the token expires, after repeated heartbeat failures, and when the listing
lacks it; it heartbeats at once after every registration, because Hermes
lists a fresh registration without a heartbeat and healthy-only lookups skip
it until one arrives. When Hermes stops accepting connections, a TCP probe
notices its return within `hermes_probe_interval` and the registrar acts at
once (registers, or checks presence) instead of waiting out a backoff or an
interval. With several workers, only the holder of a lease registers
(`lease.py`); the others check presence only. On shutdown it unregisters
within a short, bounded time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Literal, Protocol

from prometheus_client import Counter, Gauge

from ..addresses import redact_url
from ..backoff import Backoff
from ..lifecycle import DependencyReport
from ..settings import Settings, env_name
from .calls import AsyncHermesCalls
{%- if cookiecutter.event_bus == "redis" %}
from .lease import RedisLease
{%- endif %}
from .protocol import HermesError, field
from .registration import registration_body

RegistrarState = Literal["disabled", "starting", "registered", "unconfirmed", "retrying", "standby", "stopped"]
OnRegistered = Callable[[dict[str, Any]], Awaitable[None]]
Activity = Literal["lease", "presence", "probe", "register", "renew", "heartbeat"]

# Process-wide, defined once (several apps in one test process share them).
REGISTRATIONS = Counter("hermes_registrations", "Registration attempts with Hermes, by result", ["result"])
HEARTBEATS = Counter("hermes_heartbeats", "Heartbeats sent to Hermes, by result", ["result"])
REGISTERED = Gauge("hermes_registered", "1 while this component is registered with Hermes, else 0")

FIRST_RETRY = 0.5  # seconds
# The first attempt builds the OpenAPI document and loads httpx (in threads, about 0.1 s of CPU that
# holds the interpreter's lock): it waits this long, so the server's first answers (probes) go first.
# Not when start-up waits for Hermes (`<NAME>_HERMES_REQUIRED`): there it would only delay it.
FIRST_ATTEMPT_AFTER = 0.25  # seconds


class HermesRequiredError(RuntimeError):
    """`<NAME>_HERMES_REQUIRED` is set and registration did not succeed in time."""


class Lease(Protocol):
    """Decides which of several worker processes keeps the registration."""

    check_every: float  # seconds between `hold()` calls

    async def hold(self) -> bool:
        """Take or renew the lease: True while this process holds it. May raise when unknown."""
        ...

    async def release(self) -> None: ...

    async def aclose(self) -> None: ...


def default_lease(settings: Settings) -> Lease | None:
    """The Redis lease when the event bus is Redis (several workers are possible), else none: one process."""
{%- if cookiecutter.event_bus == "redis" %}
    if settings.event_bus != "redis":
        return None
    # Scoped like the event stream: the workers sharing a stream are one deployment.
    stream = settings.event_stream_key or f"{settings.component_name}:events"
    return RedisLease(settings.redis_url, f"{stream}:hermes-lease:{settings.component_id}", settings.hermes_lease_ttl)
{%- else %}
    return None  # the in-memory bus runs in one worker only
{%- endif %}


def registration_backoff(retry_max: float) -> Backoff:
    """Waits between registration attempts: from half a second up to `retry_max`, half of each random."""
    return Backoff(initial=min(FIRST_RETRY, retry_max), maximum=retry_max, jitter=0.5)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="milliseconds") if moment else None


class Registrar:
    """Register, heartbeat, re-register, unregister. Use as an async context manager.

    `lease`: by default the Redis lease when the bus is Redis; pass one to share
    the registration among processes some other way.
    """

    def __init__(
        self,
        settings: Settings,
        endpoints: list[dict[str, Any]] | Callable[[], list[dict[str, Any]]] | None = None,
        on_registered: OnRegistered | None = None,
        calls: AsyncHermesCalls | None = None,
        lease: Lease | None = None,
    ) -> None:
        self.settings = settings
        # A callable is asked once, at the first registration: describing the routes
        # (the OpenAPI document) costs a noticeable part of start-up, and only Hermes reads it.
        self._endpoints = endpoints or []
        self.on_registered = on_registered
        self.component_id = settings.component_id
        self.hermes_url = settings.hermes_base_url
        self.shown_url = redact_url(self.hermes_url)  # the only form of the URL that is logged or shown
        self.state: RegistrarState = "starting" if settings.hermes_enabled else "disabled"
        self.registered = False  # what the last presence check (or registration) found
        self.last_success: datetime | None = None
        self.last_error: str | None = None
        self.last_presence_check: datetime | None = None
        self.next_attempt: datetime | None = None
        self.log = logging.getLogger(f"{settings.component_name}.hermes")
        self.backoff = registration_backoff(settings.register_retry_max)
        self._calls = calls
        self._owns_calls = calls is None
        self._lease = lease if lease is not None or not settings.hermes_enabled else default_lease(settings)
        self.owner = self._lease is None  # whether this process keeps the registration
        self._token: str | None = None
        self._attempt = 0
        self._heartbeat_failures = 0
        self._reachable: bool | None = None  # what the last probe found while Hermes was unreachable
        self._due: dict[Activity, float] = {}  # activity -> when it is next due (monotonic)
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
        first = time.monotonic() + (0.0 if self.settings.hermes_required else FIRST_ATTEMPT_AFTER)
        self._due = {"lease": first} if self._lease is not None else {"register": first}
        self._task = asyncio.create_task(self._run(), name="hermes-registrar")

    async def stop(self) -> None:
        """Stop heartbeating and unregister, bounded by `unregister_timeout`; release the lease."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.owner and self._token:
            await self._unregister()
        if self._lease is not None:
            await self._lease.release()
            await self._lease.aclose()
        if self.settings.hermes_enabled:
            self._token = None
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
                f"{self.settings.component_name} could not register with Hermes at {self.shown_url} "
                f"within {within:g}s (last error: {self.last_error or 'none yet'}). Start Hermes or point "
                f"{env_name('hermes_url')} at it, raise {env_name('hermes_required_timeout')}, "
                f"or set {env_name('hermes_required')}=false to start without it."
            )

    # -- /health -------------------------------------------------------------

    def report(self) -> DependencyReport:
        """The `hermes` probe, from attributes only (no I/O): healthy when registered,
        else degraded (unhealthy if required)."""
        detail: dict[str, object] = {
            "registered": self.registered,
            "state": self.state,
            "component_id": self.component_id,
            "url": self.shown_url,
            "last_success": _iso(self.last_success),
            "last_error": self.last_error,
            "next_attempt": _iso(self.next_attempt),
            "last_presence_check": _iso(self.last_presence_check),
            "owner": self.owner,
        }
        if not self.settings.hermes_enabled:
            return DependencyReport("hermes", "disabled", False, detail)
        required = self.settings.hermes_required
        if self.registered:
            return DependencyReport("hermes", "healthy", required, detail)
        return DependencyReport("hermes", "unhealthy" if required else "degraded", required, detail)

    # -- the loop ------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            try:
                await self._step()
            except asyncio.CancelledError:
                raise
            except Exception:
                # A bug must not end registration for the rest of the process' life.
                self.log.exception("hermes registrar error; retrying")
                self._due["register" if self.owner and not self._token else "lease"] = (
                    time.monotonic() + self.backoff.delay(self._attempt)
                )
                self._attempt += 1
            await self._sleep_until_due()

    async def _step(self) -> None:
        """Run whatever is due, in order: who registers, what Hermes lists, then our registration."""
        if self._lease is not None and self._is_due("lease"):
            await self._hold_lease()
        if self._is_due("probe"):
            await self._probe()
        if self._is_due("presence"):
            await self._check_presence()
        if not self.owner:
            return
        if self._token is None:
            if self._is_due("register"):
                await self._try_register()
            return
        if self._is_due("renew"):
            await self._renew()
        if self._token is not None and self._is_due("heartbeat"):
            await self._beat()

    def _is_due(self, activity: Activity) -> bool:
        due = self._due.get(activity)
        return due is not None and time.monotonic() >= due

    def _schedule(self, activity: Activity, after: float) -> None:
        self._due[activity] = time.monotonic() + after

    def _cancel(self, *activities: Activity) -> None:
        for activity in activities:
            self._due.pop(activity, None)

    async def _sleep_until_due(self) -> None:
        now = time.monotonic()
        wake = min(self._due.values(), default=now + 1.0)
        # Shown in /health: the next registration attempt while unregistered, else the next call.
        shown = self._due.get("register", wake) if self.owner and self._token is None else wake
        self.next_attempt = datetime.now(UTC) + timedelta(seconds=max(0.0, shown - now))
        await asyncio.sleep(max(0.0, wake - now))

    # -- activities -----------------------------------------------------------

    async def _hold_lease(self) -> None:
        assert self._lease is not None
        self._schedule("lease", self._lease.check_every)
        try:
            owner = await self._lease.hold()
        except Exception as exc:
            # Redis down: the workers cannot agree, and registration must not depend on Redis.
            # Register from here too until it answers (the same id: Hermes keeps one entry).
            self._trouble(str(exc), "lease", type(exc).__name__)
            if not self.owner:
                self._take_over("the registration lease cannot be read: registering from this worker too")
            return
        self._recovered("lease")
        if owner and not self.owner:
            self._take_over("this worker keeps the hermes registration")
        elif not owner and (self.owner or self.state == "starting"):
            self._stand_by()

    def _take_over(self, message: str) -> None:
        self.owner = True
        self.state = "starting" if self.last_success is None else "retrying"
        self._cancel("presence")
        self._schedule("register", 0)
        self.log.info(message, extra={"component_id": self.component_id, "pid": os.getpid()})

    def _stand_by(self) -> None:
        """Another worker keeps the registration: stop heartbeating (without unregistering), watch presence."""
        if self.owner:
            self.log.info("another worker keeps the hermes registration now")
        self.owner = False
        self._token = None
        self.state = "standby"
        self._cancel("register", "probe", "renew", "heartbeat")
        self._schedule("presence", 0)

    async def _check_presence(self) -> None:
        self._schedule("presence", self.settings.presence_check_interval)
        try:
            present = await self._listed()
        except HermesError as exc:
            # Hermes cannot tell: no one can find us through it either, so do not claim to be registered.
            self._trouble(str(exc), "presence check", exc.key)
            self._set_registered(False)
            if self.owner and self._token is not None:
                self.state = "unconfirmed"
            if exc.kind == "unavailable":
                self._start_probing()
            return
        self._cancel("probe")
        self.last_presence_check = datetime.now(UTC)
        self._recovered("presence check")
        self._set_registered(present)
        if not self.owner:
            return
        if present:
            self.state = "registered"
        elif self._token is not None:
            self._lose("Hermes no longer lists this component (restarted, or unregistered it)")

    def _start_probing(self, fresh: bool = False) -> None:
        """Hermes did not answer: probe it until a call succeeds. `fresh`: forget what the last probe saw."""
        if fresh or "probe" not in self._due:
            self._reachable = None
        self._due.setdefault("probe", time.monotonic() + self.settings.hermes_probe_interval)

    async def _probe(self) -> None:
        """While Hermes refuses connections, notice its return at once and act on it: register, or
        check presence (a restarted Hermes has forgotten us) and heartbeat."""
        self._schedule("probe", self.settings.hermes_probe_interval)
        reachable = await self._hermes.accepts_connections()
        if reachable and self._reachable is False:
            self._cancel("probe")
            self.log.info("hermes accepts connections again", extra={"hermes": self.shown_url})
            if self.owner and self._token is None:
                self._schedule("register", 0)
            else:
                self._schedule("presence", 0)
                if self.owner:
                    self._schedule("heartbeat", 0)
        self._reachable = reachable

    async def _try_register(self) -> None:
        try:
            await self._register()
        except HermesError as exc:
            self._trouble(str(exc), "registration", exc.key)
            self.state = "retrying"
            # Registration attempts stay sparse (the backoff grows to `register_retry_max`), so a
            # Hermes that answers badly is not hammered. When it does not even accept connections,
            # a TCP probe every `hermes_probe_interval` costs it nothing and ends the wait as soon
            # as it is back: registered within about a second of Hermes answering, even after a
            # long outage. The probe acts on a change only (refused, then accepted), so a Hermes
            # that accepts connections but times out is left to the backoff. Heartbeats and
            # presence checks that find Hermes gone start the same probe.
            self._schedule("register", self.backoff.delay(self._attempt))
            self._attempt += 1
            if exc.kind == "unavailable":
                self._start_probing(fresh=True)
                if exc.refused:
                    # Refused just now: a probe that finds Hermes accepting, even the very next one,
                    # is the change to act on (else a Hermes back within one probe interval waits out
                    # the whole backoff).
                    self._reachable = False
            return
        await self._beat()

    async def _renew(self) -> None:
        try:
            await self._register("token renewal")
        except HermesError as exc:
            # The old token may still be valid: keep heartbeating, so that an expired
            # token or a dead Hermes is noticed (401 or failures) and not hidden.
            self._trouble(str(exc), "token renewal", exc.key)
            self._schedule("renew", self.settings.heartbeat_interval)
            return
        await self._beat()

    async def _beat(self) -> None:
        self._schedule("heartbeat", self.settings.heartbeat_interval)
        try:
            await self._heartbeat()
        except HermesError as exc:
            HEARTBEATS.labels(exc.kind).inc()
            self._trouble(str(exc), "heartbeat", exc.key)
            if exc.kind == "rejected":
                self._lose(f"Hermes rejected the heartbeat ({exc.status})")
                return
            if exc.kind == "unavailable":
                self._start_probing()  # back soon? then check presence at once, not at the next interval
            self._heartbeat_failures += 1
            if self._heartbeat_failures >= self.settings.heartbeat_failures_before_reregister:
                self._lose(f"{self._heartbeat_failures} heartbeats failed in a row")
            return
        HEARTBEATS.labels("success").inc()
        self._heartbeat_failures = 0
        if "probe" in self._due:  # Hermes was out of reach: it may have restarted and forgotten us
            self._cancel("probe")
            self._schedule("presence", 0)
        self._recovered("heartbeat")

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

    async def endpoints(self) -> list[dict[str, Any]]:
        if callable(self._endpoints):
            # Built once, in a thread: the app's OpenAPI document takes about 0.1 s, which on the
            # event loop would hold up the first requests the component answers.
            self._endpoints = await asyncio.to_thread(self._endpoints)
        return self._endpoints

    async def _register(self, reason: str = "startup") -> None:
        if self.last_success is not None and reason == "startup":
            reason = "re-registration"
        try:
            body = registration_body(self.settings, await self.endpoints())
            registering = asyncio.ensure_future(self._hermes.register(body))
            try:
                self.component_id, token, _ = await asyncio.shield(registering)
            except asyncio.CancelledError:
                # Stopping while Hermes stores us: wait for its answer (bounded by the Hermes
                # timeout), so that `stop()` has the token to unregister what Hermes now holds.
                with contextlib.suppress(HermesError):
                    self.component_id, self._token, _ = await registering
                raise
        except HermesError as exc:
            REGISTRATIONS.labels(exc.kind).inc()
            raise
        REGISTRATIONS.labels("success").inc()
        self._token = token
        self._attempt = 0
        self._heartbeat_failures = 0
        self._cancel("register", "probe")
        self._schedule("renew", self._renew_after)
        self._schedule("presence", self.settings.presence_check_interval)
        self.last_success = datetime.now(UTC)
        if not (self._problem or "").startswith("lease:"):
            self.last_error = None  # Hermes took us: its old errors are history (Redis' are not)
        self.state = "registered"
        self._set_registered(True)  # Hermes just stored it: as good as a presence check
        if self._problem and self._problem.startswith(("registration:", "token renewal:")):
            self._problem = None  # a heartbeat problem stays until a heartbeat succeeds
        self.log.info(
            "registered with hermes",
            extra={"component_id": self.component_id, "hermes": self.shown_url, "reason": reason},
        )
        if self.on_registered is not None:
            try:
                await self.on_registered(
                    {
                        "component_id": self.component_id,
                        "name": self.settings.component_name,
                        "endpoint": self.settings.base_url,
                        "hermes": self.shown_url,
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
            self.log.warning("unregister from hermes timed out", extra={"timeout": timeout, "hermes": self.shown_url})
        except HermesError as exc:
            self.log.warning("unregister from hermes failed", extra={"error": str(exc)})
        else:
            self.log.info("unregistered from hermes", extra={"component_id": self.component_id})

    # -- state ---------------------------------------------------------------

    def _set_registered(self, registered: bool) -> None:
        self.registered = registered
        REGISTERED.set(1 if registered else 0)
        if registered:
            self._registered_event.set()
        else:
            self._registered_event.clear()

    def _lose(self, reason: str) -> None:
        """Our registration is gone or unusable: register again now."""
        self._token = None
        self._set_registered(False)
        self.state = "retrying"
        self._heartbeat_failures = 0
        self._attempt = 0
        self._cancel("renew", "heartbeat", "presence")
        self._schedule("register", 0)
        self.log.warning("lost hermes registration; registering again", extra={"reason": reason})

    def _trouble(self, error: str, during: str, key: str) -> None:
        """Record a failure; log it only when the kind of trouble changes."""
        self.last_error = error
        problem = f"{during}:{key}"
        if problem != self._problem:
            self._problem = problem
            self.log.warning(f"hermes {during} failed; will retry", extra={"error": error})

    def _recovered(self, activity: str) -> None:
        """`activity` worked: clear a problem of that activity (another call failing still counts)."""
        if self._problem is not None and self._problem.startswith(f"{activity}:"):
            self._problem = None
            self.last_error = None
            if activity == "lease":
                self.log.info("the registration lease answers again")
            else:
                self.log.info("hermes answers again", extra={"hermes": self.shown_url})
