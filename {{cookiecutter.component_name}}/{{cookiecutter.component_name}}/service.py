"""The component's business logic, free of HTTP: replace `Processor` with yours.

Routes in `api/v1.py` call it; so could a queue consumer or a CLI.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


class ProcessingError(Exception):
    """An input this component cannot process; `code` is machine-readable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Processor:
    """A sample: describes the JSON it is given. Empty input is an error."""

    component: str

    async def process(self, data: Any) -> dict[str, Any]:
        if data is None or data == "" or data == [] or data == {}:
            raise ProcessingError("empty_input", "input is empty: send a non-empty JSON value")
        encoded = json.dumps(data, separators=(",", ":"), sort_keys=True)
        return {
            "processed_by": self.component,
            "kind": type(data).__name__,
            "size": len(encoded),
            "echo": data,
        }
