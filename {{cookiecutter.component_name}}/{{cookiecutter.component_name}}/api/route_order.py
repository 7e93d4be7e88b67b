"""The order the router tries its routes in: the ones called most, first.

Starlette tries each route in turn until one matches, at 1-2 us a route, so a
route's place in the list is part of its cost. Reordering must not change
which route answers a request, so a route only moves past routes it cannot be
confused with:

- the probes' and the API's own routes (`hot`) move up, ahead of every route
  no request could match as well (a route without path parameters, say `/api/v1/discovery`,
  stays ahead of `/api/v1/{name}`);
- a route no request ever reaches, because an earlier route serves the same
  path and methods (the documented twins of the plain `/health` and
  `/ready`), and the docs routes (`last`) move to the end.

The OpenAPI document keeps the declared order (`openapi_errors.document_errors`).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from starlette.routing import BaseRoute, Route, WebSocketRoute


def _static_path(route: BaseRoute) -> str | None:
    """The one path `route` answers, when it has no parameters."""
    if isinstance(route, Route | WebSocketRoute) and not route.param_convertors:
        return route.path
    return None


def _disjoint(first: BaseRoute, second: BaseRoute) -> bool:
    """No request can match both, so their order does not matter."""
    if not isinstance(first, Route | WebSocketRoute) or not isinstance(second, Route | WebSocketRoute):
        return False  # mounts, hosts, anything else: kept where they are
    for static, other in ((first, second), (second, first)):
        path = _static_path(static)
        if path is not None and other.path_regex.match(path) is None:
            return True
    return False


def _unreachable(route: BaseRoute, earlier: Sequence[BaseRoute]) -> bool:
    """An earlier route serves every request this one matches."""
    path, methods = _static_path(route), getattr(route, "methods", None)
    if path is None or not methods or not isinstance(route, Route):
        return False
    return any(
        isinstance(other, Route) and _static_path(other) == path and other.methods and methods <= other.methods
        for other in earlier
    )


def serving_order(
    routes: Sequence[BaseRoute], hot: Collection[BaseRoute], last: Collection[str | None]
) -> list[BaseRoute]:
    """`routes` reordered: `hot` ones up, unreachable ones and the paths in `last` down; same answers."""
    hot_ids = {id(route) for route in hot}
    ordered: list[BaseRoute] = []
    tail: list[BaseRoute] = []
    for route in routes:
        if getattr(route, "path", None) in last or _unreachable(route, ordered):
            tail.append(route)
            continue
        position = len(ordered)
        if id(route) in hot_ids:
            while position and id(ordered[position - 1]) not in hot_ids and _disjoint(route, ordered[position - 1]):
                position -= 1
        ordered.insert(position, route)
    # The docs routes and the unreachable ones: after everything else, in their own order.
    return ordered + tail
