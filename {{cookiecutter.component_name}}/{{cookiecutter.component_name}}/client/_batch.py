"""`BatchIntegration` (the guide's Pattern 4): many items, few requests.

A batch leaves when it is full (`batch_size`) or `linger` after its first
item, not after the guide's 1 s of idle waiting. The queue is bounded
(`add_item` waits when it is full), at most `concurrency` batches are in
flight, each item gets its own result (the peer reports failures per item),
and `close()` sends everything still queued before returning.

The peer's contract: `POST /api/v1/batch {"items": [...]}` ->
`{"processed": [{"index", "result"}], "failed": [{"index", "error": {"code", "message"}}]}`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Unpack

from ._component import ComponentClient
from ._config import IntegrationConfig
from ._discovery import PeerLocation
from ._errors import BatchClosedError, error_dict
from ._telemetry import logger


@dataclass(frozen=True)
class ItemResult:
    """What became of one item: `result` when `ok`, else `error` (`{"code", "message"}`)."""

    item: dict[str, Any]
    ok: bool
    result: Any = None
    error: dict[str, Any] | None = None


_Entry = tuple[dict[str, Any], "asyncio.Future[ItemResult]"]
_STOP = object()  # wakes the collector when closing


class BatchIntegration:
    def __init__(
        self,
        component: str,
        batch_size: int | None = None,
        *,
        config: IntegrationConfig | None = None,
        endpoint: str = "batch",
        linger: float | None = None,
        concurrency: int | None = None,
        queue_size: int | None = None,
        on_batch: Callable[[int, int], object] | None = None,
        **where: Unpack[PeerLocation],
    ) -> None:
        config = config or IntegrationConfig.from_env()
        self.component = component
        self.batch_size = batch_size or config.batch_size
        self.linger = config.batch_linger if linger is None else linger
        self.concurrency = concurrency or config.batch_concurrency
        if self.batch_size < 1 or self.concurrency < 1 or self.linger < 0:
            raise ValueError(
                f"batch_size={self.batch_size}, concurrency={self.concurrency} must be >= 1 "
                f"and linger={self.linger} >= 0"
            )
        self.endpoint = endpoint
        self.on_batch = on_batch  # called with (processed, failed) after each batch
        self.client = ComponentClient(component, config=config, **where)
        self.queue: asyncio.Queue[_Entry | object] = asyncio.Queue(maxsize=queue_size or config.batch_queue_size)
        self.processed_count = 0
        self.failed_count = 0
        self._closed = False
        self._stop_seen = False
        self._running: asyncio.Event | None = None
        self._finished: asyncio.Event | None = None

    async def add_item(self, item: dict[str, Any]) -> asyncio.Future[ItemResult]:
        """Queue `item` (waiting while the queue is full); await the returned future for its result."""
        if self._closed:
            raise BatchClosedError(f"batch integration with {self.component} is closed", component=self.component)
        future: asyncio.Future[ItemResult] = asyncio.get_running_loop().create_future()
        await self.queue.put((item, future))
        return future

    async def process_batch(self) -> dict[str, Any] | None:
        """Collect one batch (waiting up to `linger` for its first item) and send it; the peer's answer."""
        batch = await self._collect(first_wait=self.linger)
        return await self._send(batch) if batch else None

    async def run(self) -> None:
        """Send batches until `close()`, then drain what is queued and wait for batches in flight."""
        self._running = asyncio.Event()
        self._running.set()
        self._finished = asyncio.Event()
        slots = asyncio.Semaphore(self.concurrency)
        in_flight: set[asyncio.Task[dict[str, Any]]] = set()
        try:
            while batch := await self._collect(first_wait=None):
                await slots.acquire()
                task = asyncio.create_task(self._send(batch))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
                task.add_done_callback(lambda _: slots.release())
        finally:
            if in_flight:
                await asyncio.gather(*in_flight, return_exceptions=True)
            self._running.clear()
            self._finished.set()

    async def close(self) -> None:
        """Stop accepting items, send everything queued, and return when every item has its result."""
        running = self._running is not None and self._running.is_set()
        if not self._closed:
            self._closed = True
            if running:
                await self.queue.put(_STOP)
            else:
                self._stop_seen = True  # nobody reads the queue: a full one would block `put` forever
        if running:
            assert self._finished is not None
            await self._finished.wait()
        elif not self._stop_seen or not self.queue.empty():
            await self.run()  # nobody is running the loop: drain here

    async def __aenter__(self) -> BatchIntegration:
        self._task = asyncio.create_task(self.run())
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
        await self._task

    async def _collect(self, first_wait: float | None) -> list[_Entry]:
        """Up to `batch_size` entries: the first (waiting `first_wait`, None = until one comes),
        then whatever arrives within `linger` of it."""
        loop = asyncio.get_running_loop()
        batch: list[_Entry] = []
        deadline = 0.0
        while len(batch) < self.batch_size:
            if self._stop_seen and self.queue.empty():
                break
            wait = first_wait if not batch else deadline - loop.time()
            try:
                if wait is None:
                    entry = await self.queue.get()
                elif wait <= 0:
                    entry = self.queue.get_nowait()
                else:
                    entry = await asyncio.wait_for(self.queue.get(), wait)
            except (TimeoutError, asyncio.QueueEmpty):
                break
            if entry is _STOP:
                self._stop_seen = True
                continue
            if not batch:
                deadline = loop.time() + self.linger
            batch.append(entry)  # type: ignore[arg-type]
        return batch

    async def _send(self, batch: list[_Entry]) -> dict[str, Any]:
        items = [item for item, _ in batch]
        try:
            answer = await self.client.call_api(self.endpoint, "POST", {"items": items})
        except Exception as exc:
            failure = error_dict(exc, self.component)
            error = {"code": failure["error"], "message": failure["message"]}
            answer = {"processed": [], "failed": [{"index": i, "error": error} for i in range(len(batch))]}
        results: dict[int, ItemResult] = {}
        for entry in _entries(answer, "processed"):
            index = entry.get("index")
            if isinstance(index, int) and 0 <= index < len(batch):
                results[index] = ItemResult(items[index], True, result=entry.get("result"))
        for entry in _entries(answer, "failed"):
            index = entry.get("index")
            if isinstance(index, int) and 0 <= index < len(batch):
                results[index] = ItemResult(items[index], False, error=entry.get("error"))
        failed = 0
        for index, (item, future) in enumerate(batch):
            result = results.get(index) or ItemResult(
                item, False, error={"code": "missing_result", "message": f"{self.component} did not report this item"}
            )
            failed += not result.ok
            if not future.done():
                future.set_result(result)
        self.processed_count += len(batch) - failed
        self.failed_count += failed
        # The guide's run() prints "Processed N items" per batch: log it, and tell `on_batch` if given.
        logger.info(
            "Processed %d items (%d failed) on %s",
            len(batch) - failed,
            failed,
            self.component,
            extra={"target": self.component, "items": len(batch), "failed": failed},
        )
        if self.on_batch is not None:
            self.on_batch(len(batch) - failed, failed)
        return answer if isinstance(answer, dict) else {"processed": [], "failed": []}


def _entries(answer: Any, key: str) -> list[dict[str, Any]]:
    entries = answer.get(key) if isinstance(answer, dict) else None
    return [entry for entry in entries if isinstance(entry, dict)] if isinstance(entries, list) else []
