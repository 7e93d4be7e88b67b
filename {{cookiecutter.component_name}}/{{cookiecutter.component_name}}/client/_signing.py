"""Outgoing calls signed as DESIGN §10 says, whenever `TEKTON_AUTH_KEYS` is set.

`TektonAuth` sits on the pooled clients (`_pool.py`), so every pattern built
on them is signed without asking: a bearer token (iss = this component,
aud = the callee) and the request signature over method, raw path and query,
timestamp, nonce and body. The callee's name and whether it verifies come
from its `/health` (`component`, `auth`), asked once per address and kept a
few minutes; a peer whose `/health` says `"auth": "enabled"` must sign its
answers, and a bad or missing signature raises `ResponseSignatureError`. A
peer that does not verify (stock Tekton components) gets the headers and
ignores them. `/ws` and `/events` handshakes get a fresh token each.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncGenerator, Generator
from dataclasses import dataclass

import httpx

from ..about import COMPONENT_NAME
from ..security import signing
from ..security.keys import AuthKey, KeyRing, keys_from_environment
from ..security.paths import ALWAYS_OPEN, HANDSHAKES
from ..security.tokens import TokenMinter
from ._errors import IntegrationError

PEER_INFO_TTL = 300.0  # seconds a peer's name and auth mode are trusted before asking again


class ResponseSignatureError(IntegrationError, ValueError):
    """The peer's answer is not signed with the key the request used: do not trust it.

    Also a `ValueError`, which is what the guide's `SecureIntegration` raised."""

    code = "bad_response_signature"


@dataclass(frozen=True)
class PeerInfo:
    audience: str | None  # the callee's component name, from its /health
    verifies: bool  # its /health says "auth": "enabled": its answers must be signed
    learned_at: float


def _peer_info(response: httpx.Response) -> PeerInfo:
    try:
        body = response.json()
    except ValueError:
        body = None
    name = body.get("component") if isinstance(body, dict) else None
    verifies = isinstance(body, dict) and body.get("auth") == "enabled"
    return PeerInfo(name if isinstance(name, str) and name else None, verifies, time.monotonic())


def _origin(url: httpx.URL) -> str:
    return f"{url.scheme}://{url.netloc.decode('ascii')}"


def _target(url: httpx.URL) -> str:
    return url.raw_path.decode("ascii")  # path and query, as they go on the wire


def _is_event_stream(response: httpx.Response) -> bool:
    content_type: str = response.headers.get("content-type", "")
    return content_type.startswith("text/event-stream")


def check_response(response: httpx.Response, key: AuthKey, nonce: str, audience: str) -> None:
    """Raise `ResponseSignatureError` unless the (read) response is signed for this request.

    Event streams are unsigned by design; an unsigned error status (the peer's own
    refusal: 401, 413, 503) is left to the caller, who sees the status anyway.
    """
    if _is_event_stream(response):
        return
    presented = response.headers.get(signing.SIGNATURE_HEADER)
    where = f"{response.request.method} {response.request.url.path}"
    if presented is None:
        if response.status_code >= 400:
            return
        raise ResponseSignatureError(
            f"{audience} answered {where} without a signature", component=audience, endpoint=where
        )
    timestamp = response.headers.get(signing.TIMESTAMP_HEADER, "")
    if not signing.response_matches(key, response.status_code, nonce, timestamp, presented, response.content):
        raise ResponseSignatureError(
            f"{audience}'s answer to {where} does not match its signature", component=audience, endpoint=where
        )


# What `TektonAuth._flow` yields: a request to send (it gets the response back), or a response whose
# body the driver reads (it gets the same response back). One flow, then, for the sync and async drivers.
_Step = Generator[httpx.Request | httpx.Response, httpx.Response, None]


class TektonAuth(httpx.Auth):
    """An httpx `Auth`: a no-op without keys; otherwise token, signature and answer check."""

    def __init__(
        self, issuer: str = COMPONENT_NAME, keys: KeyRing | None = None, *, audience: str | None = None
    ) -> None:
        self.issuer = issuer
        self._keys = keys
        self.audience = audience  # fixed callee (SecureIntegration); else learned from /health
        self.minter = TokenMinter(issuer)
        self.peers: dict[str, PeerInfo] = {}

    def keys(self) -> KeyRing | None:
        return self._keys if self._keys is not None else keys_from_environment()

    def headers_for(self, key: AuthKey, request: httpx.Request, audience: str) -> str | None:
        """Adds the token (and, outside handshakes, the signature); returns the nonce to check the answer by."""
        if request.url.path in HANDSHAKES:
            request.headers["Authorization"] = f"Bearer {self.minter.fresh(key, audience)}"
            return None
        request.headers["Authorization"] = f"Bearer {self.minter.token(key, audience)}"
        signed = signing.request_headers(key, request.method, _target(request.url), audience, request.content)
        request.headers.update(signed)
        return signed[signing.NONCE_HEADER]

    def _known(self, request: httpx.Request) -> PeerInfo | None:
        info = self.peers.get(_origin(request.url))
        if info is None or time.monotonic() - info.learned_at > PEER_INFO_TTL:
            return None
        return info

    def _probe(self, request: httpx.Request) -> httpx.Request:
        url = request.url.copy_with(raw_path=b"/health")
        return httpx.Request("GET", url, headers={"Accept": "application/json"}, extensions=dict(request.extensions))

    def _learned(self, request: httpx.Request, response: httpx.Response) -> PeerInfo:
        info = _peer_info(response)
        if len(self.peers) > 1024:
            self.peers.clear()
        self.peers[_origin(request.url)] = info
        return info

    def _signing_keys(self, request: httpx.Request) -> KeyRing | None:
        """The keys to sign `request` with; None leaves it as it is (no keys set, or an always-open route)."""
        keys = self.keys()
        if keys is None or request.url.path in ALWAYS_OPEN:
            return None
        return keys

    def _flow(self, request: httpx.Request, keys: KeyRing) -> _Step:
        """Learn the callee (its /health, once per TTL), sign the request, check the signed answer."""
        info = self._known(request)
        if info is None and self.audience is None:
            probe = yield self._probe(request)
            yield probe  # read its body
            info = self._learned(request, probe)
        audience = self.audience or (info.audience if info else None)
        if audience is None:
            yield request
            return
        key = keys.signing
        nonce = self.headers_for(key, request, audience)
        response = yield request
        if nonce is not None and (self.audience is not None or (info is not None and info.verifies)):
            if not _is_event_stream(response):
                yield response  # read its body: the signature covers it
            check_response(response, key, nonce, audience)

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        keys = self._signing_keys(request)
        if keys is None:
            yield request
            return
        request.read()  # the signature covers the body
        flow = self._flow(request, keys)
        step = next(flow)
        with contextlib.suppress(StopIteration):
            while True:
                if isinstance(step, httpx.Response):
                    step.read()
                    step = flow.send(step)
                else:
                    step = flow.send((yield step))

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        keys = self._signing_keys(request)
        if keys is None:
            yield request
            return
        await request.aread()  # the signature covers the body
        flow = self._flow(request, keys)
        step = next(flow)
        with contextlib.suppress(StopIteration):
            while True:
                if isinstance(step, httpx.Response):
                    await step.aread()
                    step = flow.send(step)
                else:
                    step = flow.send((yield step))


_shared = TektonAuth()


def shared_auth() -> TektonAuth:
    """The auth of the pooled clients: keys from the environment, re-read when they change."""
    return _shared


def handshake_headers(audience: str) -> dict[str, str]:
    """`Authorization` with a fresh token for one `/ws` or `/events` connection (empty without keys)."""
    keys = keys_from_environment()
    if keys is None:
        return {}
    return {"Authorization": f"Bearer {_shared.minter.fresh(keys.signing, audience.lower())}"}
