"""Run a coroutine at once, without a task, for as long as it does not wait.

Fanning one event out to a thousand sockets, most sends complete without
ever waiting (the socket's buffer has room): scheduling a task for each would
cost more than the send. `run_eagerly` runs the coroutine right away; if it
finishes, that is all; if it has to wait, a task takes over from where it
stopped. This is what Python 3.12's eager tasks do, for 3.11 too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Generator
from typing import Any


class _Rest:
    """Awaits the rest of a coroutine that was started by hand and is waiting on `pending`."""

    def __init__(self, coroutine: Coroutine[Any, Any, None], pending: Any) -> None:
        self.coroutine = coroutine
        self.pending = pending

    def __await__(self) -> Generator[Any, Any, None]:
        coroutine, waiting_on = self.coroutine, self.pending
        while True:
            try:
                received = yield waiting_on
            except GeneratorExit:
                coroutine.close()
                raise
            except BaseException as exc:  # cancellation included: the coroutine gets to handle it
                try:
                    waiting_on = coroutine.throw(exc)
                except StopIteration:
                    return
            else:
                try:
                    waiting_on = coroutine.send(received)
                except StopIteration:
                    return


async def _finish(rest: _Rest) -> None:
    await rest


def run_eagerly(coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None] | None:
    """None when `coroutine` finished at once (its errors are raised here); else the task finishing it."""
    try:
        pending = coroutine.send(None)
    except StopIteration:
        return None
    return asyncio.get_running_loop().create_task(_finish(_Rest(coroutine, pending)))
