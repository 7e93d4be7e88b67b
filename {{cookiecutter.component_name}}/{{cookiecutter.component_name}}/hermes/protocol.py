"""The Hermes wire contract: routes, the token header, and how answers are read.

Hermes serves its registry under `/api/` (not `/api/v1/`). Typed answers come
back camelCase (`componentId`), plain ones snake_case: `field()` accepts both.
Every failure becomes a `HermesError` whose `kind` says how to react.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

TOKEN_HEADER = "X-Authentication-Token"
REGISTER = "/api/register"
HEARTBEAT = "/api/heartbeat"
UNREGISTER = "/api/unregister"
COMPONENTS = "/api/components"

ErrorKind = Literal["unavailable", "rejected", "bad_answer"]


class HermesError(Exception):
    """Hermes could not be used. `kind`: unavailable (network, timeout),
    rejected (401/404/422: our request or token is not accepted), bad_answer
    (5xx, HTML, truncated JSON)."""

    def __init__(self, message: str, kind: ErrorKind, status: int | None = None) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.status = status

    @property
    def key(self) -> str:
        """Identifies the kind of trouble, so repeated failures are logged once."""
        return f"{self.kind}:{self.status}" if self.status else self.kind


class DiscoveryError(HermesError):
    """Nothing is known about a component: not in Hermes, no cached answer, no static address."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "unavailable")


REJECTED_STATUSES = frozenset({401, 403, 404, 422})


def transport_error(what: str, url: str, exc: httpx.HTTPError) -> HermesError:
    reason = type(exc).__name__ + (f": {exc}" if str(exc) else "")
    return HermesError(f"{what}: Hermes at {url} did not answer ({reason})", "unavailable")


def decode(response: httpx.Response, what: str) -> Any:
    """The JSON body of a successful answer, or a `HermesError` that says what came back."""
    status = response.status_code
    if status in REJECTED_STATUSES:
        raise HermesError(f"{what}: Hermes answered {status}: {_detail(response)}", "rejected", status)
    if status >= 300:
        raise HermesError(f"{what}: Hermes answered {status}: {_detail(response)}", "bad_answer", status)
    try:
        return response.json()
    except ValueError:
        kind = response.headers.get("content-type", "no content type")
        raise HermesError(
            f"{what}: Hermes answered {status} with a body that is not JSON ({kind}): {response.text[:80]!r}",
            "bad_answer",
        ) from None


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return repr(response.text[:80])
    if isinstance(body, dict) and "detail" in body:
        return str(body["detail"])[:200]
    return repr(response.text[:80])


def field(record: Mapping[str, Any], snake: str, default: Any = None) -> Any:
    """`record[snake]`, or its camelCase twin (`component_id` / `componentId`)."""
    if snake in record:
        return record[snake]
    head, *rest = snake.split("_")
    camel = head + "".join(part.title() for part in rest)
    return record.get(camel, default)


def component_records(body: Any, what: str) -> list[dict[str, Any]]:
    """The component list from `GET /api/components` (`{"components": [...]}`) or `POST /api/query` (a list)."""
    records = body.get("components") if isinstance(body, dict) else body
    if not isinstance(records, list) or not all(isinstance(item, dict) for item in records):
        raise HermesError(f"{what}: Hermes answered an unexpected shape: {str(body)[:80]!r}", "bad_answer")
    return records


def split_endpoint(endpoint: str) -> tuple[str, int, str]:
    """`http://host:8005/` -> (host, 8005, "http://host:8005"); the port defaults from the scheme."""
    parts = urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}")
    if not parts.hostname:
        raise ValueError(f"endpoint {endpoint!r} has no host")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname
    netloc = f"[{host}]" if ":" in host else host
    return host, port, f"{parts.scheme}://{netloc}:{port}{parts.path.rstrip('/')}"
