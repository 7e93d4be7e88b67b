"""Hermes, Tekton's registry: find peers (`HermesClient`) and describe a
registration (`registration_from_guide`, `registration_body`).

Light on purpose: the client package imports it, so nothing here loads the
settings or the server stack. The component's own registration loop lives in
`hermes.registrar` (`Registrar`), imported by the app only.
"""

from .calls import AsyncHermesCalls, HermesCalls
from .discovery import HermesClient
from .instance import ServiceInstance
from .protocol import DiscoveryError, HermesError
from .registration import registration_body, registration_from_guide

__all__ = [
    "AsyncHermesCalls",
    "DiscoveryError",
    "HermesCalls",
    "HermesClient",
    "HermesError",
    "ServiceInstance",
    "registration_body",
    "registration_from_guide",
]
