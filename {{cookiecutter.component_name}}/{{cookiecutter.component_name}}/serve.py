"""Serve the app under uvicorn: bounded connections, a drain period before shutdown.

Limits (all settings, see the README): at most `<NAME>_LIMIT_CONCURRENCY`
connections and requests at once (more get 503), idle keep-alive connections
close after `<NAME>_TIMEOUT_KEEP_ALIVE` seconds, and a request's line and
headers must arrive within `<NAME>_HEADER_TIMEOUT` seconds and fit
`<NAME>_MAX_HEADER_BYTES` / `<NAME>_MAX_HEADER_COUNT` /
`<NAME>_MAX_REQUEST_LINE_BYTES` (else 431). uvicorn caps headers only for its
h11 parser and times out no connection that never finishes its headers, so
the HTTP protocol classes here add both, for h11 and httptools alike. They
build on uvicorn's protocol classes (not a public API): the uvicorn version
range is pinned in `pyproject.toml` and `tests/test_http_limits.py` checks
each parser.

On the first SIGTERM/SIGINT `/ready` turns 503 at once, while uvicorn keeps
serving for `<NAME>_SHUTDOWN_DRAIN` seconds, so load balancers and Hermes'
peers stop sending traffic before the listening socket closes. A second
signal stops at once.
"""

from __future__ import annotations

import asyncio
import functools
import json
import signal
import threading
from types import FrameType
from typing import Any, NamedTuple

import uvicorn

from .app import create_app
from .lifecycle import Lifecycle
from .settings import Settings

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools not installed: h11 only
    HttpToolsProtocol = None  # type: ignore[assignment,misc]


class HeadLimits(NamedTuple):  # an immutable record; a tuple is cheaper to define at import than a dataclass
    """What a request's line and headers may cost before the app sees them."""

    max_bytes: int = 16 * 1024
    max_count: int = 100
    max_request_line: int = 8 * 1024
    timeout: float = 10.0

    @classmethod
    def from_settings(cls, settings: Settings) -> HeadLimits:
        return cls(
            settings.max_header_bytes,
            settings.max_header_count,
            settings.max_request_line_bytes,
            settings.header_timeout,
        )


def _refusal(status: int, reason: str, message: str) -> bytes:
    body = json.dumps({"error": reason.lower().replace(" ", "_"), "message": message, "request_id": None}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class HeadGuard:
    """Mixed into a uvicorn HTTP protocol: bounds each request's head (line + headers) in size,
    count and time, before the parser sees it.

    A head over the limits is answered 431 and the connection closed; one not
    complete within the timeout (a client that connects and sends nothing, or
    sends its headers slowly) is answered 408 and closed. Between requests on a
    kept-alive connection, uvicorn's keep-alive timeout applies.
    """

    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        config = kwargs.get("config", args[0] if args else None)
        self.head_limits: HeadLimits = getattr(config, "head_limits", HeadLimits())
        self._head = bytearray()
        self._awaiting_head = True
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._arm_head_timer()  # a client that connects and says nothing is timed from here

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)  # type: ignore[misc]

    def data_received(self, data: bytes) -> None:
        if self._awaiting_head and not self._check_head(data):
            return
        super().data_received(data)  # type: ignore[misc]

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        self._awaiting_head = True  # the next request on this connection; uvicorn times the idle wait
        self._head.clear()

    def _check_head(self, data: bytes) -> bool:
        """False when the connection was refused.

        The usual request brings its whole head in one piece: it is checked in
        place, without a copy or a timer. Only a head that arrives in pieces is
        kept (up to the limit) and timed.
        """
        limits = self.head_limits
        if self._head:
            self._head += data[: limits.max_bytes + 4 - len(self._head)]
        buffer = self._head or data
        end = buffer.find(b"\r\n\r\n", 0, limits.max_bytes + 4)
        head_length = len(buffer) if end < 0 else end
        line_end = buffer.find(b"\r\n", 0, head_length)
        if (head_length if line_end < 0 else line_end) > limits.max_request_line:
            return self._refuse(431, f"the request line is over {limits.max_request_line} bytes")
        if end < 0:
            if len(buffer) > limits.max_bytes:
                return self._refuse(431, f"the request headers are over {limits.max_bytes} bytes")
            if buffer is data:
                self._head += data
            if self._head_timer is None:
                self._arm_head_timer()
            return True
        if buffer.count(b"\r\n", 0, end) > limits.max_count:
            return self._refuse(431, f"the request has over {limits.max_count} headers")
        self._awaiting_head = False
        self._head.clear()
        self._disarm_head_timer()
        return True

    def _refuse(self, status: int, message: str) -> bool:
        reason = "Request Header Fields Too Large" if status == 431 else "Request Timeout"
        self._disarm_head_timer()
        if not self.transport.is_closing():
            self.transport.write(_refusal(status, reason, message))
            self.transport.close()
        return False

    def _arm_head_timer(self) -> None:
        self._disarm_head_timer()
        self._head_timer = self.loop.call_later(self.head_limits.timeout, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._awaiting_head:
            self._refuse(408, f"the request headers did not arrive within {self.head_limits.timeout:g}s")


@functools.cache
def guarded_h11() -> type[asyncio.Protocol]:
    """uvicorn's h11 parser with the same guard; imported on first use (httptools serves by default)."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class GuardedH11Protocol(HeadGuard, H11Protocol):
        pass

    return GuardedH11Protocol


if HttpToolsProtocol is not None:

    class GuardedHttpToolsProtocol(HeadGuard, HttpToolsProtocol):
        pass

    HttpProtocol: type[asyncio.Protocol] = GuardedHttpToolsProtocol
else:  # pragma: no cover - httptools ships with uvicorn[standard]
    HttpProtocol = guarded_h11()


class GuardedConfig(uvicorn.Config):
    """A uvicorn config carrying the head limits the protocol classes read."""

    def __init__(self, app: Any, head_limits: HeadLimits, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.head_limits = head_limits


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


# uvicorn's own code for "the app did not start" (its CLI exits with it too).
STARTUP_FAILED = 3


def server_config(settings: Settings, app: Any, http: type[asyncio.Protocol] | None = None) -> GuardedConfig:
    limits = HeadLimits.from_settings(settings)
    return GuardedConfig(
        app,
        head_limits=limits,
        host=settings.bind_host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,  # the component logs each request once, as JSON (api/middleware.py)
        http=http or HttpProtocol,
        limit_concurrency=settings.limit_concurrency,
        timeout_keep_alive=settings.timeout_keep_alive,
        h11_max_incomplete_event_size=limits.max_bytes,
        timeout_graceful_shutdown=10,
    )


def ready_server(settings: Settings) -> DrainingServer:
    """The app, built, in a server ready to run."""
    app = create_app(settings)
    return DrainingServer(server_config(settings, app), app.state.lifecycle, settings.shutdown_drain)


def run(server: DrainingServer) -> int:
    """Run until stopped; the exit code a shell expects."""
    try:
        server.run()
    except KeyboardInterrupt:
        # uvicorn shut down cleanly, then re-raised Ctrl-C: exit as shells expect, without a trace.
        return 128 + signal.SIGINT
    return 0 if server.started else STARTUP_FAILED
