"""`IntegrationConfig`: every knob of the client package, with the guide's env names."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from ..addresses import environment
from ..backoff import Backoff


class IntegrationConfigError(ValueError):
    """An integration variable has a value that cannot be used."""


@dataclass(frozen=True)
class IntegrationConfig:
    # The guide's five, with its defaults.
    timeout: float = 30.0  # per attempt, seconds
    retry_count: int = 3  # retries after the first attempt
    retry_delay: float = 1.0  # first backoff; doubles per retry, with full jitter
    circuit_breaker_threshold: int = 5  # consecutive failures that open the breaker
    batch_size: int = 100
    # Ours.
    retry_max_delay: float = 10.0
    deadline: float = 60.0  # total time for one call, retries and waits included
    circuit_breaker_recovery: float = 60.0  # open -> half-open after this long
    circuit_breaker_failure_rate: float = 0.5  # or this share of failures in the window...
    circuit_breaker_minimum_calls: int = 10  # ...once the window holds this many calls
    circuit_breaker_window: int = 20
    circuit_breaker_half_open_calls: int = 3  # probes admitted in half-open
    circuit_breaker_half_open_deadline: float = 30.0  # half-open longer than this -> open again
    batch_linger: float = 0.05  # a partial batch leaves this long after its first item
    batch_concurrency: int = 4  # batches in flight at once
    batch_queue_size: int = 1000  # add_item() waits when this many items are queued
    health_check_timeout: float = 5.0
    health_failures_before_down: int = 3
    health_successes_before_up: int = 1

    def __post_init__(self) -> None:
        for spec in fields(self):
            value = getattr(self, spec.name)
            low = 0 if spec.name in _MAY_BE_ZERO else 1 if spec.type == "int" else None
            if (low is not None and value < low) or (low is None and value <= 0):
                bound = f">= {low}" if low is not None else "> 0"
                raise IntegrationConfigError(f"{_ENV[spec.name]}={value!r} is invalid: must be {bound}")
        if not 0 < self.circuit_breaker_failure_rate <= 1:
            raise IntegrationConfigError(
                f"CIRCUIT_BREAKER_FAILURE_RATE={self.circuit_breaker_failure_rate!r} is invalid: must be in (0, 1]"
            )

    @functools.cached_property
    def retry_backoff(self) -> Backoff:
        """Waits between retries: full jitter, from `retry_delay` up to `retry_max_delay`."""
        return Backoff(min(self.retry_delay, self.retry_max_delay), self.retry_max_delay, jitter=1.0)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> IntegrationConfig:
        """Read the guide's variables (`INTEGRATION_TIMEOUT`, ...) from the environment, then `.env`
        (as the settings do); unset ones keep their defaults."""
        env = environment() if environ is None else environ
        values: dict[str, Any] = {}
        for spec in fields(cls):
            raw = env.get(_ENV[spec.name])
            if raw is None or raw.strip() == "":
                continue
            convert: Callable[[str], Any] = int if spec.type == "int" else float
            try:
                values[spec.name] = convert(raw)
            except ValueError:
                kind = "an integer" if convert is int else "a number"
                raise IntegrationConfigError(f"{_ENV[spec.name]}={raw!r} is invalid: must be {kind}") from None
        return cls(**values)


_MAY_BE_ZERO = {"retry_count", "retry_delay"}

# The guide's names first; ours follow its pattern.
_ENV = {
    "timeout": "INTEGRATION_TIMEOUT",
    "retry_count": "INTEGRATION_RETRY_COUNT",
    "retry_delay": "INTEGRATION_RETRY_DELAY",
    "circuit_breaker_threshold": "CIRCUIT_BREAKER_THRESHOLD",
    "batch_size": "INTEGRATION_BATCH_SIZE",
    "retry_max_delay": "INTEGRATION_RETRY_MAX_DELAY",
    "deadline": "INTEGRATION_DEADLINE",
    "circuit_breaker_recovery": "CIRCUIT_BREAKER_RECOVERY_TIMEOUT",
    "circuit_breaker_failure_rate": "CIRCUIT_BREAKER_FAILURE_RATE",
    "circuit_breaker_minimum_calls": "CIRCUIT_BREAKER_MINIMUM_CALLS",
    "circuit_breaker_window": "CIRCUIT_BREAKER_WINDOW",
    "circuit_breaker_half_open_calls": "CIRCUIT_BREAKER_HALF_OPEN_CALLS",
    "circuit_breaker_half_open_deadline": "CIRCUIT_BREAKER_HALF_OPEN_DEADLINE",
    "batch_linger": "INTEGRATION_BATCH_LINGER",
    "batch_concurrency": "INTEGRATION_BATCH_CONCURRENCY",
    "batch_queue_size": "INTEGRATION_BATCH_QUEUE_SIZE",
    "health_check_timeout": "INTEGRATION_HEALTH_TIMEOUT",
    "health_failures_before_down": "INTEGRATION_HEALTH_FAILURES_BEFORE_DOWN",
    "health_successes_before_up": "INTEGRATION_HEALTH_SUCCESSES_BEFORE_UP",
}
ENV_NAMES = dict(_ENV)
