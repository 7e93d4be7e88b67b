"""The OpenAPI document says what the code does: schemathesis, in process, against the app.

About 100 generated requests per operation (streaming operations excluded:
they never end), each checked for a 5xx and for a response, status code or
content type the document does not promise. The template's own suite runs the
same test with at least 1,000 cases in all (`SCHEMATHESIS_EXAMPLES`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import Case
from schemathesis.checks import CheckFunction
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import positive_data_acceptance

from {{ cookiecutter.component_name }}.app import create_app

from .conftest import SettingsFactory

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "100"))  # per operation
# Streaming responses (SSE, live figures) never end: they have tests of their own.
STREAMING = r"^/(events|api/v1/metrics/stream)$"
# One operation serves every action, and each action's params have their own schema, published where
# Harmonia reads it (`GET /api/actions/{name}/schema`): the generic operation cannot promise that any
# params it allows are accepted. Every other check (5xx, status codes, response schemas) still applies.
PER_ACTION_PARAMS = "POST /api/actions/{name}"


@pytest.fixture
def api_schema(make_settings: SettingsFactory) -> Iterator[Any]:
    app = create_app(make_settings())
    yield schemathesis.openapi.from_asgi("/api/v1/openapi.json", app).exclude(path_regex=STREAMING)
    asgi.shutdown_lifespans()  # the app's lifespan ran once for the whole run; close it


@pytest.fixture
def request_auth() -> httpx.Auth | None:
    """How each generated request is authenticated; None while auth is off.

    With auth on, return the `httpx.Auth` that signs a request: its headers are
    copied onto each generated case before it is sent.
    """
    return None


def _authenticate(case: Case[Any], auth: httpx.Auth | None) -> None:
    if auth is None:
        return
    kwargs = case.as_transport_kwargs(base_url="http://testserver")
    request = httpx.Request(kwargs["method"], kwargs["url"], headers=kwargs.get("headers"), json=kwargs.get("json"))
    signed = next(auth.auth_flow(request))
    for name, value in signed.headers.items():
        case.headers[name] = value


def test_every_operation_answers_as_documented(api_schema: Any, request_auth: httpx.Auth | None) -> None:
    failures: dict[str, str] = {}
    cases = 0
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 5, "the document lost its operations"
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def answers_as_documented(case: Case[Any]) -> None:
            nonlocal cases
            cases += 1
            _authenticate(case, request_auth)
            excluded: list[CheckFunction] = [positive_data_acceptance] if operation.label == PER_ACTION_PARAMS else []
            case.call_and_validate(excluded_checks=excluded)

        try:
            answers_as_documented()
        except Exception as exc:  # every operation is tried; all failures are reported together
            failures[operation.label] = f"{type(exc).__name__}: {exc}"
    if report := os.environ.get("SCHEMATHESIS_REPORT"):  # the template's long run counts the cases
        Path(report).write_text(str(cases))
    assert not failures, "\n\n".join(f"{label}\n{why}" for label, why in failures.items())
