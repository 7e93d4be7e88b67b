"""Keys from `TEKTON_AUTH_KEYS` (`kid1=secret1,kid2=secret2`): the first signs, every key verifies.

Secrets live in `Secret` (pydantic's `SecretStr` in the settings), so no repr,
log line or error message shows them; errors name the variable and the entry's
position, never the secret. No pydantic here: the client package loads this.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from typing import Any

from ..addresses import environment

KEYS_VARIABLE = "TEKTON_AUTH_KEYS"
MIN_SECRET_BYTES = 32
KEY_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class AuthKeysError(ValueError):
    """`TEKTON_AUTH_KEYS` is malformed; the message names the entry, never its secret."""


class Secret:
    """A string that never shows itself: `repr` and `str` give `**********`."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    def __str__(self) -> str:
        return "**********"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


# Plain classes with their derived values worked out at construction: defining a frozen dataclass
# costs start-up several times what these cost, and the request path reads these attributes on every call.
class AuthKey:
    """A key id and its secret, with what signing with them needs."""

    __slots__ = ("hmac_pads", "kid", "kid_bytes", "secret", "secret_bytes")

    def __init__(self, kid: str, secret: Secret) -> None:
        self.kid = kid
        self.secret = secret
        self.kid_bytes = kid.encode()
        self.secret_bytes = secret.get_secret_value().encode()
        # SHA-256 states after the HMAC inner and outer pads: each signature then costs two copies.
        block = self.secret_bytes if len(self.secret_bytes) <= 64 else hashlib.sha256(self.secret_bytes).digest()
        block = block.ljust(64, b"\0")
        inner = hashlib.sha256(bytes(byte ^ 0x36 for byte in block))
        outer = hashlib.sha256(bytes(byte ^ 0x5C for byte in block))
        self.hmac_pads: tuple[Any, Any] = (inner, outer)

    def __repr__(self) -> str:
        return f"AuthKey(kid={self.kid!r}, secret={self.secret!r})"


class KeyRing:
    """The deployment's keys in order: the first signs, every one verifies (rotation)."""

    __slots__ = ("_by_kid", "keys")

    def __init__(self, keys: tuple[AuthKey, ...]) -> None:
        self.keys = keys
        self._by_kid = {key.kid: key for key in keys}

    def __repr__(self) -> str:
        return f"KeyRing(keys={self.keys!r})"

    @property
    def signing(self) -> AuthKey:
        return self.keys[0]

    def get(self, kid: str) -> AuthKey | None:
        return self._by_kid.get(kid)

    def with_secret(self, secret: str) -> AuthKey | None:
        """The entry holding `secret` (the guide's `SecureIntegration` is given a bare secret)."""
        return next((key for key in self.keys if key.secret.get_secret_value() == secret), None)


def parse_keys(raw: str | None) -> KeyRing | None:
    """`None` when unset or blank; otherwise every entry valid, or `AuthKeysError`."""
    if raw is None or not raw.strip():
        return None
    keys: list[AuthKey] = []
    for position, entry in enumerate(raw.split(","), start=1):
        where = f"{KEYS_VARIABLE} entry {position}"
        kid, separator, secret = entry.partition("=")
        if not separator:
            raise AuthKeysError(f"{where} has no '=': write entries as <key id>=<secret>, separated by commas")
        if not KEY_ID.fullmatch(kid):
            raise AuthKeysError(f"{where}: the key id before '=' must be 1-64 of A-Z a-z 0-9 _ . -")
        size = len(secret.encode())
        if size < MIN_SECRET_BYTES:
            raise AuthKeysError(
                f"{where} (key id {kid!r}): the secret is {size} bytes, at least {MIN_SECRET_BYTES} are needed "
                "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        if any(key.kid == kid for key in keys):
            raise AuthKeysError(f"{where}: key id {kid!r} appears twice")
        keys.append(AuthKey(kid, Secret(secret)))
    return KeyRing(tuple(keys))


@functools.lru_cache(maxsize=8)
def _parsed(raw: str | None) -> KeyRing | None:
    return parse_keys(raw)


@functools.cache
def _from_dotenv() -> str | None:
    return environment().get(KEYS_VARIABLE)


def keys_from_environment() -> KeyRing | None:
    """The process's keys (environment over `.env`), re-read when the variable changes (rotation)."""
    raw = os.environ.get(KEYS_VARIABLE)
    return _parsed(raw if raw is not None else _from_dotenv())
