"""The peer the client benchmarks call: a baked default component under uvicorn in its own process.

`baked_component()` bakes the template into a temporary directory and puts
it on `sys.path` (so `my_component.client` imports); `serving(project)`
runs that component as a separate process and yields its base URL.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tooling import DEFAULT_NAME, bake, free_port, wait_for_http

NAME = DEFAULT_NAME


@contextmanager
def baked_component() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        project = bake(Path(tmp))
        sys.path.insert(0, str(project))
        try:
            yield project
        finally:
            sys.path.remove(str(project))


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
        wait_for_http(f"{url}/health", timeout=30, process=process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
