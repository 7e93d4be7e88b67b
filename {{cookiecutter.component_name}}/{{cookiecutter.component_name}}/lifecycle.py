"""The component's life: when it started, whether it is shutting down, and
what each dependency reports for `/health`."""

from __future__ import annotations

import atexit
import sys
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal


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


@dataclass(frozen=True)
class DependencyReport:
    name: str
    status: DependencyStatus
    required: bool = False
    detail: dict[str, object] = field(default_factory=dict)


@dataclass
class Lifecycle:
    started_monotonic: float = field(default_factory=time.monotonic)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    shutting_down: bool = False
    # Why startup was refused (see `StartupRefused`), once it has been.
    refusal: str | None = None
    probes: dict[str, Callable[[], DependencyReport]] = field(default_factory=dict)
    # Long-lived resources, closed in reverse order once shutdown has begun.
    resources: AsyncExitStack = field(default_factory=AsyncExitStack)

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
