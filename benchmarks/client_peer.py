"""The peer the client benchmarks call: a baked default component under uvicorn in its own process.

`baked_component()` bakes the template into a temporary directory and puts
it on `sys.path` (so `my_component.client` imports); `serving(project)`
runs that component as a separate process and yields its base URL.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from cookiecutter.main import cookiecutter

ROOT = Path(__file__).resolve().parent.parent
NAME = "my_component"


@contextmanager
def baked_component() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(cookiecutter(str(ROOT), no_input=True, output_dir=tmp))
        sys.path.insert(0, str(project))
        try:
            yield project
        finally:
            sys.path.remove(str(project))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serving(project: Path) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        f"{NAME.upper()}_HERMES_ENABLED": "false",
        f"{NAME.upper()}_ACCESS_LOG": "false",
        f"{NAME.upper()}_LOG_LEVEL": "warning",
        f"{NAME.upper()}_MAX_BATCH_ITEMS": "10000",
    }
    command = [sys.executable, "-m", "uvicorn", f"{NAME}.app:app", "--port", str(port), "--log-level", "warning"]
    process = subprocess.Popen(command, cwd=project, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("the peer component did not start")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
