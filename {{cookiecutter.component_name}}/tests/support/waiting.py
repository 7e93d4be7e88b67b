"""Wait for an outcome with a generous deadline, instead of sleeping a guessed time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


def eventually(check: Callable[[], object], within: float = 15.0, interval: float = 0.05, what: str = "") -> None:
    """Return once `check()` is truthy; raise `AssertionError` after `within` seconds.

    `check` may also raise `AssertionError` (or any exception) while not there yet.
    """
    deadline = time.monotonic() + within
    last: object = None
    while True:
        try:
            last = check()
            if last:
                return
        except Exception as exc:
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {within:g}s: {what or check} (last: {last!r})")
        time.sleep(interval)


async def aeventually(
    check: Callable[[], object], within: float = 15.0, interval: float = 0.05, what: str = ""
) -> None:
    """`eventually` for coroutines: sleeps without blocking the loop."""
    deadline = time.monotonic() + within
    last: object = None
    while True:
        try:
            last = check()
            if last:
                return
        except Exception as exc:
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {within:g}s: {what or check} (last: {last!r})")
        await asyncio.sleep(interval)
