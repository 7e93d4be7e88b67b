"""No log line shows a query-string token: uvicorn's access log and its WebSocket
`[accepted]` lines print the path with its query, so those records are rewritten."""

from __future__ import annotations

import logging
import re

_TOKEN = re.compile(r"(access_token=)[^&\s\"']*")
# uvicorn's loggers; a filter on a logger sees only the records logged to that logger itself.
LOGGERS = ("uvicorn.access", "uvicorn.error", "uvicorn")


def redact(text: str) -> str:
    return _TOKEN.sub(r"\1[redacted]", text)


class QueryTokenFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and any(isinstance(arg, str) and "access_token=" in arg for arg in args):
            record.args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in args)
        if isinstance(record.msg, str) and "access_token=" in record.msg:
            record.msg = redact(record.msg)
        return True


_FILTER = QueryTokenFilter()


def install_query_token_filter() -> None:
    """Idempotent; called at startup, after uvicorn has configured its loggers."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
