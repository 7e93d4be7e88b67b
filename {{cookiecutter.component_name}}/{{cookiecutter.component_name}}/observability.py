"""What every log line and outgoing call carries: the request id, the trace
context, structured JSON logs. Free of the server stack, so the client
package can use it; the HTTP metrics are set up in `api/metrics.py`."""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
# The caller's W3C `traceparent`, continued by the client package on outgoing calls.
traceparent_var: ContextVar[str | None] = ContextVar("traceparent", default=None)

_STANDARD_ATTRS = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

# Cheap buckets: a handful is enough to see a latency shift.
LATENCY_BUCKETS = (0.005, 0.025, 0.1, 0.5, 2.5, 10.0)


class JsonFormatter(logging.Formatter):
    """One JSON object per line; `extra=` fields become keys."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
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


def configure_logging(level: str, component: str) -> None:
    """JSON logs on stderr for the component's own loggers."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(component)
    logger.handlers[:] = [handler]
    logger.setLevel(level.upper())
    logger.propagate = False
