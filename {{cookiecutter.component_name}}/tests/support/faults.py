"""Faults on demand for the Redis event bus: a restartable Redis, a proxy that cuts a command off.

`RestartableRedis` keeps its port and data directory across restarts, with
`appendonly yes`, so what Redis acknowledged survives. `CuttingProxy` sits
between the component and Redis and, when told, forwards the next client
chunk holding a marker (e.g. `XADD`) and then closes both sides before the
reply: the command ran, and the client cannot know it. Redis bakes only.
"""

from __future__ import annotations
{%- if cookiecutter.event_bus == "redis" %}

import asyncio
import contextlib
from pathlib import Path
from types import TracebackType

from .redis_server import RedisServer


class RestartableRedis:
    """`with RestartableRedis(tmp_path) as redis: redis.restart()`: same port, same data."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.server = RedisServer(directory, appendonly=True)
        self.port = self.server.port
        self.url = self.server.url

    def start(self) -> None:
        self.server = RedisServer(self.server.directory, port=self.port, appendonly=True).start()

    def stop(self) -> None:
        self.server.stop()  # SIGTERM: Redis flushes its append-only file before it exits

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> RestartableRedis:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class CuttingProxy:
    """A loopback TCP proxy to `target_port`, run on the test's own event loop."""

    def __init__(self, target_port: int, password: str | None = None) -> None:
        self.target_port = target_port
        self.password = password  # Redis' own: the proxy relays AUTH like any command
        self.port = 0
        self.cuts = 0
        self._marker: bytes | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        credentials = f":{self.password}@" if self.password else ""
        return f"redis://{credentials}127.0.0.1:{self.port}/0"

    def cut_after(self, marker: bytes) -> None:
        """The next client chunk containing `marker` reaches Redis; its reply never comes back."""
        self._marker = marker

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, cut: asyncio.Event, upstream: bool
    ) -> None:
        with contextlib.suppress(OSError):
            while chunk := await reader.read(65536):
                if cut.is_set():
                    return
                cutting = upstream and self._marker is not None and self._marker in chunk
                if cutting:
                    # Set before the chunk leaves, so its reply can never be relayed.
                    self._marker = None
                    self.cuts += 1
                    cut.set()
                writer.write(chunk)
                await writer.drain()
                if cutting:
                    await asyncio.sleep(0.2)  # Redis runs it; then both sides are closed
                    return

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        writers = [client_writer]
        try:
            redis_reader, redis_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
            writers.append(redis_writer)
            cut = asyncio.Event()
            pipes = [
                asyncio.create_task(self._pipe(client_reader, redis_writer, cut, upstream=True)),
                asyncio.create_task(self._pipe(redis_reader, client_writer, cut, upstream=False)),
            ]
            try:
                await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in pipes:
                    task.cancel()
                await asyncio.gather(*pipes, return_exceptions=True)
        except OSError:
            pass  # Redis refused: the client's connection is closed below
        finally:
            # Every writer closed before any wait: the proxy's exit may cancel this task in a wait,
            # and a writer left unclosed is a ResourceWarning in whichever test runs when it is collected.
            for writer in writers:
                writer.close()
            for writer in writers:
                with contextlib.suppress(OSError):
                    await writer.wait_closed()

    def _track(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.create_task(self._handle(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def __aenter__(self) -> CuttingProxy:
        self._server = await asyncio.start_server(self._track, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()
{%- endif %}
