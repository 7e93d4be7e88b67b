"""The circuit breaker: Resilience4j semantics, the guide's test verbatim, exact half-open admission."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from {{ cookiecutter.component_name }}.client import (
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
    PeerHTTPError,
    PeerTimeoutError,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fail() -> None:
    raise PeerTimeoutError("peer did not answer", component="peer")


def http_error(status: int) -> PeerHTTPError:
    request = httpx.Request("GET", "http://peer/api/v1/x")
    return PeerHTTPError(httpx.Response(status, json={"message": "nope"}, request=request), component="peer")


def state(breaker: CircuitBreaker) -> CircuitState:
    return breaker.state  # read through a call: mypy would narrow `breaker.state` after an assert


def raiser(exc: Exception) -> Any:
    def call() -> None:
        raise exc

    return call


def trip(breaker: CircuitBreaker) -> None:
    for _ in range(breaker.failure_threshold):
        with pytest.raises(PeerTimeoutError):
            breaker.call(fail)
    assert state(breaker) is CircuitState.OPEN


class TestGuide:
    @pytest.mark.asyncio
    async def test_circuit_breaker(self) -> None:
        """Test circuit breaker behavior."""
        breaker = CircuitBreaker(failure_threshold=3)

        # Simulate failures
        for _ in range(3):
            with pytest.raises(Exception):  # noqa: B017 (the guide's own test)
                breaker.call(lambda: 1 / 0)

        # Circuit should be open
        assert breaker.state == CircuitState.OPEN

        # Should fail fast
        with pytest.raises(Exception, match="Circuit breaker is OPEN"):
            breaker.call(lambda: "success")


def test_consecutive_failures_below_threshold_keep_it_closed() -> None:
    breaker = CircuitBreaker(failure_threshold=3)
    for _ in range(2):
        with pytest.raises(PeerTimeoutError):
            breaker.call(fail)
    assert breaker.call(lambda: "ok") == "ok"
    with pytest.raises(PeerTimeoutError):
        breaker.call(fail)
    assert state(breaker) is CircuitState.CLOSED  # the success reset the run of failures


def record(breaker: CircuitBreaker, *outcomes: bool) -> None:
    """One call per outcome through `breaker`: True fails (a timeout), False succeeds."""
    for failed in outcomes:
        if failed:
            with pytest.raises(PeerTimeoutError):
                breaker.call(fail)
        else:
            breaker.call(lambda: None)


def test_failure_rate_trips_once_the_minimum_number_of_calls_is_reached() -> None:
    breaker = CircuitBreaker(failure_threshold=100, failure_rate_threshold=0.5, minimum_calls=6, window_size=10)
    record(breaker, True, False, True, False, True)  # 3 of 5 failed: not enough calls yet
    assert state(breaker) is CircuitState.CLOSED
    breaker.call(lambda: None)  # 3 of 6 = 50%
    assert state(breaker) is CircuitState.OPEN


def test_failures_that_leave_the_window_no_longer_count() -> None:
    breaker = CircuitBreaker(failure_threshold=100, failure_rate_threshold=0.75, minimum_calls=4, window_size=4)

    record(breaker, True, True, False, False)  # 2 of 4 failed
    record(breaker, False, False)  # both failures have left the window: 0 of 4
    record(breaker, True)  # 1 of 4 (a count that forgot the evictions would say 3 of 4 and open)
    assert state(breaker) is CircuitState.CLOSED
    record(breaker, True, True)  # 3 of 4 = 75%
    assert state(breaker) is CircuitState.OPEN


def test_client_errors_are_not_failures_but_429_and_5xx_are() -> None:
    breaker = CircuitBreaker(failure_threshold=2)
    for _ in range(5):
        with pytest.raises(PeerHTTPError):
            breaker.call(raiser(http_error(404)))
    assert state(breaker) is CircuitState.CLOSED
    for status in (429, 503):
        with pytest.raises(PeerHTTPError):
            breaker.call(raiser(http_error(status)))
    assert state(breaker) is CircuitState.OPEN


def test_exceptions_outside_expected_exception_are_not_counted() -> None:
    breaker = CircuitBreaker(failure_threshold=1, expected_exception=PeerTimeoutError)
    with pytest.raises(KeyError):
        breaker.call(raiser(KeyError("missing")))
    assert state(breaker) is CircuitState.CLOSED


def test_server_errors_outside_expected_exception_are_ignored_not_successes() -> None:
    breaker = CircuitBreaker(failure_threshold=2, expected_exception=ValueError)
    with pytest.raises(ValueError):
        breaker.call(raiser(ValueError("bad")))
    with pytest.raises(PeerHTTPError):
        breaker.call(raiser(http_error(500)))
    with pytest.raises(ValueError):
        breaker.call(raiser(ValueError("bad")))
    assert state(breaker) is CircuitState.OPEN  # the 500 did not break the run of failures


def test_open_becomes_half_open_after_the_wait_and_closes_after_good_probes() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=10, half_open_max_calls=2, clock=clock)
    trip(breaker)
    clock.now += 9.9
    with pytest.raises(CircuitOpenError) as rejected:
        breaker.call(lambda: "early")
    assert rejected.value.retry_after == pytest.approx(0.1)
    clock.now += 0.1
    assert breaker.call(lambda: "probe 1") == "probe 1"
    assert state(breaker) is CircuitState.HALF_OPEN
    assert breaker.call(lambda: "probe 2") == "probe 2"
    assert state(breaker) is CircuitState.CLOSED


def test_a_failed_probe_reopens() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=10, half_open_max_calls=3, clock=clock)
    trip(breaker)
    clock.now += 10
    breaker.call(lambda: None)
    with pytest.raises(PeerTimeoutError):
        breaker.call(fail)
    assert state(breaker) is CircuitState.OPEN


async def test_half_open_admits_exactly_n_of_50_concurrent_callers_and_rejects_the_rest_at_once() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=10, half_open_max_calls=3, clock=clock)
    trip(breaker)
    clock.now += 10
    release = asyncio.Event()
    started = 0

    async def probe() -> str:
        nonlocal started
        started += 1
        await release.wait()
        return "ok"

    tasks = [asyncio.create_task(breaker.acall(probe)) for _ in range(50)]
    await asyncio.sleep(0.05)
    rejected = [task for task in tasks if task.done()]
    assert started == 3
    assert len(rejected) == 47  # not waiting for the probes: rejected already
    assert all(isinstance(task.exception(), CircuitOpenError) for task in rejected)
    release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert results.count("ok") == 3
    assert state(breaker) is CircuitState.CLOSED


async def test_a_probe_that_raises_before_awaiting_gives_its_slot_back() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=10, half_open_max_calls=1, clock=clock)
    trip(breaker)
    clock.now += 10

    def broken_factory() -> Any:  # fails while building the awaitable: an outcome all the same
        raise PeerTimeoutError("timed out", component="peer")

    with pytest.raises(PeerTimeoutError):
        await breaker.acall(broken_factory)
    assert state(breaker) is CircuitState.OPEN  # the failed probe reopened it, not a leaked slot
    clock.now += 10

    async def good() -> str:
        return "ok"

    assert await breaker.acall(good) == "ok"
    assert state(breaker) is CircuitState.CLOSED


async def test_half_open_deadline_reopens_when_probes_do_not_finish() -> None:
    clock = Clock()
    breaker = CircuitBreaker(
        failure_threshold=1, recovery_timeout=10, half_open_max_calls=1, half_open_deadline=5, clock=clock
    )
    trip(breaker)
    clock.now += 10
    stuck = asyncio.Event()
    probe = asyncio.create_task(breaker.acall(stuck.wait))
    await asyncio.sleep(0.01)
    clock.now += 5
    with pytest.raises(CircuitOpenError):
        breaker.call(lambda: "rejected")
    assert state(breaker) is CircuitState.OPEN
    stuck.set()
    await probe
    assert state(breaker) is CircuitState.OPEN  # a late answer from an old probe changes nothing


async def test_call_on_an_async_function_counts_its_real_outcome() -> None:
    breaker = CircuitBreaker(failure_threshold=2)

    async def failing_call(endpoint: str, method: str, data: dict[str, Any]) -> Any:
        raise PeerTimeoutError(f"{method} {endpoint} timed out", component="peer")

    for _ in range(2):
        pending = breaker.call(failing_call, "process", "POST", {"input": 1})
        assert state(breaker) is CircuitState.CLOSED  # nothing happened yet: not awaited
        with pytest.raises(PeerTimeoutError):
            await pending
    assert state(breaker) is CircuitState.OPEN


def test_named_breaker_exports_its_state_as_a_metric() -> None:
    breaker = CircuitBreaker(failure_threshold=1, name="metric-peer")

    def state() -> float | None:
        return REGISTRY.get_sample_value("integration_circuit_breaker_state", {"target": "metric-peer"})

    assert state() == 0
    trip(breaker)
    assert state() == 2
