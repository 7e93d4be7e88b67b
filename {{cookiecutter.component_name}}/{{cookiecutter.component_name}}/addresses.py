"""Where Tekton components live, by Tekton's environment conventions.

Pure functions over a mapping of variables, so the settings (for this
component) and discovery (for any peer, without this component's settings)
read the conventions the same way: Hermes at `HERMES_URL` (written with or
without a trailing `/api`), else `HERMES_HOST`/`HERMES_PORT`; a peer at
`<PEER>_HOST`/`<PEER>_PORT`; `TEKTON_HOST` for any host not given.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

from dotenv import dotenv_values

from .about import TEKTON_PORTS

DEFAULT_HOST = "localhost"


class AddressError(ValueError):
    """A variable that should hold an address or a port does not."""


def redact_url(url: str) -> str:
    """`url` with any password replaced by `***`: the one way a URL is logged or shown."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        user = parts.username or ""
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:
        # Unparsable (e.g. a bad port): show the scheme and a marker, never the rest.
        return f"{url.split(':', 1)[0]}://***" if "@" in url else url
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))


def env_key(name: str) -> str:
    """`tekton-core` -> `TEKTON_CORE`, the prefix of its `_HOST`/`_PORT` variables."""
    return re.sub(r"[^0-9A-Za-z]+", "_", name.strip()).upper()


def hermes_base_url(url: str | None, host: str | None, port: int, tekton_host: str | None) -> str:
    """Hermes' root URL (its routes are under `/api/`)."""
    if url:
        return url.rstrip("/").removesuffix("/api")
    return f"http://{host or tekton_host or DEFAULT_HOST}:{port}"


def _port(environ: Mapping[str, str], variable: str) -> int | None:
    raw = environ.get(variable)
    if raw is None or not raw.strip():
        return None
    if not raw.strip().isdigit() or not 0 < int(raw) < 65536:
        raise AddressError(f"{variable}={raw!r} is not a port number: set it to e.g. 8003")
    return int(raw)


def hermes_base_url_from_env(environ: Mapping[str, str]) -> str:
    url = environ.get("HERMES_URL") or None
    if url and not url.startswith(("http://", "https://")):
        raise AddressError(f"HERMES_URL={url!r} must start with http:// or https://")
    port = _port(environ, "HERMES_PORT") or TEKTON_PORTS["hermes"]
    return hermes_base_url(url, environ.get("HERMES_HOST"), port, environ.get("TEKTON_HOST"))


def static_address(name: str, environ: Mapping[str, str]) -> tuple[str, int] | None:
    """`<PEER>_HOST`/`<PEER>_PORT`, else `TEKTON_HOST` and the known Tekton port; None if no port is known."""
    prefix = env_key(name)
    if prefix == "HERMES":
        # Hermes has its own conventions (`HERMES_URL` first): one reading of them.
        hermes = urlsplit(hermes_base_url_from_env(environ))
        default_port = 443 if hermes.scheme == "https" else 80
        return hermes.hostname or DEFAULT_HOST, hermes.port or default_port
    port = _port(environ, f"{prefix}_PORT") or TEKTON_PORTS.get(prefix.lower())
    if port is None:
        return None
    return environ.get(f"{prefix}_HOST") or environ.get("TEKTON_HOST") or DEFAULT_HOST, port


def environment(env_file: str = ".env") -> dict[str, str]:
    """The process environment over `.env` (as the settings read them), for code that runs without settings."""
    from_file = {key: value for key, value in dotenv_values(env_file).items() if value is not None}
    return {**from_file, **os.environ}
