"""A small Tekton on loopback for integration tests (the guide's Pattern 10, without mocks).

`register_peer` puts any running server in the local Hermes under a name, so
the client package finds it by discovery exactly as it would in Tekton. The
scripted peer (`FlakyPeer` in `peers.py`) answers as the test tells it:
status, body, delay, failure.
"""

from __future__ import annotations

from typing import Any

import httpx


def register_peer(hermes_url: str, name: str, base_url: str, **metadata: Any) -> None:
    """Register `base_url` as component `name` with the real Hermes contract."""
    body = {
        "component_id": name,
        "name": name,
        "version": "1.0.0",
        "type": "component",
        "endpoint": base_url,
        "capabilities": [],
        "metadata": metadata,
    }
    response = httpx.post(f"{hermes_url}/api/register", json=body)
    assert response.status_code == 200, response.text
