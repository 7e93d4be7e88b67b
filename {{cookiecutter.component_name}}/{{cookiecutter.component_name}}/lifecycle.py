"""The component's life: when it started, whether it is shutting down, and
what each dependency reports for `/health`."""

from __future__ import annotations

import atexit
import sys
import time
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from typing import Literal, NamedTuple


class StartupRefused(Exception):
    """A startup check failed; the message names the fix. Shown as one line, without a traceback."""


def refuse_at_exit(message: str) -> None:
    """Print why startup was refused as the process's very last line, after the server's own.

    The server (uvicorn, or `python -m`) still logs its own lines and chooses
    the exit code (non-zero: startup failed); the reason comes last, where a
    reader of the output looks first.
    """
    atexit.register(print, f"error: {message}", file=sys.stderr, flush=True)


DependencyStatus = Literal["healthy", "degraded", "unhealthy", "unknown", "disabled"]


class DependencyReport(NamedTuple):  # immutable, and cheaper to define at import than a dataclass
    name: str
    status: DependencyStatus
    required: bool = False
    detail: Mapping[str, object] = {}  # read, never changed: one empty default serves every report


class Lifecycle:
    """One per app, made as it is built (a plain class: nothing compares or prints it)."""

    def __init__(self) -> None:
        self.started_monotonic = time.monotonic()
        self.started_at = datetime.now(UTC)
        self.shutting_down = False
        # Why startup was refused (see `StartupRefused`), once it has been.
        self.refusal: str | None = None
        self.probes: dict[str, Callable[[], DependencyReport]] = {}
        # Long-lived resources, closed in reverse order once shutdown has begun.
        self.resources = AsyncExitStack()

    @property
    def uptime(self) -> float:
        return time.monotonic() - self.started_monotonic

    def begin_shutdown(self) -> None:
        """From now on `/ready` answers 503, so load balancers stop sending traffic."""
        self.shutting_down = True

    def add_probe(self, name: str, probe: Callable[[], DependencyReport]) -> None:
        self.probes[name] = probe

    def reports(self, dependencies: list[str]) -> list[DependencyReport]:
        """One report per configured dependency; ones nobody probes are `unknown`."""
        names = list(dict.fromkeys([*dependencies, *self.probes]))
        return [self.probes[name]() if name in self.probes else DependencyReport(name, "unknown") for name in names]
