"""Live smoke test: the baked component as a real process, installed nowhere.

It runs from the bake directory with this interpreter (whose environment has
the component's dependencies), answers every kind of route, and stops cleanly
on SIGTERM. No Hermes is running: HERMES_PORT points at a closed port, so the
component must start and serve without it.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tooling import DEFAULT_NAME, OPTIONS, free_port

from .baking import FREE_TEXT, Baker, clean_env

pytestmark = pytest.mark.slow

VARIANTS: dict[str, dict[str, str]] = {
    "defaults": {},
    "component_name=data_pipeline": {"component_name": "data_pipeline"},
    "description=free-text": {"description": FREE_TEXT},
}


@dataclass
class Component:
    """A started component process, its base URL and its log file."""

    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    @classmethod
    def start(cls, project: Path, package: str, command: list[str], port: int, log_path: Path) -> Component:
        env = clean_env(
            package,
            **{f"{package.upper()}_PORT": str(port), "HERMES_HOST": "127.0.0.1", "HERMES_PORT": str(free_port())},
        )
        with log_path.open("wb") as log:
            process = subprocess.Popen(command, cwd=project, env=env, stdout=log, stderr=subprocess.STDOUT)
        component = cls(process, f"http://127.0.0.1:{port}", log_path)
        component.wait_until_serving()
        return component

    def wait_until_serving(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"component exited with {self.process.returncode}:\n{self.log}")
            try:
                httpx.get(f"{self.base_url}/health", timeout=1.0)
                return
            except httpx.TransportError:
                time.sleep(0.05)
        self.process.kill()
        raise AssertionError(f"component not serving after {timeout}s:\n{self.log}")

    def stop(self, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError(f"component ignored SIGTERM for {timeout}s:\n{self.log}") from None
        return self.process.returncode

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def uvicorn_command(package: str, port: int) -> list[str]:
    return [sys.executable, "-m", "uvicorn", f"{package}.app:app", "--host", "127.0.0.1", "--port", str(port)]


def assert_stopped_cleanly(component: Component) -> None:
    code = component.stop()
    log = component.log
    assert code in (0, -signal.SIGTERM), log
    assert "Application shutdown complete" in log, log
    assert "Traceback" not in log, log


@pytest.fixture(scope="module", params=list(VARIANTS.values()), ids=list(VARIANTS))
def live(
    request: pytest.FixtureRequest, baked: Baker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Component, dict[str, str]]]:
    """One component per variant, shared by the route checks below; yields it and the options chosen."""
    options: dict[str, str] = {**OPTIONS, **request.param}
    package = options["component_name"]
    port = free_port()
    log_path = tmp_path_factory.mktemp("live") / "component.log"
    component = Component.start(baked(request.param), package, uvicorn_command(package, port), port, log_path)
    try:
        yield component, options
    finally:
        component.stop()


def get(component: Component, path: str) -> httpx.Response:
    return httpx.get(f"{component.base_url}{path}", timeout=10.0)


def post(component: Component, path: str, body: Any) -> httpx.Response:
    return httpx.post(f"{component.base_url}{path}", json=body, timeout=10.0)


def test_live_health_reports_the_component(live: tuple[Component, dict[str, str]]) -> None:
    component, options = live
    response = get(component, "/health")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["component"] == options["component_name"]
    assert body["port"] == int(component.base_url.rsplit(":", 1)[1])
    assert body["status"] in ("healthy", "degraded")


def test_live_ready_says_ready(live: tuple[Component, dict[str, str]]) -> None:
    component, _ = live
    response = get(component, "/ready")
    assert (response.status_code, response.json()) == (200, {"ready": True})


def test_live_discovery_describes_the_component(live: tuple[Component, dict[str, str]]) -> None:
    component, options = live
    body = get(component, "/api/v1/discovery").json()
    assert (body["component"], body["description"]) == (options["component_name"], options["description"])


def test_live_discovery_lists_the_routes(live: tuple[Component, dict[str, str]]) -> None:
    component, _ = live
    body = get(component, "/api/v1/discovery").json()
    listed = str(body["endpoints"])
    for path in ("/health", "/api/v1/process", "/api/v1/batch"):
        assert path in listed


def test_live_process_answers_a_result(live: tuple[Component, dict[str, str]]) -> None:
    component, _ = live
    response = post(component, "/api/v1/process", {"input": {"text": "hello"}})
    assert response.status_code == 200, response.text
    assert "result" in response.json()


def test_live_batch_accounts_for_every_item(live: tuple[Component, dict[str, str]]) -> None:
    component, _ = live
    items = [{"task": "a", "priority": 1}, {"task": "b", "priority": 2}, {"task": "c"}]
    response = post(component, "/api/v1/batch", {"items": items})
    assert response.status_code == 200, response.text
    body = response.json()
    indexes = sorted(entry["index"] for entry in body["processed"] + body["failed"])
    assert indexes == [0, 1, 2]


def test_live_metrics_are_prometheus_text(live: tuple[Component, dict[str, str]]) -> None:
    component, _ = live
    get(component, "/health")
    response = get(component, "/metrics")
    assert response.status_code == 200
    assert "# TYPE" in response.text


def test_live_docs_are_served(live: tuple[Component, dict[str, str]]) -> None:
    component, _ = live
    docs = get(component, "/api/v1/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()
    assert get(component, "/api/v1/openapi.json").json()["paths"]


@pytest.mark.parametrize("options", VARIANTS.values(), ids=VARIANTS.keys())
def test_uvicorn_run_stops_cleanly_on_sigterm(baked: Baker, tmp_path: Path, options: dict[str, str]) -> None:
    package = options.get("component_name", DEFAULT_NAME)
    port = free_port()
    component = Component.start(baked(options), package, uvicorn_command(package, port), port, tmp_path / "log")
    assert get(component, "/health").status_code == 200
    assert_stopped_cleanly(component)


@pytest.mark.parametrize("options", VARIANTS.values(), ids=VARIANTS.keys())
def test_python_m_package_serves_and_stops_cleanly_on_sigterm(
    baked: Baker, tmp_path: Path, options: dict[str, str]
) -> None:
    package = options.get("component_name", DEFAULT_NAME)
    port = free_port()
    command = [sys.executable, "-m", package]
    component = Component.start(baked(options), package, command, port, tmp_path / "log")
    assert get(component, "/health").json()["port"] == port
    assert_stopped_cleanly(component)
