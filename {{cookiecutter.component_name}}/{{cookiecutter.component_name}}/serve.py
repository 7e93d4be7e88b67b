"""Serve the app under uvicorn, with a drain period before shutdown.

On the first SIGTERM/SIGINT `/ready` turns 503 at once, while uvicorn keeps
serving for `<NAME>_SHUTDOWN_DRAIN` seconds, so load balancers and Hermes'
peers stop sending traffic before the listening socket closes. A second
signal stops at once.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

import uvicorn

from .app import create_app
from .lifecycle import Lifecycle
from .settings import Settings


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, lifecycle: Lifecycle, drain: float) -> None:
        super().__init__(config)
        self.lifecycle = lifecycle
        self.drain = drain
        self._draining = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.lifecycle.begin_shutdown()
        if self.drain <= 0 or self._draining:
            super().handle_exit(sig, frame)
            return
        self._draining = True
        timer = threading.Timer(self.drain, super().handle_exit, (sig, frame))
        timer.daemon = True
        timer.start()


def serve(settings: Settings) -> int:
    """Run until stopped; the exit code a shell expects."""
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.bind_host,
        port=settings.port,
        log_level=settings.log_level,
        timeout_graceful_shutdown=10,
    )
    try:
        DrainingServer(config, app.state.lifecycle, settings.shutdown_drain).run()
    except KeyboardInterrupt:
        # uvicorn shut down cleanly, then re-raised Ctrl-C: exit as shells expect, without a trace.
        return 128 + signal.SIGINT
    return 0
