"""Test servers hold their ports: a port merely found free can go to another xdist worker's
server, or to an outgoing connection, before the server meant for it binds (seen in CI)."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.types import ASGIApp

from .support.hermes import LocalHermes
from .support.servers import free_port, refused_port, running_server
from .test_hermes_local import register


def _taken(port: int) -> bool:
    with socket.socket() as other:  # another server, e.g. another xdist worker's, trying the port
        try:
            other.bind(("127.0.0.1", port))
        except OSError:
            return True
        return False


def test_a_refused_port_refuses_connections_and_no_other_server_can_take_it() -> None:
    port = refused_port()
    assert _taken(port)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/", timeout=5)


def test_a_running_servers_port_is_held_while_its_lifespan_starts() -> None:
    port = free_port()
    seen: list[bool] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: ASGIApp) -> AsyncIterator[None]:
        seen.append(_taken(port))  # uvicorn binds only after the lifespan has started
        yield

    with running_server(Starlette(lifespan=lifespan), port=port) as url:
        assert httpx.get(f"{url}/nothing", timeout=5).status_code == 404
    assert seen == [True]
    assert not _taken(port)  # freed once the server is gone


def test_while_down_its_port_refuses_connections_and_no_other_server_can_take_it() -> None:
    """A test that keeps Hermes down for seconds must find its own Hermes there when it comes back
    (a kernel-chosen free port, released meanwhile, went to another worker's server)."""
    hermes = LocalHermes()
    try:
        for _ in range(2):  # before the first start, and after a stop
            assert _taken(hermes.port)
            with pytest.raises(httpx.ConnectError):
                httpx.get(f"{hermes.url}/api/components", timeout=5)
            hermes.start()
            assert httpx.get(f"{hermes.url}/api/components", timeout=5).status_code == 200
            register(hermes)  # a kept-alive connection or two, open when it stops
            hermes.stop()
    finally:
        hermes.close()
    assert not _taken(hermes.port)
