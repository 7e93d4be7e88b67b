"""Who may call, decided once at startup from the settings (DESIGN §10).

With keys: every route except the open list needs a token. Without keys, a
component bound to loopback runs open with one warning (local development);
bound to any other address it refuses to start unless `<NAME>_AUTH_REQUIRED=false`.
"""

from __future__ import annotations

import ipaddress
import sys
from collections.abc import Sequence
from typing import NamedTuple
from urllib.parse import urlsplit

from ..settings import Settings, SettingsError, env_name
from .keys import KEYS_VARIABLE, AuthKeysError, KeyRing, parse_keys
from .paths import ALWAYS_OPEN

_ENABLE_HINT = (
    f"set {KEYS_VARIABLE}=<key id>=<secret of 32+ bytes> (the same value on every component of the deployment; "
    "a secret: python -c 'import secrets; print(secrets.token_urlsafe(32))')"
)


class AuthPolicy(NamedTuple):  # immutable; a tuple is cheaper to define at import than a dataclass
    keys: KeyRing | None
    audience: bytes  # this component's name, as request signatures carry it (DESIGN §10)
    open_paths: frozenset[str]
    allowed_origins: frozenset[str]
    replay_capacity: int
    warning: str | None = None  # logged once at startup when auth is off

    @property
    def enabled(self) -> bool:
        return self.keys is not None


def origin_of(url: str) -> str:
    """`https://Host:443/x` -> `https://host`: the form browsers send in `Origin`."""
    parts = urlsplit(url.strip())
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    default = {"http": 80, "https": 443}.get(scheme)
    port = f":{parts.port}" if parts.port and parts.port != default else ""
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}{port}"


def bind_host(settings: Settings, argv: Sequence[str] | None = None) -> str:
    """Where this process listens: uvicorn's `--host` when served by its CLI, else `<NAME>_BIND_HOST`."""
    argv = sys.argv if argv is None else argv
    for index, arg in enumerate(argv):
        if arg == "--host" and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith("--host="):
            return arg.partition("=")[2]
    return settings.bind_host


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def auth_policy(settings: Settings, host: str | None = None) -> AuthPolicy:
    """The policy, or `SettingsError` naming the variable and the fix (never a secret)."""
    raw = settings.auth_keys.get_secret_value() if settings.auth_keys is not None else None
    try:
        keys = parse_keys(raw)
    except AuthKeysError as exc:
        raise SettingsError(str(exc)) from None
    host = bind_host(settings) if host is None else host
    required = env_name("auth_required")
    warning = None
    if keys is None:
        if settings.auth_required is True:
            raise SettingsError(f"{required}=true but {KEYS_VARIABLE} is not set: {_ENABLE_HINT}")
        if settings.auth_required is None and not is_loopback(host):
            raise SettingsError(
                f"listening on {host} with no {KEYS_VARIABLE}: anyone who reaches this address could call the API "
                f"and publish events as this component. To fix: {_ENABLE_HINT}; or set {required}=false to run "
                "without authentication on a network you trust"
            )
        warning = f"authentication is disabled: every route is open. To turn it on, {_ENABLE_HINT}"
    return AuthPolicy(
        keys=keys,
        audience=settings.component_name.encode(),
        open_paths=ALWAYS_OPEN | frozenset(settings.auth_open_paths),
        allowed_origins=frozenset({origin_of(settings.base_url)} | {origin_of(o) for o in settings.ws_allowed_origins}),
        replay_capacity=settings.auth_replay_cache_size,
        warning=warning,
    )


def auth_report(settings: Settings) -> tuple[str, str, str]:
    """For `doctor`: ("ok" | "warn" | "fail", what it finds, how to fix or turn it on)."""
    try:
        policy = auth_policy(settings)
    except SettingsError as exc:
        return "fail", f"authentication: {exc}", _ENABLE_HINT
    if policy.keys is None:
        off = f"authentication is off (no {KEYS_VARIABLE}): every route is open"
        return "warn", off, f"to turn it on, {_ENABLE_HINT}"
    kids = ", ".join(key.kid for key in policy.keys.keys)
    return "ok", f"authentication is on: key ids {kids} (signing with {policy.keys.signing.kid})", ""
