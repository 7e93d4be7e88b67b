"""The router tries the routes called most first, and still answers every request as declared."""

from __future__ import annotations

from starlette.responses import PlainTextResponse
from starlette.routing import BaseRoute, Route

from {{ cookiecutter.component_name }}.api.route_order import serving_order
from {{ cookiecutter.component_name }}.app import create_app

from .conftest import SettingsFactory


async def _endpoint(request: object) -> PlainTextResponse:
    return PlainTextResponse("")


def _paths(routes: list[BaseRoute]) -> list[str]:
    return [f"{getattr(route, 'path', '')} {sorted(getattr(route, 'methods', None) or [])}" for route in routes]


def test_hot_routes_move_ahead_of_routes_no_request_could_match_as_well() -> None:
    discovery = Route("/api/v1/discovery", _endpoint)
    other = Route("/api/other", _endpoint)
    process = Route("/api/v1/process", _endpoint, methods=["POST"])
    assert serving_order([discovery, other, process], hot=[process], last=()) == [process, discovery, other]


def test_a_hot_route_never_moves_ahead_of_a_route_it_could_shadow() -> None:
    discovery = Route("/api/v1/discovery", _endpoint)
    by_name = Route("/api/v1/{name}", _endpoint)  # would answer GET /api/v1/discovery if tried first
    assert serving_order([discovery, by_name], hot=[by_name], last=()) == [discovery, by_name]


def test_routes_no_request_reaches_and_the_docs_go_last() -> None:
    plain = Route("/health", _endpoint, methods=["GET"])
    docs = Route("/docs", _endpoint)
    documented_twin = Route("/health", _endpoint, methods=["GET"])
    process = Route("/api/v1/process", _endpoint, methods=["POST"])
    ordered = serving_order([plain, docs, documented_twin, process], hot=[plain, process], last={"/docs"})
    assert ordered == [plain, process, docs, documented_twin]


def test_the_app_serves_probes_then_its_api_and_documents_in_declared_order(make_settings: SettingsFactory) -> None:
    app = create_app(make_settings())
    served = _paths(app.router.routes)
    assert served[:3] == ["/health ['GET', 'HEAD']", "/ready ['GET', 'HEAD']", "/api/v1/process ['POST']"]
    assert list(app.openapi()["paths"])[:4] == ["/health", "/ready", "/api/v1/discovery", "/api/v1/process"]
    assert _paths(app.router.routes) == served  # building the document leaves the serving order alone
