"""Your component's business logic, free of HTTP: replace the sample with yours.

The app builds one `Service` when it starts and hands it what business code
needs: the settings, the event bus (`await self.bus.publish(...)`) and the
peers (`await self.peers.call("rhetor", ...)`). Routes in `api/v1.py` call
it; so could a queue consumer or a CLI. A method marked `@action` is also a
workflow step (`api/actions.py`). The README's recipes start here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .actions import action
from .client import Peers
from .events.backend import EventBus
from .settings import Settings


class ProcessingError(Exception):
    """An input this component cannot process; `code` is machine-readable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Service:
    settings: Settings
    bus: EventBus
    peers: Peers

    @action  # also callable by other components and workflow steps: POST /api/actions/process
    async def process(self, data: Any) -> dict[str, Any]:
        """The sample: describes the JSON it is given. Empty input is an error."""
        if data is None or data == "" or data == [] or data == {}:
            raise ProcessingError("empty_input", "input is empty: send a non-empty JSON value")
        encoded = json.dumps(data, separators=(",", ":"), sort_keys=True)
        return {
            "processed_by": self.settings.component_name,
            "kind": type(data).__name__,
            "size": len(encoded),
            "echo": data,
        }
