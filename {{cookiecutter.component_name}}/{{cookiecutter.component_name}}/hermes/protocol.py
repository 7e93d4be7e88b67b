"""The Hermes wire contract, without I/O: routes, the token header, each
call's request, and how answers are read.

Hermes serves its registry under `/api/` (not `/api/v1/`). Typed answers come
back camelCase (`componentId`), plain ones snake_case: `field()` accepts both.
Every failure becomes a `HermesError` whose `kind` says how to react. The
sync and async callers (`calls.py`) share all of this and only send.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, NamedTuple
from urllib.parse import urlsplit

if TYPE_CHECKING:  # the callers load httpx when they first call (see `calls.py`)
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

    def __init__(self, message: str, kind: ErrorKind, status: int | None = None, refused: bool = False) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.status = status
        self.refused = refused  # nothing listened (connection refused), as opposed to a slow or broken answer

    @property
    def key(self) -> str:
        """Identifies the kind of trouble, so repeated failures are logged once."""
        return f"{self.kind}:{self.status}" if self.status else self.kind


class DiscoveryError(HermesError):
    """Nothing is known about a component: not in Hermes, no cached answer, no static address."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "unavailable")


REJECTED_STATUSES = frozenset({401, 403, 404, 422})


# -- requests -------------------------------------------------------------------


class Request(NamedTuple):  # immutable, and cheaper to define at import than a dataclass
    """One call to Hermes, described; `what` names it in error messages."""

    what: str
    method: str
    path: str
    params: Mapping[str, str] = {}  # read, never changed: one empty default serves every request
    json: Any = None
    headers: Mapping[str, str] = {}


def components_request(capability: str | None = None, healthy_only: bool = False) -> Request:
    """`GET /api/components`: the full listing, by id (the by-name route shows only a name's oldest entry)."""
    params = {"capability": capability} if capability else {}
    if healthy_only:
        params["healthy_only"] = "true"
    return Request("list components", "GET", COMPONENTS, params=params)


def register_request(body: Mapping[str, Any]) -> Request:
    return Request("register", "POST", REGISTER, json=dict(body))


def heartbeat_request(component_id: str, token: str, status: Mapping[str, Any]) -> Request:
    body = {"component_id": component_id, "status": dict(status)}
    return Request("heartbeat", "POST", HEARTBEAT, json=body, headers={TOKEN_HEADER: token})


def unregister_request(component_id: str, token: str) -> Request:
    # The id goes in the query string: Hermes answers 422 to a JSON body here.
    params = {"component_id": component_id}
    return Request("unregister", "POST", UNREGISTER, params=params, headers={TOKEN_HEADER: token})


# -- answers --------------------------------------------------------------------


def transport_error(what: str, url: str, exc: httpx.HTTPError) -> HermesError:
    import httpx  # loaded: it raised `exc`

    reason = type(exc).__name__ + (f": {exc}" if str(exc) else "")
    refused = isinstance(exc, httpx.ConnectError)
    return HermesError(f"{what}: Hermes at {url} did not answer ({reason})", "unavailable", refused=refused)


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


def registration_answer(answer: Any, body: Mapping[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """(component_id, token, answer) from a register answer; without a token the registration is useless."""
    token = field(answer, "token") if isinstance(answer, dict) else None
    if not isinstance(token, str) or not token:
        raise HermesError(f"register: Hermes answered without a token: {str(answer)[:80]!r}", "bad_answer")
    # Hermes invents an id when none was sent: its answer wins over ours.
    component_id = field(answer, "component_id") or body.get("component_id")
    if not isinstance(component_id, str) or not component_id:
        raise HermesError(f"register: Hermes answered without a component id: {str(answer)[:80]!r}", "bad_answer")
    return component_id, token, answer


def split_endpoint(endpoint: str) -> tuple[str, int, str]:
    """`http://host:8005/` -> (host, 8005, "http://host:8005"); the port defaults from the scheme."""
    parts = urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}")
    if not parts.hostname:
        raise ValueError(f"endpoint {endpoint!r} has no host")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname
    netloc = f"[{host}]" if ":" in host else host
    return host, port, f"{parts.scheme}://{netloc}:{port}{parts.path.rstrip('/')}"
