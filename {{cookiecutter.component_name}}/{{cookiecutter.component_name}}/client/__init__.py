"""Call other Tekton components with the guide's integration patterns.

Every pattern shares one pooled HTTP client per event loop (closed by the
app's lifespan through `close_pools()`), Hermes discovery, one circuit
breaker per peer, retries, timeouts, metrics and request-id propagation.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._batch import BatchIntegration, ItemResult
    from ._breaker import CircuitBreaker, CircuitState
    from ._component import ComponentClient
    from ._config import IntegrationConfig, IntegrationConfigError
    from ._engram import EngramClient
    from ._errors import (
        AtomicUpdateUnsupportedError,
        BatchClosedError,
        CircuitOpenError,
        IntegrationError,
        PeerHTTPError,
        PeerTimeoutError,
        PeerUnavailableError,
        StateConflictError,
        WorkflowError,
        error_dict,
    )
    from ._harmonia import HarmoniaClient
    from ._health import HealthMonitor
    from ._local_engine import LocalWorkflowEngine
    from ._observable import ObservableIntegration
    from ._own import BatchReport
    from ._own import OwnClient as {{ cookiecutter.component_name.replace('_', ' ').title().replace(' ', '') }}Client
    from ._peers import Peers
    from ._pool import close_pools
    from ._resilient import ResilientIntegration
    from ._robust import RobustIntegration
    from ._secure import SecureIntegration
    from ._signing import ResponseSignatureError
    from ._state import SharedStateIntegration
    from ._state_entry import StateBackend
    from ._stream import StreamIntegration
    from ._subscriber import EventIntegration
    from ._sync import SyncIntegration
    from ._telemetry import DURATION as integration_duration
    from ._telemetry import REQUESTS as integration_requests
    from ._versioned import VersionedIntegration
    from ._workflow import WorkflowEngine, WorkflowIntegration

# Each name loads its module on first use (`__getattr__` below), so `import <pkg>.client`
# costs almost nothing and a caller pays only for the patterns it uses: websockets,
# httpx-sse, prometheus_client, PyJWT and redis arrive with the pattern that needs them.
_LAZY: dict[str, tuple[str, str]] = {
    "BatchIntegration": ("._batch", "BatchIntegration"),
    "ItemResult": ("._batch", "ItemResult"),
    "CircuitBreaker": ("._breaker", "CircuitBreaker"),
    "CircuitState": ("._breaker", "CircuitState"),
    "ComponentClient": ("._component", "ComponentClient"),
    "IntegrationConfig": ("._config", "IntegrationConfig"),
    "IntegrationConfigError": ("._config", "IntegrationConfigError"),
    "EngramClient": ("._engram", "EngramClient"),
    "AtomicUpdateUnsupportedError": ("._errors", "AtomicUpdateUnsupportedError"),
    "BatchClosedError": ("._errors", "BatchClosedError"),
    "CircuitOpenError": ("._errors", "CircuitOpenError"),
    "IntegrationError": ("._errors", "IntegrationError"),
    "PeerHTTPError": ("._errors", "PeerHTTPError"),
    "PeerTimeoutError": ("._errors", "PeerTimeoutError"),
    "PeerUnavailableError": ("._errors", "PeerUnavailableError"),
    "StateConflictError": ("._errors", "StateConflictError"),
    "WorkflowError": ("._errors", "WorkflowError"),
    "error_dict": ("._errors", "error_dict"),
    "HarmoniaClient": ("._harmonia", "HarmoniaClient"),
    "HealthMonitor": ("._health", "HealthMonitor"),
    "LocalWorkflowEngine": ("._local_engine", "LocalWorkflowEngine"),
    "ObservableIntegration": ("._observable", "ObservableIntegration"),
    "BatchReport": ("._own", "BatchReport"),
    "{{ cookiecutter.component_name.replace('_', ' ').title().replace(' ', '') }}Client": ("._own", "OwnClient"),
    "Peers": ("._peers", "Peers"),
    "close_pools": ("._pool", "close_pools"),
    "ResilientIntegration": ("._resilient", "ResilientIntegration"),
    "RobustIntegration": ("._robust", "RobustIntegration"),
    "SecureIntegration": ("._secure", "SecureIntegration"),
    "ResponseSignatureError": ("._signing", "ResponseSignatureError"),
    "SharedStateIntegration": ("._state", "SharedStateIntegration"),
    "StateBackend": ("._state_entry", "StateBackend"),
    "StreamIntegration": ("._stream", "StreamIntegration"),
    "EventIntegration": ("._subscriber", "EventIntegration"),
    "SyncIntegration": ("._sync", "SyncIntegration"),
    "integration_duration": ("._telemetry", "DURATION"),
    "integration_requests": ("._telemetry", "REQUESTS"),
    "VersionedIntegration": ("._versioned", "VersionedIntegration"),
    "WorkflowEngine": ("._workflow", "WorkflowEngine"),
    "WorkflowIntegration": ("._workflow", "WorkflowIntegration"),
}


def __getattr__(name: str) -> Any:
    try:
        module, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module, __name__), attribute)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = [
    "AtomicUpdateUnsupportedError",
    "BatchClosedError",
    "BatchIntegration",
    "BatchReport",
    "CircuitBreaker",
    "CircuitOpenError",
    "CircuitState",
    "ComponentClient",
    "EngramClient",
    "EventIntegration",
    "HarmoniaClient",
    "HealthMonitor",
    "IntegrationConfig",
    "IntegrationConfigError",
    "IntegrationError",
    "ItemResult",
    "LocalWorkflowEngine",
    "ObservableIntegration",
    "PeerHTTPError",
    "PeerTimeoutError",
    "PeerUnavailableError",
    "Peers",
    "ResilientIntegration",
    "ResponseSignatureError",
    "RobustIntegration",
    "SecureIntegration",
    "SharedStateIntegration",
    "StateBackend",
    "StateConflictError",
    "StreamIntegration",
    "SyncIntegration",
    "VersionedIntegration",
    "WorkflowEngine",
    "WorkflowError",
    "WorkflowIntegration",
    "close_pools",
    "error_dict",
    "integration_duration",
    "integration_requests",
]
# Named after the component, so kept apart: the list above stays sorted for any name.
__all__ += ["{{ cookiecutter.component_name.replace('_', ' ').title().replace(' ', '') }}Client"]
