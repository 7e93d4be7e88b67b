"""The suite's own scenarios, run with a password in every address that can carry one.

    SECRET_SCAN_PASSWORD=<password> pytest -p tests.support.secret_scan -rA --basetemp=<dir>

With the variable set, this plugin points `HERMES_URL` at `http://tekton:<password>@...`
(a loopback port where nothing listens, as when no Hermes runs), the session's
`redis-server` requires the password (`redis_plugin`), and every HTTP response
a test receives through httpx is written to `<basetemp>/responses.txt`. Then
the password must appear nowhere: not in the run's output (`-rA` shows what
every test logged), not in the files under basetemp (the component processes'
logs, the responses). The template's `tests/test_generated_suite.py` runs the
scan and greps; without the variable this plugin does nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import httpx
import pytest

from .servers import free_port

PASSWORD_VARIABLE = "SECRET_SCAN_PASSWORD"


def pytest_configure(config: pytest.Config) -> None:
    password = os.environ.get(PASSWORD_VARIABLE)
    if password:
        # Tests that run a Hermes of their own set HERMES_URL themselves.
        os.environ["HERMES_URL"] = f"http://tekton:{password}@127.0.0.1:{free_port()}"


def pytest_report_header(config: pytest.Config) -> str | None:
    if os.environ.get(PASSWORD_VARIABLE):
        return "secret scan: on (HERMES_URL and the session's Redis carry a password)"
    return None


def write_response(out: TextIO, response: httpx.Response) -> None:
    """Status, headers and (when read) body; the request by path only: its URL may carry a test's credentials."""
    try:
        body = response.text
    except httpx.ResponseNotRead:
        body = "<streamed>"
    headers = "".join(f"{name}: {value}\n" for name, value in response.headers.multi_items())
    out.write(f"{response.status_code} {response.request.method} {response.request.url.path}\n{headers}{body}\n\n")
    out.flush()


@pytest.fixture(scope="session", autouse=True)
def responses_recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path | None]:
    """Every httpx response of the session, appended to `<basetemp>/responses.txt`."""
    if not os.environ.get(PASSWORD_VARIABLE):
        yield None
        return
    path = tmp_path_factory.getbasetemp() / "responses.txt"
    sync_send, async_send = httpx.Client.send, httpx.AsyncClient.send
    with path.open("a", encoding="utf-8") as out, pytest.MonkeyPatch.context() as patch:

        def send(self: httpx.Client, request: httpx.Request, **kwargs: Any) -> httpx.Response:
            response = sync_send(self, request, **kwargs)
            write_response(out, response)
            return response

        async def asend(self: httpx.AsyncClient, request: httpx.Request, **kwargs: Any) -> httpx.Response:
            response = await async_send(self, request, **kwargs)
            write_response(out, response)
            return response

        patch.setattr(httpx.Client, "send", send)
        patch.setattr(httpx.AsyncClient, "send", asend)
        yield path
