"""Serving limits (`serve.py`), over real sockets, for both of uvicorn's HTTP parsers.

The protocol classes build on uvicorn's own (not a public API); these tests are
what holds them to the pinned uvicorn range.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from {{ cookiecutter.component_name }}.app import create_app
from {{ cookiecutter.component_name }}.serve import HttpProtocol, guarded_h11, server_config
from {{ cookiecutter.component_name }}.settings import Settings

from .conftest import SettingsFactory
from .support.servers import ComponentProcess, running_config

PACKAGE = "{{ cookiecutter.component_name }}"
PARSERS: dict[str, type[asyncio.Protocol]] = {"h11": guarded_h11(), "httptools": HttpProtocol}
LIMITS = {"max_header_bytes": 4096, "max_header_count": 20, "max_request_line_bytes": 1024, "header_timeout": 0.5}


@contextmanager
def serving(settings: Settings, parser: str) -> Iterator[int]:
    """The component under `serve.py`'s uvicorn config, in a thread; yields its port."""
    config = server_config(settings, create_app(settings), http=PARSERS[parser])
    config.log_level = "warning"
    with running_config(config) as port:
        yield port


def exchange(port: int, request: bytes, wait: float = 5.0) -> bytes:
    """Send `request` raw and read until the server closes the connection (or `wait` passes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        sock.sendall(request)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    return received


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/1.1 ") else 0


@pytest.fixture(params=list(PARSERS))
def port(request: pytest.FixtureRequest, make_settings: SettingsFactory) -> Iterator[int]:
    with serving(make_settings(**LIMITS), request.param) as served:
        yield served


def test_ordinary_requests_pass_on_a_kept_alive_connection(port: int) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
        for _ in range(3):
            assert http.get("/health", headers={f"x-h{i}": "v" for i in range(10)}).status_code == 200
        assert http.post("/api/v1/process", json={"input": "x" * 2000}).status_code == 200


def test_headers_over_the_size_limit_get_431(port: int) -> None:
    response = exchange(port, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 5000 + b"\r\n\r\n")
    assert status_of(response) == 431
    assert b'"error": "request_header_fields_too_large"' in response


def test_a_huge_header_block_is_cut_off_without_being_buffered(port: int) -> None:
    # Sent in pieces, never finished: refused as soon as it passes the limit.
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        try:
            for _ in range(100):
                sock.sendall(b"X-Filler: " + b"b" * 1000 + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert status_of(sock.recv(65536)) == 431


def test_too_many_headers_get_431(port: int) -> None:
    headers = b"".join(b"X-N%d: v\r\n" % i for i in range(25))
    assert status_of(exchange(port, b"GET /health HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")) == 431


def test_a_request_line_over_the_limit_gets_431(port: int) -> None:
    response = exchange(port, b"GET /health?q=" + b"q" * 2000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status_of(response) == 431


def test_a_silent_connection_is_closed_after_the_header_timeout(port: int) -> None:
    started = time.monotonic()
    response = exchange(port, b"", wait=10)
    assert status_of(response) == 408
    assert time.monotonic() - started < 5


def test_headers_that_never_finish_are_timed_out(port: int) -> None:
    response = exchange(port, b"GET /health HTTP/1.1\r\nHost: x\r\n", wait=10)
    assert status_of(response) == 408


def test_an_idle_kept_alive_connection_is_timed_out_by_the_keep_alive_limit(make_settings: SettingsFactory) -> None:
    with serving(make_settings(timeout_keep_alive=1, header_timeout=30), "httptools") as served:
        started = time.monotonic()
        response = exchange(served, b"GET /ready HTTP/1.1\r\nHost: x\r\n\r\n", wait=10)
        assert status_of(response) == 200
        assert time.monotonic() - started < 5  # closed by the server, not by our read timeout


def test_python_m_serves_with_the_limits_from_settings(tmp_path: Path) -> None:
    env = {f"{PACKAGE.upper()}_HERMES_ENABLED": "false", f"{PACKAGE.upper()}_MAX_HEADER_BYTES": "2048"}
    with ComponentProcess(PACKAGE, env=env, log_dir=tmp_path, launcher="module") as component:
        response = exchange(component.port, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 3000 + b"\r\n\r\n")
        assert status_of(response) == 431
        assert httpx.get(f"{component.base_url}/health").status_code == 200


def test_many_silent_connections_do_not_stop_service(make_settings: SettingsFactory) -> None:
    async def hold_and_probe(port: int) -> int:
        silent = [await asyncio.open_connection("127.0.0.1", port) for _ in range(200)]
        async with httpx.AsyncClient() as http:
            status = (await http.get(f"http://127.0.0.1:{port}/health")).status_code
        closed = 0
        for reader, writer in silent:
            if await asyncio.wait_for(reader.read(), timeout=10) is not None:
                closed += 1  # read() returned: the server closed it (after its 408)
            writer.close()
            await writer.wait_closed()
        assert closed == len(silent)
        return status

    with serving(make_settings(**LIMITS), "httptools") as served:
        assert asyncio.run(hold_and_probe(served)) == 200
