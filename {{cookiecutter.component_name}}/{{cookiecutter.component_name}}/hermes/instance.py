"""`ServiceInstance`: one reachable instance of a component, read from a Hermes record."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import protocol


@dataclass(frozen=True)
class ServiceInstance:
    """One reachable instance of a component."""

    name: str
    component_id: str
    host: str
    port: int
    base_url: str
    metadata: Mapping[str, Any] = field(default_factory=dict, compare=False)
    capabilities: tuple[str, ...] = ()

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> ServiceInstance:
        """From a Hermes record (either key casing); the address comes from `endpoint`,
        because Hermes keeps `port` poorly."""
        metadata = protocol.field(record, "metadata") or {}
        name = str(protocol.field(record, "name") or "")
        endpoint = protocol.field(record, "endpoint")
        if not endpoint:
            port = protocol.field(record, "port") or metadata.get("port")
            if not port:
                raise ValueError(f"component {name!r} has no endpoint")
            endpoint = f"http://{metadata.get('host', 'localhost')}:{port}"
        host, port, base_url = protocol.split_endpoint(str(endpoint))
        return cls(
            name=name,
            component_id=str(protocol.field(record, "component_id") or protocol.field(record, "id") or name),
            host=host,
            port=port,
            base_url=base_url,
            metadata=dict(metadata),
            capabilities=tuple(protocol.field(record, "capabilities") or ()),
        )

    @classmethod
    def static(cls, name: str, host: str, port: int) -> ServiceInstance:
        """An address from the environment, not from Hermes (`metadata["source"]` says so)."""
        return cls(name, name, host, port, f"http://{host}:{port}", {"source": "static"})

    def describe(self) -> dict[str, Any]:
        """The guide's shape: `info["host"]`, `info["port"]`, plus the rest Hermes knows."""
        return {
            "name": self.name,
            "component_id": self.component_id,
            "host": self.host,
            "port": self.port,
            "base_url": self.base_url,
            "endpoint": self.base_url,
            "health_check": self.metadata.get("health_check", "/health"),
            "capabilities": list(self.capabilities),
            "metadata": dict(self.metadata),
        }
