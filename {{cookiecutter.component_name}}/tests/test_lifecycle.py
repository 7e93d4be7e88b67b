"""Startup, shutdown and failure handling, in-process and as a real process."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import signal
from pathlib import Path

import httpx
import pytest

from {{ cookiecutter.component_name }}.app import create_app
from {{ cookiecutter.component_name }}.client._pool import async_client
from {{ cookiecutter.component_name }}.hermes.registrar import Registrar
from {{ cookiecutter.component_name }}.observability import ACCESS_FLUSH_SECONDS, AccessLog, configure_logging

from .conftest import SettingsFactory
from .support.hermes import LocalHermes
from .support.servers import ComponentProcess, running_server
from .support.waiting import eventually

PACKAGE = "{{ cookiecutter.component_name }}"


def test_ready_is_503_before_the_component_unregisters(
    make_settings: SettingsFactory, local_hermes: LocalHermes, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(hermes_enabled=True, hermes_url=local_hermes.url, heartbeat_interval=0.1)
    app = create_app(settings)
    ready_when_unregistering: list[int] = []
    unregister = Registrar.stop

    async def observed_stop(registrar: Registrar) -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            ready_when_unregistering.append((await http.get("/ready")).status_code)
        await unregister(registrar)

    monkeypatch.setattr(Registrar, "stop", observed_stop)
    with running_server(app) as url:
        eventually(lambda: httpx.get(f"{url}/health").json()["registered_with_hermes"])
        assert httpx.get(f"{url}/ready").status_code == 200
    assert ready_when_unregistering == [503]
    assert "{{ cookiecutter.component_name }}" not in local_hermes.component_ids()


def test_unhandled_error_is_a_json_500_without_a_trace(make_settings: SettingsFactory) -> None:
    app = create_app(make_settings())

    async def explode() -> None:
        raise RuntimeError("secret internals")

    app.add_api_route("/api/v1/explode", explode)
    with running_server(app) as url:
        response = httpx.get(f"{url}/api/v1/explode")
    assert response.status_code == 500
    assert response.json() == {
        "error": "internal_error",
        "message": "Internal server error",
        "request_id": response.headers["x-request-id"],
    }
    assert "secret internals" not in response.text


def test_sigterm_shuts_down_cleanly(tmp_path: Path) -> None:
    env = {"{{ cookiecutter.component_name | upper }}_HERMES_ENABLED": "false"}
    component = ComponentProcess("{{ cookiecutter.component_name }}", env=env, log_dir=tmp_path).start()
    try:
        assert httpx.get(f"{component.base_url}/health").status_code == 200
    finally:
        code = component.stop(signal.SIGTERM)
    assert code in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in component.log
    assert "Traceback" not in component.log


async def test_access_lines_are_written_together_and_stay_in_order_with_other_lines() -> None:
    configure_logging("info", "batched-access")
    logger = logging.getLogger("batched-access")
    stream = io.StringIO()
    logger.handlers[0].setStream(stream)  # type: ignore[attr-defined]
    access = AccessLog(logger)
    access.request("GET", "/a", 200, 0.1, "r-1")
    access.request("GET", "/b", 200, 0.1, "r-2")
    assert stream.getvalue() == ""  # pending: one write for both, a moment later
    logger.info("other")  # any other line first writes what is pending, so the order holds
    assert [json.loads(line).get("path", "other") for line in stream.getvalue().splitlines()] == ["/a", "/b", "other"]
    access.request("GET", "/c", 200, 0.1, "r-3")
    await asyncio.sleep(ACCESS_FLUSH_SECONDS * 4)
    assert json.loads(stream.getvalue().splitlines()[-1])["path"] == "/c"  # written without any other line


def test_access_log_is_json_carrying_the_request_id(tmp_path: Path) -> None:
    env = {"{{ cookiecutter.component_name | upper }}_HERMES_ENABLED": "false"}
    with ComponentProcess(PACKAGE, env=env, log_dir=tmp_path) as component:
        response = httpx.post(
            f"{component.base_url}/api/v1/process", json={"input": 1}, headers={"X-Request-ID": "r-7"}
        )
        assert response.status_code == 200
        eventually(lambda: '"r-7"' in component.log)
    lines = [json.loads(line) for line in component.log.splitlines() if line.startswith("{")]
    access = [line for line in lines if line.get("request_id") == "r-7"]
    assert access[-1]["message"] == "request"
    assert (access[-1]["method"], access[-1]["path"], access[-1]["status"]) == ("POST", "/api/v1/process", 200)
    assert access[-1]["duration_ms"] >= 0


def test_the_lifespan_closes_the_outgoing_pool_of_its_loop(make_settings: SettingsFactory) -> None:
    app = create_app(make_settings())
    pools: list[httpx.AsyncClient] = []

    @app.get("/_pool")
    async def pool() -> dict[str, bool]:
        pools.append(async_client())
        return {"open": not pools[0].is_closed}

    with running_server(app) as url:
        assert httpx.get(f"{url}/_pool").json() == {"open": True}
    assert pools[0].is_closed


QUIET = {"{{ cookiecutter.component_name | upper }}_HERMES_ENABLED": "false"}


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_python_m_stops_cleanly_on_a_signal(tmp_path: Path, sig: int) -> None:
    component = ComponentProcess(PACKAGE, env=QUIET, log_dir=tmp_path, launcher="module").start()
    code = component.stop(sig)
    assert code in (0, 128 + sig, -sig)
    assert "Application shutdown complete" in component.log
    assert "Traceback" not in component.log


@pytest.mark.long
def test_shutdown_drain_answers_503_on_ready_while_still_serving(tmp_path: Path) -> None:
    env = {**QUIET, "{{ cookiecutter.component_name | upper }}_SHUTDOWN_DRAIN": "5"}
    component = ComponentProcess(PACKAGE, env=env, log_dir=tmp_path, launcher="module").start()
    assert component.process is not None
    component.process.send_signal(signal.SIGTERM)
    try:
        # Within the 5 s drain: not ready, yet still serving.
        eventually(lambda: httpx.get(f"{component.base_url}/ready", timeout=1.0).status_code == 503, within=4)
        assert httpx.get(f"{component.base_url}/health", timeout=1.0).status_code == 200
    finally:
        code = component.wait(30)  # the drain ends by itself
    assert code in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in component.log
    assert "Traceback" not in component.log
