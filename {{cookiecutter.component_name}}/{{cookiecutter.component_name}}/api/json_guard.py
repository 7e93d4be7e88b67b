"""Is a JSON request body one the component can carry to the end?

Python's `json` accepts `"\\ud800"` (a lone UTF-16 surrogate) and builds a
string that no encoder can write back out: a route would do its work (or
publish an event) and then fail while answering. Such a body, and one that is
not UTF-8, is refused up front with a 400. Malformed JSON is left to FastAPI,
which answers it with a 422 naming the position.
"""

from __future__ import annotations

import json
import re

# Only a body that escapes a code point in the surrogate range needs a closer look.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def json_body_problem(body: bytes) -> str | None:
    """Why `body` must be refused, or None when it may go on."""
    if not body.isascii():  # ASCII is UTF-8: the usual body needs no decoding here
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            return f"request body is not valid UTF-8 (byte {exc.start})"
    if not _SURROGATE_ESCAPE.search(body):
        return None
    try:
        value = json.loads(body.decode("utf-8"))
    except ValueError:
        return None  # malformed: FastAPI's 422 says where
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return "request body holds a lone surrogate escape (\\ud800-\\udfff): not a valid Unicode string"
    return None
