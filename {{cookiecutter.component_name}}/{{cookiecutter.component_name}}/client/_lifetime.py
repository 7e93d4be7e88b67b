"""Close a loop's connections when that loop ends, even if nobody calls `close_pools()`.

The guide's snippets end with `asyncio.run(main())` and never close anything:
the pool's sockets then outlive their loop and are torn down by the garbage
collector, which warns ("unclosed transport", "no running event loop").
`asyncio.run` (and uvicorn, and pytest's loops) close every suspended async
generator of the loop before closing it (`loop.shutdown_asyncgens()`), so a
generator parked at its `yield` is a hook that runs while the loop still runs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable

Closer = Callable[[], Awaitable[object]]

# Strong references: the loop tracks its async generators only weakly.
_hooks: dict[asyncio.AbstractEventLoop, list[AsyncGenerator[None, None]]] = {}


async def _close_at_shutdown(closers: tuple[Closer, ...]) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        for close in closers:
            await close()  # closing twice is a no-op for httpx and redis clients


def close_with_loop(*closers: Closer) -> None:
    """Arrange for `closers` to run, in order, when the running loop shuts down its async generators."""
    loop = asyncio.get_running_loop()
    for dead in [other for other in _hooks if other.is_closed()]:
        del _hooks[dead]
    hook = _close_at_shutdown(closers)
    step = hook.__anext__()  # registers the generator with the running loop
    with contextlib.suppress(StopIteration):
        step.send(None)  # runs it up to its `yield`, awaiting nothing
    _hooks.setdefault(loop, []).append(hook)
