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
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI

from .about import COMPONENT_TITLE, DESCRIPTION, VERSION
from .api import actions, asyncapi, discovery, health, live_figures, publish, sse, v1, ws
from .api.auth import AuthGate
from .api.errors import install_error_handlers
from .api.health import HealthReporter
from .api.metrics import instrument
from .api.middleware import RequestMiddleware, quiet_refusals
from .api.openapi_errors import document_errors
from .api.route_order import serving_order
from .client import Peers
from .events import COMPONENT_REGISTERED, COMPONENT_STARTED, COMPONENT_STOPPING
from .events.bus import announce, open_bus, refuse_memory_bus_with_workers, worker_count
from .hermes import HermesClient
from .hermes.advertised import with_served_port
from .hermes.registrar import HermesRequiredError, Registrar
from .lifecycle import Lifecycle, StartupRefused, refuse_at_exit
from .observability import configure_logging
from .security.paths import ALWAYS_OPEN
from .service import Service
from .settings import Settings, SettingsError, env_name, load_settings

# Startup checks that fail on purpose, with a message naming the fix: shown as
# one line, last, without a traceback, and the process exits non-zero.
STARTUP_REFUSALS = (StartupRefused, SettingsError, HermesRequiredError)


async def close_pools() -> None:
    """The client package's pooled connections and discovery clients, closed, if anything opened them.

    Every one of them is made by a module that imports `client._discovery` first; the pools' module
    loads httpx, which a component that never called out has not loaded and need not load to stop."""
    if f"{__package__}.client._discovery" in sys.modules:
        from .client import close_pools as close

        await close()


def include_flat(app: FastAPI, router: APIRouter) -> None:
    """Add `router`'s routes to the app's own list, as if declared with `@app.get(...)`.

    An `APIRouter` applies its prefix, tags, responses and dependencies to each
    route as it is declared, so its routes stand on their own. `include_router`
    would instead route every request through a nested router, which costs
    about 15-20 us per request (README, "Where a request's time goes").
    """
    if type(router.lifespan_context).__name__ != "_DefaultLifespan" or router.on_startup or router.on_shutdown:
        app.include_router(router)  # a router with its own lifespan needs the full inclusion
        return
    app.router.routes.extend(router.routes)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    # Checked here, not in the lifespan: each `uvicorn --workers N` worker exits at once (see `__getattr__`).
    refuse_memory_bus_with_workers(settings, worker_count())
    logger = logging.getLogger(settings.component_name)
    auth = AuthGate(settings, logger)
    configure_logging(settings.log_level, settings.component_name)
    if settings.access_log:
        # One line per request, ours (JSON, with the request id): silence uvicorn's plain one,
        # which `uvicorn <package>.app:app` would also write (`python -m` turns it off itself).
        logging.getLogger("uvicorn.access").disabled = True
    settings = with_served_port(settings, logger)  # `uvicorn ... --port N`: advertise N

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        lifecycle: Lifecycle = app.state.lifecycle
        async with lifecycle.resources as resources:
            # Enter resources in dependency order; the stack closes them in
            # reverse, after `/ready` has turned 503.
            # Authentication: refuses bad keys (or no keys off loopback) before anything else opens.
            await resources.enter_async_context(auth)
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

            def endpoints() -> list[dict[str, Any]]:
                return [endpoint.model_dump() for endpoint in discovery.list_endpoints(app.openapi())]

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

    @asynccontextmanager
    async def lifespan_refusing_cleanly(app: FastAPI) -> AsyncIterator[None]:
        started = False
        try:
            async with lifespan(app):
                started = True
                yield
        except STARTUP_REFUSALS as exc:
            if started:
                raise
            app.state.lifecycle.refusal = str(exc)
            logger.error("startup refused", extra={"reason": str(exc)})
            refuse_at_exit(str(exc))
            raise

    app = FastAPI(
        title=COMPONENT_TITLE,
        description=DESCRIPTION,
        version=VERSION,
        docs_url="/api/v1/docs",
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
        lifespan=lifespan_refusing_cleanly,
        # `/health/` is a 404, not a redirect: Starlette builds the redirect's URL from the
        # client's `Host` header, so anyone could make the component point elsewhere.
        redirect_slashes=False,
    )
    app.state.settings = settings
    app.state.lifecycle = Lifecycle()
    for module in (health, discovery, v1, actions, publish, live_figures, asyncapi, sse, ws):
        include_flat(app, module.router)
    # Documented in the order declared; served in the order that finds the routes called most soonest.
    documented = list(app.router.routes)
    docs = {url for url in (app.openapi_url, app.docs_url, app.swagger_ui_oauth2_redirect_url) if url}
    hot = [*health.router.routes, *v1.router.routes]
    app.router.routes[:] = serving_order(app.router.routes, hot=hot, last=docs)
    app.state.health = HealthReporter(settings, app.state.lifecycle)
    install_error_handlers(app)
    open_paths = ALWAYS_OPEN | set(settings.auth_open_paths) if settings.auth_keys is not None else None
    document_errors(app, documented, open_paths)
    record_metrics = instrument(app)
    # One layer for request ids, authentication, the body guard, metrics and the access log (see its docstring).
    app.add_middleware(
        RequestMiddleware,
        logger=logger,
        gate=auth,
        max_body_bytes=settings.max_body_bytes,
        body_setting=env_name("max_body_bytes"),
        access_log=settings.access_log,
        record_metrics=record_metrics,
    )
    quiet_refusals(app, app.state.lifecycle)
    return app


def __getattr__(name: str) -> FastAPI:
    # `app` is built on first access, so importing this module (tests, tools)
    # never reads the environment or fails on bad settings.
    if name == "app":
        try:
            return create_app()
        except STARTUP_REFUSALS as exc:
            # Under `uvicorn <package>.app:app`: one line, last, no traceback; uvicorn's "did not start" code.
            refuse_at_exit(str(exc))
            raise SystemExit(3) from None
    raise AttributeError(name)
