"""Run an ASGI app, or the component as a real process, on a free loopback port."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Literal

import httpx
import uvicorn
from starlette.types import ASGIApp


def free_port(low: int | None = None, high: int | None = None) -> int:
    """A free loopback port; within `low`-`high` when given (component ports are 8000-9999)."""
    if low is None or high is None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
            return port
    for candidate in random.sample(range(low, high + 1), k=min(200, high - low + 1)):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return candidate
    raise RuntimeError(f"no free port in {low}-{high}")


@contextmanager
def running_server(app: ASGIApp, port: int | None = None, startup_timeout: float = 10.0) -> Iterator[str]:
    """Serve `app` with uvicorn in a background thread; yields its base URL.

    The lifespan runs for real, so startup and shutdown code is exercised.
    """
    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"server on port {port} did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


class ComponentProcess:
    """The component as a separate process: under uvicorn's CLI (`python -m uvicorn
    <package>.app:app`), or with `launcher="module"` its own `python -m <package>`.

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
    ) -> None:
        self.launcher = launcher
        self.package = package
        self.port = port or free_port(8000, 9999)
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **(env or {}), f"{package.upper()}_PORT": str(self.port)}
        self.log_path = (log_dir or Path.cwd()) / f"{package}-{self.port}.log"
        self.extra_args = extra_args
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, wait: float = 20.0) -> ComponentProcess:
        uvicorn_cli = ["uvicorn", f"{self.package}.app:app", "--host", "127.0.0.1", "--port", str(self.port)]
        target = [self.package] if self.launcher == "module" else uvicorn_cli
        command = [sys.executable, "-m", *target, *self.extra_args]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.wait_until_healthy(wait)
        return self

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
            self.process.wait()
        return self.process.returncode

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> ComponentProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
