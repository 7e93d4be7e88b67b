"""What every log line and outgoing call carries: the request id, the trace
context, structured JSON logs. Free of the server stack, so the client
package can use it; the HTTP metrics are set up in `api/metrics.py`."""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import sys
import time
import weakref
from contextvars import ContextVar
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii as _quoted  # a JSON string, as `json.dumps` writes it
from typing import Any

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
# The caller's W3C `traceparent`, continued by the client package on outgoing calls.
traceparent_var: ContextVar[str | None] = ContextVar("traceparent", default=None)

_STANDARD_ATTRS = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

# Cheap buckets: a handful is enough to see a latency shift.
LATENCY_BUCKETS = (0.005, 0.025, 0.1, 0.5, 2.5, 10.0)


_SECOND: list[Any] = [None, ""]  # (whole second, its ISO prefix): formatted once per second, not per line


def _timestamp(created: float) -> str:
    """`created` as ISO 8601 UTC with milliseconds, e.g. `2026-01-31T12:00:00.123+00:00`."""
    second = int(created)
    if _SECOND[0] != second:
        _SECOND[:] = [second, datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")]
    return f"{_SECOND[1]}.{int((created - second) * 1000):03d}+00:00"


class JsonFormatter(logging.Formatter):
    """One JSON object per line; `extra=` fields become keys."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class JsonStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler `configure_logging` installs; the access log writes to it directly."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self.setFormatter(JsonFormatter())


_ACCESS_LOGS: weakref.WeakSet[AccessLog] = weakref.WeakSet()


@atexit.register
def _flush_access_logs() -> None:
    """Lines of the loop's last turn, if the loop stopped before writing them."""
    for access_log in list(_ACCESS_LOGS):
        access_log.flush()


# The line `json.dumps` makes of the access entry, key for key, filled in without building a dict.
_ACCESS_LINE = (
    '{"time": "%s", "level": "info", "logger": %s, "message": "request", "request_id": %s, '
    '"method": %s, "path": %s, "status": %d, "duration_ms": %r}'
)


class AccessLog:
    """One JSON line per HTTP request, in the same shape as every other log line.

    A request's line is the hottest log call there is: building a `LogRecord`
    and formatting it generically costs several times what the line itself
    does. While the logger still has only the handler `configure_logging` gave
    it, the line is built directly, and the lines of the requests that finish
    in one turn of the event loop are written together, right after it (one
    write instead of one per request). Once an application reconfigures that
    logger, each line goes through `logging` as usual.
    """

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self._pending: list[str] = []
        self._handler: JsonStreamHandler | None = None
        _ACCESS_LOGS.add(self)

    def request(self, method: str, path: str, status: int, duration_ms: float, request_id: str) -> None:
        logger = self.logger
        if not logger.isEnabledFor(logging.INFO):
            return
        handlers = logger.handlers
        handler = handlers[0] if len(handlers) == 1 and not logger.filters else None
        if not isinstance(handler, JsonStreamHandler) or handler.filters or handler.level > logging.INFO:
            logger.info("request", extra={"method": method, "path": path, "status": status, "duration_ms": duration_ms})
            return
        self._pending.append(
            _ACCESS_LINE
            % (
                _timestamp(time.time()),
                _quoted(logger.name),
                _quoted(request_id),
                _quoted(method),
                _quoted(path),
                status,
                duration_ms,
            )
        )
        if len(self._pending) > 1:
            return  # a write is already scheduled for this turn of the loop
        self._handler = handler
        try:
            asyncio.get_running_loop().call_soon(self.flush)
        except RuntimeError:  # no loop (a synchronous caller): write at once
            self.flush()

    def flush(self) -> None:
        handler, lines = self._handler, self._pending
        if handler is None or not lines:
            return
        self._pending = []
        with handler.lock:  # type: ignore[union-attr]
            handler.stream.write("\n".join(lines) + "\n")
            handler.flush()


def configure_logging(level: str, component: str) -> None:
    """JSON logs on stderr for the component's own loggers."""
    logger = logging.getLogger(component)
    logger.handlers[:] = [JsonStreamHandler()]
    logger.setLevel(level.upper())
    logger.propagate = False
