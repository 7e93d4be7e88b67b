"""The local Hermes speaks Hermes' real contract, so tests against it mean something."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from .support.forkserver import popen_python
from .support.hermes import LocalHermes
from .support.servers import free_port
from .support.waiting import eventually

BODY = {"component_id": "peer-1", "name": "peer", "version": "1.0", "type": "service", "endpoint": "http://h:9001"}


def register(hermes: LocalHermes, **changes: Any) -> dict[str, Any]:
    answer: dict[str, Any] = httpx.post(f"{hermes.url}/api/register", json={**BODY, **changes}, timeout=5).json()
    return answer


def heartbeat(hermes: LocalHermes, token: str | None, component_id: str = "peer-1") -> httpx.Response:
    headers = {"X-Authentication-Token": token} if token is not None else {}
    return httpx.post(
        f"{hermes.url}/api/heartbeat", json={"component_id": component_id, "status": {}}, headers=headers, timeout=5
    )


def test_register_answers_camel_case_with_a_token(local_hermes: LocalHermes) -> None:
    answer = register(local_hermes)
    assert (answer["success"], answer["componentId"]) == (True, "peer-1")
    assert answer["token"]


def test_heartbeat_needs_the_token_header(local_hermes: LocalHermes) -> None:
    token = register(local_hermes)["token"]
    assert heartbeat(local_hermes, None).status_code == 422
    assert heartbeat(local_hermes, "forged").status_code == 401
    assert heartbeat(local_hermes, token, component_id="someone-else").status_code == 401
    assert heartbeat(local_hermes, token).json()["success"] is True


def test_restart_forgets_registrations_but_old_tokens_still_pass_heartbeats(local_hermes: LocalHermes) -> None:
    token = register(local_hermes)["token"]
    local_hermes.restart()
    assert heartbeat(local_hermes, token).status_code == 200
    assert httpx.get(f"{local_hermes.url}/api/components", timeout=5).json() == {"total": 0, "components": []}


def test_tokens_expire_after_their_lifetime(local_hermes_factory: Any) -> None:
    hermes = local_hermes_factory(token_lifetime=0.2)
    token = register(hermes)["token"]
    eventually(lambda: heartbeat(hermes, token).status_code == 401)


def test_unregister_takes_the_id_as_a_query_parameter_and_the_token(local_hermes: LocalHermes) -> None:
    token = register(local_hermes)["token"]
    url = f"{local_hermes.url}/api/unregister"
    assert (
        httpx.post(url, json={"component_id": "peer-1"}, headers={"X-Authentication-Token": token}).status_code == 422
    )
    assert (
        httpx.post(url, params={"component_id": "peer-1"}, headers={"X-Authentication-Token": "x"}).status_code == 401
    )
    ok = httpx.post(url, params={"component_id": "peer-1"}, headers={"X-Authentication-Token": token})
    assert ok.status_code == 200
    assert (
        httpx.post(url, params={"component_id": "peer-1"}, headers={"X-Authentication-Token": token}).status_code == 401
    )


def test_healthy_only_drops_components_without_a_recent_heartbeat(local_hermes_factory: Any) -> None:
    hermes = local_hermes_factory(healthy_window=0.2)
    register(hermes)
    url = f"{hermes.url}/api/components"
    eventually(lambda: httpx.get(url, params={"healthy_only": "true"}).json()["total"] == 0)
    assert httpx.get(url).json()["total"] == 1


def test_a_registration_has_no_heartbeat_and_is_not_healthy_until_one_arrives(local_hermes: LocalHermes) -> None:
    # The real Hermes: `last_heartbeat` is null after every registration (first, renewal, again).
    url = f"{local_hermes.url}/api/components"
    token = register(local_hermes)["token"]
    assert httpx.get(url).json()["components"][0]["last_heartbeat"] is None
    assert httpx.get(url, params={"healthy_only": "true"}).json()["total"] == 0
    assert heartbeat(local_hermes, token).status_code == 200
    assert httpx.get(url, params={"healthy_only": "true"}).json()["total"] == 1
    register(local_hermes)
    assert httpx.get(url, params={"healthy_only": "true"}).json()["total"] == 0


def test_bounce_serves_again_on_the_same_port_with_or_without_its_registrations(local_hermes: LocalHermes) -> None:
    url = f"{local_hermes.url}/api/components"
    token = register(local_hermes)["token"]
    local_hermes.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(url, timeout=5)
    local_hermes.start()
    local_hermes.bounce(forget=False)
    assert httpx.get(url, timeout=5).json()["total"] == 1
    local_hermes.bounce(forget=True)
    assert httpx.get(url, timeout=5).json()["total"] == 0
    assert heartbeat(local_hermes, token).status_code == 200  # the old token still passes


def test_by_name_returns_only_the_oldest_entry(local_hermes: LocalHermes) -> None:
    register(local_hermes, component_id="peer-1")
    register(local_hermes, component_id="peer-2")
    assert httpx.get(f"{local_hermes.url}/api/components/peer").json()["component_id"] == "peer-1"
    assert httpx.get(f"{local_hermes.url}/api/components/nobody").status_code == 404


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("500", 500), ("html", "text/html"), ("truncated", ValueError), ("reset", httpx.TransportError)],
)
def test_faults_answer_badly(local_hermes: LocalHermes, mode: Any, expected: Any) -> None:
    local_hermes.fail(mode, times=1)
    try:
        response = httpx.get(f"{local_hermes.url}/api/components", timeout=5)
    except httpx.TransportError as exc:
        assert expected is httpx.TransportError, exc
        return
    if expected == 500:
        assert response.status_code == 500
    elif expected == "text/html":
        assert response.headers["content-type"].startswith("text/html")
    else:
        with pytest.raises(ValueError):
            response.json()
    assert httpx.get(f"{local_hermes.url}/api/components", timeout=5).status_code == 200  # `times=1` used up


def test_hang_holds_requests_until_healed(local_hermes: LocalHermes) -> None:
    local_hermes.fail("hang")
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(f"{local_hermes.url}/api/components", timeout=0.3)
    local_hermes.heal()
    assert httpx.get(f"{local_hermes.url}/api/components", timeout=5).status_code == 200


def test_local_hermes_runs_as_a_command(tmp_path: Path) -> None:
    port = free_port()
    project = Path(__file__).resolve().parent.parent
    output = tmp_path / "hermes.log"
    process = popen_python(["-m", "tests.support.hermes", "--port", str(port)], cwd=project, stdout=output)
    try:
        eventually(lambda: httpx.get(f"http://127.0.0.1:{port}/api/components", timeout=1).status_code == 200)
        httpx.post(f"http://127.0.0.1:{port}/_hermes/fault", json={"mode": "500", "times": 1}).raise_for_status()
        assert httpx.get(f"http://127.0.0.1:{port}/api/components").status_code == 500
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=15)
    # Run as a module, it must not be imported twice (Python warns about `sys.modules` then).
    assert "RuntimeWarning" not in output.read_text(), output.read_text()
