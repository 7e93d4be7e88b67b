"""What discovery remembers and decides, without any I/O.

Hermes' answers are kept for `cache_ttl` seconds; several instances of one
component are handed out in turn; while Hermes is down the last known-good
answer is used however old it is; and with nothing known, a component's
address comes from the environment (`<PEER>_HOST`/`<PEER>_PORT`, else
`TEKTON_HOST` and its known Tekton port). The caller asks Hermes and tells
the directory what happened (`found`, `unanswered`, ...), so the sync and the
async discovery share every decision. Safe to use from several threads.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from ..addresses import AddressError, env_key, static_address
from .instance import ServiceInstance
from .protocol import DiscoveryError, HermesError, field

log = logging.getLogger(__name__)

Environ = Callable[[], Mapping[str, str]]


def _process_environ() -> Mapping[str, str]:
    return os.environ


def _key(name: str) -> str:
    return name.strip().casefold()


def matching(name: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records of `name`: by name or by component id, ignoring case."""
    wanted = _key(name)
    return [
        record
        for record in records
        if wanted in (_key(str(field(record, key) or "")) for key in ("name", "component_id"))
    ]


def instances(records: list[dict[str, Any]]) -> tuple[ServiceInstance, ...]:
    """The usable records as instances, in a stable order (so turns are fair)."""
    found = []
    for record in records:
        try:
            found.append(ServiceInstance.from_record(record))
        except ValueError as exc:
            log.debug("skipping unusable hermes record: %s", exc)
    return tuple(sorted(found, key=lambda instance: instance.component_id))


class _Known(NamedTuple):  # replaced, never changed; cheaper to define at import than a dataclass
    instances: tuple[ServiceInstance, ...]
    fetched: float


class Directory:
    """The discovery cache and its fallbacks.

    `hermes_url` only names Hermes in messages; `environ` is read at each
    static fallback (so a changed `.env` or variable is seen); `clock` is
    `time.monotonic` except in tests.
    """

    def __init__(
        self,
        *,
        cache_ttl: float = 30.0,
        hermes_url: str = "Hermes",
        environ: Environ = _process_environ,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cache_ttl = cache_ttl
        self.hermes_url = hermes_url
        self._environ = environ
        self._clock = clock
        self._known: dict[str, _Known] = {}
        self._listings: dict[str | None, tuple[list[dict[str, Any]], float]] = {}
        self._turns: dict[str, int] = {}
        self._lock = threading.Lock()
        self._hermes_down = False

    # -- one component -----------------------------------------------------------

    def cached(self, name: str) -> ServiceInstance | None:
        """An instance of `name` from an answer younger than `cache_ttl`, else None (ask Hermes)."""
        with self._lock:
            known = self._known.get(_key(name))
            if known is None or self._clock() - known.fetched >= self.cache_ttl:
                return None
            return self._next(name, known.instances)

    def found(self, name: str, records: list[dict[str, Any]]) -> ServiceInstance:
        """Hermes answered with `name`'s records (none: it does not list `name`)."""
        self._answered()
        usable = instances(records)
        with self._lock:
            if usable:
                self._known[_key(name)] = _Known(usable, self._clock())
                return self._next(name, usable)
            self._known.pop(_key(name), None)  # Hermes answered: it is gone.
        return self.static(name, f"Hermes at {self.hermes_url} does not list {name!r}")

    def unanswered(self, name: str, exc: HermesError) -> ServiceInstance:
        """Hermes could not be asked: the last known-good answer, else the static address."""
        self._unanswered(exc)
        with self._lock:
            known = self._known.get(_key(name))
            if known is not None:
                return self._next(name, known.instances)
        return self.static(name, str(exc))

    def forget(self, name: str) -> None:
        """Drop what is known of `name` (it has just registered again, perhaps elsewhere)."""
        with self._lock:
            self._known.pop(_key(name), None)

    def static(self, name: str, why: str) -> ServiceInstance:
        """`<PEER>_HOST`/`<PEER>_PORT`, else `TEKTON_HOST` and the known Tekton port; `DiscoveryError` if none."""
        prefix = env_key(name)
        try:
            address = static_address(name, self._environ())
        except AddressError as exc:
            raise DiscoveryError(f"cannot find component {name!r}: {why}, and {exc}") from None
        if address is None:
            raise DiscoveryError(
                f"cannot find component {name!r}: {why}, nothing was cached, and no static address is set; "
                f"register it with Hermes or set {prefix}_PORT (and {prefix}_HOST)"
            )
        host, port = address
        return ServiceInstance.static(name, host, port)

    def _next(self, name: str, known: tuple[ServiceInstance, ...]) -> ServiceInstance:
        turn = self._turns.get(_key(name), 0)
        self._turns[_key(name)] = turn + 1
        return known[turn % len(known)]

    # -- listings ----------------------------------------------------------------

    def cached_listing(self, capability: str | None) -> list[dict[str, Any]] | None:
        """The listing (of `capability`) if younger than `cache_ttl`, else None (ask Hermes)."""
        with self._lock:
            listing, fetched = self._listings.get(capability, ([], -float("inf")))
        return list(listing) if self._clock() - fetched < self.cache_ttl else None

    def listed(self, capability: str | None, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Hermes answered a listing: keep it, and answer it in the guide's shape."""
        self._answered()
        listing = [instance.describe() for instance in instances(records)]
        with self._lock:
            self._listings[capability] = (listing, self._clock())
        return list(listing)

    def last_listing(self, capability: str | None, exc: HermesError) -> list[dict[str, Any]]:
        """Hermes could not be asked: the last listing however old, else `DiscoveryError`."""
        self._unanswered(exc)
        with self._lock:
            if capability in self._listings:
                return list(self._listings[capability][0])
        raise DiscoveryError(f"cannot list components: {exc}, and no earlier listing is cached")

    # -- Hermes up or down: logged once per change -----------------------------------

    def _answered(self) -> None:
        if self._hermes_down:
            self._hermes_down = False
            log.info("hermes answers again at %s", self.hermes_url)

    def _unanswered(self, exc: HermesError) -> None:
        if not self._hermes_down:
            self._hermes_down = True
            log.warning("hermes unavailable, using cached or static addresses: %s", exc)
