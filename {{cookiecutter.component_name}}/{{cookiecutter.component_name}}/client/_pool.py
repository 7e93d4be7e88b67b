"""The shared HTTP connection pools: one `httpx.AsyncClient` per event loop, one `httpx.Client`.

An `AsyncClient` is bound to the loop that first used it, so a single
process-wide one breaks on the second `asyncio.run`; keying by loop keeps
one warm pool per loop. The app's lifespan calls `close_pools()`.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TypeVar

import httpx

from ._discovery import close_shared_hermes
from ._lifetime import close_with_loop
from ._signing import shared_auth

# Enough keep-alive connections for a few dozen concurrent calls to one peer. An idle connection is let
# go before a peer's own keep-alive timeout closes it (a component's TIMEOUT_KEEP_ALIVE, uvicorn's: 5 s):
# reusing one the peer is closing at that moment fails the call (httpx.ReadError), and a POST is not retried.
LIMITS = httpx.Limits(max_connections=200, max_keepalive_connections=50, keepalive_expiry=4.0)
DEFAULT_TIMEOUT = httpx.Timeout(30.0)

_async_clients: dict[asyncio.AbstractEventLoop, httpx.AsyncClient] = {}
_sync_client: httpx.Client | None = None
_sync_lock = threading.Lock()


Pool = TypeVar("Pool", httpx.AsyncClient, httpx.Client)


class _NoCookies(httpx.Cookies):
    """A jar that keeps no cookie a peer sets. One pool calls every peer, and cookies ignore ports: a
    cookie set by the component on 127.0.0.1:8003 would go to every other one on 127.0.0.1. (httpx also
    wraps each answer and its request in urllib objects to look for cookies: ~8% of a pooled call.)"""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


def _lean(client: Pool) -> Pool:
    """Drop two of httpx's default headers that peers have no use for: `Accept-Encoding` (components
    do not compress, and decompressing would only cost the caller) and `Connection: keep-alive`
    (HTTP/1.1's default anyway), and keep no cookies. Every header is handled several times per call
    by httpx."""
    for name in ("Accept-Encoding", "Connection"):
        del client.headers[name]
    client._cookies = _NoCookies()  # httpx has no public switch; its `cookies` setter copies into a plain jar
    return client


def async_client() -> httpx.AsyncClient:
    """The pooled client of the running event loop, created on first use."""
    loop = asyncio.get_running_loop()
    client = _async_clients.get(loop)
    if client is None or client.is_closed:
        # A finished `asyncio.run` leaves its loop closed: forget its pool (its sockets died with it),
        # or every run would keep one client and its loop alive.
        for dead in [other for other in _async_clients if other.is_closed()]:
            del _async_clients[dead]
        # trust_env=False: peers are on the local network, a system proxy would only get in the way.
        # auth: every call signed when TEKTON_AUTH_KEYS is set (DESIGN §10), a no-op otherwise.
        client = httpx.AsyncClient(limits=LIMITS, timeout=DEFAULT_TIMEOUT, trust_env=False, auth=shared_auth())
        _async_clients[loop] = _lean(client)
        # Also when nobody calls close_pools() (the guide's asyncio.run snippets): this pool, and discovery's.
        close_with_loop(client.aclose, close_shared_hermes)
    return client


def sync_client() -> httpx.Client:
    """The process-wide pooled client for synchronous callers (thread-safe)."""
    global _sync_client
    with _sync_lock:
        if _sync_client is None or _sync_client.is_closed:
            _sync_client = _lean(
                httpx.Client(limits=LIMITS, timeout=DEFAULT_TIMEOUT, trust_env=False, auth=shared_auth())
            )
        return _sync_client


async def close_pools() -> None:
    """Close this loop's async pool, the sync pool and the shared discovery client.

    The app's lifespan calls it at shutdown; the next call opens fresh ones.
    """
    global _sync_client
    try:
        client = _async_clients.pop(asyncio.get_running_loop(), None)
    except RuntimeError:
        client = None
    if client is not None:
        await client.aclose()
    with _sync_lock:
        sync, _sync_client = _sync_client, None
    if sync is not None:
        sync.close()
    await close_shared_hermes()
