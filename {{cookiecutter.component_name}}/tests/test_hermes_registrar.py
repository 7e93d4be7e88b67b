"""Self-registration with Hermes, against the local Hermes over real HTTP.

Intervals are sub-second; outcomes are awaited with generous deadlines.
"""

from __future__ import annotations

import asyncio
import json
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from {{ cookiecutter.component_name }}.app import create_app
from {{ cookiecutter.component_name }}.hermes.registrar import Registrar, registration_backoff
from {{ cookiecutter.component_name }}.settings import Settings

from .support.hermes import LocalHermes
from .support.servers import ComponentProcess, refused_port, running_server
from .support.waiting import eventually

NAME = "{{ cookiecutter.component_name }}"
PREFIX = "{{ cookiecutter.component_name | upper }}_"

SettingsFactory = Callable[..., Settings]
HermesFactory = Callable[..., LocalHermes]

FAST = {
    "hermes_enabled": "true",
    "heartbeat_interval": "0.1",
    "presence_check_interval": "0.2",
    "register_retry_max": "0.2",
    "hermes_timeout": "0.5",
    "unregister_timeout": "1",
}


def component_env(hermes_url: str, **settings: str) -> dict[str, str]:
    """Environment for a component process with sub-second Hermes intervals."""
    values = {**FAST, **settings}
    return {"HERMES_URL": hermes_url, **{PREFIX + key.upper(): value for key, value in values.items()}}


def fast_settings(make_settings: SettingsFactory, hermes_url: str, **overrides: Any) -> Settings:
    return make_settings(**{**FAST, "hermes_url": hermes_url, **overrides})


@contextmanager
def component(hermes: LocalHermes, tmp_path: Path, **settings: str) -> Iterator[ComponentProcess]:
    process = ComponentProcess(NAME, env=component_env(hermes.url, **settings), log_dir=tmp_path)
    with process:
        yield process


def health(base_url: str) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(f"{base_url}/health", timeout=5.0).json()
    return body


def is_registered(base_url: str) -> bool:
    return bool(health(base_url)["registered_with_hermes"])


# -- startup -------------------------------------------------------------------


def test_health_answers_at_once_while_hermes_is_down_and_registers_when_it_comes_up(
    local_hermes_factory: HermesFactory, tmp_path: Path
) -> None:
    hermes = local_hermes_factory(start=False)
    with component(hermes, tmp_path) as process:
        body = health(process.base_url)  # the component started although Hermes is not there
        assert (body["status"], body["registered_with_hermes"]) == ("degraded", False)
        assert body["hermes"]["state"] in ("starting", "retrying")
        hermes.start()
        eventually(lambda: NAME in hermes.component_ids(), what="registered once Hermes is up")
        eventually(lambda: is_registered(process.base_url))
        assert health(process.base_url)["status"] == "healthy"


def test_registration_sends_the_contracts_fields(make_settings: SettingsFactory, local_hermes: LocalHermes) -> None:
    settings = fast_settings(
        make_settings, local_hermes.url, instance_id="a", public_url="http://component.example:9999"
    )
    with running_server(create_app(settings)):
        eventually(lambda: f"{NAME}-a" in local_hermes.component_ids())
        record = next(r for r in local_hermes.components() if r["component_id"] == f"{NAME}-a")
    assert (record["name"], record["type"], record["endpoint"]) == (NAME, "component", "http://component.example:9999")
    metadata = record["metadata"]
    assert (metadata["health_check"], metadata["ws"], metadata["events"], metadata["api_version"]) == (
        "/health",
        "/ws",
        "/events",
        "v1",
    )
    assert metadata["ai_port"] == metadata["port"] + 37000
    assert {"path": "/api/v1/process", "methods": ["POST"], "description": "Process one input"} in metadata["endpoints"]


def test_required_hermes_that_never_answers_fails_startup_with_a_clear_message(tmp_path: Path) -> None:
    env = component_env(f"http://127.0.0.1:{refused_port()}", hermes_required="true", hermes_required_timeout="1")
    process = ComponentProcess(NAME, env=env, log_dir=tmp_path)
    with pytest.raises(RuntimeError, match="exited"):
        process.start()
    assert "could not register with Hermes" in process.log
    assert f"{PREFIX}HERMES_REQUIRED=false" in process.log


def test_required_hermes_lets_startup_finish_once_registered(
    make_settings: SettingsFactory, local_hermes: LocalHermes
) -> None:
    with running_server(create_app(fast_settings(make_settings, local_hermes.url, hermes_required=True))) as url:
        body = health(url)  # answered once startup finished: registration is done
    assert (body["registered_with_hermes"], body["status"]) == (True, "healthy")
    assert {"name": "hermes", "status": "healthy", "required": True} in body["dependencies"]


# -- staying registered ------------------------------------------------------------


def test_component_registers_again_after_hermes_restarts(
    make_settings: SettingsFactory, local_hermes: LocalHermes
) -> None:
    with running_server(create_app(fast_settings(make_settings, local_hermes.url))):
        eventually(lambda: NAME in local_hermes.component_ids())
        registrations = local_hermes.registry.count("/api/register", 200)
        local_hermes.restart()  # registry wiped; the old token still passes heartbeats
        assert NAME not in local_hermes.component_ids()
        eventually(lambda: NAME in local_hermes.component_ids(), what="registered again after the restart")
    assert local_hermes.registry.count("/api/register", 200) > registrations


def test_expired_token_leads_to_reregistration_not_silent_heartbeat_failures(
    make_settings: SettingsFactory, local_hermes_factory: HermesFactory
) -> None:
    # Hermes' tokens live 1 s; the component believes the default (an hour): it learns from the 401.
    hermes = local_hermes_factory(token_lifetime=1.0)
    with running_server(create_app(fast_settings(make_settings, hermes.url))) as url:
        eventually(lambda: hermes.registry.count("/api/heartbeat", 401) >= 1, what="a heartbeat with an expired token")
        eventually(lambda: hermes.registry.count("/api/register", 200) >= 2, what="registered again after the expiry")
        beats = hermes.registry.count("/api/heartbeat", 200)
        eventually(lambda: hermes.registry.count("/api/heartbeat", 200) > beats + 3, what="heartbeats continue")
        assert is_registered(url)


def test_token_is_renewed_before_its_lifetime_runs_out(
    make_settings: SettingsFactory, local_hermes_factory: HermesFactory
) -> None:
    hermes = local_hermes_factory(token_lifetime=4.0)
    with running_server(create_app(fast_settings(make_settings, hermes.url, hermes_token_lifetime=1.0))):
        eventually(lambda: hermes.registry.count("/api/register", 200) >= 3, what="token renewals")
    assert hermes.registry.count("/api/heartbeat", 401) == 0


def test_a_failed_token_renewal_keeps_heartbeating_so_expiry_is_noticed(
    make_settings: SettingsFactory, local_hermes_factory: HermesFactory
) -> None:
    hermes = local_hermes_factory(token_lifetime=1.5)
    settings = fast_settings(make_settings, hermes.url, hermes_token_lifetime=1.5)
    with running_server(create_app(settings)) as url:
        eventually(lambda: is_registered(url))
        hermes.fail("500", path="/api/register")  # renewals fail from now on; heartbeats still answer
        eventually(lambda: hermes.registry.count("/api/register", 500) >= 1, what="a failed renewal")
        eventually(lambda: hermes.registry.count("/api/heartbeat", 401) >= 1, what="the expired token used")
        eventually(lambda: not is_registered(url), what="the lost registration reported")
        assert health(url)["status"] == "degraded"
        hermes.heal()
        eventually(lambda: is_registered(url), what="registered again once Hermes takes registrations")


def test_backoff_stays_within_its_cap_after_any_number_of_attempts() -> None:
    backoff = registration_backoff(30.0)
    for attempt in (0, 1, 10, 1023, 1024, 10**6):
        assert 0 < backoff.delay(attempt) <= 30.0


def test_backoff_accepts_a_cap_below_the_first_wait() -> None:
    # Tests and impatient deployments set `<NAME>_REGISTER_RETRY_MAX` under half a second.
    backoff = registration_backoff(0.2)
    assert all(0 < backoff.delay(attempt) <= 0.2 for attempt in range(5))


def test_two_instances_of_one_component_coexist_in_the_registry(
    make_settings: SettingsFactory, local_hermes: LocalHermes
) -> None:
    # Slow heartbeats on a loaded machine must not trigger a re-registration here:
    # only a presence check that confuses the two instances may.
    patient = {"hermes_timeout": "10", "heartbeat_failures_before_reregister": "1000"}
    one = create_app(fast_settings(make_settings, local_hermes.url, instance_id="one", **patient))
    two = create_app(fast_settings(make_settings, local_hermes.url, instance_id="two", **patient))
    with running_server(one), running_server(two):
        eventually(lambda: {f"{NAME}-one", f"{NAME}-two"} <= local_hermes.component_ids())
        # Calls are recorded once answered, a moment after the registry changed.
        eventually(lambda: local_hermes.registry.count("/api/register", 200) >= 2)
        # The presence check finds each by id, so neither keeps re-registering the other away.
        registrations = local_hermes.registry.count("/api/register", 200)
        beats = local_hermes.registry.count("/api/heartbeat", 200)
        eventually(lambda: local_hermes.registry.count("/api/heartbeat", 200) > beats + 10)
        assert local_hermes.registry.count("/api/register", 200) == registrations
        assert {f"{NAME}-one", f"{NAME}-two"} <= local_hermes.component_ids()


# -- leaving -----------------------------------------------------------------------


def test_a_signal_while_hermes_stores_the_registration_still_unregisters(
    local_hermes: LocalHermes, tmp_path: Path
) -> None:
    # Hermes stores the registration, but its answer is late: the signal lands in between.
    local_hermes.fail("late", path="/api/register")
    env = component_env(local_hermes.url, hermes_timeout="5")
    process = ComponentProcess(NAME, env=env, log_dir=tmp_path).start()
    try:
        eventually(lambda: NAME in local_hermes.component_ids())
    finally:
        threading.Timer(0.5, local_hermes.heal).start()  # the answer arrives while the component stops
        process.stop(signal.SIGTERM)
    assert NAME not in local_hermes.component_ids()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_removes_the_component_from_the_registry(local_hermes: LocalHermes, tmp_path: Path, sig: int) -> None:
    process = ComponentProcess(NAME, env=component_env(local_hermes.url), log_dir=tmp_path).start()
    try:
        eventually(lambda: NAME in local_hermes.component_ids())
    finally:
        code = process.stop(sig)
    assert code in (0, -sig)  # uvicorn re-raises the signal after a graceful shutdown
    assert NAME not in local_hermes.component_ids()
    assert local_hermes.registry.count("/api/unregister", 200) == 1


def test_shutdown_is_not_held_up_by_a_hanging_hermes(local_hermes: LocalHermes, tmp_path: Path) -> None:
    env = component_env(local_hermes.url, hermes_timeout="5", unregister_timeout="0.5")
    process = ComponentProcess(NAME, env=env, log_dir=tmp_path).start()
    try:
        eventually(lambda: NAME in local_hermes.component_ids())
        local_hermes.fail("hang")
    finally:
        code = process.stop(signal.SIGTERM)  # killed (-9) after 20 s if shutdown hung
    assert code in (0, -signal.SIGTERM)
    assert "unregister from hermes timed out" in process.log
    assert "Application shutdown complete" in process.log


# -- bad answers -------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["500", "html", "truncated", "hang", "reset"])
def test_component_keeps_serving_through_bad_hermes_answers_and_recovers(
    make_settings: SettingsFactory, local_hermes: LocalHermes, mode: Any
) -> None:
    settings = fast_settings(make_settings, local_hermes.url, heartbeat_failures_before_reregister=2)
    with running_server(create_app(settings)) as url:
        eventually(lambda: is_registered(url))
        local_hermes.fail(mode)
        eventually(lambda: not is_registered(url), what="registration given up after repeated failures")
        assert health(url)["status"] == "degraded"
        assert httpx.post(f"{url}/api/v1/process", json={"input": "still serving"}, timeout=5).status_code == 200
        local_hermes.heal()
        eventually(lambda: is_registered(url), what="registered again once Hermes answers")


@pytest.mark.parametrize("mode", ["500", "html", "truncated", "reset"])
def test_registration_retries_through_bad_answers_at_startup(
    make_settings: SettingsFactory, local_hermes: LocalHermes, mode: Any
) -> None:
    local_hermes.fail(mode, times=3, path="/api/register")
    settings = fast_settings(make_settings, local_hermes.url)
    with running_server(create_app(settings)) as url:
        eventually(lambda: is_registered(url))
    assert local_hermes.registry.fault is None  # all three bad answers were given
    assert local_hermes.registry.count("/api/register") >= 4


def test_repeated_failures_are_logged_once_per_state_change(local_hermes: LocalHermes, tmp_path: Path) -> None:
    # A generous timeout: a slow machine must not add a second kind of failure (a timeout) to the log.
    with component(local_hermes, tmp_path, hermes_timeout="5") as process:
        eventually(lambda: NAME in local_hermes.component_ids())
        local_hermes.fail("500", path="/api/heartbeat")
        eventually(lambda: local_hermes.registry.count("/api/heartbeat", 500) >= 5)
        local_hermes.heal()
        beats = local_hermes.registry.count("/api/heartbeat", 200)
        eventually(lambda: local_hermes.registry.count("/api/heartbeat", 200) > beats)
    assert process.log.count("hermes heartbeat failed") == 1
    assert process.log.count("hermes answers again") >= 1


def test_a_failing_presence_check_is_logged_once_while_heartbeats_succeed(
    local_hermes: LocalHermes, tmp_path: Path
) -> None:
    with component(local_hermes, tmp_path, hermes_timeout="5") as process:
        eventually(lambda: NAME in local_hermes.component_ids())
        local_hermes.fail("500", path="/api/components")
        eventually(lambda: local_hermes.registry.count("/api/components", 500) >= 5)
        local_hermes.heal()
        checks = local_hermes.registry.count("/api/components", 200)
        eventually(lambda: local_hermes.registry.count("/api/components", 200) > checks)
    assert process.log.count("hermes presence check failed") == 1
    assert process.log.count("hermes answers again") == 1


# -- what it reports -----------------------------------------------------------------


def test_health_reports_the_registration_state(make_settings: SettingsFactory, local_hermes: LocalHermes) -> None:
    with running_server(create_app(fast_settings(make_settings, local_hermes.url))) as url:
        eventually(lambda: is_registered(url))
        body = health(url)
    assert {"name": "hermes", "status": "healthy", "required": False} in body["dependencies"]
    detail = body["hermes"]
    assert (detail["registered"], detail["state"], detail["component_id"]) == (True, "registered", NAME)
    assert detail["last_success"] is not None
    assert {"last_error", "next_attempt"} <= set(detail)


def test_metrics_count_registrations_and_heartbeats(make_settings: SettingsFactory, local_hermes: LocalHermes) -> None:
    with running_server(create_app(fast_settings(make_settings, local_hermes.url))) as url:
        eventually(lambda: local_hermes.registry.count("/api/heartbeat", 200) >= 2)
        text = httpx.get(f"{url}/metrics", timeout=5).text
    assert 'hermes_registrations_total{result="success"}' in text
    assert 'hermes_heartbeats_total{result="success"}' in text
    assert "hermes_registered 1.0" in text


async def test_on_registered_is_called_after_each_registration(
    make_settings: SettingsFactory, local_hermes: LocalHermes
) -> None:
    seen: list[dict[str, Any]] = []

    async def on_registered(info: dict[str, Any]) -> None:
        seen.append(info)

    async with Registrar(fast_settings(make_settings, local_hermes.url), on_registered=on_registered) as registrar:
        assert await registrar.wait_registered(15)
    assert seen[0]["component_id"] == NAME
    assert seen[0]["reason"] == "startup"
    assert NAME not in local_hermes.component_ids()  # leaving the context unregistered it


async def test_the_endpoint_list_is_built_once_off_the_event_loop(
    make_settings: SettingsFactory, local_hermes: LocalHermes
) -> None:
    # Building it means generating the app's OpenAPI document (~0.1 s): on the loop, the first
    # requests would wait for it.
    built_in: list[int] = []

    def endpoints() -> list[dict[str, Any]]:
        built_in.append(threading.get_ident())
        return [{"path": "/api/v1/process", "methods": ["POST"], "description": "Process one input"}]

    settings = fast_settings(make_settings, local_hermes.url)
    async with Registrar(settings, endpoints=endpoints) as registrar:
        assert await registrar.wait_registered(15)
        (record,) = local_hermes.components()
    assert built_in and threading.get_ident() not in built_in
    assert len(built_in) == 1
    assert record["metadata"]["endpoints"][0]["path"] == "/api/v1/process"


async def test_registration_is_announced_as_an_event(make_settings: SettingsFactory, local_hermes: LocalHermes) -> None:
    settings = fast_settings(make_settings, local_hermes.url)
    with running_server(create_app(settings)) as url:
        async with (
            asyncio.timeout(20),
            httpx.AsyncClient(base_url=url, timeout=10.0) as http,
            http.stream("GET", "/events?types=component.registered", headers={"Last-Event-ID": "none-0"}) as response,
        ):
            async for line in response.aiter_lines():
                if line.startswith("data:") and '"component.registered"' in line:
                    event = json.loads(line.removeprefix("data:"))
                    break
    assert event["data"]["component_id"] == NAME
    assert event["data"]["endpoint"] == settings.base_url
