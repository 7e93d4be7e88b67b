"""When to retry a call, and how long to wait: shared by the async and sync transports.

Retried: connect errors and 429/503 for any method (the peer did not act on
the request), other transport errors and 5xx only for idempotent methods.
Waits grow exponentially with full jitter, honour `Retry-After`, and never
run past the call's total deadline.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

import httpx

from ..backoff import Backoff

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
# Statuses that mean "not processed, try later" whatever the method.
SAFE_TO_RETRY_STATUSES = frozenset({429, 503})
RETRYABLE_STATUSES = frozenset({500, 502, 503, 504, 429})
# Errors raised before the request reached the peer.
NOT_SENT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass
class RetryBudget:
    """One call's retry state: attempts left and its total deadline."""

    method: str
    retries: int
    backoff: Backoff
    deadline: float  # monotonic time after which nothing more is tried
    attempt: int = field(default=0)

    @classmethod
    def start(cls, method: str, retries: int, backoff: Backoff, total: float) -> RetryBudget:
        return cls(method.upper(), retries, backoff, time.monotonic() + total)

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def delay_after_error(self, exc: httpx.TransportError) -> float | None:
        """Seconds to wait before retrying after `exc`, or None to give up."""
        if not isinstance(exc, NOT_SENT_ERRORS) and self.method not in IDEMPOTENT:
            return None
        return self._next(None)

    def delay_after_status(self, response: httpx.Response) -> float | None:
        """Seconds to wait before retrying after an error status, or None to give up."""
        status = response.status_code
        if status not in RETRYABLE_STATUSES:
            return None
        if status not in SAFE_TO_RETRY_STATUSES and self.method not in IDEMPOTENT:
            return None
        return self._next(retry_after(response))

    def _next(self, server_wait: float | None) -> float | None:
        if self.attempt >= self.retries:
            return None
        backoff = self.backoff.delay(self.attempt)
        wait = max(backoff, server_wait) if server_wait is not None else backoff
        if wait >= self.remaining():
            return None  # the deadline would pass while waiting: fail now, not later
        self.attempt += 1
        return wait


def retry_after(response: httpx.Response) -> float | None:
    """`Retry-After` in seconds (delta-seconds or an HTTP date), if the peer sent one."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None
