"""Every dependency a route can ask for, in one place.

A route says what it needs in its signature (`service: ServiceDep`); the
objects themselves are made by the app's lifespan, and only this module
knows where they are kept. The functions take an `HTTPConnection`, so they
serve WebSocket routes too, and are `async def` on purpose: FastAPI runs
plain `def` dependencies in a thread pool, which would cost most of a cheap
route's time.

FastAPI solves each `Depends` again on every request, about 35 us here (a
sixth of a small request's server time). A route on the hot path takes the
`request` and reads the same objects with `service_of(request)` and
`settings_of(request)`, as the routes in `v1.py` do.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from ..client import Peers
from ..events.backend import EventBus
from ..lifecycle import Lifecycle
from ..service import Service
from ..settings import Settings


def service_of(connection: HTTPConnection) -> Service:
    """`ServiceDep` without the dependency solving, for hot routes."""
    service: Service = connection.app.state.service
    return service


def settings_of(connection: HTTPConnection) -> Settings:
    """`SettingsDep` without the dependency solving, for hot routes."""
    settings: Settings = connection.app.state.settings
    return settings


async def get_settings(connection: HTTPConnection) -> Settings:
    return settings_of(connection)


async def get_lifecycle(connection: HTTPConnection) -> Lifecycle:
    lifecycle: Lifecycle = connection.app.state.lifecycle
    return lifecycle


async def get_service(connection: HTTPConnection) -> Service:
    return service_of(connection)


async def get_bus(connection: HTTPConnection) -> EventBus:
    """The bus, for the event plane's own routes; business code publishes through the service."""
    bus: EventBus = connection.app.state.bus
    return bus


async def get_publisher(connection: HTTPConnection) -> EventBus:
    """The one gate in front of publishing over HTTP: guard it here (auth, rate limits)."""
    return await get_bus(connection)


async def get_peers(connection: HTTPConnection) -> Peers:
    peers: Peers = connection.app.state.peers
    return peers


SettingsDep = Annotated[Settings, Depends(get_settings)]
LifecycleDep = Annotated[Lifecycle, Depends(get_lifecycle)]
ServiceDep = Annotated[Service, Depends(get_service)]
BusDep = Annotated[EventBus, Depends(get_bus)]
PublisherDep = Annotated[EventBus, Depends(get_publisher)]
PeersDep = Annotated[Peers, Depends(get_peers)]
