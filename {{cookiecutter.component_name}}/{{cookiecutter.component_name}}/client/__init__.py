"""Call other Tekton components with the guide's integration patterns.

Every pattern shares one pooled HTTP client per event loop (closed by the
app's lifespan through `close_pools()`), Hermes discovery, one circuit
breaker per peer, retries, timeouts, metrics and request-id propagation.
"""

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
