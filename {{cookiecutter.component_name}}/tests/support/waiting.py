"""Wait for an outcome with a generous deadline, instead of sleeping a guessed time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator


def attempts(check: Callable[[], object], within: float, what: str) -> Iterator[None]:
    """Yields each time `check()` is not there yet (the caller waits before the next try), ends
    once it is truthy, and raises `AssertionError` after `within` seconds: the logic the sync and
    async `eventually` share, each waiting its own way."""
    deadline = time.monotonic() + within
    while True:
        try:
            last = check()
            if last:
                return
        except Exception as exc:
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {within:g}s: {what or check} (last: {last!r})")
        yield


def eventually(check: Callable[[], object], within: float = 15.0, interval: float = 0.05, what: str = "") -> None:
    """Return once `check()` is truthy; raise `AssertionError` after `within` seconds.

    `check` may also raise `AssertionError` (or any exception) while not there yet.
    """
    for _ in attempts(check, within, what):
        time.sleep(interval)


async def aeventually(
    check: Callable[[], object], within: float = 15.0, interval: float = 0.05, what: str = ""
) -> None:
    """`eventually` for coroutines: sleeps without blocking the loop."""
    for _ in attempts(check, within, what):
        await asyncio.sleep(interval)
