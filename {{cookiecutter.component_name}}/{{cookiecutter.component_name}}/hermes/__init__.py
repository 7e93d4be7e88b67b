"""Hermes, Tekton's registry: keep this component registered (`Registrar`)
and find peers (`HermesClient`)."""

from .client import HermesClient, ServiceInstance, registration_from_guide
from .protocol import DiscoveryError, HermesError
from .registrar import HermesRequiredError, Registrar
from .registration import registration_body

__all__ = [
    "DiscoveryError",
    "HermesClient",
    "HermesError",
    "HermesRequiredError",
    "Registrar",
    "ServiceInstance",
    "registration_body",
    "registration_from_guide",
]
