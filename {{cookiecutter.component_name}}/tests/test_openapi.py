"""The OpenAPI document says what the code does: schemathesis, in process, against the app.

About 10 generated requests per operation (streaming operations excluded:
they never end), each checked for a 5xx and for a response, status code or
content type the document does not promise. It runs twice: auth off, and auth on
(`TEKTON_AUTH_KEYS` set, every case signed per DESIGN §10, and none refused).
The template's own suite runs the same test with 300 per operation, at least 1,000 cases in all
(`SCHEMATHESIS_EXAMPLES`).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest

from {{ cookiecutter.component_name }}.app import create_app

from .conftest import SettingsFactory
from .support.auth import Key, keys_value, signed_headers

# schemathesis and hypothesis take ~3 s of CPU to import: each test imports them when it runs,
# so that not every pytest worker pays for them while collecting.
if TYPE_CHECKING:
    from schemathesis import Case
    from schemathesis.checks import CheckFunction

# Hypothesis caches its character tables (~2 s to compute) in `.hypothesis/` of the directory it
# is first imported from: a test's scratch directory here, so the cache would be lost.
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", str(Path(__file__).resolve().parents[1] / ".hypothesis"))

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "10"))  # per operation
# Streaming responses (SSE, live figures) never end: they have tests of their own.
STREAMING = r"^/(events|api/v1/metrics/stream)$"
# One operation serves every action, and each action's params have their own schema, published where
# Harmonia reads it (`GET /api/actions/{name}/schema`): the generic operation cannot promise that any
# params it allows are accepted. Every other check (5xx, status codes, response schemas) still applies.
PER_ACTION_PARAMS = "POST /api/actions/{name}"
# Open without a token (DESIGN §10); with auth on, a 2xx from any other operation proves the signing works.
OPEN_OPERATIONS = {"GET /health", "GET /ready"}
NAME = "{{ cookiecutter.component_name }}"  # the audience of every token
KEY = Key("fuzzer")


@dataclass
class RequestSigner:
    """Signs each request as DESIGN §10 says, with the test signer of `support/auth.py`.

    A `requests` auth hook: the ASGI client calls it on the prepared request, after the body is
    serialized, so the signature covers the very method, raw path + query and body bytes sent.
    """

    key: Key
    audience: str
    signed: int = 0

    def __call__(self, request: Any) -> Any:  # a `requests.PreparedRequest`, returned signed
        url = urlsplit(request.url)
        target = url.path + (f"?{url.query}" if url.query else "")  # what the client puts in `raw_path`
        body = request.body.encode() if isinstance(request.body, str) else request.body or b""
        headers = signed_headers(self.key, request.method, target, body, self.audience)
        del headers["Content-Type"]  # the generated case chose its own
        request.headers.update(headers)
        self.signed += 1
        return request


@pytest.fixture(params=["off", "on"], ids=lambda mode: f"auth={mode}")
def request_auth(request: pytest.FixtureRequest) -> RequestSigner | None:
    """How each generated request is authenticated: not at all, or signed with the app's key."""
    return RequestSigner(KEY, NAME) if request.param == "on" else None


@pytest.fixture
def api_schema(make_settings: SettingsFactory, request_auth: RequestSigner | None) -> Iterator[Any]:
    keys = {"auth_keys": keys_value(KEY)} if request_auth is not None else {}
    import schemathesis
    from schemathesis.python import asgi

    app = create_app(make_settings(**keys))
    yield schemathesis.openapi.from_asgi("/api/v1/openapi.json", app).exclude(path_regex=STREAMING)
    asgi.shutdown_lifespans()  # the app's lifespan ran once for the whole run; close it


Statuses = Counter[tuple[str, int]]  # (operation, status code) -> how many answers


def fuzz(operation: Any, auth: RequestSigner | None, statuses: Statuses) -> None:
    """About `EXAMPLES` generated cases against one operation; raises what the first failing one finds."""
    from hypothesis import HealthCheck, given, settings
    from schemathesis.specs.openapi.checks import positive_data_acceptance

    excluded: list[CheckFunction] = [positive_data_acceptance] if operation.label == PER_ACTION_PARAMS else []

    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def answers_as_documented(case: Case[Any]) -> None:
        response = case.call_and_validate(excluded_checks=excluded, auth=auth)
        statuses[operation.label, response.status_code] += 1

    answers_as_documented()


@pytest.mark.long
def test_every_operation_answers_as_documented(api_schema: Any, request_auth: RequestSigner | None) -> None:
    failures: dict[str, str] = {}
    statuses: Statuses = Counter()
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 5, "the document lost its operations"
    for operation in operations:
        try:
            fuzz(operation, request_auth, statuses)
        except Exception as exc:  # every operation is tried; all failures are reported together
            failures[operation.label] = f"{type(exc).__name__}: {exc}"
    cases = sum(statuses.values())
    if report := os.environ.get("SCHEMATHESIS_REPORT"):  # the template's long run counts the cases
        Path(report).write_text(str(cases))
    assert not failures, "\n\n".join(f"{label}\n{why}" for label, why in failures.items())
    if request_auth is not None:
        refused = {label: n for (label, status), n in statuses.items() if status == 401}
        assert not refused, f"signed requests refused: {refused}"
        assert request_auth.signed >= cases, "a case went out unsigned"
        accepted = {label for (label, status) in statuses if 200 <= status < 300}
        assert accepted - OPEN_OPERATIONS, f"no protected operation answered 2xx: {statuses}"


@pytest.mark.long  # not long itself: on the worker that runs the two above, which has schemathesis loaded
def test_auth_on_refuses_an_unsigned_request(make_settings: SettingsFactory) -> None:
    """The auth-on run above means something: the same app refuses the same call without a signature."""
    import schemathesis
    from schemathesis.python import asgi

    app = create_app(make_settings(auth_keys=keys_value(KEY)))
    case = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)["/api/v1/discovery"]["GET"].Case()
    unsigned, signed = case.call(), case.call(auth=RequestSigner(KEY, NAME))
    asgi.shutdown_lifespans()
    assert unsigned.status_code == 401, unsigned.text
    assert unsigned.json()["error"] == "unauthorized"
    assert signed.status_code == 200, signed.text
