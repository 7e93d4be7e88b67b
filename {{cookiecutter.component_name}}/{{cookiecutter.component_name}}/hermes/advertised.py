"""Advertise the port actually served, not the one configured.

`uvicorn <package>.app:app --port 8125` serves 8125 while the settings say
`<NAME>_PORT` (or its default): registering that would send every peer to
the wrong port. uvicorn tells the app nothing about its sockets, but its
command line is in `sys.argv` (its worker processes inherit it), so we read
it with uvicorn's own parser: `--port`, `--port=`, `UVICORN_PORT`, and its
default. Launched any other way (`python -m <package>`, gunicorn, a script),
the settings' port is the one served or the only one known.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from uvicorn.main import main as uvicorn_command

from ..settings import Settings, env_name


def run_by_uvicorn_cli(argv: Sequence[str]) -> bool:
    """`uvicorn ...` (the script) or `python -m uvicorn ...`."""
    if not argv:
        return False
    program = Path(argv[0])
    return program.name == "uvicorn" or (program.name == "__main__.py" and program.parent.name == "uvicorn")


def served_port(argv: Sequence[str] | None = None) -> int | None:
    """The TCP port uvicorn's command line serves; None when not run by it, or when it serves
    a file descriptor, a Unix socket, or a random port (0)."""
    argv = list(sys.argv if argv is None else argv)
    if not run_by_uvicorn_cli(argv):
        return None
    try:
        # resilient_parsing: no --help or --version output, no exit on a bad option.
        params = uvicorn_command.make_context("uvicorn", argv[1:], resilient_parsing=True).params
    except Exception:  # uvicorn itself reports a bad command line
        return None
    port = params.get("port")
    if params.get("fd") is not None or params.get("uds") or not isinstance(port, int) or port <= 0:
        return None
    return port


def with_served_port(settings: Settings, logger: logging.Logger, argv: Sequence[str] | None = None) -> Settings:
    """`settings` with the served port when uvicorn's command line names another."""
    port = served_port(argv)
    if port is None or port == settings.port:
        return settings
    if "port" in settings.model_fields_set:
        logger.warning(
            f"{env_name('port')}={settings.port} but uvicorn serves port {port}: registering {port}. "
            f"Set {env_name('port')}={port}, or start with `--port {settings.port}`, to make them agree."
        )
    else:
        logger.info(f"serving port {port} (uvicorn --port); {env_name('port')} is not set")
    return settings.model_copy(update={"port": port})
