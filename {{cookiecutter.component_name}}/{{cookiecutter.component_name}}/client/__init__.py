"""Call other Tekton components with the guide's integration patterns.

Every pattern shares one pooled HTTP client per event loop (closed by the
app's lifespan through `close_pools()`), Hermes discovery, one circuit
breaker per peer, retries, timeouts, metrics and request-id propagation.
"""

from ._batch import BatchIntegration, ItemResult
from ._breaker import CircuitBreaker, CircuitState
from ._component import ComponentClient
from ._config import IntegrationConfig, IntegrationConfigError
from ._errors import (
    BatchClosedError,
    CircuitOpenError,
    IntegrationError,
    PeerHTTPError,
    PeerTimeoutError,
    PeerUnavailableError,
    error_dict,
)
from ._health import HealthMonitor
from ._observable import ObservableIntegration
from ._own import BatchReport
from ._own import OwnClient as {{ cookiecutter.component_name.replace('_', ' ').title().replace(' ', '') }}Client
from ._peers import Peers
from ._pool import close_pools
from ._resilient import ResilientIntegration
from ._robust import RobustIntegration
from ._stream import StreamIntegration
from ._subscriber import EventIntegration
from ._sync import SyncIntegration
from ._telemetry import DURATION as integration_duration
from ._telemetry import REQUESTS as integration_requests
from ._versioned import VersionedIntegration

__all__ = [
    "BatchClosedError",
    "BatchIntegration",
    "BatchReport",
    "CircuitBreaker",
    "CircuitOpenError",
    "CircuitState",
    "ComponentClient",
    "EventIntegration",
    "HealthMonitor",
    "IntegrationConfig",
    "IntegrationConfigError",
    "IntegrationError",
    "ItemResult",
    "ObservableIntegration",
    "PeerHTTPError",
    "PeerTimeoutError",
    "PeerUnavailableError",
    "Peers",
    "ResilientIntegration",
    "RobustIntegration",
    "StreamIntegration",
    "SyncIntegration",
    "VersionedIntegration",
    "close_pools",
    "error_dict",
    "integration_duration",
    "integration_requests",
]
# Named after the component, so kept apart: the list above stays sorted for any name.
__all__ += ["{{ cookiecutter.component_name.replace('_', ' ').title().replace(' ', '') }}Client"]
