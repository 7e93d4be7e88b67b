"""`create_app(settings)` builds the app; its lifespan owns every long-lived resource.

`uvicorn <package>.app:app` serves the module-level `app`, built from the
environment. Startup opens, in order: the outgoing connection pools, the
event bus, the peers and the service (your business logic, handed the bus
and the peers), then registration with Hermes. Shutdown runs in reverse,
after `/ready` has turned 503: unregister from Hermes, stop the bus, end
streams, close clients.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from .about import COMPONENT_TITLE, DESCRIPTION, VERSION
from .api import asyncapi, discovery, health, live_figures, publish, sse, v1, ws
from .api.errors import install_error_handlers
from .api.metrics import instrument
from .api.middleware import BodySizeLimitMiddleware, RequestContextMiddleware
from .client import Peers, close_pools
from .events import COMPONENT_REGISTERED, COMPONENT_STARTED, COMPONENT_STOPPING
from .events.bus import announce, open_bus, refuse_memory_bus_with_workers, worker_count
from .hermes import HermesClient
from .hermes.registrar import Registrar
from .lifecycle import Lifecycle
from .observability import configure_logging
from .service import Service
from .settings import Settings, env_name, load_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    logger = logging.getLogger(settings.component_name)
    configure_logging(settings.log_level, settings.component_name)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        lifecycle: Lifecycle = app.state.lifecycle
        async with lifecycle.resources as resources:
            # Enter resources in dependency order; the stack closes them in
            # reverse, after `/ready` has turned 503.
            refuse_memory_bus_with_workers(settings, worker_count())
            # Outgoing HTTP pools (client package) close last, after Hermes is told we left.
            resources.push_async_callback(close_pools)
            # The bus outlives the registrar: it stops after Hermes is told we left.
            bus = await resources.enter_async_context(open_bus(settings))
            lifecycle.add_probe("event_bus", bus.probe)
            peers = Peers(discovery=HermesClient(settings.hermes_base_url, timeout=settings.hermes_timeout))
            resources.push_async_callback(peers.aclose)
            app.state.bus, app.state.peers = bus, peers
            app.state.service = Service(settings, bus, peers)

            async def on_registered(info: dict[str, Any]) -> None:
                await announce(bus, COMPONENT_REGISTERED, info, logger)

            endpoints = [endpoint.model_dump() for endpoint in discovery.list_endpoints(app.openapi())]
            registrar = Registrar(settings, endpoints=endpoints, on_registered=on_registered)
            lifecycle.add_probe("hermes", registrar.report)
            await resources.enter_async_context(registrar)  # registers in the background
            if settings.hermes_enabled and settings.hermes_required:
                await registrar.require(settings.hermes_required_timeout)
            logger.info("started", extra={"port": settings.port, "url": settings.base_url})
            identity = {"component": settings.component_name, "version": VERSION, "instance": bus.instance}
            await announce(bus, COMPONENT_STARTED, {**identity, "url": settings.base_url}, logger)
            try:
                yield
            finally:
                lifecycle.begin_shutdown()
                logger.info("stopping")
                await announce(bus, COMPONENT_STOPPING, identity, logger)
        logger.info("stopped")

    app = FastAPI(
        title=COMPONENT_TITLE,
        description=DESCRIPTION,
        version=VERSION,
        docs_url="/api/v1/docs",
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.lifecycle = Lifecycle()
    for module in (health, discovery, v1, publish, live_figures, asyncapi, sse, ws):
        app.include_router(module.router)
    install_error_handlers(app)
    instrument(app)
    # Added last = outermost: the request id exists before anything else runs.
    app.add_middleware(
        BodySizeLimitMiddleware, max_body_bytes=settings.max_body_bytes, setting=env_name("max_body_bytes")
    )
    app.add_middleware(RequestContextMiddleware, logger=logger, access_log=settings.access_log)
    return app


def __getattr__(name: str) -> FastAPI:
    # `app` is built on first access, so importing this module (tests, tools)
    # never reads the environment or fails on bad settings.
    if name == "app":
        return create_app()
    raise AttributeError(name)
