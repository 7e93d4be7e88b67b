"""Bearer tokens (DESIGN §10): HS256 JWTs with a `kid` header; the algorithm is never taken from the token.

PyJWT is imported on first use, so start-up does not pay for it.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from types import ModuleType
from typing import Any, NamedTuple

from .keys import KEY_ID, AuthKey, KeyRing
from .reasons import AuthFailure

ALGORITHM = "HS256"
MAX_LIFETIME = 300  # exp - iat, seconds
LEEWAY = 30
_REQUIRED = ["iss", "aud", "iat", "exp", "jti"]
# What may be repeated in a message: a component name, a key id.
_PRINTABLE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def _jwt() -> ModuleType:
    import jwt  # lazy: PyJWT costs start-up time

    return jwt


def mint_token(key: AuthKey, issuer: str, audience: str, lifetime: int = MAX_LIFETIME) -> str:
    """A token from `issuer` for `audience`, valid for `lifetime` seconds (at most 300)."""
    now = int(time.time())
    claims = {
        "iss": issuer,
        "aud": audience,
        "iat": now,
        "exp": now + min(lifetime, MAX_LIFETIME),
        "jti": secrets.token_urlsafe(16),
    }
    token: str = _jwt().encode(claims, key.secret_bytes, algorithm=ALGORITHM, headers={"kid": key.kid})
    return token


class TokenMinter:
    """Reuses one token per audience until it is near its end (HTTP calls); `fresh` mints a new one (handshakes)."""

    def __init__(self, issuer: str, reuse_for: float = MAX_LIFETIME - 60) -> None:
        self.issuer = issuer
        self.reuse_for = reuse_for
        self._cache: dict[tuple[str, str, str], tuple[str, float]] = {}
        self._lock = threading.Lock()

    def token(self, key: AuthKey, audience: str) -> str:
        cache_key = (key.kid, key.secret.get_secret_value(), audience)
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(cache_key)
            if cached and now - cached[1] < self.reuse_for:
                return cached[0]
        token = mint_token(key, self.issuer, audience)
        with self._lock:
            if len(self._cache) > 256:
                self._cache.clear()
            self._cache[cache_key] = (token, now)
        return token

    def fresh(self, key: AuthKey, audience: str) -> str:
        return mint_token(key, self.issuer, audience)


class VerifiedToken(NamedTuple):  # immutable; a tuple is cheaper to define at import than a dataclass
    key: AuthKey
    claims: dict[str, Any]
    expires_at: float  # claims["exp"], read on every request

    @property
    def jti(self) -> str:
        return str(self.claims["jti"])


def _printable(value: object) -> str:
    return repr(value) if isinstance(value, str) and _PRINTABLE.fullmatch(value) else "(not shown)"


class TokenVerifier:
    """Checks tokens for one audience. A token seen before skips the decoding: it is known by the
    header it came in, as sent, and its expiry and key are checked every time."""

    def __init__(self, audience: str, cache_size: int = 4096) -> None:
        self.audience = audience
        self.cache_size = cache_size
        self._verified: dict[bytes, VerifiedToken] = {}

    def known(self, seen_as: bytes, keys: KeyRing) -> VerifiedToken | None:
        """The token verified before in this header value, while its key is still held (rotation)."""
        known = self._verified.get(seen_as)
        if known is None or keys.get(known.key.kid) is not known.key:
            return None
        if known.expires_at + LEEWAY < time.time():
            raise AuthFailure("expired", "the token has expired: mint a new one")
        return known

    def verify(self, token: str, keys: KeyRing, seen_as: bytes | None = None) -> VerifiedToken:
        """Decodes and checks `token`; `seen_as`, the header value it came in, lets `known` find it again."""
        verified = self._decode(token, keys)
        if seen_as is not None:
            if len(self._verified) >= self.cache_size:
                self._verified.clear()
            self._verified[seen_as] = verified
        return verified

    def _decode(self, token: str, keys: KeyRing) -> VerifiedToken:
        jwt = _jwt()
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise AuthFailure("bad_token", f"the bearer token is not a JWT ({type(exc).__name__})") from None
        kid = header.get("kid")
        if header.get("alg") != ALGORITHM or not isinstance(kid, str) or not KEY_ID.fullmatch(kid):
            raise AuthFailure("bad_token", f"the token must be {ALGORITHM} with a 'kid' header naming a key")
        key = keys.get(kid)
        if key is None:
            raise AuthFailure("unknown_key", f"key id {kid!r} is not among this component's keys (TEKTON_AUTH_KEYS)")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.secret_bytes,
                algorithms=[ALGORITHM],
                audience=self.audience,
                leeway=LEEWAY,
                options={"require": _REQUIRED},
            )
        except jwt.ExpiredSignatureError:
            raise AuthFailure("expired", "the token has expired: mint a new one") from None
        except jwt.InvalidAudienceError:
            raise AuthFailure(
                "wrong_audience", f"the token is not for {self.audience!r} (its aud: {_audience(token, jwt)})"
            ) from None
        except jwt.PyJWTError as exc:
            raise AuthFailure("bad_token", f"the token was refused: {exc}") from None
        lifetime = claims["exp"] - claims["iat"]
        if not isinstance(lifetime, int | float) or lifetime > MAX_LIFETIME:
            raise AuthFailure("bad_token", f"the token lives longer than {MAX_LIFETIME} s (exp - iat)")
        return VerifiedToken(key, claims, float(claims["exp"]))


def _audience(token: str, jwt: ModuleType) -> str:
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return "(not shown)"
    audience = claims.get("aud")
    if isinstance(audience, list):
        return ", ".join(_printable(item) for item in audience)
    return _printable(audience)
