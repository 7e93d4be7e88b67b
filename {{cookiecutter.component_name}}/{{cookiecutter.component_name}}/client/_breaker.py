"""`CircuitBreaker` with Resilience4j semantics, usable from threads and event loops.

- CLOSED: calls pass; outcomes go into a count-based window. The breaker opens
  after `failure_threshold` consecutive failures, or when the window holds at
  least `minimum_calls` outcomes and `failure_rate_threshold` of them failed.
- OPEN: calls are rejected at once with `CircuitOpenError`
  ("Circuit breaker is OPEN") until `recovery_timeout` has passed.
- HALF_OPEN: exactly `half_open_max_calls` probes are admitted, the rest are
  rejected at once (not queued, not let through). All probes succeeding
  closes the breaker; one failure, or `half_open_deadline` passing, opens it.

Only exceptions of `expected_exception` count as failures, and among the
peer errors only those that say the peer is unwell: timeouts, connection
errors, 5xx and 429. A 4xx means the peer is up and answered: a success for
the breaker. Other exceptions are ignored (neither success nor failure).
"""

from __future__ import annotations

import inspect
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from enum import Enum
from typing import Any, ParamSpec, TypeVar, overload

import httpx

from ._errors import CircuitOpenError, IntegrationError, PeerHTTPError
from ._telemetry import BREAKER_STATE

P = ParamSpec("P")
T = TypeVar("T")


class CircuitState(Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


_GAUGE_VALUE = {CircuitState.CLOSED: 0, CircuitState.HALF_OPEN: 1, CircuitState.OPEN: 2}


def is_peer_failure(exc: BaseException) -> bool:
    """Does this error say the peer is unwell (not merely that our request was bad)?"""
    if isinstance(exc, PeerHTTPError):
        return exc.status >= 500 or exc.status == 429
    if isinstance(exc, httpx.HTTPStatusError):
        status = exc.response.status_code
        return status >= 500 or status == 429
    return True


class CircuitBreaker:
    def __init__(
        self,
        failure_threshold: int = 5,
        recovery_timeout: float = 60,
        expected_exception: type[BaseException] | tuple[type[BaseException], ...] = Exception,
        *,
        name: str = "",
        failure_rate_threshold: float = 0.5,
        minimum_calls: int = 10,
        window_size: int = 20,
        half_open_max_calls: int = 3,
        half_open_deadline: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1 or half_open_max_calls < 1 or minimum_calls < 1 or window_size < 1:
            raise ValueError(
                "failure_threshold, half_open_max_calls, minimum_calls and window_size must be >= 1 "
                f"(got {failure_threshold}, {half_open_max_calls}, {minimum_calls}, {window_size})"
            )
        if not 0 < failure_rate_threshold <= 1:
            raise ValueError(f"failure_rate_threshold={failure_rate_threshold} must be in (0, 1]")
        self.name = name
        self.failure_threshold = failure_threshold
        self.recovery_timeout = recovery_timeout
        self.expected_exception = expected_exception
        self.failure_rate_threshold = failure_rate_threshold
        self.minimum_calls = minimum_calls
        self.half_open_max_calls = half_open_max_calls
        self.half_open_deadline = half_open_deadline
        self._clock = clock
        self._lock = threading.Lock()
        self._window: deque[bool] = deque(maxlen=window_size)  # True = failure
        self._window_failures = 0  # failures in the window, kept as it changes (not summed per call)
        self._epoch = 0
        self._changed_at = clock()
        self._admitted = 0  # half-open probes granted
        self._succeeded = 0  # half-open probes that succeeded
        self.failure_count = 0  # consecutive failures (the guide's name)
        self.last_failure_time: float | None = None  # wall clock, as in the guide
        self.state = CircuitState.CLOSED
        self._publish_state()

    # -- the guide's API -------------------------------------------------

    @overload
    def call(
        self, func: Callable[P, Coroutine[Any, Any, T]], *args: P.args, **kwargs: P.kwargs
    ) -> Coroutine[Any, Any, T]: ...

    @overload
    def call(self, func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T: ...

    def call(self, func: Callable[P, Any], *args: P.args, **kwargs: P.kwargs) -> Any:
        """Run `func` under the breaker. An async `func` gives a coroutine to await;
        its real outcome (not the creation of the coroutine) is what counts."""
        if inspect.iscoroutinefunction(func):
            return self.acall(func, *args, **kwargs)
        permit = self._acquire()
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:
            self._record_exception(permit, exc)
            raise
        if inspect.isawaitable(result):
            # A plain callable that returned an awaitable (a lambda around a coroutine, ...).
            return self._finish(permit, result)
        self._record(permit, failed=False)
        return result

    async def acall(self, func: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        """Await `func(*args, **kwargs)` under the breaker."""
        permit = self._acquire()
        try:
            # (An exception raised before `func` returns its awaitable is an outcome too.)
            result = await func(*args, **kwargs)
        except BaseException as exc:
            self._record_exception(permit, exc)
            raise
        self._record(permit, failed=False)
        return result

    # -- state -------------------------------------------------------------

    def allow(self) -> bool:
        """Would a call be admitted now? (Informational: does not take a permit.)"""
        with self._lock:
            self._advance()
            if self.state is CircuitState.CLOSED:
                return True
            return self.state is CircuitState.HALF_OPEN and self._admitted < self.half_open_max_calls

    def reset(self) -> None:
        with self._lock:
            self._transition(CircuitState.CLOSED)

    def __repr__(self) -> str:
        return f"CircuitBreaker(name={self.name!r}, state={self.state.value}, failures={self.failure_count})"

    # -- internals -----------------------------------------------------------

    async def _finish(self, permit: int, awaitable: Awaitable[T]) -> T:
        try:
            result = await awaitable
        except BaseException as exc:
            self._record_exception(permit, exc)
            raise
        self._record(permit, failed=False)
        return result

    def _acquire(self) -> int:
        """Admit a call or raise `CircuitOpenError`. The permit is the state generation (epoch) it was
        admitted in: outcomes of calls admitted before a transition are dropped when they arrive."""
        with self._lock:
            if self.state is CircuitState.CLOSED:  # nothing time-driven happens while closed
                return self._epoch
            self._advance()
            if self.state is CircuitState.HALF_OPEN and self._admitted < self.half_open_max_calls:
                self._admitted += 1
                return self._epoch
            retry_after = None
            if self.state is CircuitState.OPEN:
                retry_after = max(0.0, self.recovery_timeout - (self._clock() - self._changed_at))
            raise CircuitOpenError(self.name, retry_after)

    def _advance(self) -> None:
        """Time-driven transitions, applied whenever the breaker is consulted."""
        elapsed = self._clock() - self._changed_at
        if self.state is CircuitState.OPEN and elapsed >= self.recovery_timeout:
            self._transition(CircuitState.HALF_OPEN)
        elif self.state is CircuitState.HALF_OPEN and elapsed >= self.half_open_deadline:
            self._transition(CircuitState.OPEN)

    def _record_exception(self, permit: int, exc: BaseException) -> None:
        if isinstance(exc, CircuitOpenError):
            self._release(permit)  # an inner breaker said no: says nothing about this peer
        elif isinstance(exc, self.expected_exception) and (
            not isinstance(exc, IntegrationError | httpx.HTTPError) or is_peer_failure(exc)
        ):
            self._record(permit, failed=True)
        elif isinstance(exc, PeerHTTPError | httpx.HTTPStatusError) and not is_peer_failure(exc):
            self._record(permit, failed=False)  # a 4xx: the peer is up
        else:
            self._release(permit)  # cancelled, or an error the breaker was told to ignore

    def _release(self, permit: int) -> None:
        with self._lock:
            if permit == self._epoch and self.state is CircuitState.HALF_OPEN:
                self._admitted -= 1

    def _record(self, permit: int, *, failed: bool) -> None:
        with self._lock:
            if failed:
                self.last_failure_time = time.time()
            if permit != self._epoch:
                return
            if self.state is CircuitState.HALF_OPEN:
                if failed:
                    self._transition(CircuitState.OPEN)
                else:
                    self._succeeded += 1
                    if self._succeeded >= self.half_open_max_calls:
                        self._transition(CircuitState.CLOSED)
                return
            if self.state is not CircuitState.CLOSED:
                return
            window = self._window
            if len(window) == window.maxlen and window[0]:
                self._window_failures -= 1  # the oldest outcome, about to drop out, was a failure
            window.append(failed)
            if failed:
                self._window_failures += 1
                self.failure_count += 1
            else:
                self.failure_count = 0
            calls = len(window)
            rate_tripped = calls >= self.minimum_calls and self._window_failures / calls >= self.failure_rate_threshold
            if self.failure_count >= self.failure_threshold or rate_tripped:
                self._transition(CircuitState.OPEN)

    def _transition(self, state: CircuitState) -> None:
        self.state = state
        self._epoch += 1
        self._changed_at = self._clock()
        self._admitted = self._succeeded = 0
        if state is CircuitState.CLOSED:
            self._window.clear()
            self._window_failures = 0
            self.failure_count = 0
        self._publish_state()

    def _publish_state(self) -> None:
        if self.name:
            BREAKER_STATE.labels(self.name).set(_GAUGE_VALUE[self.state])


_breakers: dict[str, CircuitBreaker] = {}
_breakers_lock = threading.Lock()


def breaker_for(peer: str, factory: Callable[[], CircuitBreaker]) -> CircuitBreaker:
    """The one breaker of `peer` in this process (created by `factory` the first time)."""
    with _breakers_lock:
        breaker = _breakers.get(peer)
        if breaker is None:
            breaker = _breakers[peer] = factory()
        return breaker
