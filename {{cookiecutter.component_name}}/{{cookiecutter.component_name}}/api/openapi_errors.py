"""The errors every operation can answer, written into the OpenAPI document.

FastAPI documents each route's own responses (and 422). The answers that come
from the layers around the routes are added here, so the document says what
the server does (the generated suite checks it with schemathesis):

- 400: a JSON body that is not UTF-8 or holds a lone surrogate (`RequestMiddleware`);
- 413: a body over `<NAME>_MAX_BODY_BYTES` (`RequestMiddleware`);
- 404: on a path with parameters, one that names nothing;
- 431: request headers over the limits `python -m` serves with (`serve.py`);
- with auth on: the security scheme, and 401 / 503 on every protected operation (`api/auth.py`).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from fastapi import FastAPI
from starlette.routing import BaseRoute

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "properties": {
        "error": {"type": "string", "description": "A stable code, e.g. `payload_too_large`"},
        "message": {"type": "string"},
        "request_id": {"anyOf": [{"type": "string"}, {"type": "null"}]},
    },
    "required": ["error", "message"],
}
_ERROR_CONTENT = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
BODY_ERRORS = {
    "400": "The body is not UTF-8, or holds a lone surrogate escape (`\\ud800`)",
    "413": "The body is larger than the configured limit",
}
# A path parameter naming something that does not exist (`/api/actions/{name}/schema`).
PATH_PARAMETER_ERRORS = {"404": "Nothing by that name"}
ANY_REQUEST_ERRORS = {
    "431": "Request headers (or the request line) are larger than the server's limits",
}

AUTH_ERRORS = {
    "401": "Credentials missing or refused; `reason` says which check failed (DESIGN §10)",
    "503": "The replay cache is full: retry later (`Retry-After`)",
}
SECURITY_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "bearerFormat": "JWT",
    "description": "An HS256 token from a `TEKTON_AUTH_KEYS` key, plus the request signature headers "
    "`X-Tekton-Key-Id`, `X-Tekton-Timestamp`, `X-Tekton-Nonce` and `X-Signature` (the client package signs)",
}


def _add(responses: dict[str, Any], errors: dict[str, str]) -> None:
    for status, description in errors.items():
        responses.setdefault(status, {"description": description, "content": _ERROR_CONTENT})


def document_errors(
    app: FastAPI, documented: Sequence[BaseRoute] | None = None, open_paths: Collection[str] | None = None
) -> None:
    """Add the surrounding layers' errors to `app`'s OpenAPI document, built once as usual.

    `documented`: the routes in the order the document lists them, when the
    router tries them in another (`route_order.serving_order`). `open_paths`:
    with auth on, the paths that need no credentials (None: auth is off).
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        serving = list(app.router.routes)
        if documented is not None:  # routes added since (`/metrics`) keep their place, after
            listed = {id(route) for route in documented}
            app.router.routes[:] = [*documented, *(route for route in serving if id(route) not in listed)]
        try:
            schema = build()
        finally:
            app.router.routes[:] = serving
        components = schema.setdefault("components", {})
        components.setdefault("schemas", {})["Error"] = ERROR_SCHEMA
        if open_paths is not None:
            components["securitySchemes"] = {"tektonAuth": SECURITY_SCHEME}
        for path, operations in schema.get("paths", {}).items():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                if "requestBody" in operation:
                    _add(responses, BODY_ERRORS)
                if any(parameter.get("in") == "path" for parameter in operation.get("parameters", ())):
                    _add(responses, PATH_PARAMETER_ERRORS)
                _add(responses, ANY_REQUEST_ERRORS)
                if open_paths is not None and path not in open_paths:
                    operation["security"] = [{"tektonAuth": []}]
                    _add(responses, AUTH_ERRORS)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
