"""How long to wait before trying again: one policy for every retry loop.

Used by the Hermes registrar, the WebSocket subscriber, the SSE resume loop
and the HTTP retries, each with its own parameters. The wait grows
exponentially up to `maximum`, and part of it (`jitter`) is random at every
attempt, the capped ones included, so that many clients retrying after one
outage never fall into step.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

# 2.0 ** 1024 overflows a float; long before that the wait is capped anyway.
_MAX_EXPONENT = 64


@dataclass(frozen=True)
class Backoff:
    """`delay(0)` is the first wait; `jitter` is the random share (1.0: full jitter)."""

    initial: float
    maximum: float
    multiplier: float = 2.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.initial < 0 or self.maximum < self.initial or self.multiplier < 1 or not 0 <= self.jitter <= 1:
            raise ValueError(f"invalid backoff: {self!r}")

    def ceiling(self, attempt: int) -> float:
        return min(self.maximum, self.initial * self.multiplier ** min(max(attempt, 0), _MAX_EXPONENT))

    def delay(self, attempt: int) -> float:
        ceiling = self.ceiling(attempt)
        return ceiling * (1 - self.jitter) + random.uniform(0, ceiling * self.jitter)
