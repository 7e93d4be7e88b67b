"""`SecureIntegration` (the guide's Pattern 9), on the DESIGN §10 wire format.

`SecureIntegration("rhetor", secret)` finds the peer through Hermes, sends
`POST /api/v1/<endpoint>` with a token (iss: this component, aud: the peer)
and an HMAC request signature, and checks the peer's signed answer: a bad or
missing signature raises `ResponseSignatureError` (a `ValueError`, as in the
guide). The guide's `sha256(content + secret)` is not used: it allowed replay.
A bare secret takes its key id from `TEKTON_AUTH_KEYS` (the entry holding it),
else `default`; with no secret the deployment's signing key is used.
"""

from __future__ import annotations

from typing import Any, Unpack

import httpx

from ..about import COMPONENT_NAME
from ..security.keys import KEYS_VARIABLE, MIN_SECRET_BYTES, AuthKey, KeyRing, Secret, keys_from_environment
from ._component import ComponentClient, decode
from ._discovery import PeerLocation
from ._errors import PeerHTTPError, PeerUnavailableError
from ._pool import async_client
from ._signing import TektonAuth
from ._telemetry import outgoing_headers
from ._transport import api_path

DEFAULT_KEY_ID = "default"


def key_for(secret_key: str | None) -> AuthKey:
    """The key a bare secret stands for (its id from `TEKTON_AUTH_KEYS`, else `default`)."""
    deployment = keys_from_environment()
    if secret_key is None:
        if deployment is None:
            raise ValueError(f"no secret given and {KEYS_VARIABLE} is not set")
        return deployment.signing
    if len(secret_key.encode()) < MIN_SECRET_BYTES:
        raise ValueError(f"the secret is shorter than {MIN_SECRET_BYTES} bytes")
    known = deployment.with_secret(secret_key) if deployment is not None else None
    return known or AuthKey(DEFAULT_KEY_ID, Secret(secret_key))


class SecureIntegration:
    """`await SecureIntegration("rhetor", secret).secure_request("generate", {...})` -> the peer's JSON."""

    def __init__(
        self,
        component: str,
        secret_key: str | None = None,
        *,
        issuer: str = COMPONENT_NAME,
        timeout: float = 30.0,
        **where: Unpack[PeerLocation],
    ) -> None:
        self.component = component
        self.key = key_for(secret_key)
        self.client = ComponentClient(component, circuit_breaker=False, **where)
        # Answers must be signed: the callee is named, so no /health lookup decides it.
        self.auth = TektonAuth(issuer, KeyRing((self.key,)), audience=component.lower())
        self.timeout = timeout

    def __repr__(self) -> str:  # the secret stays out of reprs and logs
        return f"SecureIntegration({self.component!r}, key id {self.key.kid!r})"

    async def secure_request(self, endpoint: str, data: dict[str, Any]) -> Any:
        path, _ = api_path(endpoint, self.client.api_version)
        url = await self.client.resolve() + path
        try:
            response = await async_client().post(
                url, json=data, headers=outgoing_headers(), auth=self.auth, timeout=self.timeout
            )
        except httpx.TransportError as exc:
            raise PeerUnavailableError(
                f"{self.component} is unreachable at {url}: {type(exc).__name__}", component=self.component
            ) from exc
        if response.status_code >= 400:
            raise PeerHTTPError(response, component=self.component, endpoint=endpoint)
        return decode(response)
