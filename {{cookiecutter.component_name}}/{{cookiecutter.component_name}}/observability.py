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


# Access lines wait at most this long, or until this many are pending, then go out in one write.
ACCESS_FLUSH_SECONDS = 0.05
ACCESS_FLUSH_LINES = 256


class JsonStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler `configure_logging` installs; the access log hands it finished lines to batch.

    A `write` system call per request costs about a tenth of a cheap request's
    time, so access lines are written together, at most `ACCESS_FLUSH_SECONDS`
    after the first of them. Any other record first writes the pending lines,
    so the log stays in order; lines still pending at exit are written then.
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self.setFormatter(JsonFormatter())
        self._pending: list[str] = []
        _HANDLERS.add(self)

    def write_line(self, line: str) -> None:
        pending = self._pending
        pending.append(line)
        if len(pending) >= ACCESS_FLUSH_LINES:
            self.write_pending()
        elif len(pending) == 1:
            try:
                asyncio.get_running_loop().call_later(ACCESS_FLUSH_SECONDS, self.write_pending)
            except RuntimeError:  # no loop (a synchronous caller): write at once
                self.write_pending()

    def write_pending(self) -> None:
        lines = self._pending
        if not lines:
            return
        self._pending = []
        with self.lock:  # type: ignore[union-attr]
            self.stream.write("\n".join(lines) + "\n")
            self.flush()

    def emit(self, record: logging.LogRecord) -> None:
        self.write_pending()
        super().emit(record)


_HANDLERS: weakref.WeakSet[JsonStreamHandler] = weakref.WeakSet()


@atexit.register
def _write_pending_lines() -> None:
    """Lines not yet written when the process stops."""
    for handler in list(_HANDLERS):
        handler.write_pending()


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
    it, the line is built directly and handed to that handler, which batches
    the writes. Once an application reconfigures that logger, each line goes
    through `logging` as usual.
    """

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger

    def request(self, method: str, path: str, status: int, duration_ms: float, request_id: str) -> None:
        logger = self.logger
        if not logger.isEnabledFor(logging.INFO):
            return
        handlers = logger.handlers
        handler = handlers[0] if len(handlers) == 1 and not logger.filters else None
        if not isinstance(handler, JsonStreamHandler) or handler.filters or handler.level > logging.INFO:
            logger.info("request", extra={"method": method, "path": path, "status": status, "duration_ms": duration_ms})
            return
        handler.write_line(
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


def configure_logging(level: str, component: str) -> None:
    """JSON logs on stderr for the component's own loggers."""
    logger = logging.getLogger(component)
    logger.handlers[:] = [JsonStreamHandler()]
    logger.setLevel(level.upper())
    logger.propagate = False
