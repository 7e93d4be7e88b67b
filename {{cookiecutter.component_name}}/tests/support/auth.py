"""Credentials for the auth tests, built straight from DESIGN §10 (not with the package's own
signing code), so a test fails if the component drifts from the wire format."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import jwt


def new_secret() -> str:
    return secrets.token_urlsafe(48)  # 64 characters: over the 32-byte minimum, and enough for HS512


@dataclass(frozen=True)
class Key:
    kid: str
    secret: str = field(default_factory=new_secret)

    @property
    def entry(self) -> str:
        return f"{self.kid}={self.secret}"


def keys_value(*keys: Key) -> str:
    """`TEKTON_AUTH_KEYS`: the first key signs, all verify."""
    return ",".join(key.entry for key in keys)


def token(
    key: Key,
    audience: str,
    *,
    issuer: str = "tester",
    issued: float | None = None,
    lifetime: int = 300,
    kid: str | None = None,
    algorithm: str = "HS256",
    claims: dict[str, Any] | None = None,
) -> str:
    now = int(time.time() if issued is None else issued)
    body: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "iat": now,
        "exp": now + lifetime,
        "jti": secrets.token_urlsafe(12),
        **(claims or {}),
    }
    encoded: str = jwt.encode(body, key.secret, algorithm=algorithm, headers={"kid": kid or key.kid})
    return encoded


def canonical(method: str, target: str, audience: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    digest = hashlib.sha256(body).hexdigest()
    return "\n".join(["v1", method.upper(), target, audience, timestamp, nonce, digest]).encode("utf-8")


def signature(secret: str, text: bytes) -> str:
    return "v1=" + hmac.new(secret.encode(), text, hashlib.sha256).hexdigest()


def signed_headers(
    key: Key,
    method: str,
    target: str,
    body: bytes,
    audience: str,
    *,
    bearer: str | None = None,
    timestamp: int | None = None,
    nonce: str | None = None,
    kid: str | None = None,
) -> dict[str, str]:
    """Token and signature headers for one request; `target` is the raw path plus `?query` when there is one."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or secrets.token_urlsafe(18)
    return {
        "Authorization": f"Bearer {bearer or token(key, audience)}",
        "X-Tekton-Key-Id": kid or key.kid,
        "X-Tekton-Timestamp": stamp,
        "X-Tekton-Nonce": nonce,
        "X-Signature": signature(key.secret, canonical(method, target, audience, stamp, nonce, body)),
        "Content-Type": "application/json",
    }


def json_body(data: Any) -> bytes:
    return json.dumps(data).encode()


def response_signature_ok(key: Key, status: int, nonce: str, headers: Any, body: bytes) -> bool:
    stamp = headers.get("X-Tekton-Timestamp", "")
    text = "\n".join(["v1-response", str(status), nonce, stamp, hashlib.sha256(body).hexdigest()]).encode()
    return hmac.compare_digest(signature(key.secret, text), headers.get("X-Signature", ""))
