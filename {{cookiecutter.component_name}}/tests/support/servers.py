"""Run an ASGI app, or the component as a real process, on a free loopback port."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import socket
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from types import TracebackType
from typing import Literal

import httpx
import uvicorn
from starlette.types import ASGIApp

from .forkserver import ForkedProcess, popen_python


def worker_share(low: int, high: int) -> tuple[int, int]:
    """This pytest-xdist worker's slice of `low`-`high` (all of it outside xdist), so
    parallel workers never draw the same port from a range."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1", ...
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if not worker.startswith("gw") or count < 2:
        return low, high
    size = (high - low + 1) // count
    start = low + int(worker[2:]) % count * size
    return start, start + size - 1


def free_port(low: int | None = None, high: int | None = None) -> int:
    """A free loopback port; within `low`-`high` when given (component ports are 8000-9999).

    Without a range the kernel picks it (at random, so parallel workers do not meet);
    with one, each xdist worker draws from its own share of it.
    """
    if low is None or high is None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
            return port
    low, high = worker_share(low, high)
    for candidate in random.sample(range(low, high + 1), k=min(200, high - low + 1)):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return candidate
    raise RuntimeError(f"no free port in {low}-{high}")


def bound_socket(port: int = 0) -> socket.socket:
    """A loopback socket bound to `port` (0: one the kernel picks), not listening.

    Connections to it are refused, and no one else can take the port: a port merely found
    free can go to another xdist worker's server, or to any outgoing connection, before the
    server meant for it binds. Hand it to uvicorn (`server.run(sockets=[sock])`), which listens."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn's own: a restart on the same port
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        sock.close()
        raise
    return sock


_HELD: list[socket.socket] = []


def refused_port() -> int:
    """A loopback port where connections are refused, for the rest of this test process."""
    sock = bound_socket()
    _HELD.append(sock)
    port: int = sock.getsockname()[1]
    return port


class PromptServer(uvicorn.Server):
    """A uvicorn server that stops as soon as `stop()` is called: uvicorn's own loop
    looks at `should_exit` every 0.1 s, and its shutdown sleeps 0.1 s then looks every
    0.1 s whether connections and tasks are done, which every test with a server would wait for.
    (`main_loop` and `shutdown` are uvicorn's; the pin in pyproject.toml keeps them the ones read here.)"""

    _loop: asyncio.AbstractEventLoop | None = None
    _stopping: asyncio.Event | None = None

    async def main_loop(self) -> None:
        self._loop, self._stopping = asyncio.get_running_loop(), asyncio.Event()
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.1):
                    await self._stopping.wait()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """uvicorn's shutdown, looking every 5 ms instead of every 0.1 s whether it is done."""
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        # A connection accepted just before the listeners closed is still on its way to
        # `server_state`: uvicorn's fixed 0.1 s let it arrive, 10 ms does too.
        await asyncio.sleep(0.01)
        for connection in list(self.server_state.connections):
            connection.shutdown()
        try:
            async with asyncio.timeout(self.config.timeout_graceful_shutdown):
                # uvicorn's server state has no event to wait on.
                while (self.server_state.connections or self.server_state.tasks) and not self.force_exit:  # noqa: ASYNC110
                    await asyncio.sleep(0.005)
        except TimeoutError:
            for task in self.server_state.tasks:
                task.cancel(msg="Task cancelled, timeout graceful shutdown exceeded")
        if not self.force_exit:
            await self.lifespan.shutdown()

    def stop(self) -> None:
        """From any thread."""
        self.should_exit = True
        if self._loop is not None and self._stopping is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already closed
                self._loop.call_soon_threadsafe(self._stopping.set)


@contextmanager
def running_server(app: ASGIApp, port: int | None = None, startup_timeout: float = 10.0) -> Iterator[str]:
    """Serve `app` with uvicorn in a background thread; yields its base URL.

    The lifespan runs for real, so startup and shutdown code is exercised.
    """
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    with running_config(config, port or 0, startup_timeout) as port:
        yield f"http://127.0.0.1:{port}"


@contextmanager
def running_config(config: uvicorn.Config, port: int = 0, startup_timeout: float = 10.0) -> Iterator[int]:
    """Serve uvicorn `config` on loopback in a background thread; yields its port."""
    sock = bound_socket(port)  # held from now: the lifespan runs before uvicorn would bind
    config.host, config.port = "127.0.0.1", sock.getsockname()[1]
    server = PromptServer(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"uvicorn-{config.port}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + startup_timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"server on port {config.port} did not start")
            time.sleep(0.01)
        yield config.port
    finally:
        server.stop()
        thread.join(timeout=15)
        sock.close()  # uvicorn closes it at shutdown; not if it never started


@asynccontextmanager
async def serving(app: ASGIApp) -> AsyncIterator[str]:
    """`running_server` for a test that runs a server of its own on its event loop (e.g. a proxy the
    app talks to): the app starts and stops in a thread, so that loop keeps serving meanwhile."""
    server = running_server(app)
    url = await asyncio.to_thread(server.__enter__)
    try:
        yield url
    finally:
        await asyncio.to_thread(server.__exit__, None, None, None)


class ComponentProcess:
    """The component as a separate process: under uvicorn's CLI (`python -m uvicorn
    <package>.app:app`), or with `launcher="module"` its own `python -m <package>`
    (started by `forkserver.py`, which has the heavy libraries imported already).

    Output goes to a file so a test can read the whole log after exit.
    """

    def __init__(
        self,
        package: str,
        env: Mapping[str, str] | None = None,
        port: int | None = None,
        log_dir: Path | None = None,
        extra_args: tuple[str, ...] = (),
        launcher: Literal["uvicorn", "module"] = "uvicorn",
        port_env: bool = True,
    ) -> None:
        self.launcher = launcher
        self.package = package
        self.port_env = port_env  # False: only uvicorn's `--port` says which port is served
        self.given_env = env or {}
        self.log_dir = log_dir or Path.cwd()
        self.port_drawn = port is None
        self.use_port(port or free_port(8000, 9999))
        self.extra_args = extra_args
        self.process: ForkedProcess | None = None

    def use_port(self, port: int) -> None:
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.env = {**os.environ, **self.given_env, f"{self.package.upper()}_PORT": str(port)}
        if not self.port_env:
            del self.env[f"{self.package.upper()}_PORT"]
        self.log_path = self.log_dir / f"{self.package}-{port}.log"

    def start(self, wait: float = 60.0) -> ComponentProcess:
        for attempt in range(3):
            uvicorn_cli = ["uvicorn", f"{self.package}.app:app", "--host", "127.0.0.1", "--port", str(self.port)]
            target = [self.package] if self.launcher == "module" else uvicorn_cli
            self.process = popen_python(["-m", *target, *self.extra_args], env=self.env, stdout=self.log_path)
            try:
                self.wait_until_healthy(wait)
                return self
            except RuntimeError:
                # Another process took the drawn port between the draw and the bind: draw again.
                if not (self.port_drawn and attempt < 2 and "address already in use" in self.log.lower()):
                    raise
                self.use_port(free_port(8000, 9999))
        raise AssertionError("unreachable")

    def wait_until_healthy(self, wait: float) -> None:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"component exited with {self.process.returncode}:\n{self.log}")
            try:
                if httpx.get(f"{self.base_url}/health", timeout=1.0).status_code in (200, 503):
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"component not healthy after {wait}s:\n{self.log}")

    def stop(self, sig: int = signal.SIGTERM, wait: float = 20.0) -> int:
        """Send `sig` and wait; returns the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.wait(wait)

    def wait(self, timeout: float = 20.0) -> int:
        """Wait for the process to exit by itself (killed after `timeout`); returns the exit code."""
        assert self.process is not None
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
        return self.process.wait()

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> ComponentProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
